// Catch2's main for lindra's tests. Debian's libCatch2WithMain.a is built
// without sanitizers (linked into a sanitized test, its copies of inline
// std:: code make ThreadSanitizer report races that are not there), so every
// test compiles its main here.
//
// A run on PostgreSQL (LINDRA_TEST_STORE=postgres: pg_test, and the server
// suites' second run) needs LINDRA_TEST_PG. Without it the program says so
// loudly and exits with kPgSkipReturnCode, which ctest reports as skipped;
// listing the tests (ctest's discovery) works either way.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "support/pg_db.hpp"
#include "support/test_store.hpp"

#include <cstdio>
#include <string_view>

int main(int argc, char* argv[]) {
    bool listing = false;
    for (int i = 1; i < argc; ++i)
        if (std::string_view(argv[i]).starts_with("--list")) listing = true;
    if (!listing && lindra::test::TestStore::postgres() && lindra::test::pg_server().empty()) {
        std::fprintf(stderr,
                     "SKIPPED: %s needs PostgreSQL and LINDRA_TEST_PG is not set.\n"
                     "  scripts/test starts a throw-away server and sets it; by hand:\n"
                     "  LINDRA_TEST_STORE=postgres LINDRA_TEST_PG=postgresql://postgres@127.0.0.1:5432/postgres %s\n",
                     argv[0], argv[0]);
        return lindra::test::kPgSkipReturnCode;
    }
    return Catch::Session().run(argc, argv);
}
