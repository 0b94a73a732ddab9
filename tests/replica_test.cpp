// The public C++ API: typed writes and queries round-trip, each write is one
// transaction with its outbox entry, the device id and clock persist.
#include "replica/core.hpp"
#include "store/database.hpp"
#include "support/db.hpp"
#include "support/fixture.hpp"
#include "support/temp_dir.hpp"

#include <lindra/replica.hpp>

#include <catch2/catch.hpp>

#include <set>

using namespace lindra;
using lindra::test::count_rows;
using lindra::test::Seeded;
using lindra::test::TempDir;

namespace {

const RosterEntry& entry(const Roster& r, const Id& person) {
    for (const auto& e : r.members)
        if (e.person == person) return e;
    FAIL("person not on the roster");
    throw;
}

}  // namespace

TEST_CASE("a replica gets a device id on first open and keeps it") {
    TempDir dir;
    Id first;
    {
        Replica r(dir.file("a.db"));
        first = r.device_id();
        CHECK_FALSE(first.is_nil());
    }
    Replica again(dir.file("a.db"));
    CHECK(again.device_id() == first);
    Replica other(dir.file("b.db"));
    CHECK(other.device_id() != first);
}

TEST_CASE("the roster counts required modules completed and held gatherings attended") {
    TempDir dir;
    Replica r(dir.file("tablet.db"));
    const Seeded s = lindra::test::seed_group(r);
    const Id ola = s.candidates[0], kari = s.candidates[1];

    r.complete_module(ola, s.modules[0], s.group, 90);  // passed (pass score 80)
    r.complete_module(ola, s.modules[1], s.group);
    r.complete_module(ola, s.modules[3], s.group);  // optional: does not count
    r.start_module(kari, s.modules[0], s.group);
    r.hold_gathering(s.gatherings[0]);
    r.hold_gathering(s.gatherings[1]);
    r.cancel_gathering(s.gatherings[2]);
    r.record_attendance(s.gatherings[0], ola, AttendanceStatus::present);
    r.record_attendance(s.gatherings[1], ola, AttendanceStatus::present);
    r.record_attendance(s.gatherings[0], kari, AttendanceStatus::excused, "Night shift");
    r.record_attendance(s.gatherings[1], kari, AttendanceStatus::present);
    r.record_attendance(s.gatherings[2], kari, AttendanceStatus::present);  // cancelled: not counted
    r.confirm_candidate(s.group, ola, s.mentor, "Took part throughout");

    const Roster roster = r.roster(s.group);
    CHECK(roster.group.name == "Fjellvik group 1");
    CHECK(roster.course_title == "Palliative care basics");
    CHECK(roster.required_gatherings == 2);
    REQUIRE(roster.members.size() == 3);
    CHECK(roster.members[0].role == MemberRole::mentor);  // mentors first
    CHECK(roster.members[0].display_name == "Mia Mentor");

    const auto& o = entry(roster, ola);
    CHECK(o.modules_completed == 2);
    CHECK(o.modules_required == 3);
    CHECK(o.gatherings_attended == 2);
    CHECK(o.gatherings_held == 2);
    CHECK(o.confirmed);
    const auto& k = entry(roster, kari);
    CHECK(k.modules_completed == 0);
    CHECK(k.gatherings_attended == 1);
    CHECK_FALSE(k.confirmed);
}

