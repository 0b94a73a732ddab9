// Catch2's main for test programs that need PostgreSQL (support/pg_db.hpp).
// Without LINDRA_TEST_PG they say so loudly and exit with
// kPgSkipReturnCode, which ctest reports as skipped; listing the tests
// (ctest's discovery) works either way.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "support/pg_db.hpp"

#include <cstdio>
#include <string_view>

int main(int argc, char* argv[]) {
    bool listing = false;
    for (int i = 1; i < argc; ++i)
        if (std::string_view(argv[i]).starts_with("--list")) listing = true;
    if (!listing && lindra::test::pg_server().empty()) {
        std::fprintf(stderr,
                     "SKIPPED: %s needs PostgreSQL and LINDRA_TEST_PG is not set.\n"
                     "  scripts/test starts a throw-away server and sets it; by hand:\n"
                     "  LINDRA_TEST_PG=postgresql://postgres@127.0.0.1:5432/postgres %s\n",
                     argv[0], argv[0]);
        return lindra::test::kPgSkipReturnCode;
    }
    return Catch::Session().run(argc, argv);
}
