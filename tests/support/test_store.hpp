// Where a test's server keeps its store. tests/CMakeLists.txt runs the
// server-facing suites once per backend: plainly on a SQLite file, and
// again with LINDRA_TEST_STORE=postgres on a fresh PostgreSQL database of
// the server in LINDRA_TEST_PG (support/test_main.cpp skips them loudly
// without one).
#pragma once

#include "support/pg_db.hpp"
#include "support/temp_dir.hpp"

#include <optional>
#include <string>

namespace lindra::test {

class TestStore {
  public:
    explicit TestStore(const TempDir& dir, const std::string& name = "server.db") {
        if (postgres())
            db_ = pg_.emplace().conninfo();
        else
            db_ = dir.file(name);
    }
    // A path or a PostgreSQL connection string, for ServerOptions::db_path.
    const std::string& db() const noexcept { return db_; }
    // This run tests the PostgreSQL backend.
    static bool postgres();

  private:
    std::optional<PgDatabase> pg_;  // dropped with the store
    std::string db_;
};

}  // namespace lindra::test
