// One prepared SQLite statement, owned.
//
// Thread-safety: one thread at a time (as its Database).
#pragma once

#include <lindra/change.hpp>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

struct sqlite3;
struct sqlite3_stmt;

namespace lindra::store {

class Statement {
  public:
    Statement(sqlite3* db, std::string_view sql);
    ~Statement();
    Statement(const Statement&) = delete;
    Statement& operator=(const Statement&) = delete;
    Statement(Statement&& other) noexcept;
    Statement& operator=(Statement&& other) noexcept;

    // Parameters are 1-based, as in SQLite.
    Statement& bind(int i, std::int64_t v);
    Statement& bind(int i, std::string_view v);
    Statement& bind(int i, std::span<const std::uint8_t> blob);
    Statement& bind(int i, const Id& id) { return bind(i, std::span<const std::uint8_t>(id.bytes)); }
    Statement& bind(int i, const Value& v);
    Statement& bind_null(int i);
    Statement& bind(int i, int v) { return bind(i, static_cast<std::int64_t>(v)); }
    Statement& bind(int i, const char* v) { return bind(i, std::string_view(v)); }
    Statement& bind(int i, const std::string& v) { return bind(i, std::string_view(v)); }

    // Steps once: true when a row is available, false when done.
    bool step();
    // Steps to completion of a statement that returns no rows.
    void run();
    void reset() noexcept;  // resets and clears bindings

    bool is_null(int col) const;
    std::int64_t int64(int col) const;
    std::string text(int col) const;
    std::span<const std::uint8_t> blob(int col) const;
    Id id(int col) const;  // a 16-byte blob column
    // The column as the Value of its SQLite storage class.
    Value value(int col) const;
    int column_count() const;

  private:
    sqlite3* db_;
    sqlite3_stmt* stmt_;
};

}  // namespace lindra::store
