// SyncClient::status(), on_status and wait_until_synced, against a
// MockServer: what an app's sync indicator and its "make sure it is sent"
// button rely on.
#include "support/mock_course.hpp"

#include <lindra/testing/mock_server.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <vector>

namespace lindra::test {
namespace {

using namespace std::chrono_literals;

// The mock course, with every status Ola's client reports.
struct World : MockCourse {
    std::mutex mutex;
    std::vector<SyncStatus> seen;  // guarded by mutex

    SyncOptions options() {
        auto o = mock.client_options(token);
        o.connect_timeout = 500ms;
        o.on_status = [this](const SyncStatus& s) {
            std::lock_guard lock(mutex);
            seen.push_back(s);
        };
        return o;
    }
    std::vector<SyncState> states() {
        std::lock_guard lock(mutex);
        std::vector<SyncState> out;
        for (const auto& s : seen) out.push_back(s.state);
        return out;
    }
};

}  // namespace

TEST_CASE("a round goes connecting, pushing, pulling, idle, and counts what waits") {
    World w;
    w.tablet.add_time_spent(w.ola, w.module, w.group, 60);
    SyncClient client(w.tablet, w.options());
    CHECK(client.status().state == SyncState::idle);
    CHECK_FALSE(client.status().last_synced);

    const auto before = std::chrono::system_clock::now();
    REQUIRE(client.sync().ok());
    CHECK(w.states() ==
          std::vector{SyncState::connecting, SyncState::pushing, SyncState::pulling, SyncState::idle});
    const auto s = client.status();
    CHECK(s.state == SyncState::idle);
    CHECK(s.pending == 0);
    REQUIRE(s.last_synced);
    CHECK(*s.last_synced >= before);
    std::lock_guard lock(w.mutex);
    CHECK(w.seen.front().pending == 1);  // as the round began
}

TEST_CASE("offline and error states say why, and keep the last good sync") {
    World w;
    SyncClient client(w.tablet, w.options());
    REQUIRE(client.sync().ok());
    const auto synced = client.status().last_synced;

    w.tablet.add_time_spent(w.ola, w.module, w.group, 60);
    w.mock.stop();
    CHECK(client.sync().outcome == SyncOutcome::offline);
    auto s = client.status();
    CHECK(s.state == SyncState::offline);
    CHECK_FALSE(s.message.empty());
    CHECK(s.pending == 1);
    CHECK(s.last_synced == synced);

    w.mock.start();
    w.mock.faults().fail(lindra::testing::Frame::push, lindra::testing::ErrorCode::rate_limited, 1s);
    CHECK(client.sync().outcome == SyncOutcome::server_error);
    s = client.status();
    CHECK(s.state == SyncState::error);
    CHECK(s.error_code == "rate_limited");
}

TEST_CASE("wait_until_synced returns once the server has everything, through refused connections") {
    World w;
    w.tablet.add_time_spent(w.ola, w.module, w.group, 60);
    w.mock.faults().refuse_connections(3);
    SyncClient client(w.tablet, w.options());
    const auto r = client.wait_until_synced(20s);
    INFO(to_string(r.outcome) << ": " << r.message);
    REQUIRE(r.ok());
    CHECK(w.tablet.outbox_size() == 0);
    CHECK(w.mock.connections() >= 4);
    CHECK(w.mock.rows().progress_of(w.ola).at(0).time_spent_s == 60);
}

TEST_CASE("wait_until_synced gives up at its timeout, and at once on a refused token") {
    World w;
    w.tablet.add_time_spent(w.ola, w.module, w.group, 60);
    w.mock.stop();
    SyncClient client(w.tablet, w.options());
    const auto start = std::chrono::steady_clock::now();
    const auto r = client.wait_until_synced(700ms);
    CHECK(r.outcome == SyncOutcome::timed_out);
    CHECK(std::chrono::steady_clock::now() - start < 5s);
    CHECK(w.tablet.outbox_size() == 1);

    w.mock.start();
    w.mock.faults().reject_auth(100);
    CHECK(client.wait_until_synced(20s).outcome == SyncOutcome::auth_failed);
    CHECK(w.mock.frames(lindra::testing::Frame::hello) == 1);
}
TEST_CASE("progress counts down what is left to push and to pull") {
    World w;
    // Ola's writes to push, and the coordinator's to pull, in small batches.
    for (int i = 0; i < 5; ++i) w.tablet.add_time_spent(w.ola, w.module, w.group, 10);
    w.mock.seed([&](Writes& s) {
        for (int i = 0; i < 6; ++i) s.register_module({.course = w.course, .ordinal = 10 + i, .title = "extra"});
    });
    std::vector<SyncProgress> seen;
    auto o = w.options();
    o.push_batch_changes = 2;
    o.pull_batch_changes = 2;
    o.on_progress = [&](const SyncProgress& p) { seen.push_back(p); };
    REQUIRE(SyncClient(w.tablet, o).sync().ok());

    std::vector<std::uint64_t> push_left, pull_left;
    for (const auto& p : seen) {
        if (p.phase == SyncPhase::pushing) push_left.push_back(p.push_remaining);
        if (p.phase == SyncPhase::pulling && p.changes_pulled > 0) pull_left.push_back(p.pull_remaining);
    }
    REQUIRE(push_left.size() >= 2);
    CHECK(push_left.front() == 5);  // the whole outbox, before any acknowledgement
    CHECK(std::is_sorted(push_left.rbegin(), push_left.rend()));
    REQUIRE(pull_left.size() >= 2);
    CHECK(pull_left.front() > 0);
    CHECK(pull_left.back() == 0);
    CHECK(std::is_sorted(pull_left.rbegin(), pull_left.rend()));
    CHECK(seen.back().phase == SyncPhase::done);
}


}  // namespace lindra::test
