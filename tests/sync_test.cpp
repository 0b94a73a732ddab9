// Sync end to end, in-process over 127.0.0.1: tablets converge through the
// server, retries apply nothing twice, a restarted server loses nothing.
#include "server/store.hpp"
#include "store/database.hpp"
#include "support/db.hpp"
#include "support/fixture.hpp"
#include "support/sync_fixture.hpp"

#include <lindra/sync.hpp>

#include <catch2/catch.hpp>

#include <filesystem>

using namespace lindra;
using lindra::test::dump;
using lindra::test::require_ok;
using lindra::test::SyncWorld;
using lindra::test::Tables;

namespace {


// Every device and the server hold the same domain tables, byte for byte.
void require_converged(SyncWorld& w, const std::vector<std::string>& tablets) {
    const auto server = dump(w.server_db(), Tables::domain);
    for (const auto& t : tablets) {
        INFO("tablet " << t);
        REQUIRE(dump(w.path(t), Tables::domain) == server);
    }
}

}  // namespace

TEST_CASE("two tablets converge through the server") {
    SyncWorld w;
    Replica& coordinator = w.tablet("coordinator");
    const auto s = lindra::test::seed_group(coordinator);
    const auto pushed = w.sync(coordinator);
    require_ok(pushed);
    CHECK(pushed.changes_pushed > 0);
    CHECK(coordinator.outbox_size() == 0);

    Replica& candidate = w.tablet("candidate");
    const auto pulled = w.sync(candidate, "candidate-1-token");
    require_ok(pulled);
    CHECK(pulled.changes_pulled == pushed.changes_pushed);
    CHECK(candidate.roster(s.group).members.size() == 3);

    candidate.complete_module(s.candidates[0], s.modules[0], s.group, 95);
    candidate.add_time_spent(s.candidates[0], s.modules[0], s.group, 1200);
    require_ok(w.sync(candidate, "candidate-1-token"));
    require_ok(w.sync(coordinator));
    require_converged(w, {"coordinator", "candidate"});
    const auto p = coordinator.progress_of(s.candidates[0]);
    REQUIRE(p.size() == 1);
    CHECK(p[0].status == ProgressStatus::passed);
    CHECK(p[0].time_spent_s == 1200);
}

TEST_CASE("three tablets with a conflicting edit converge to one value") {
    SyncWorld w;
    Replica& coordinator = w.tablet("coordinator");
    const auto s = lindra::test::seed_group(coordinator);
    require_ok(w.sync(coordinator));
    Replica& mentor = w.tablet("mentor");
    Replica& ola = w.tablet("ola");
    require_ok(w.sync(mentor, "mentor-token"));
    require_ok(w.sync(ola, "candidate-1-token"));

    // Offline: both rename the same gathering; the mentor records attendance,
    // Ola works on two modules on her tablet and the coordinator's.
    mentor.update("gathering", s.gatherings[0], {{"title", std::string("G1: Welcome and introductions")}});
    coordinator.update("gathering", s.gatherings[0], {{"title", std::string("G1: Kick-off")}});
    mentor.hold_gathering(s.gatherings[0]);
    mentor.record_attendance(s.gatherings[0], s.candidates[0], AttendanceStatus::present);
    ola.complete_module(s.candidates[0], s.modules[1], s.group);
    ola.add_time_spent(s.candidates[0], s.modules[1], s.group, 600);
    coordinator.add_time_spent(s.candidates[0], s.modules[1], s.group, 300);

    for (int round = 0; round < 2; ++round) {
        require_ok(w.sync(mentor, "mentor-token"));
        require_ok(w.sync(ola, "candidate-1-token"));
        require_ok(w.sync(coordinator));
    }
    require_converged(w, {"coordinator", "mentor", "ola"});
    const auto title = mentor.gathering(s.gatherings[0])->title;
    CHECK((title == "G1: Welcome and introductions" || title == "G1: Kick-off"));
    CHECK(ola.gathering(s.gatherings[0])->title == title);
    CHECK(ola.progress_of(s.candidates[0])[0].time_spent_s == 900);  // both devices' time, once each
}

TEST_CASE("a sync with nothing to do is one small round trip") {
    SyncWorld w;
    Replica& coordinator = w.tablet("coordinator");
    lindra::test::seed_group(coordinator);
    require_ok(w.sync(coordinator));
    require_ok(w.sync(coordinator));  // pulls past its own push
    const auto noop = w.sync(coordinator);
    require_ok(noop);
    CHECK(noop.changes_pushed == 0);
    CHECK(noop.changes_pulled == 0);
    // The signed token rides in every Hello; the rest must stay small.
    const auto token = w.token_for("coordinator-token").size();
    CHECK(noop.bytes_sent + noop.bytes_received <= 300 + token);
}

