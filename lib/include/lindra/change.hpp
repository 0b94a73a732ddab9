// Field values and field-granular changes, the unit lindra merges and syncs.
#pragma once

#include <cstdint>
#include <string>
#include <variant>

#include <lindra/id.hpp>

namespace lindra {

// A field's value. Which alternative a field takes is fixed by its FieldType
// (see schema.hpp): integer, boolean, timestamp (ms since the Unix epoch) and
// progress take int64; text, enum and date ("YYYY-MM-DD") take string; ref
// takes Id; monostate is "no value" (SQL NULL).
using Value = std::variant<std::monostate, std::int64_t, std::string, Id>;

// One field of one row as written by one device at one hybrid-logical time.
// `entity` and `field` are the stable tags of the schema table; for a counter
// field `value` is the origin's running total, not a delta, so a change
// applied twice counts once.
struct Change {
    std::uint16_t entity = 0;
    Id row;
    std::uint16_t field = 0;
    Value value;
    std::uint64_t hlc = 0;
    Id origin;

    friend bool operator==(const Change&, const Change&) = default;
};

// A progress value packs the lattice (attempt, status) into one integer whose
// numeric order is the lattice order: attempt first, then status rank.
constexpr std::int64_t progress_value(std::int64_t attempt, int status_rank) noexcept {
    return attempt * 256 + status_rank;
}
constexpr std::int64_t progress_attempt(std::int64_t v) noexcept {
    return v / 256;
}
constexpr int progress_rank(std::int64_t v) noexcept {
    return static_cast<int>(v % 256);
}

// Human-readable form for logs and the CLI.
std::string to_string(const Value& v);

}  // namespace lindra
