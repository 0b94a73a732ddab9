// Text widths for aligned columns (lindra/report.hpp).
#include <lindra/report.hpp>

#include <algorithm>
#include <utility>

namespace lindra {
namespace {

// The next code point of `s` at `i`, advancing `i`; a byte that does not
// start a well-formed sequence is returned as itself.
char32_t next_code_point(std::string_view s, std::size_t& i) {
    const auto b = static_cast<unsigned char>(s[i]);
    const std::size_t len = b < 0x80 ? 1 : (b & 0xE0) == 0xC0 ? 2 : (b & 0xF0) == 0xE0 ? 3 : (b & 0xF8) == 0xF0 ? 4 : 0;
    if (len <= 1 || i + len > s.size()) {
        ++i;
        return b;
    }
    char32_t cp = b & (0x7F >> len);
    for (std::size_t k = 1; k < len; ++k) {
        const auto c = static_cast<unsigned char>(s[i + k]);
        if ((c & 0xC0) != 0x80) {
            ++i;
            return b;
        }
        cp = (cp << 6) | (c & 0x3F);
    }
    i += len;
    return cp;
}

bool in(char32_t c, std::initializer_list<std::pair<char32_t, char32_t>> ranges) {
    return std::any_of(ranges.begin(), ranges.end(), [c](auto r) { return c >= r.first && c <= r.second; });
}

std::size_t columns(char32_t c) {
    // Combining marks, zero-width spaces and joiners, variation selectors.
    if (in(c, {{0x0300, 0x036F},
               {0x0483, 0x0489},
               {0x0591, 0x05BD},
               {0x1AB0, 0x1AFF},
               {0x1DC0, 0x1DFF},
               {0x200B, 0x200F},
               {0x2060, 0x2064},
               {0x20D0, 0x20FF},
               {0xFE00, 0xFE0F},
               {0xFE20, 0xFE2F},
               {0xFEFF, 0xFEFF}}))
        return 0;
    // East Asian wide and fullwidth (Unicode's EastAsianWidth W and F, in
    // the main blocks), and emoji.
    if (in(c, {{0x1100, 0x115F},
               {0x2E80, 0x303E},
               {0x3041, 0x33FF},
               {0x3400, 0x4DBF},
               {0x4E00, 0x9FFF},
               {0xA000, 0xA4CF},
               {0xAC00, 0xD7A3},
               {0xF900, 0xFAFF},
               {0xFE30, 0xFE4F},
               {0xFF00, 0xFF60},
               {0xFFE0, 0xFFE6},
               {0x1F300, 0x1F64F},
               {0x1F900, 0x1F9FF},
               {0x20000, 0x3FFFD}}))
        return 2;
    return 1;
}

}  // namespace

std::size_t text_width(std::string_view text) {
    std::size_t width = 0;
    for (std::size_t i = 0; i < text.size();) width += columns(next_code_point(text, i));
    return width;
}

std::string aligned_columns(const std::vector<std::vector<std::string>>& rows, int indent) {
    std::vector<std::size_t> widths;
    for (const auto& row : rows) {
        widths.resize(std::max(widths.size(), row.size()));
        for (std::size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], text_width(row[i]));
    }
    std::string out;
    for (const auto& row : rows) {
        out.append(static_cast<std::size_t>(std::max(indent, 0)), ' ');
        for (std::size_t i = 0; i < row.size(); ++i) {
            out += row[i];
            if (i + 1 < row.size()) out.append(widths[i] - text_width(row[i]) + 2, ' ');
        }
        out += '\n';
    }
    return out;
}

}  // namespace lindra