TEST_CASE("a wrong token, or no server, is a clear result and changes nothing") {
    SyncWorld w;
    Replica& tablet = w.tablet("tablet");
    lindra::test::seed_group(tablet);
    const auto before = dump(w.server_db(), Tables::domain);
    const auto outbox = tablet.outbox_size();

    const auto refused = w.sync(tablet, "not-a-token");
    CHECK(refused.outcome == SyncOutcome::auth_failed);
    CHECK(refused.error_code == "unauthenticated");
    CHECK(tablet.outbox_size() == outbox);
    CHECK(dump(w.server_db(), Tables::domain) == before);

    w.stop_server();
    const auto offline = w.sync(tablet);
    CHECK(offline.outcome == SyncOutcome::offline);
    CHECK(tablet.outbox_size() == outbox);
}

TEST_CASE("a server restarted between push and pull loses nothing") {
    SyncWorld w;
    Replica& coordinator = w.tablet("coordinator");
    const auto s = lindra::test::seed_group(coordinator);
    require_ok(w.sync(coordinator));
    w.restart_server();
    Replica& mentor = w.tablet("mentor");
    require_ok(w.sync(mentor, "mentor-token"));
    CHECK(mentor.roster(s.group).members.size() == 3);
    require_converged(w, {"mentor"});
}

TEST_CASE("a push whose acknowledgement was lost is not applied twice") {
    SyncWorld w;
    Replica& coordinator = w.tablet("coordinator");
    const auto s = lindra::test::seed_group(coordinator);
    Replica& ola = w.tablet("ola");
    require_ok(w.sync(coordinator));
    require_ok(w.sync(ola, "candidate-1-token"));
    ola.add_time_spent(s.candidates[0], s.modules[0], s.group, 600);

    // Keep a copy of Ola's file as it is before the push: restoring it is
    // exactly a PushAck that never arrived.
    const auto copy = w.path("ola") + ".copy";
    {
        store::Database db(w.path("ola"));
        db.exec("VACUUM INTO '" + copy + "'");
    }
    require_ok(w.sync(ola, "candidate-1-token"));
    std::filesystem::copy_file(copy, w.path("ola-restored") + "", std::filesystem::copy_options::overwrite_existing);
    Replica& restored = w.tablet("ola-restored");
    CHECK(restored.device_id() == ola.device_id());
    CHECK(restored.outbox_size() == 1);
    require_ok(w.sync(restored, "candidate-1-token"));  // the same seq again
    CHECK(restored.outbox_size() == 0);
    require_ok(w.sync(coordinator));
    CHECK(coordinator.progress_of(s.candidates[0])[0].time_spent_s == 600);  // once, not twice
}

