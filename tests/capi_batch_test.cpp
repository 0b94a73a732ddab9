// lindra.h's batch from C++, where a callback can throw: the batch rolls
// back, the error says so, and the handle goes back to writing on its own.
#include "support/temp_dir.hpp"

#include <lindra/lindra.h>

#include <catch2/catch.hpp>

#include <stdexcept>

namespace {

bool register_then_throw(lindra_replica* r, void*) {
    lindra_id org;
    lindra_replica_register_organization(r, "Inside", LINDRA_ORGANIZATION_CARE_UNIT, nullptr, &org, nullptr);
    throw std::runtime_error("the app's callback failed");
}

TEST_CASE("a batch whose callback throws rolls back and leaves the handle usable") {
    lindra::test::TempDir dir;
    lindra_error err;
    lindra_replica* r = lindra_replica_open(dir.file("t.db").c_str(), &err);
    REQUIRE(r);
    CHECK_FALSE(lindra_replica_batch(r, register_then_throw, nullptr, &err));
    CHECK(err.code == LINDRA_ERR_INTERNAL);
    CHECK(std::string(err.message) == "the app's callback failed");

    lindra_id org;
    REQUIRE(lindra_replica_register_organization(r, "Outside", LINDRA_ORGANIZATION_CARE_UNIT, nullptr, &org, &err));
    std::int64_t n = 0;
    REQUIRE(lindra_replica_count(r, "organization", &n, &err));
    CHECK(n == 1);  // only the write made outside the batch
    lindra_replica_free(r);
}

}  // namespace