TEST_CASE("one person's progress: status, score, time and first completion") {
    TempDir dir;
    std::int64_t wall = 1'750'000'000'000;
    Replica r(dir.file("tablet.db"), {.wall_clock_ms = [&] { return wall; }});
    const Seeded s = lindra::test::seed_group(r);
    const Id ola = s.candidates[0];

    r.start_module(ola, s.modules[0], s.group);
    r.add_time_spent(ola, s.modules[0], s.group, 600);
    r.add_time_spent(ola, s.modules[0], s.group, 300);
    r.complete_module(ola, s.modules[0], s.group, 70);  // below the pass score: completed
    const Timestamp first_done = wall;
    wall += 60'000;
    r.complete_module(ola, s.modules[0], s.group, 85);  // passed now; first completion stays
    r.record_score(ola, s.modules[0], s.group, 40);     // a worse score does not replace the best

    const auto progress = r.progress_of(ola);
    REQUIRE(progress.size() == 1);
    const auto& p = progress[0];
    CHECK(p.module == s.modules[0]);
    CHECK(p.group == s.group);
    CHECK(p.module_title == "M1: What is palliative care");
    CHECK(p.attempt == 1);
    CHECK(p.status == ProgressStatus::passed);
    CHECK(p.best_score == 85);
    CHECK(p.time_spent_s == 900);
    CHECK(p.first_completed_at == first_done);

    r.start_module(ola, s.modules[0], s.group);  // starting again does not undo the pass
    CHECK(r.progress_of(ola)[0].status == ProgressStatus::passed);
    r.reset_module(ola, s.modules[0], s.group);  // a new attempt
    CHECK(r.progress_of(ola)[0].attempt == 2);
    CHECK(r.progress_of(ola)[0].status == ProgressStatus::not_started);
}

TEST_CASE("groups, members, gatherings and reflections") {
    TempDir dir;
    Replica r(dir.file("tablet.db"));
    const Seeded s = lindra::test::seed_group(r);
    const Id ola = s.candidates[0];

    REQUIRE(r.groups().size() == 1);
    CHECK(r.groups_of(ola).size() == 1);
    CHECK(r.modules(s.course).size() == 4);
    CHECK(r.modules(s.course)[0].pass_score == 80);
    const auto gatherings = r.gatherings(s.group);
    REQUIRE(gatherings.size() == 3);
    CHECK(gatherings[0].status == GatheringStatus::planned);
    CHECK(r.person(ola)->display_name == "Ola Nordmann");

    const Id reflection = r.write_reflection(ola, s.group, s.modules[2], "Jeg lærte å lytte mer.");
    CHECK_FALSE(reflection.is_nil());

    r.withdraw_member(s.group, ola);
    CHECK(r.groups_of(ola).empty());
    CHECK(entry(r.roster(s.group), ola).status == MemberStatus::withdrawn);
    r.add_member(s.group, ola, MemberRole::candidate);  // back again, same membership row
    CHECK(r.groups_of(ola).size() == 1);
    CHECK(count_rows(r.path(), "membership") == 3);
}

TEST_CASE("find addresses rows by id, full name, first words or later words") {
    TempDir dir;
    Replica r(dir.file("tablet.db"));
    const Seeded s = lindra::test::seed_group(r);
    CHECK(r.find("person", "Ola Nordmann") == s.candidates[0]);
    CHECK(r.find("person", "ola") == s.candidates[0]);
    CHECK(r.find("person", s.mentor.to_string()) == s.mentor);
    CHECK(r.find("module", "m1") == s.modules[0]);
    CHECK(r.find("gathering", "G2") == s.gatherings[1]);
    CHECK_FALSE(r.find("person", "nobody").has_value());
    CHECK_FALSE(r.find("person", "Ol").has_value());  // not a whole word
    CHECK_FALSE(r.find("person", Id::random().to_string()).has_value());
    CHECK(r.find("person", "NORDMANN") == s.candidates[0]);  // a later word
    CHECK_FALSE(r.find("person", "Nord").has_value());       // a later word's start only
    r.register_person("Ola Olsen", Profession::nurse);
    const auto hansen = r.register_person("Hansen Berg", Profession::nurse);
    CHECK(r.find("person", "hansen") == hansen);  // a first word wins over Kari Hansen's later one
    r.register_person("Per Nordmann", Profession::nurse);
    CHECK_THROWS_AS(r.find("person", "nordmann"), Error);  // two of them
    try {
        (void)r.find("person", "ola");
        FAIL("expected an ambiguity error");
    } catch (const Error& e) {
        CHECK(e.errc() == Errc::ambiguous);
    }
    CHECK_THROWS_AS(r.find("membership", "x"), Error);
}

