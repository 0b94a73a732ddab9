#include "core/csv.hpp"

#include <algorithm>

namespace lindra::csv {
namespace {

bool blank(char c) {
    return c == ' ' || c == '\t';
}

// The length of the line break at text[i]: CRLF 2, LF or CR 1, else 0.
std::size_t line_break(std::string_view text, std::size_t i) {
    if (i >= text.size()) return 0;
    if (text[i] == '\n') return 1;
    if (text[i] != '\r') return 0;
    return i + 1 < text.size() && text[i + 1] == '\n' ? 2 : 1;
}

// The length of the well-formed UTF-8 sequence at text[i] (RFC 3629: no
// overlong forms, no surrogates, nothing above U+10FFFF); 0 if none.
std::size_t utf8_sequence(std::string_view text, std::size_t i) {
    const auto b = static_cast<unsigned char>(text[i]);
    if (b < 0x80) return 1;
    std::size_t n = 0;
    char32_t cp = 0, min = 0;
    if ((b & 0xE0) == 0xC0) {
        n = 2, cp = b & 0x1F, min = 0x80;
    } else if ((b & 0xF0) == 0xE0) {
        n = 3, cp = b & 0x0F, min = 0x800;
    } else if ((b & 0xF8) == 0xF0) {
        n = 4, cp = b & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (i + n > text.size()) return 0;
    for (std::size_t k = 1; k < n; ++k) {
        const auto c = static_cast<unsigned char>(text[i + k]);
        if ((c & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (c & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return n;
}

constexpr std::string_view kSaveAsUtf8 = "save the file as UTF-8 (in a spreadsheet: \"CSV UTF-8\")";

// Checked before parsing, so the parser works on well-formed text.
void check_encoding(std::string_view text) {
    int line = 1;
    for (std::size_t i = 0; i < text.size();) {
        if (const auto n = line_break(text, i)) {
            i += n;
            ++line;
            continue;
        }
        if (text[i] == '\0')
            throw SyntaxError(line, 0, "a NUL byte: this is not a text file; " + std::string(kSaveAsUtf8));
        const auto n = utf8_sequence(text, i);
        if (n == 0) throw SyntaxError(line, 0, "not valid UTF-8; " + std::string(kSaveAsUtf8));
        i += n;
    }
}

std::string trimmed(std::string s) {
    const auto first = std::find_if_not(s.begin(), s.end(), blank);
    const auto last = std::find_if_not(s.rbegin(), s.rend(), blank).base();
    return first < last ? std::string(first, last) : std::string();
}

}  // namespace

SyntaxError::SyntaxError(int line_, std::size_t field_, const std::string& what)
    : Error(Errc::invalid_argument, "line " + std::to_string(line_) +
                                        (field_ ? ", field " + std::to_string(field_) : std::string()) + ": " + what),
      line(line_),
      field(field_),
      what_alone(what) {}

Reader::Reader(std::string_view text) : text_(text) {
    if (text_.starts_with("\xFF\xFE") || text_.starts_with("\xFE\xFF"))
        throw SyntaxError(1, 0, "the file is UTF-16; " + std::string(kSaveAsUtf8));
    if (text_.starts_with("\xEF\xBB\xBF")) text_.remove_prefix(3);
    check_encoding(text_);
    const auto first_line = text_.substr(0, text_.find_first_of("\r\n"));
    if (first_line.find(';') != std::string_view::npos && first_line.find(',') == std::string_view::npos)
        delimiter_ = ';';
}

bool Reader::field_ends(std::size_t i) const {
    return i == text_.size() || text_[i] == delimiter_ || line_break(text_, i);
}

std::optional<Record> Reader::next() {
    const auto& text = text_;
    auto& i = at_;
    while (i < text.size()) {
        Record record{line_, {}};
        for (;;) {
            const std::size_t position = record.fields.size() + 1;
            while (i < text.size() && blank(text[i])) ++i;
            std::string value;
            if (i < text.size() && text[i] == '"') {
                const int opened = line_;
                ++i;
                for (;;) {
                    if (i == text.size())
                        throw SyntaxError(opened, position, "the quoted field never closes; end it with a quote (\")");
                    if (text[i] == '"' && i + 1 < text.size() && text[i + 1] == '"') {
                        value += '"';
                        i += 2;
                    } else if (text[i] == '"') {
                        ++i;
                        break;
                    } else if (const auto n = line_break(text, i)) {
                        value += '\n';
                        i += n;
                        ++line_;
                    } else {
                        value += text[i++];
                    }
                }
                while (i < text.size() && blank(text[i])) ++i;
                if (!field_ends(i))
                    throw SyntaxError(
                        line_, position,
                        "text after the closing quote; a quote inside a quoted field is written twice (\"\")");
            } else {
                while (!field_ends(i)) {
                    if (text[i] == '"')
                        throw SyntaxError(line_, position,
                                          "a quote inside a field that does not start with one; put the whole field in"
                                          " quotes and write the quote twice (\"\")");
                    value += text[i++];
                }
            }
            record.fields.push_back(trimmed(std::move(value)));
            if (i < text.size() && text[i] == delimiter_) {
                ++i;
                continue;
            }
            break;
        }
        if (const auto n = line_break(text, i)) {
            i += n;
            ++line_;
        }
        if (std::any_of(record.fields.begin(), record.fields.end(), [](const std::string& f) { return !f.empty(); }))
            return record;
    }
    return std::nullopt;
}

}  // namespace lindra::csv
