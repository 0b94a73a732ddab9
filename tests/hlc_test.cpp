#include "replica/hlc.hpp"

#include <catch2/catch.hpp>

#include <cstdint>

using namespace lindra::replica;

TEST_CASE("tick follows the wall clock and stays strictly increasing") {
    std::int64_t wall = 1'000;
    HybridClock clock([&] { return wall; });
    const auto a = clock.tick();
    CHECK(hlc_ms(a) == 1'000);
    CHECK(hlc_counter(a) == 0);
    const auto b = clock.tick();  // same millisecond: the counter moves
    CHECK(b == a + 1);
    wall = 2'000;
    const auto c = clock.tick();
    CHECK(hlc_ms(c) == 2'000);
    CHECK(hlc_counter(c) == 0);
}

TEST_CASE("a wall clock that jumps backwards never makes time go backwards") {
    std::int64_t wall = 5'000;
    HybridClock clock([&] { return wall; });
    const auto before = clock.tick();
    wall = 1'000;  // e.g. the tablet's clock was corrected by three days
    std::uint64_t last = before;
    for (int i = 0; i < 100; ++i) {
        const auto t = clock.tick();
        REQUIRE(t > last);
        last = t;
    }
    CHECK(hlc_ms(last) == 5'000);
}

TEST_CASE("observing a remote time keeps later ticks ahead of it") {
    std::int64_t wall = 1'000;
    HybridClock clock([&] { return wall; });
    const auto remote = hlc_make(9'000, 7);
    clock.observe(remote);
    CHECK(clock.tick() > remote);
    clock.observe(hlc_make(10, 0));  // an older time changes nothing
    CHECK(clock.last() == remote + 1);
}

TEST_CASE("the logical counter borrows the next millisecond instead of wrapping") {
    HybridClock clock([] { return std::int64_t{1'000}; });
    clock.observe(hlc_make(1'000, 0xFFFF));
    const auto t = clock.tick();
    CHECK(hlc_ms(t) == 1'001);
    CHECK(hlc_counter(t) == 0);
}

TEST_CASE("a wall clock before the epoch is clamped, not wrapped") {
    HybridClock clock([] { return std::int64_t{-5}; });
    const auto t = clock.tick();
    CHECK(hlc_ms(t) == 0);
    CHECK(clock.tick() > t);
}
