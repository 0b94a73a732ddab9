#include "model/validate.hpp"

#include <lindra/error.hpp>

#include <chrono>
#include <optional>

namespace lindra::model {
namespace {

const char* type_name(FieldType t) {
    switch (t) {
        case FieldType::text:
            return "text";
        case FieldType::integer:
            return "an integer";
        case FieldType::boolean:
            return "a boolean (0 or 1)";
        case FieldType::enumeration:
            return "an enum value";
        case FieldType::ref:
            return "an id";
        case FieldType::timestamp:
            return "a timestamp in milliseconds";
        case FieldType::date:
            return "a date (YYYY-MM-DD)";
        case FieldType::progress:
            return "a progress value";
    }
    return "?";
}

// Code points in `s`, or nullopt if it is not valid UTF-8 or holds NUL.
std::optional<std::size_t> utf8_length(const std::string& s) {
    std::size_t n = 0;
    for (std::size_t i = 0; i < s.size(); ++n) {
        const auto c = static_cast<unsigned char>(s[i]);
        std::size_t len;
        char32_t cp;
        if (c == 0) return std::nullopt;
        if (c < 0x80) {
            len = 1;
            cp = c;
        } else if ((c & 0xE0) == 0xC0) {
            len = 2;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4;
            cp = c & 0x07;
        } else
            return std::nullopt;
        if (i + len > s.size()) return std::nullopt;
        for (std::size_t k = 1; k < len; ++k) {
            const auto cc = static_cast<unsigned char>(s[i + k]);
            if ((cc & 0xC0) != 0x80) return std::nullopt;
            cp = (cp << 6) | (cc & 0x3F);
        }
        static constexpr char32_t kMinForLen[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < kMinForLen[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return std::nullopt;
        i += len;
    }
    return n;
}

bool valid_date(const std::string& s) {
    if (s.size() != 10 || s[4] != '-' || s[7] != '-') return false;
    for (std::size_t i : {0, 1, 2, 3, 5, 6, 8, 9})
        if (s[i] < '0' || s[i] > '9') return false;
    const int y = std::stoi(s.substr(0, 4));
    const unsigned m = static_cast<unsigned>(std::stoi(s.substr(5, 2)));
    const unsigned d = static_cast<unsigned>(std::stoi(s.substr(8, 2)));
    return std::chrono::year_month_day{std::chrono::year{y}, std::chrono::month{m}, std::chrono::day{d}}.ok();
}

std::string quoted_values(const FieldDef& f) {
    std::string out;
    for (auto v : f.values) out += (out.empty() ? "" : ", ") + std::string(v);
    return out;
}

}  // namespace

std::string qualified_name(const EntityDef& e, const FieldDef& f) {
    return std::string(e.name) + "." + std::string(f.name);
}

Error field_error(Errc code, const EntityDef& e, const FieldDef& f, std::string_view what) {
    const std::string name = qualified_name(e, f);
    return Error(code, name + ": " + std::string(what), 0, name);
}

void throw_bad_enum(const EntityDef& e, const FieldDef& f, std::string_view value, Quote quote) {
    const std::string shown = quote == Quote::value ? "\"" + std::string(value) + "\" is " : "";
    throw field_error(Errc::bad_enum_value, e, f, shown + "not one of: " + quoted_values(f));
}

bool takes_null(const FieldDef& f) noexcept {
    return f.nullable && (f.rule == MergeRule::lww || f.rule == MergeRule::add_wins);
}

bool required_on_create(const FieldDef& f) noexcept {
    return !f.nullable && (f.rule == MergeRule::lww || f.rule == MergeRule::add_wins);
}

void validate(const EntityDef& e, const FieldDef& f, const Value& v, Quote quote) {
    auto fail = [&](Errc code, const std::string& what) -> void { throw field_error(code, e, f, what); };
    // "<value> " before what is wrong with it, where the value may be shown.
    auto shown = [quote](const std::string& value) { return quote == Quote::value ? value + " " : std::string(); };

    if (std::holds_alternative<std::monostate>(v)) {
        if (!takes_null(f)) fail(Errc::wrong_type, "a value is required");
        return;
    }
    switch (f.type) {
        case FieldType::integer:
        case FieldType::boolean:
        case FieldType::timestamp: {
            const auto* i = std::get_if<std::int64_t>(&v);
            if (!i) return fail(Errc::wrong_type, std::string("expected ") + type_name(f.type));
            if (*i < f.min || *i > f.max)
                fail(Errc::out_of_range, shown(std::to_string(*i) + " is") + "outside " + std::to_string(f.min) + ".." +
                                             std::to_string(f.max));
            return;
        }
        case FieldType::progress: {
            const auto* i = std::get_if<std::int64_t>(&v);
            if (!i) return fail(Errc::wrong_type, std::string("expected ") + type_name(f.type));
            if (*i < 0 || progress_attempt(*i) > f.max)
                fail(Errc::out_of_range, "attempt outside 0.." + std::to_string(f.max));
            if (progress_rank(*i) >= static_cast<int>(f.values.size()))
                fail(Errc::bad_enum_value, shown("status " + std::to_string(progress_rank(*i)) + " is") +
                                               "not a known progress status; allowed: " + quoted_values(f));
            return;
        }
        case FieldType::text:
        case FieldType::enumeration:
        case FieldType::date: {
            const auto* s = std::get_if<std::string>(&v);
            if (!s) return fail(Errc::wrong_type, std::string("expected ") + type_name(f.type));
            if (f.type == FieldType::enumeration && f.value_index(*s) < 0) throw_bad_enum(e, f, *s, quote);
            if (f.type == FieldType::date && !valid_date(*s))
                fail(Errc::invalid_argument, shown("\"" + *s + "\" is") + "not a date (YYYY-MM-DD)");
            if (f.type == FieldType::text) {
                const auto n = utf8_length(*s);
                if (!n) fail(Errc::invalid_argument, "text is not valid UTF-8 or contains NUL");
                if (*n == 0 && !f.nullable) fail(Errc::invalid_argument, "must not be empty");
                if (static_cast<std::int64_t>(*n) > f.max)
                    fail(Errc::too_long, std::to_string(*n) + " characters, the limit is " + std::to_string(f.max));
            }
            return;
        }
        case FieldType::ref: {
            const auto* id = std::get_if<Id>(&v);
            if (!id) return fail(Errc::wrong_type, std::string("expected ") + type_name(f.type));
            if (id->is_nil()) fail(Errc::invalid_argument, "the nil id does not name a row");
            return;
        }
    }
}

void check_deletable(const EntityDef& e) {
    if (e.derived_id)
        throw Error(Errc::invalid_argument, std::string(e.name) +
                                                " rows are identified by other rows and cannot be deleted;"
                                                " change their status instead");
}

}  // namespace lindra::model
