// Helpers for looking at a replica's file from a test.
#pragma once

#include <lindra/error.hpp>

#include <catch2/catch.hpp>

#include <cstdint>
#include <stdexcept>
#include <string>

namespace lindra::test {

enum class Tables { all, domain };

// Every row of every table (or of the domain tables only), every column as
// SQL's quote() of it, in a stable order: two dumps are equal only if the
// tables hold the same bytes.
std::string dump(const std::string& path, Tables which = Tables::all);
// The same for one table.
std::string dump_table(const std::string& path, const std::string& table);

std::int64_t count_rows(const std::string& path, const std::string& table);

// Runs `sql` on a replica's file behind lindra's back, as a user with the
// file and a SQLite shell could.
void tamper(const std::string& path, const std::string& sql);

// Runs `f`, which must throw lindra::Error, and returns the error.
template <class F>
Error error_of(F&& f) {
    try {
        f();
    } catch (const Error& e) {
        return e;
    }
    FAIL("expected a lindra::Error");
    throw std::logic_error("unreachable");
}

}  // namespace lindra::test
