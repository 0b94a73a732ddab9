// Reading CSV text (RFC 4180, with what spreadsheets write around it), for
// files people hand to lindra, such as a coordinator's registration list.
//
// The dialect: UTF-8, with or without a byte order mark; records end at
// CRLF, LF or CR; a field in double quotes may hold the delimiter, line
// breaks and quotes (doubled: ""); spaces and tabs around a field are
// dropped, inside quotes too; a line of nothing but empty fields (blank,
// or ",,,," as spreadsheets write) is skipped. The delimiter is a comma,
// or a semicolon when the first line has semicolons and no comma (what a
// spreadsheet in a Norwegian locale saves).
#pragma once

#include <lindra/error.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lindra::csv {

// Text that is not CSV as above: an Error (invalid_argument) that also
// says where, so a caller can name the column.
class SyntaxError : public Error {
  public:
    // `field`: the field's position in its record, from 1; 0 for the whole file.
    SyntaxError(int line, std::size_t field, const std::string& what);
    int line;
    std::size_t field;
    std::string what_alone;  // the message without the line and field
};

struct Record {
    int line = 0;  // the line it starts on, counting from 1
    std::vector<std::string> fields;
};

// The records of a text, one at a time, so a caller that has read the
// header can name the column of a later error. `text` must outlive it.
class Reader {
  public:
    // Throws SyntaxError for text that is UTF-16, not UTF-8, or holds a NUL.
    explicit Reader(std::string_view text);
    // The next record, nullopt at the end. Throws SyntaxError for a quote
    // inside an unquoted field, text after a closing quote, or a quoted
    // field that never closes.
    std::optional<Record> next();

  private:
    bool field_ends(std::size_t i) const;
    std::string_view text_;
    std::size_t at_ = 0;
    int line_ = 1;
    char delimiter_ = ',';
};

}  // namespace lindra::csv