TEST_CASE("each write is one outbox entry with this device's changes") {
    TempDir dir;
    Replica r(dir.file("tablet.db"));
    const Seeded s = lindra::test::seed_group(r);
    const auto before = r.outbox_size();
    r.start_module(s.candidates[0], s.modules[0], s.group);
    CHECK(r.outbox_size() == before + 1);

    const auto entries = r.outbox(1000);
    const auto& last = entries.back();
    CHECK(last.seq == before + 1);
    std::set<std::string_view> fields;
    for (const auto& c : last.changes) {
        CHECK(c.origin == r.device_id());
        CHECK(c.row == Id::derive("module_progress", {s.candidates[0], s.modules[0], s.group}));
        CHECK(c.hlc == last.changes[0].hlc);
        fields.insert(find_entity(c.entity)->field(c.field)->name);
    }
    CHECK(fields == std::set<std::string_view>{"person_id", "module_id", "group_id", "progress"});

    r.complete_module(s.candidates[0], s.modules[0], s.group);
    const auto after_complete = r.outbox_size();
    r.start_module(s.candidates[0], s.modules[0], s.group);  // dominated by "completed": nothing to send
    CHECK(r.outbox_size() == after_complete);
}

TEST_CASE("acknowledged entries leave the outbox and their seqs are never reused") {
    TempDir dir;
    const std::string path = dir.file("tablet.db");
    std::int64_t acked = 0;
    {
        Replica r(path);
        const Seeded s = lindra::test::seed_group(r);
        const auto entries = r.outbox(1000);
        acked = entries.back().seq;
        r.acknowledge(acked);
        CHECK(r.outbox_size() == 0);
        CHECK_THROWS_AS(r.acknowledge(-1), Error);
    }
    Replica r(path);  // after a restart with an empty outbox
    r.register_person("Nils Nyansatt", Profession::assistant);
    const auto entries = r.outbox(10);
    REQUIRE(entries.size() == 1);
    CHECK(entries[0].seq == acked + 1);
}

TEST_CASE("the clock never goes back across restarts, even if the wall clock does") {
    TempDir dir;
    const std::string path = dir.file("tablet.db");
    std::int64_t wall = 1'800'000'000'000;
    std::uint64_t last = 0;
    for (int restart = 0; restart < 3; ++restart) {
        Replica r(path, {.wall_clock_ms = [&] { return wall; }});
        r.register_person("Person " + std::to_string(restart), Profession::nurse);
        const auto entries = r.outbox(100);
        const auto hlc = entries.back().changes[0].hlc;
        CHECK(hlc > last);
        last = hlc;
        if (restart == 1) r.acknowledge(entries.back().seq);  // the clock must survive an empty outbox
        wall -= 3 * 24 * 3600 * 1000LL;                       // the tablet's clock is set back three days
    }
}

TEST_CASE("a batch lands completely or not at all") {
    TempDir dir;
    Replica r(dir.file("tablet.db"));
    const Seeded s = lindra::test::seed_group(r);
    const auto before = r.outbox_size();
    CHECK_THROWS_AS(r.batch([&](Writes& w) {
        w.hold_gathering(s.gatherings[0]);
        w.record_attendance(s.gatherings[0], s.candidates[0], AttendanceStatus::present);
        throw std::runtime_error("the app changed its mind");
    }),
                    std::runtime_error);
    CHECK(r.outbox_size() == before);
    CHECK(r.gatherings(s.group)[0].status == GatheringStatus::planned);

    r.batch([&](Writes& w) {
        w.hold_gathering(s.gatherings[0]);
        w.record_attendance(s.gatherings[0], s.candidates[0], AttendanceStatus::present);
    });
    CHECK(r.outbox_size() == before + 2);
    CHECK(r.gatherings(s.group)[0].status == GatheringStatus::held);
}

TEST_CASE("a deleted row disappears and takes no more writes") {
    TempDir dir;
    Replica r(dir.file("tablet.db"));
    const Seeded s = lindra::test::seed_group(r);
    r.remove("gathering", s.gatherings[2]);
    CHECK(r.gatherings(s.group).size() == 2);
    try {
        r.hold_gathering(s.gatherings[2]);
        FAIL("expected not_found");
    } catch (const Error& e) {
        CHECK(e.errc() == Errc::not_found);
    }
    CHECK_THROWS_AS(r.update("gathering", s.gatherings[0], {{kDeletedField, std::int64_t{0}}}), Error);
}

