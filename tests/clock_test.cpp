// Tablets whose clocks are wrong (DESIGN §9): ahead by
// hours or a year, behind by 400 days, fixed between two writes. At Welcome
// a tablet restamps its own unpushed changes that are stamped after the
// server's time, so nothing it wrote is refused for its clock and its clock
// comes back to the server's; a conflict is then decided by the restamped
// times (docs/decisions.md, "A tablet restamps what it wrote ahead of the
// server's time").
#include "model/row.hpp"
#include "replica/core.hpp"
#include "replica/hlc.hpp"
#include "server/store.hpp"
#include "store/database.hpp"
#include "support/db.hpp"
#include "support/fixture.hpp"
#include "support/sync_fixture.hpp"

#include <lindra/sync.hpp>
#include <lindra/testing/mock_server.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <map>

using namespace lindra;
using lindra::replica::hlc_ms;
using lindra::test::require_ok;
using lindra::test::SyncWorld;

namespace {

constexpr std::int64_t kSecond = 1'000;
constexpr std::int64_t kHour = 3'600 * kSecond;
constexpr std::int64_t kDay = 24 * kHour;

std::int64_t real_now() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// Clocks the test moves: the server's and the tablets' walls read them from
// other threads.
struct Clocks {
    std::atomic<std::int64_t> now{real_now()};  // the right time
    ReplicaOptions tablet(std::atomic<std::int64_t>& skew) {
        return {.wall_clock_ms = [this, &skew] { return now.load() + skew.load(); }};
    }
    void tweak(ServerOptions& o) {
        o.wall_clock_ms = [this] { return now.load(); };
    }
};

// A round that must succeed with nothing refused.
void require_all_taken(const SyncResult& r) {
    require_ok(r);
    for (const auto& x : r.rejected) UNSCOPED_INFO("refused: " << x.entity << " " << x.reason);
    REQUIRE(r.rejected.empty());
}

// No change the server holds is stamped after its clock (plus a second of
// logical ticks): a tablet ahead never drags the server's time along.
void require_nothing_ahead(const std::string& server_db, std::int64_t server_now) {
    store::Database db(server_db);
    auto st = db.prepare("SELECT coalesce(max(hlc), 0) FROM lindra_log");
    st.step();
    CHECK(static_cast<std::int64_t>(hlc_ms(static_cast<std::uint64_t>(st.int64(0)))) <= server_now + kSecond);
}

std::int64_t ms_of_last_write(const Replica& r) {
    const auto entries = r.outbox(SIZE_MAX);
    REQUIRE(!entries.empty());
    return static_cast<std::int64_t>(hlc_ms(entries.back().changes.front().hlc));
}

}  // namespace

TEST_CASE("a tablet whose clock runs ahead by hours or a year loses nothing and comes back to the server's time") {
    const std::int64_t ahead = GENERATE(30 * kHour, 365 * kDay);
    INFO("ahead by " << ahead / kHour << " h");
    Clocks c;
    std::atomic<std::int64_t> skew{ahead};
    SyncWorld w([&](ServerOptions& o) { c.tweak(o); });
    Replica& tablet = w.tablet("fast", c.tablet(skew));
    const auto s = lindra::test::seed_group(tablet);
    tablet.complete_module(s.candidates[0], s.modules[0], s.group, 90, 600);
    CHECK(ms_of_last_write(tablet) >= c.now + ahead);

    require_all_taken(w.sync(tablet));
    CHECK(tablet.outbox_size() == 0);
    CHECK(lindra::test::dump(w.server_db(), lindra::test::Tables::domain) ==
          lindra::test::dump(w.path("fast"), lindra::test::Tables::domain));
    // The clock, in memory and in the file, is back at the server's time.
    CHECK(static_cast<std::int64_t>(hlc_ms(tablet.hlc())) <= c.now + kSecond);
    require_nothing_ahead(w.server_db(), c.now);

    // Still ahead: the next writes are restamped at the next round too.
    c.now += 10 * kSecond;
    tablet.add_time_spent(s.candidates[0], s.modules[0], s.group, 300);
    require_all_taken(w.sync(tablet));
    require_ok(w.sync(w.tablet("reader")));  // a fresh tablet pulls what the server took
    const auto p = w.tablet("reader").progress_of(s.candidates[0]);
    REQUIRE(p.size() == 1);
    CHECK(p[0].time_spent_s == 900);
    require_nothing_ahead(w.server_db(), c.now);
}

