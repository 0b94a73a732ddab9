#include "core/case_fold.hpp"

namespace lindra {
namespace {

// Lower case for the Latin letters of Nordic and other European names
// (A-Z, U+00C0-U+00DE, Latin Extended-A), so "øystein" finds "Øystein".
// Other text passes through unchanged.
char32_t fold(char32_t c) {
    if ((c >= 'A' && c <= 'Z') || (c >= 0xC0 && c <= 0xDE && c != 0xD7)) return c + 0x20;
    if (c == 0x178) return 0xFF;  // Ÿ
    const bool odd_upper = (c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E);
    if (c >= 0x100 && c <= 0x17F && c != 0x130 && c != 0x138 && c != 0x149 && (c % 2 == 1) == odd_upper) return c + 1;
    return c;
}

}  // namespace

std::string fold_case(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size();) {
        const auto b = static_cast<unsigned char>(s[i]);
        // Two-byte sequences cover every letter fold() changes above ASCII.
        if ((b & 0xE0) == 0xC0 && i + 1 < s.size()) {
            const char32_t c =
                fold(static_cast<char32_t>(((b & 0x1F) << 6) | (static_cast<unsigned char>(s[i + 1]) & 0x3F)));
            out.push_back(static_cast<char>(0xC0 | (c >> 6)));
            out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
            i += 2;
        } else {
            out.push_back(static_cast<char>(fold(b)));
            ++i;
        }
    }
    return out;
}

}  // namespace lindra
