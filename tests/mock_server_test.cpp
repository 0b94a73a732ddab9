// lindra::testing::MockServer: seeding and inspection, and each fault of
// its plan, seen from a real tablet syncing with it.
#include "support/mock_course.hpp"

#include <lindra/error.hpp>
#include <lindra/testing/mock_server.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <thread>

namespace lindra::test {
namespace {

using lindra::testing::ErrorCode;
using lindra::testing::Frame;
using lindra::testing::MockServer;
using lindra::testing::MockServerOptions;

using World = MockCourse;

void require_ok(const SyncResult& r) {
    INFO(to_string(r.outcome) << ": " << r.message);
    REQUIRE(r.ok());
}

}  // namespace

TEST_CASE("the mock server is seeded, serves its rows and records what each device pushed") {
    World w;
    require_ok(w.sync());
    REQUIRE(w.tablet.roster(w.group).members.size() == 1);
    CHECK(w.mock.rows().person(w.ola)->display_name == "Ola Nordmann");

    w.tablet.add_time_spent(w.ola, w.module, w.group, 60);
    require_ok(w.sync());
    CHECK(w.server_time_spent() == 60);
    const auto pushed = w.mock.pushed_by(w.tablet.device_id());
    REQUIRE(pushed.size() == 1);
    CHECK(pushed[0].seq == 1);
    CHECK(w.mock.pushed().size() == 1);  // seeding is not recorded
    CHECK(w.mock.frames(Frame::hello) == 2);
    CHECK(w.mock.frames(Frame::push) == 1);
    CHECK(w.mock.connections() == 2);
}

TEST_CASE("a lost PushAck: the server committed, the retry is acknowledged and not counted twice") {
    World w;
    require_ok(w.sync());
    w.tablet.add_time_spent(w.ola, w.module, w.group, 60);
    w.mock.faults().lose_push_ack();

    const auto cut = w.sync();
    CHECK(cut.outcome == SyncOutcome::offline);
    CHECK(w.server_time_spent() == 60);  // committed before the ack was lost
    CHECK(w.tablet.outbox_size() == 1);  // the tablet cannot know

    require_ok(w.sync());
    CHECK(w.tablet.outbox_size() == 0);
    CHECK(w.server_time_spent() == 60);
    CHECK(w.mock.pushed_by(w.tablet.device_id()).size() == 2);  // pushed twice, applied once
    CHECK(w.mock.faults().fired() == 1);
}

TEST_CASE("a refused write whose PushAck was lost is refused again when retried") {
    World w;
    require_ok(w.sync());
    Id other_group;
    w.mock.seed([&](Writes& s) {
        other_group = s.create_group({.course = w.course, .organization = w.org, .name = "Not Ola's"});
    });
    w.tablet.add_time_spent(w.ola, w.module, other_group, 30);  // Ola is no member there
    w.mock.faults().lose_push_ack();
    CHECK(w.sync().outcome == SyncOutcome::offline);

    const auto r = w.sync();
    require_ok(r);
    REQUIRE(r.rejected.size() == 1);
    CHECK(r.rejected[0].code == "permission_denied");
    CHECK(r.rejected[0].row_removed);
    CHECK(w.tablet.progress_of(w.ola).empty());
}

TEST_CASE("a connection dropped after some frames leaves nothing half done") {
    World w;
    w.tablet.add_time_spent(w.ola, w.module, w.group, 30);
    w.mock.faults().drop_after(1);  // the Hello passes, the Welcome never comes
    CHECK(w.sync().outcome == SyncOutcome::offline);
    CHECK(w.server_time_spent() == -1);
    require_ok(w.sync());
    CHECK(w.server_time_spent() == 30);
    CHECK(w.tablet.roster(w.group).members.size() == 1);
}

TEST_CASE("a dropped client frame never reaches the server") {
    World w;
    w.tablet.add_time_spent(w.ola, w.module, w.group, 30);
    w.mock.faults().drop(Frame::push);
    CHECK(w.sync().outcome == SyncOutcome::offline);
    CHECK(w.mock.pushed().empty());
    CHECK(w.server_time_spent() == -1);
    require_ok(w.sync());
    CHECK(w.server_time_spent() == 30);
}

TEST_CASE("a delayed frame arrives late, and the round still succeeds") {
    World w;
    w.mock.faults().delay(Frame::welcome, std::chrono::milliseconds(300));
    const auto start = std::chrono::steady_clock::now();
    require_ok(w.sync());
    CHECK(std::chrono::steady_clock::now() - start >= std::chrono::milliseconds(300));
}

TEST_CASE("a duplicated Push is applied once") {
    World w;
    require_ok(w.sync());
    w.tablet.add_time_spent(w.ola, w.module, w.group, 45);
    w.mock.faults().duplicate(Frame::push);
    const auto r = w.sync();  // two PushAcks for one Push: the tablet may stop
    INFO(to_string(r.outcome) << ": " << r.message);
    CHECK(w.server_time_spent() == 45);
    require_ok(w.sync());
    CHECK(w.server_time_spent() == 45);
    CHECK(w.tablet.outbox_size() == 0);
}

TEST_CASE("a duplicated PullBatch changes nothing") {
    World w;
    w.mock.faults().duplicate(Frame::pull_batch);
    const auto r = w.sync();
    INFO(to_string(r.outcome) << ": " << r.message);
    require_ok(w.sync());
    CHECK(w.tablet.roster(w.group).members.size() == 1);
    CHECK(w.tablet.count("membership") == 1);
}

TEST_CASE("a truncated frame: the tablet applies nothing of it and resumes") {
    World w;
    w.mock.faults().truncate(Frame::pull_batch, 10);
    CHECK(w.sync().outcome == SyncOutcome::offline);
    CHECK(w.tablet.count("person") == 0);
    require_ok(w.sync());
    CHECK(w.tablet.count("person") == 1);
}

TEST_CASE("a truncated client frame is refused and nothing of it applied") {
    World w;
    w.tablet.add_time_spent(w.ola, w.module, w.group, 30);
    w.mock.faults().truncate(Frame::push, 0);
    const auto r = w.sync();
    CHECK(r.outcome == SyncOutcome::server_error);
    CHECK(r.error_code == "invalid_argument");
    CHECK(w.server_time_spent() == -1);
    require_ok(w.sync());
    CHECK(w.server_time_spent() == 30);
}

TEST_CASE("an injected error reaches the app with its code and retry delay") {
    World w;
    w.mock.faults().fail(Frame::pull, ErrorCode::rate_limited, std::chrono::milliseconds(1500));
    const auto r = w.sync();
    CHECK(r.outcome == SyncOutcome::server_error);
    CHECK(r.error_code == "rate_limited");
    CHECK(r.retry_after_ms == 1500);
    require_ok(w.sync());
}

TEST_CASE("rejected authentication, then accepted") {
    World w;
    w.mock.faults().reject_auth(2);
    CHECK(w.sync().outcome == SyncOutcome::auth_failed);
    CHECK(w.sync().outcome == SyncOutcome::auth_failed);
    require_ok(w.sync());
}

TEST_CASE("refused connections, by count and for a while") {
    World w;
    w.mock.faults().refuse_connections(1);
    CHECK(w.sync().outcome == SyncOutcome::offline);
    require_ok(w.sync());

    w.mock.faults().refuse_connections_for(std::chrono::milliseconds(400));
    CHECK(w.sync().outcome == SyncOutcome::offline);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    SyncResult r;
    while (!(r = w.sync()).ok() && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    require_ok(r);
}

TEST_CASE("a restarted server keeps its store; a stopped one refuses connections") {
    World w;
    w.tablet.add_time_spent(w.ola, w.module, w.group, 20);
    require_ok(w.sync());
    const auto port = w.mock.port();
    w.mock.restart();
    CHECK(w.mock.port() == port);
    CHECK(w.server_time_spent() == 20);

    w.mock.stop();
    CHECK_FALSE(w.mock.running());
    w.tablet.add_time_spent(w.ola, w.module, w.group, 5);
    CHECK(w.sync().outcome == SyncOutcome::offline);
    w.mock.start();
    require_ok(w.sync());
    CHECK(w.server_time_spent() == 25);
}

TEST_CASE("plain TCP, and faults that are never due stay pending") {
    World w({.tls = false});
    CHECK(w.mock.ca_pem().empty());
    w.mock.faults().drop(Frame::push, 5);
    require_ok(w.sync());
    CHECK(w.mock.faults().pending() == 1);
    w.mock.faults().clear();
    CHECK(w.mock.faults().pending() == 0);
    CHECK_THROWS_AS(w.mock.faults().drop(Frame::push, 0), Error);
}

TEST_CASE("a seed the server refuses is an error, not a silent gap") {
    TempDir dir;
    TestStore store(dir);
    MockServer mock(MockCourse::on_test_store({}, store));
    // Certificates are the server's to issue, even to an admin.
    const auto issue = [](Writes& w) {
        w.create("certificate", {{"person_id", Id::random()},
                                 {"course_id", Id::random()},
                                 {"group_id", Id::random()},
                                 {"issued_at", std::int64_t{1'780'000'000'000}},
                                 {"serial", std::string("C-1")}});
    };
    CHECK_THROWS_WITH(mock.seed(issue), Catch::Contains("refused"));
}

}  // namespace lindra::test
