// A throw-away PostgreSQL database for one test, on the server named by
// LINDRA_TEST_PG (scripts/test starts one; see scripts/pg.sh).
//
// Test programs that need PostgreSQL link support/test_main.cpp as their
// main: without LINDRA_TEST_PG it says so and exits with
// kPgSkipReturnCode, which ctest reports as "Skipped" (SKIP_RETURN_CODE).
#pragma once

#include <string>

namespace lindra::test {

inline constexpr int kPgSkipReturnCode = 77;

// LINDRA_TEST_PG, or empty if unset.
std::string pg_server();

// CREATE DATABASE with a fresh random name in the constructor; DROP
// DATABASE ... WITH (FORCE) in the destructor, ending its sessions. A
// server that is named but cannot be reached fails the test.
class PgDatabase {
  public:
    PgDatabase();
    ~PgDatabase();
    PgDatabase(const PgDatabase&) = delete;
    PgDatabase& operator=(const PgDatabase&) = delete;

    const std::string& name() const noexcept { return name_; }
    // A libpq connection string for this database.
    const std::string& conninfo() const noexcept { return conninfo_; }

  private:
    std::string server_;
    std::string name_;
    std::string conninfo_;
};

}  // namespace lindra::test
