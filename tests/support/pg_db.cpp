#include "support/pg_db.hpp"

#include "store/pg.hpp"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <random>
#include <stdexcept>

namespace lindra::test {

std::string pg_server() {
    const char* s = std::getenv("LINDRA_TEST_PG");
    return s ? s : "";
}

PgDatabase::PgDatabase() : server_(pg_server()) {
    if (server_.empty()) throw std::runtime_error("LINDRA_TEST_PG is not set (support/test_main.cpp skips first)");
    static std::atomic<int> counter{0};
    std::random_device rd;
    name_ = "lindra_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + "_" +
            std::to_string(rd() % 1000000);
    store::pg::Connection admin(server_);
    admin.exec("CREATE DATABASE " + name_);
    conninfo_ = store::pg::conninfo_with(server_, "dbname", name_);
}

PgDatabase::~PgDatabase() {
    try {
        store::pg::Connection admin(server_);
        admin.exec("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
    } catch (...) {
        // The server went away; the cluster is thrown away with its data.
    }
}

}  // namespace lindra::test

#include "support/test_store.hpp"

namespace lindra::test {

bool TestStore::postgres() {
    const char* store = std::getenv("LINDRA_TEST_STORE");
    return store && std::string_view(store) == "postgres";
}

}  // namespace lindra::test
