#include <lindra/change.hpp>

namespace lindra {

std::string to_string(const Value& v) {
    switch (v.index()) {
        case 1:
            return std::to_string(std::get<std::int64_t>(v));
        case 2:
            return "\"" + std::get<std::string>(v) + "\"";
        case 3:
            return std::get<Id>(v).to_string();
        default:
            return "null";
    }
}

}  // namespace lindra