TEST_CASE("two connections to one file never issue the same seq or hlc") {
    TempDir dir;
    const std::string path = dir.file("tablet.db");
    Replica app(path), daemon(path);
    CHECK(app.device_id() == daemon.device_id());
    for (int i = 0; i < 20; ++i) (i % 2 ? app : daemon).register_person("P" + std::to_string(i), Profession::other);
    const auto entries = app.outbox(100);
    REQUIRE(entries.size() == 20);
    for (std::size_t i = 1; i < entries.size(); ++i) {
        CHECK(entries[i].seq == entries[i - 1].seq + 1);
        CHECK(entries[i].changes[0].hlc > entries[i - 1].changes[0].hlc);
    }
}

TEST_CASE("a generic create derives the id of rows identified by other rows") {
    TempDir dir;
    Replica r(dir.file("tablet.db"));
    const Seeded s = lindra::test::seed_group(r);
    const Id p = r.register_person("Nils Nyansatt", Profession::assistant);
    const Id m = r.create("membership", {{"group_id", s.group},
                                         {"person_id", p},
                                         {"role", std::string("candidate")},
                                         {"status", std::string("registered")}});
    CHECK(m == Id::derive("membership", {s.group, p}));
    CHECK_THROWS_AS(r.create("membership", {{"group_id", s.group},
                                            {"person_id", p},
                                            {"role", std::string("candidate")},
                                            {"status", std::string("registered")}}),
                    Error);  // already exists
    CHECK(r.roster(s.group).members.size() == 4);
}

// ---- bugs found in review: each test failed before its fix ----------------

TEST_CASE("a local edit wins over a stored clock from a peer whose time is ahead") {
    TempDir dir;
    const std::int64_t wall = 1'800'000'000'000;
    Replica r(dir.file("tablet.db"), {.wall_clock_ms = [&] { return wall; }});
    const Id person = r.register_person("Ola Nordmann", Profession::nurse);
    const auto ahead = (static_cast<std::uint64_t>(wall) + 10 * 24 * 3600 * 1000ULL) << 16;  // ten days ahead
    const Change remote{2, person, 2, std::string("Ola From Server"), ahead, Id::random()};
    r.apply_remote({&remote, 1});
    const auto before = r.outbox_size();

    r.update("person", person, {{"display_name", std::string("Ola N.")}});
    CHECK(r.person(person)->display_name == "Ola N.");
    REQUIRE(r.outbox_size() == before + 1);
    CHECK(r.outbox(1000).back().changes[0].hlc > ahead);
}

TEST_CASE("the clock seen in a retried apply survives a restart") {
    TempDir dir;
    const std::string path = dir.file("tablet.db");
    const std::int64_t wall = 1'800'000'000'000;
    const auto ahead = (static_cast<std::uint64_t>(wall) + 24 * 3600 * 1000ULL) << 16;  // a day ahead
    {
        Replica r(path, {.wall_clock_ms = [&] { return wall; }});
        store::Database side(path);
        side.exec(
            "CREATE TABLE fail_once (x); INSERT INTO fail_once VALUES (1);"
            "CREATE TRIGGER fail_clock BEFORE UPDATE ON lindra_replica WHEN (SELECT count(*) FROM fail_once) > 0"
            " BEGIN SELECT RAISE(ABORT, 'simulated I/O error'); END;");
        const Change remote{1, Id::random(), 2, std::string("Fjellvik kommune"), ahead, Id::random()};
        CHECK_THROWS_AS(r.apply_remote({&remote, 1}), Error);
        side.exec("DELETE FROM fail_once");
        r.apply_remote({&remote, 1});  // the retry lands
    }
    Replica again(path, {.wall_clock_ms = [&] { return wall; }});
    CHECK(again.hlc() >= ahead);
    again.register_person("Kari Hansen", Profession::nurse);
    CHECK(again.outbox(10).back().changes[0].hlc > ahead);
}

