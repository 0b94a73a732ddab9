// Encoding: base64url (shared with the certificates, core/jws) and JSON
// (nlohmann), read strictly because an attacker wrote the bytes.
#include "server/token.hpp"

#include "core/jws.hpp"

#include <set>

namespace lindra::server {

std::string base64url_encode(std::string_view in) {
    return jws::base64url_encode(in);
}

std::string base64url_decode(std::string_view text) {
    auto out = jws::base64url_decode(text);
    if (!out) throw TokenRefused("the token is malformed: it is not canonical base64url");
    return std::move(*out);
}

Json strict_json(std::string_view text, int max_depth) {
    // nlohmann takes any depth and keeps the last of duplicate keys; its
    // parser callback sees each container open and each key, so both are
    // refused before the value is built. Its parser is iterative: depth
    // costs no stack.
    std::vector<std::set<std::string, std::less<>>> open;  // keys seen, one set per open container
    const Json::parser_callback_t check = [&](int depth, Json::parse_event_t event, Json& parsed) {
        switch (event) {
            case Json::parse_event_t::object_start:
            case Json::parse_event_t::array_start:
                if (depth >= max_depth) throw JsonRefused("nested too deeply");
                open.emplace_back();
                break;
            case Json::parse_event_t::key:
                if (!open.back().insert(parsed.get<std::string>()).second) throw JsonRefused("duplicate key");
                break;
            case Json::parse_event_t::object_end:
            case Json::parse_event_t::array_end:
                open.pop_back();
                break;
            case Json::parse_event_t::value:
                break;
        }
        return true;
    };
    try {
        return Json::parse(text.begin(), text.end(), check);
    } catch (const Json::parse_error& e) {
        // e.what() quotes the text read; the byte offset says where.
        throw JsonRefused("not well-formed at byte " + std::to_string(e.byte));
    }
}

Json parse_json(std::string_view text) {
    try {
        return strict_json(text);
    } catch (const JsonRefused& e) {
        throw TokenRefused("the token is malformed: invalid JSON (" + std::string(e.what()) + ")");
    }
}

const std::string* text_member(const Json& object, std::string_view key) {
    if (!object.is_object()) return nullptr;
    const auto it = object.find(key);
    return it != object.end() && it->is_string() ? it->get_ptr<const std::string*>() : nullptr;
}

}  // namespace lindra::server
