// lindra's one error space.
//
// Every failure lindra reports is a lindra::Error: a std::system_error whose
// code() is a lindra::Errc in lindra::error_category(). Storage failures also
// keep SQLite's extended result code (sqlite_code()), and bad input names the
// entity field it is about (field()), so an app can show a precise message.
#pragma once

#include <string>
#include <system_error>

namespace lindra {

enum class Errc {
    ok = 0,
    // Bad input from the caller or from a peer; nothing was written.
    invalid_argument = 1,  // malformed value, id or name
    unknown_entity,        // entity name or tag not in the schema
    unknown_field,         // field name or tag not in the entity
    wrong_type,            // value of the wrong type for the field
    bad_enum_value,        // enum value outside the allowed set
    out_of_range,          // number outside the field's range
    too_long,              // text longer than the field's limit
    not_found,             // a referenced row does not exist on this device
    ambiguous,             // a human name matches more than one row
    // Storage.
    storage = 100,   // SQLite failed; see sqlite_code()
    busy,            // the database stayed locked past the busy timeout
    corrupt,         // the database file is damaged or not a database
    schema_too_new,  // the file was written by a newer lindra
    read_only,       // the file cannot be written
    // The file holds another program's data, or is not a database at all:
    // lindra left it exactly as it was. Another path helps, retrying not.
    not_a_replica,
    // The database server cannot be reached, or the connection to it was
    // lost (PostgreSQL). Nothing is known to have been written; retrying
    // later helps once the server is back.
    unavailable,
};

const std::error_category& error_category() noexcept;

inline std::error_code make_error_code(Errc e) noexcept {
    return {static_cast<int>(e), error_category()};
}

class Error : public std::system_error {
  public:
    Error(Errc code, const std::string& message, int sqlite_code = 0, std::string field = {})
        : std::system_error(make_error_code(code), message),
          message_(message),
          sqlite_code_(sqlite_code),
          field_(std::move(field)) {}

    // The message alone; code().message() names the category of error.
    const char* what() const noexcept override { return message_.c_str(); }

    Errc errc() const noexcept { return static_cast<Errc>(code().value()); }
    // The storage failed (disk, lock, damage), as opposed to bad input:
    // retrying later may help, changing the input will not.
    bool storage_failure() const noexcept {
        const Errc e = errc();
        return e == Errc::storage || e == Errc::busy || e == Errc::corrupt || e == Errc::read_only ||
               e == Errc::unavailable;
    }
    // SQLite's extended result code (e.g. SQLITE_CONSTRAINT_UNIQUE), 0 if the
    // error did not come from SQLite.
    int sqlite_code() const noexcept { return sqlite_code_; }
    // "entity.field" the error is about, empty if it is not about one field.
    const std::string& field() const noexcept { return field_; }

  private:
    std::string message_;
    int sqlite_code_;
    std::string field_;
};

}  // namespace lindra

template <>
struct std::is_error_code_enum<lindra::Errc> : std::true_type {};
