// Row and device identifiers: 16 bytes, printed as a UUID.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace lindra {

struct Id {
    std::array<std::uint8_t, 16> bytes{};

    // A random version-4 UUID from the operating system's CSPRNG.
    static Id random();
    // A deterministic id for a row identified by other rows, e.g. the
    // membership of (group, person). Every device derives the same id, so two
    // devices creating "the same" row concurrently converge to one row.
    // SHA-256 over a domain string and the parts, shaped as a UUID version 8.
    static Id derive(std::string_view domain, std::span<const Id> parts);
    static Id derive(std::string_view domain, std::initializer_list<Id> parts) {
        return derive(domain, std::span(parts.begin(), parts.size()));
    }
    // Parses the 36-character hyphenated form (case-insensitive).
    static std::optional<Id> parse(std::string_view text);

    std::string to_string() const;
    // The same into `out` and a NUL, without allocating.
    void format(char out[37]) const noexcept;
    bool is_nil() const noexcept;

    friend auto operator<=>(const Id&, const Id&) = default;
};

}  // namespace lindra

template <>
struct std::hash<lindra::Id> {
    std::size_t operator()(const lindra::Id& id) const noexcept {
        std::size_t h = 0;
        for (int i = 0; i < 8; ++i) h = (h << 8) | id.bytes[i];
        return h;
    }
};