TEST_CASE("written with the clock ahead, clock fixed, written again: every write reaches the server") {
    Clocks c;
    std::atomic<std::int64_t> skew{30 * kHour};
    SyncWorld w([&](ServerOptions& o) { c.tweak(o); });
    Replica& coordinator = w.tablet("coordinator");
    const auto s = lindra::test::seed_group(coordinator);
    require_all_taken(w.sync(coordinator));
    const std::string path = w.path("kari");
    auto kari = std::make_unique<Replica>(path, c.tablet(skew));
    require_all_taken(w.sync(*kari));

    SECTION("synced while ahead, then fixed (the issue's reproduction)") {
        kari->complete_module(s.candidates[1], s.modules[0], s.group, 85, 600);
        require_all_taken(w.sync(*kari));
        skew = 0;
        c.now += kSecond;
        kari->complete_module(s.candidates[1], s.modules[1], s.group, 70, 600);
        // Stamped right at once: the sync brought the clock back.
        CHECK(ms_of_last_write(*kari) <= c.now + kSecond);
        require_all_taken(w.sync(*kari));
    }
    SECTION("fixed before it synced") {
        kari->complete_module(s.candidates[1], s.modules[0], s.group, 85, 600);
        skew = 0;
        c.now += kSecond;
        kari->complete_module(s.candidates[1], s.modules[1], s.group, 70, 600);
        CHECK(ms_of_last_write(*kari) > c.now + 29 * kHour);  // after the first: still ahead
        require_all_taken(w.sync(*kari));
    }
    SECTION("fixed while the app was closed") {
        kari->complete_module(s.candidates[1], s.modules[0], s.group, 85, 600);
        kari.reset();
        skew = 0;
        c.now += kSecond;
        kari = std::make_unique<Replica>(path, c.tablet(skew));
        kari->complete_module(s.candidates[1], s.modules[1], s.group, 70, 600);
        require_all_taken(w.sync(*kari));
    }
    SECTION("a file an older lindra left with its stored clock ahead") {
        // Before restamping, an acknowledged round stored the clock of a
        // write the server had refused: every later write was stamped after it.
        kari.reset();
        {
            store::Database db(path);
            db.exec("UPDATE lindra_replica SET hlc = " +
                    std::to_string(replica::hlc_make(static_cast<std::uint64_t>(c.now + 30 * kHour), 0)));
        }
        skew = 0;
        kari = std::make_unique<Replica>(path, c.tablet(skew));
        kari->complete_module(s.candidates[1], s.modules[0], s.group, 85, 600);
        CHECK(ms_of_last_write(*kari) > c.now + 29 * kHour);
        require_all_taken(w.sync(*kari));
        kari->complete_module(s.candidates[1], s.modules[1], s.group, 70, 600);
        CHECK(ms_of_last_write(*kari) <= c.now + kSecond);
        require_all_taken(w.sync(*kari));
    }
    CHECK(kari->outbox_size() == 0);
    CHECK(static_cast<std::int64_t>(hlc_ms(kari->hlc())) <= c.now + kSecond);
    require_nothing_ahead(w.server_db(), c.now);
    require_ok(w.sync(coordinator));
    const auto p = coordinator.progress_of(s.candidates[1]);
    REQUIRE(p.size() == 2);
    CHECK(p[0].time_spent_s + p[1].time_spent_s == 1'200);
    CHECK(p[0].best_score.value_or(0) + p[1].best_score.value_or(0) == 155);
}

TEST_CASE("a write made during a round by a clock ahead is restamped before it is pushed") {
    Clocks c;
    std::atomic<std::int64_t> skew{365 * kDay};
    SyncWorld w([&](ServerOptions& o) { c.tweak(o); });
    Replica& tablet = w.tablet("fast", c.tablet(skew));
    for (int i = 0; i < 5; ++i) tablet.register_person("Person " + std::to_string(i), Profession::nurse);
    SyncOptions o;
    o.push_batch_changes = 1;  // several pushes, so the write lands between two
    bool written = false;
    o.on_progress = [&](const SyncProgress& p) {
        if (p.phase != SyncPhase::pushing || written) return;
        written = true;
        tablet.register_person("Written during the round", Profession::nurse);
    };
    require_all_taken(w.sync(tablet, "coordinator-token", o));
    CHECK(written);
    CHECK(tablet.outbox_size() == 0);
    CHECK(lindra::test::count_rows(w.server_db(), "person") == 6);
    require_nothing_ahead(w.server_db(), c.now);
}

TEST_CASE("a tablet whose clock runs 400 days behind loses nothing, and its edits win over what it saw") {
    Clocks c;
    std::atomic<std::int64_t> behind{-400 * kDay};
    SyncWorld w([&](ServerOptions& o) { c.tweak(o); });
    Replica& coordinator = w.tablet("coordinator");
    const auto s = lindra::test::seed_group(coordinator);
    require_all_taken(w.sync(coordinator));
    Replica& slow = w.tablet("slow", c.tablet(behind));
    require_all_taken(w.sync(slow, "mentor-token"));
    c.now += kHour;
    slow.update("gathering", s.gatherings[0], {{"title", std::string("G1: Renamed on the slow tablet")}});
    slow.complete_module(s.candidates[0], s.modules[0], s.group, 95, 60);
    require_all_taken(w.sync(slow, "mentor-token"));
    require_ok(w.sync(coordinator));
    CHECK(coordinator.gathering(s.gatherings[0])->title == "G1: Renamed on the slow tablet");
    CHECK(coordinator.progress_of(s.candidates[0]).size() == 1);
}

TEST_CASE("a conflict with a tablet a year ahead is decided by the restamped times") {
    // Tablet A's clock is a year ahead; B's is right. Both rename the same
    // gathering (last writer wins), B later than A. A's write is stamped
    // when A syncs, at the server's time then: it counts as written at that
    // moment, not a year from now and not when A's user typed it.
    Clocks c;
    std::atomic<std::int64_t> year_ahead{365 * kDay}, right{0};
    SyncWorld w([&](ServerOptions& o) { c.tweak(o); });
    Replica& coordinator = w.tablet("coordinator");
    const auto s = lindra::test::seed_group(coordinator);
    require_all_taken(w.sync(coordinator));
    Replica& a = w.tablet("a", c.tablet(year_ahead));
    Replica& b = w.tablet("b", c.tablet(right));
    require_all_taken(w.sync(a, "mentor-token"));
    require_all_taken(w.sync(b, "candidate-1-token"));
    const auto rename = [&](Replica& r, const char* title) {
        c.now += kSecond;
        r.update("gathering", s.gatherings[0], {{"title", std::string(title)}});
    };
    const auto sync = [&](Replica& r) {
        c.now += kSecond;
        require_all_taken(w.sync(r, &r == &a ? "mentor-token" : "candidate-1-token"));
    };
    std::string expected;
    SECTION("A syncs after B: A's write is stamped at A's sync, after B's, and wins") {
        rename(a, "from A");
        rename(b, "from B");
        sync(b);
        sync(a);
        expected = "from A";
    }
    SECTION("B wrote before A synced but syncs after: A's restamped write is still the later") {
        rename(a, "from A");
        rename(b, "from B");
        sync(a);
        sync(b);
        expected = "from A";
    }
    SECTION("B writes after A synced: B's write wins, as it would with A's clock right") {
        rename(a, "from A");
        sync(a);
        rename(b, "from B");
        sync(b);
        expected = "from B";
    }
    sync(a);
    sync(b);
    require_ok(w.sync(coordinator));
    CHECK(a.gathering(s.gatherings[0])->title == expected);
    CHECK(b.gathering(s.gatherings[0])->title == expected);
    CHECK(coordinator.gathering(s.gatherings[0])->title == expected);
    require_nothing_ahead(w.server_db(), c.now);
}

TEST_CASE("restamping keeps the writes' order and moves only row clocks still theirs") {
    lindra::test::TempDir dir;
    const std::int64_t now = 1'800'000'000'000;
    Replica r(dir.file("tablet.db"), {.wall_clock_ms = [&] { return now + 30 * kHour; }});
    const auto s = lindra::test::seed_group(r);
    const Id& person = s.candidates[0];
    r.update("person", person, {{"display_name", std::string("Ola N.")}});
    r.update("person", person, {{"profession", std::string("nurse")}});
    const Id progress = Id::derive("module_progress", {person, s.modules[0], s.group});
    r.complete_module(person, s.modules[0], s.group, 60, 60);
    r.record_score(person, s.modules[0], s.group, 90);
    // Another device's later change to the same row: its clock stays.
    const auto& e = *find_entity("person");
    const Change remote{e.tag, person, e.field("display_name")->tag, std::string("Ola Remote"),
                        replica::hlc_make(static_cast<std::uint64_t>(now + 31 * kHour), 0), Id::random()};
    r.apply_remote({&remote, 1});
    const auto before = r.outbox(SIZE_MAX);

    detail::Core& core = detail::core_of(r);
    const std::uint64_t server_time = replica::hlc_make(static_cast<std::uint64_t>(now), 7);
    std::uint64_t ceiling = 0;
    {
        std::lock_guard lock(core.mutex);
        detail::Core::WriteTransaction txn(core);
        ceiling = core.adopt_server_time(server_time, 0);
        txn.commit();
    }
    const auto after = r.outbox(SIZE_MAX);
    REQUIRE(after.size() == before.size());
    for (std::size_t i = 0; i < after.size(); ++i) {
        CHECK(after[i].seq == before[i].seq);
        for (const auto& ch : after[i].changes) CHECK(ch.hlc == server_time + 1 + i);  // in order, right after
    }
    CHECK(ceiling == server_time + after.size());
    CHECK(r.hlc() == ceiling);

    std::lock_guard lock(core.mutex);
    const auto row = core.load(e, person);
    const auto clock_of = [&](const EntityDef& ent, const model::RowState& st, const char* field) {
        return st.fields[ent.index_of(*ent.field(field))].clock;
    };
    CHECK(clock_of(e, row, "display_name").hlc == remote.hlc);  // another device's: untouched
    CHECK(clock_of(e, row, "display_name").origin == remote.origin);
    const auto& last = after[after.size() - 3];  // the profession update
    CHECK(clock_of(e, row, "profession") == model::Clock{last.changes.front().hlc, r.device_id()});
    const auto& pe = *find_entity("module_progress");
    const auto prow = core.load(pe, progress);
    CHECK(clock_of(pe, prow, "progress").hlc == after[after.size() - 2].changes.front().hlc);
    CHECK(clock_of(pe, prow, "best_score").hlc == after.back().changes.front().hlc);  // the later write's
    for (const auto& f : prow.fields) CHECK(hlc_ms(f.clock.hlc) <= static_cast<std::uint64_t>(now));
}

TEST_CASE("a tablet pushes a restamped write with the same stamp when its round was cut") {
    // A push that never reached the server may still arrive late (a cut
    // connection's frames): the retry must carry the very stamps it did, or
    // the two would be different changes under one seq.
    std::atomic<std::int64_t> server_now{1'800'000'000'000};
    testing::MockServer mock({.wall_clock_ms = [&] { return server_now.load(); }});
    lindra::test::TempDir dir;
    Replica tablet(dir.file("tablet.db"), {.wall_clock_ms = [&] { return server_now.load() + 40 * kHour; }});
    for (int i = 0; i < 3; ++i) tablet.register_person("Person " + std::to_string(i), Profession::nurse);
    auto options = mock.client_options(mock.admin_token());
    options.push_batch_changes = 1;
    mock.faults().drop(testing::Frame::push, 2);  // the first push arrives, the second does not
    SyncClient client(tablet, options);
    CHECK(client.sync().outcome == SyncOutcome::offline);
    std::map<std::int64_t, std::uint64_t> sent;  // seq -> stamp, as restamped and pushed
    for (const auto& e : tablet.outbox(SIZE_MAX)) sent[e.seq] = e.changes.front().hlc;
    REQUIRE(sent.size() >= 2);
    tablet.register_person("Written between the rounds", Profession::nurse);
    require_all_taken(client.sync());
    CHECK(tablet.outbox_size() == 0);
    const auto pushed = mock.pushed_by(tablet.device_id());
    std::size_t retried = 0;
    for (const auto& p : pushed) {
        CHECK(hlc_ms(p.changes.front().hlc) <= static_cast<std::uint64_t>(server_now.load()));
        if (!sent.contains(p.seq)) continue;
        CHECK(p.changes.front().hlc == sent[p.seq]);
        ++retried;
    }
    CHECK(retried >= 2);  // the dropped push's entry and the one after it
}

TEST_CASE("the server's refusal of far-future stamps is a last resort, and its limit does not move") {
    // A client that never restamps (not lindra's) pushes changes 20, 40, 60
    // and 80 hours ahead, in turn. Each would be within 24 h of the server's
    // clock if the changes before it had moved the limit.
    lindra::test::TempDir dir;
    const std::int64_t server_wall = 1'800'000'000'000;
    auto store = server::open_sqlite_store(dir.file("server.db"), {.wall_clock_ms = [&] { return server_wall; }});
    const server::Identity admin{"importer", Role::admin, {}, {}};
    const auto& person = *find_entity("person");
    std::vector<std::size_t> refused;
    for (std::int64_t i = 1; i <= 4; ++i) {
        const Id device = Id::random();
        const auto hlc = replica::hlc_make(static_cast<std::uint64_t>(server_wall + i * 20 * kHour), 0);
        const protocol::Entry entry{1, {{person.tag, Id::random(), person.field("display_name")->tag,
                                         std::string("Person"), hlc, device}}};
        refused.push_back(store->push(device, admin, {&entry, 1}).rejected.size());
    }
    CHECK(refused == std::vector<std::size_t>{0, 1, 1, 1});
}