TEST_CASE("push batches as large as the server's limit are accepted") {
    SyncWorld w;  // the server takes at most ServerOptions::max_push_changes per push
    Replica& tablet = w.tablet("tablet");
    const auto s = lindra::test::seed_group(tablet);
    tablet.batch([&](Writes& writes) {
        for (int i = 0; i < 8'000; ++i)  // 7 changes each: pushes cut at the limit must not pass it
            writes.complete_module(Id::random(), s.modules[0], s.group, 80, 60);
    });
    SyncOptions options;
    options.push_batch_changes = ServerOptions{}.max_push_changes;
    const auto r = w.sync(tablet, "coordinator-token", options);
    require_ok(r);
    CHECK(tablet.outbox_size() == 0);
}

TEST_CASE("more text than fits in one frame goes in several pushes and pulls") {
    SyncWorld w;
    Replica& ola = w.tablet("ola");
    const auto s = lindra::test::seed_group(ola);
    const std::string long_text(4'000, 'x');  // the longest reflection: 1,500 of them are ~6 MB
    ola.batch([&](Writes& writes) {
        for (int i = 0; i < 1'500; ++i) writes.write_reflection(s.candidates[0], s.group, s.modules[0], long_text);
    });
    require_ok(w.sync(ola, "candidate-1-token"));
    CHECK(ola.outbox_size() == 0);
    Replica& mentor = w.tablet("mentor");
    const auto pulled = w.sync(mentor, "mentor-token");
    require_ok(pulled);
    CHECK(mentor.count("reflection") == 1'500);
    CHECK(pulled.bytes_received > 6'000'000);
    require_converged(w, {"ola", "mentor"});
}

TEST_CASE("a tablet whose cursor is past the head of a restored server pulls everything again", "[sqlite]") {
    SyncWorld w;
    Replica& coordinator = w.tablet("coordinator");
    const auto s = lindra::test::seed_group(coordinator);
    require_ok(w.sync(coordinator));
    const auto backup = w.server_db() + ".backup";
    {
        store::Database db(w.server_db());
        db.exec("VACUUM INTO '" + backup + "'");
    }
    coordinator.register_person("Nils Nyansatt", Profession::assistant);
    coordinator.register_person("Siri Sommer", Profession::nurse);
    require_ok(w.sync(coordinator));
    Replica& mentor = w.tablet("mentor");
    require_ok(w.sync(mentor, "mentor-token"));  // its cursor: past what the backup holds

    w.stop_server();  // the server is restored from the backup
    std::filesystem::copy_file(backup, w.server_db(), std::filesystem::copy_options::overwrite_existing);
    std::filesystem::remove(w.server_db() + "-wal");
    std::filesystem::remove(w.server_db() + "-shm");
    w.restart_server();

    Replica& ola = w.tablet("ola");
    require_ok(w.sync(ola, "candidate-1-token"));
    ola.complete_module(s.candidates[0], s.modules[0], s.group, 88);  // takes a position the mentor is past
    require_ok(w.sync(ola, "candidate-1-token"));
    require_ok(w.sync(mentor, "mentor-token"));
    const auto p = mentor.progress_of(s.candidates[0]);
    REQUIRE(p.size() == 1);
    CHECK(p[0].best_score == 88);
}

TEST_CASE("after a restore and renew_server_id, a tablet misses none of the positions handed out again", "[sqlite]") {
    SyncWorld w;
    Replica& coordinator = w.tablet("coordinator");
    lindra::test::seed_group(coordinator);
    require_ok(w.sync(coordinator));
    const auto backup = w.server_db() + ".backup";
    {
        store::Database db(w.server_db());
        db.exec("VACUUM INTO '" + backup + "'");
    }
    coordinator.register_person("Nils Nyansatt", Profession::assistant);
    require_ok(w.sync(coordinator));
    Replica& mentor = w.tablet("mentor");
    require_ok(w.sync(mentor, "mentor-token"));  // its cursor: one position past what the backup holds

    w.stop_server();  // the server is restored from the backup
    std::filesystem::copy_file(backup, w.server_db(), std::filesystem::copy_options::overwrite_existing);
    std::filesystem::remove(w.server_db() + "-wal");
    std::filesystem::remove(w.server_db() + "-shm");
    const Id before = [&] {
        store::Database db(w.server_db());
        auto st = db.prepare("SELECT device_id FROM lindra_replica");
        REQUIRE(st.step());
        return st.id(0);
    }();
    CHECK(renew_server_id(w.server_db()) != before);
    w.restart_server();

    // Another tablet's writes take the positions the mentor was past, and more.
    Replica& other = w.tablet("other");
    std::vector<Id> people;
    for (const char* name : {"Anne Aas", "Bjørn Berg", "Cato Dahl"})
        people.push_back(other.register_person(name, Profession::nurse));
    require_ok(w.sync(other, "candidate-2-token"));
    require_ok(w.sync(mentor, "mentor-token"));
    for (const auto& id : people) CHECK(mentor.person(id).has_value());
}

namespace {
// A byte-for-byte copy of a tablet's file: the same device id and clock.
Replica& copy_of(SyncWorld& w, const std::string& from, const std::string& to, ReplicaOptions options = {}) {
    {
        store::Database db(w.path(from));
        db.exec("VACUUM INTO '" + w.path(to) + "'");
    }
    return w.tablet(to, std::move(options));
}
}  // namespace

TEST_CASE("a copy of a tablet file that reused a seq never loses its change") {
    // Frozen clocks near the server's real one (it refuses changes far ahead).
    const std::int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count();
    SyncWorld w;
    Replica& original = w.tablet("original", {.wall_clock_ms = [now] { return now; }});
    require_ok(w.sync(original));

    SECTION("written later than the original's change: moved above the server's seq") {
        Replica& copy = copy_of(w, "original", "copy", {.wall_clock_ms = [now] { return now + 5'000; }});
        original.register_person("Written on the original", Profession::nurse);
        copy.register_person("Written on the copy", Profession::nurse);  // the same seq, another change
        require_ok(w.sync(original));
        require_ok(w.sync(copy));  // Welcome: seq 1 holds another hlc, so the copy's change moves to seq 2
        CHECK(copy.outbox_size() == 0);
        CHECK(lindra::test::count_rows(w.server_db(), "person") == 2);
    }
    SECTION("written at the very same hlc: refused, and kept in the copy's outbox") {
        Replica& copy = copy_of(w, "original", "copy", {.wall_clock_ms = [now] { return now; }});
        original.register_person("Written on the original", Profession::nurse);
        copy.register_person("Written on the copy", Profession::nurse);  // same seq, same hlc
        require_ok(w.sync(original));
        const auto refused = w.sync(copy);
        CHECK(refused.outcome == SyncOutcome::server_error);
        CHECK(refused.message.find("share one id") != std::string::npos);
        CHECK(copy.outbox_size() == 1);  // not dropped as a duplicate
        CHECK(lindra::test::count_rows(w.server_db(), "person") == 1);
    }
}

TEST_CASE("the server refuses another change under a seq it already holds") {
    // Two copies that said Hello before either pushed: both push seq 1.
    lindra::test::TempDir dir;
    auto store = server::open_sqlite_store(dir.file("server.db"), {});
    const Id device = Id::random();
    auto entry = [&](const char* name, std::uint64_t hlc) {
        const Id row = Id::random();
        return protocol::Entry{1, {{2, row, 2, std::string(name), hlc, device}}};
    };
    const server::Identity admin{"cand-1", Role::admin, {}, {}};
    const protocol::Entry first = entry("Written on the original", 100 << 16);
    CHECK(store->push(device, admin, {&first, 1}).acked_seq == 1);
    CHECK(store->push(device, admin, {&first, 1}).applied_changes == 0);  // the same change: a retry
    const protocol::Entry other = entry("Written on the copy", 101 << 16);
    try {
        store->push(device, admin, {&other, 1});
        FAIL("expected the push to be refused");
    } catch (const Error& e) {
        CHECK(std::string(e.what()).find("share one id") != std::string::npos);
    }
    CHECK(store->pull(Id::random(), admin, false, "", 100, 1 << 20).changes.size() == 1);
}

TEST_CASE("a device id belongs to the user who first pushed from it") {
    SyncWorld w;
    Replica& ola = w.tablet("ola");
    ola.register_person("Ola Nordmann", Profession::health_care_worker);
    require_ok(w.sync(ola, "candidate-1-token"));
    Replica& taken = copy_of(w, "ola", "taken");
    taken.register_person("Not Ola", Profession::nurse);
    const auto r = w.sync(taken, "candidate-2-token");  // another user, Ola's device id
    CHECK(r.outcome == SyncOutcome::server_error);
    CHECK(r.error_code == "permission_denied");
    CHECK(lindra::test::count_rows(w.server_db(), "person") == 1);
    require_ok(w.sync(ola, "candidate-1-token"));  // Ola still syncs
}

TEST_CASE("a pull past many of the device's own changes comes in bounded steps") {
    lindra::test::TempDir dir;
    auto store = server::open_sqlite_store(dir.file("server.db"), {});
    const Id device = Id::random(), other = Id::random();
    std::vector<protocol::Entry> own;
    for (std::int64_t seq = 1; seq <= 1'000; ++seq)
        own.push_back({seq, {{2, Id::random(), 2, std::string("P"), static_cast<std::uint64_t>(seq) << 16, device}}});
    const server::Identity u1{"u1", Role::admin, {}, {}}, u2{"u2", Role::admin, {}, {}};
    store->push(device, u1, own);
    const protocol::Entry theirs{1, {{2, Id::random(), 2, std::string("Q"), 5'000u << 16, other}}};
    store->push(other, u2, {&theirs, 1});

    std::string cursor;
    std::size_t pulls = 0, changes = 0;
    for (bool more = true; more && pulls < 100; ++pulls) {
        const auto batch = store->pull(device, u1, false, cursor, 10, 1 << 20);  // 10 changes: at most 40 rows scanned
        changes += batch.changes.size();
        cursor = batch.next_cursor;
        more = batch.has_more;
    }
    CHECK(changes == 1);   // only the other device's change
    CHECK(pulls >= 25);    // 1,001 entries in steps of at most 40
}