TEST_CASE("a write that fails half way rolls back its whole batch, even if the app caught it") {
    TempDir dir;
    const std::string path = dir.file("tablet.db");
    Replica r(path);
    const Seeded s = lindra::test::seed_group(r);
    const auto persons = count_rows(path, "person");
    const auto outbox = r.outbox_size();
    store::Database side(path);
    side.exec(
        "CREATE TRIGGER full_disk BEFORE INSERT ON lindra_outbox"
        " BEGIN SELECT RAISE(ABORT, 'simulated full disk'); END;");

    CHECK_THROWS_AS(r.batch([&](Writes& w) {
        try {
            w.register_person("Nils Nyansatt", Profession::assistant);  // row saved, outbox insert fails
        } catch (const Error&) {
            // the app carries on regardless
        }
        try {
            w.hold_gathering(s.gatherings[0]);
        } catch (const Error& e) {
            CHECK(e.errc() == Errc::storage);  // refused: the transaction is already lost
        }
    }),
                    Error);
    side.exec("DROP TRIGGER full_disk");
    CHECK(count_rows(path, "person") == persons);
    CHECK(r.outbox_size() == outbox);
    CHECK(r.gatherings(s.group)[0].status == GatheringStatus::planned);
    r.hold_gathering(s.gatherings[0]);  // the next transaction is fine
    CHECK(r.outbox_size() == outbox + 1);
}

TEST_CASE("completion times never fall behind the clock, even with the wall clock at 1970") {
    TempDir dir;
    std::int64_t wall = 1'800'000'000'000;
    Replica r(dir.file("tablet.db"), {.wall_clock_ms = [&] { return wall; }});
    const Seeded s = lindra::test::seed_group(r);
    wall = 0;  // the tablet's clock battery died
    r.complete_module(s.candidates[0], s.modules[1], s.group);
    CHECK(r.progress_of(s.candidates[0])[0].first_completed_at >= 1'800'000'000'000);
}

TEST_CASE("find ignores deleted rows and folds the case of Nordic letters") {
    TempDir dir;
    Replica r(dir.file("tablet.db"));
    const Id oystein = r.register_person("Øystein Ås", Profession::nurse);
    const Id aeshild = r.register_person("Æshild Lie", Profession::nurse);
    CHECK(r.find("person", "øystein") == oystein);
    CHECK(r.find("person", "ØYSTEIN ÅS") == oystein);
    CHECK(r.find("person", "æshild") == aeshild);
    CHECK_FALSE(r.find("person", "øy").has_value());  // not a whole word
    r.remove("person", aeshild);
    CHECK_FALSE(r.find("person", aeshild.to_string()).has_value());
    CHECK_FALSE(r.find("person", "æshild").has_value());
}

TEST_CASE("only seqs this replica issued can be acknowledged") {
    TempDir dir;
    Replica r(dir.file("tablet.db"));
    r.register_person("Ola Nordmann", Profession::nurse);
    const auto last = r.outbox(10).back().seq;
    CHECK_THROWS_AS(r.acknowledge(last + 1), Error);
    CHECK_THROWS_AS(r.acknowledge(INT64_MAX), Error);
    CHECK(r.outbox_size() == 1);
    r.acknowledge(last);
    CHECK(r.outbox_size() == 0);
}

TEST_CASE("a moved Replica keeps working and the moved-from one lets go") {
    TempDir dir;
    Replica a(dir.file("tablet.db"));
    const Id device = a.device_id();
    Replica b(std::move(a));
    CHECK(b.device_id() == device);
    b.register_person("Ola Nordmann", Profession::nurse);
    Replica c(dir.file("other.db"));
    c = std::move(b);
    CHECK(c.device_id() == device);
    CHECK(c.outbox_size() == 1);
}

TEST_CASE("a replica file of store version 1 opens, migrates and keeps its data") {
    TempDir dir;
    const std::string path = dir.file("v1.db");
    const Id device = Id::random();
    {
        // What lindra 0.1's first release wrote: only the first store step.
        store::Database db(path);
        store::migrate(db, detail::replica_migrations().first(1));
        db.prepare("INSERT INTO lindra_replica VALUES (1, ?, 0, 0, 0)").bind(1, device).run();
        CHECK(db.user_version() == 1);
    }
    Replica r(path);
    CHECK(r.device_id() == device);
    const Id person = r.register_person("Ola Nordmann", Profession::nurse);
    CHECK(r.person(person)->display_name == "Ola Nordmann");
    store::Database db(path);
    CHECK(db.user_version() == detail::replica_migrations().back().version);
    CHECK(detail::core_of(r).pull_state().cursor.empty());
}
