#include <lindra/error.hpp>

namespace lindra {
namespace {

class Category final : public std::error_category {
  public:
    const char* name() const noexcept override { return "lindra"; }
    std::string message(int ev) const override {
        switch (static_cast<Errc>(ev)) {
            case Errc::ok:
                return "ok";
            case Errc::invalid_argument:
                return "invalid argument";
            case Errc::unknown_entity:
                return "unknown entity";
            case Errc::unknown_field:
                return "unknown field";
            case Errc::wrong_type:
                return "value of the wrong type";
            case Errc::bad_enum_value:
                return "value not in the allowed set";
            case Errc::out_of_range:
                return "value out of range";
            case Errc::too_long:
                return "text too long";
            case Errc::not_found:
                return "not found";
            case Errc::ambiguous:
                return "name is ambiguous";
            case Errc::storage:
                return "storage error";
            case Errc::busy:
                return "database is busy";
            case Errc::corrupt:
                return "database is corrupt";
            case Errc::schema_too_new:
                return "database was written by a newer lindra";
            case Errc::read_only:
                return "database is read-only";
            case Errc::not_a_replica:
                return "file is not a lindra replica";
            case Errc::unavailable:
                return "database server unavailable";
        }
        return "unknown lindra error";
    }
    std::error_condition default_error_condition(int ev) const noexcept override {
        switch (static_cast<Errc>(ev)) {
            case Errc::invalid_argument:
            case Errc::unknown_entity:
            case Errc::unknown_field:
            case Errc::wrong_type:
            case Errc::bad_enum_value:
            case Errc::too_long:
            case Errc::ambiguous:
                return std::errc::invalid_argument;
            case Errc::out_of_range:
                return std::errc::result_out_of_range;
            case Errc::busy:
                return std::errc::device_or_resource_busy;
            case Errc::read_only:
                return std::errc::read_only_file_system;
            default:
                return {ev, *this};
        }
    }
};

}  // namespace

const std::error_category& error_category() noexcept {
    static const Category category;
    return category;
}

}  // namespace lindra
