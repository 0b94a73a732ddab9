// Several servers on one PostgreSQL database (DESIGN §6): tablets that move
// between servers converge and every write is logged exactly once; a push
// retried at a second server while the first still commits is applied
// once; a push whose commit is held back is never skipped by a cursor.
// Needs LINDRA_TEST_PG (support/test_main.cpp skips without it).
#include "server/certificates.hpp"
#include "server/store.hpp"
#include "store/pg.hpp"
#include "support/db.hpp"
#include "support/fixture.hpp"
#include "support/pg_db.hpp"
#include "support/temp_dir.hpp"

#include <lindra/replica.hpp>
#include <lindra/schema.hpp>
#include <lindra/server.hpp>
#include <lindra/sync.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

using namespace lindra;
namespace pg = lindra::store::pg;
using lindra::test::dump;
using lindra::test::PgDatabase;
using lindra::test::Tables;
using lindra::test::TempDir;
using namespace std::chrono_literals;

namespace {

std::int64_t scalar(pg::Connection& c, const std::string& sql) {
    return c.exec(sql).int64(0, 0);
}

// Sessions of this database waiting for a lock (a row, a transaction).
std::int64_t waiting(pg::Connection& monitor) {
    return scalar(monitor,
                  "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                  " AND wait_event_type = 'Lock'");
}

// Waits, bounded, until `n` sessions wait for a lock.
void await_waiting(pg::Connection& monitor, std::int64_t n) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (waiting(monitor) < n) {
        REQUIRE(std::chrono::steady_clock::now() < deadline);
        std::this_thread::sleep_for(20ms);
    }
}

// The log holds each (origin, seq) once, at dense positions 1..N.
void require_log_sound(pg::Connection& c) {
    CHECK(scalar(c,
                 "SELECT count(*) FROM (SELECT origin, seq FROM lindra_log GROUP BY 1, 2"
                 " HAVING count(*) > 1) d") == 0);
    const auto n = scalar(c, "SELECT count(*) FROM lindra_log");
    CHECK(scalar(c, "SELECT coalesce(min(pos), 1) FROM lindra_log") == 1);
    CHECK(scalar(c, "SELECT coalesce(max(pos), 0) FROM lindra_log") == n);
    CHECK(scalar(c, "SELECT pos FROM lindra_head") == n);
}

std::uint64_t hlc_now() {
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    return static_cast<std::uint64_t>(ms) << 16;
}

// A person row named `name`, as outbox entry `seq` of `device`.
protocol::Entry person_entry(const Id& device, std::int64_t seq, const Id& row, const std::string& name) {
    const auto& person = *find_entity("person");
    return protocol::Entry{seq,
                           {{person.tag, row, person.field("display_name")->tag, name,
                             hlc_now() + static_cast<std::uint64_t>(seq), device}}};
}

const server::Identity kAdmin{"importer", Role::admin, {}, {}};

}  // namespace

TEST_CASE("tablets moving between three servers on one database converge, each write logged once", "[pg][multi]") {
    PgDatabase db;
    TempDir dir;
    const std::string key = generate_token_key();
    constexpr int kServers = 3, kTablets = 6, kRounds = 8;
    std::vector<std::unique_ptr<SyncServer>> servers;
    for (int i = 0; i < kServers; ++i) {
        ServerOptions o;
        o.db_path = db.conninfo();
        o.insecure = true;
        o.tokens.key_pem = key;
        servers.push_back(std::make_unique<SyncServer>(std::move(o)));
    }
    std::vector<std::unique_ptr<Replica>> tablets;
    std::vector<std::string> paths, tokens;
    for (int i = 0; i < kTablets; ++i) {
        paths.push_back(dir.file("tablet" + std::to_string(i) + ".db"));
        tablets.push_back(std::make_unique<Replica>(paths.back()));
        tokens.push_back(issue_token(key, {.user = "office-" + std::to_string(i), .role = Role::admin}));
    }
    auto sync = [&](int tablet, int server) {
        SyncOptions o;
        o.port = servers[static_cast<std::size_t>(server)]->port();
        o.insecure = true;
        o.token = tokens[static_cast<std::size_t>(tablet)];
        o.connect_timeout = 2s;
        o.io_timeout = 20s;
        return SyncClient(*tablets[static_cast<std::size_t>(tablet)], o).sync();
    };

    const auto s = lindra::test::seed_group(*tablets[0]);
    {
        const auto r = sync(0, 0);
        INFO(r.message);
        REQUIRE(r.ok());
    }
    for (int t = 1; t < kTablets; ++t) {
        const auto r = sync(t, t % kServers);
        INFO(r.message);
        REQUIRE(r.ok());
    }

    // Each round every tablet writes (a counter, a new row, a contested
    // title), then all sync at once, each with another server than before.
    std::int64_t seconds_added = 0;
    for (int round = 0; round < kRounds; ++round) {
        for (int t = 0; t < kTablets; ++t) {
            auto& r = *tablets[static_cast<std::size_t>(t)];
            r.add_time_spent(s.candidates[0], s.modules[1], s.group, 60 + t);
            seconds_added += 60 + t;
            r.register_person("Person " + std::to_string(t) + "." + std::to_string(round), Profession::nurse,
                              s.organization);
            r.update("gathering", s.gatherings[static_cast<std::size_t>(round % 3)],
                     {{"title", "G by " + std::to_string(t) + " in round " + std::to_string(round)}});
        }
        std::vector<std::future<SyncResult>> rounds;
        for (int t = 0; t < kTablets; ++t)
            rounds.push_back(std::async(std::launch::async, [&, t] { return sync(t, (t + round) % kServers); }));
        for (int t = 0; t < kTablets; ++t) {
            const auto r = rounds[static_cast<std::size_t>(t)].get();
            INFO("round " << round << " tablet " << t << ": " << r.message);
            REQUIRE(r.ok());
        }
    }
    // Two quiet passes: every tablet has pushed everything and pulled the rest.
    for (int pass = 0; pass < 2; ++pass)
        for (int t = 0; t < kTablets; ++t) {
            const auto r = sync(t, (t + pass) % kServers);
            INFO(r.message);
            REQUIRE(r.ok());
        }

    const auto reference = dump(paths[0], Tables::domain);
    for (int t = 0; t < kTablets; ++t) {
        INFO("tablet " << t);
        CHECK(tablets[static_cast<std::size_t>(t)]->outbox_size() == 0);
        CHECK(dump(paths[static_cast<std::size_t>(t)], Tables::domain) == reference);
        std::int64_t spent = -1;
        for (const auto& p : tablets[static_cast<std::size_t>(t)]->progress_of(s.candidates[0]))
            if (p.module == s.modules[1]) spent = p.time_spent_s;
        CHECK(spent == seconds_added);  // every device's seconds, once each
    }

    pg::Connection c(db.conninfo());
    require_log_sound(c);
    // Every entry every device wrote is in the log: nothing refused, nothing
    // lost, nothing twice.
    CHECK(scalar(c, "SELECT count(*) FROM lindra_log") ==
          scalar(c, "SELECT sum(highest_seq)::int8 FROM lindra_device"));
    CHECK(scalar(c, "SELECT count(*) FROM lindra_device") == kTablets);
    CHECK(scalar(c,
                 "SELECT count(*) FROM (SELECT origin FROM lindra_log GROUP BY origin"
                 " HAVING count(*) <> max(seq) OR min(seq) <> 1) d") == 0);
}

TEST_CASE("a push retried at a second server while the first still commits is applied once", "[pg][multi]") {
    PgDatabase db;
    auto first = server::open_store(db.conninfo(), {});
    auto second = server::open_store(db.conninfo(), {});
    const Id device = Id::random();
    std::vector<protocol::Entry> entries;
    for (std::int64_t seq = 1; seq <= 3; ++seq)
        entries.push_back(person_entry(device, seq, Id::random(), "Person " + std::to_string(seq)));

    pg::Connection monitor(db.conninfo());
    pg::Connection locker(db.conninfo());
    auto hold = std::make_unique<pg::Transaction>(locker);
    locker.exec("SELECT pos FROM lindra_head FOR UPDATE");  // the first push stops at its append

    auto one = std::async(std::launch::async, [&] { return first->push(device, kAdmin, entries); });
    await_waiting(monitor, 1);
    // The retry: the same entries through another server, which must wait
    // for the device's lock the first push holds.
    auto two = std::async(std::launch::async, [&] { return second->push(device, kAdmin, entries); });
    await_waiting(monitor, 2);
    CHECK(scalar(monitor, "SELECT count(*) FROM lindra_log") == 0);
    hold->commit();
    hold.reset();

    const auto a = one.get();
    const auto b = two.get();
    CHECK(a.acked_seq == 3);
    CHECK(b.acked_seq == 3);
    CHECK(a.rejected.empty());
    CHECK(b.rejected.empty());
    CHECK(a.applied_changes + b.applied_changes == 3);  // one of them applied all, the other none
    CHECK(scalar(monitor, "SELECT count(*) FROM lindra_log") == 3);
    CHECK(scalar(monitor, "SELECT count(*) FROM lindra_row") == 3);
    require_log_sound(monitor);
    CHECK(second->device(device).highest_seq == 3);
}

TEST_CASE("a push whose commit is held back is not skipped by a cursor taken meanwhile", "[pg][multi]") {
    PgDatabase db;
    auto store_a = server::open_store(db.conninfo(), {});
    auto store_b = server::open_store(db.conninfo(), {});
    const Id device_a = Id::random(), device_b = Id::random(), reader = Id::random();
    const Id row = Id::random();
    const auto a1 = person_entry(device_a, 1, row, "Before");
    REQUIRE(store_a->push(device_a, kAdmin, {&a1, 1}).acked_seq == 1);

    // The reader is up to date.
    auto pulled = store_b->pull(reader, kAdmin, false, "", 100, 1 << 20);
    REQUIRE(pulled.changes.size() == 1);
    std::string cursor = pulled.next_cursor;

    pg::Connection monitor(db.conninfo());
    pg::Connection locker(db.conninfo());
    auto hold = std::make_unique<pg::Transaction>(locker);
    locker.query("SELECT id FROM lindra_row WHERE id = $1 FOR UPDATE",
                 {pg::Param(std::span<const std::uint8_t>(row.bytes))});
    const auto a2 = person_entry(device_a, 2, row, "After");
    auto held = std::async(std::launch::async, [&] { return store_a->push(device_a, kAdmin, {&a2, 1}); });
    await_waiting(monitor, 1);

    // Another device's push commits meanwhile, and the reader takes it.
    std::vector<protocol::Entry> b;
    for (std::int64_t seq = 1; seq <= 2; ++seq)
        b.push_back(person_entry(device_b, seq, Id::random(), "B " + std::to_string(seq)));
    REQUIRE(store_b->push(device_b, kAdmin, b).acked_seq == 2);
    pulled = store_b->pull(reader, kAdmin, false, cursor, 100, 1 << 20);
    CHECK(pulled.changes.size() == 2);
    CHECK_FALSE(pulled.has_more);
    cursor = pulled.next_cursor;
    CHECK(waiting(monitor) == 1);  // A still waits

    hold->commit();
    hold.reset();
    CHECK(held.get().acked_seq == 2);
    pulled = store_a->pull(reader, kAdmin, false, cursor, 100, 1 << 20);
    REQUIRE(pulled.changes.size() == 1);
    CHECK(pulled.changes[0].row == row);
    CHECK(pulled.changes[0].origin == device_a);
    CHECK(pulled.changes[0].value == Value{std::string("After")});
    CHECK_FALSE(pulled.has_more);
    require_log_sound(monitor);
    CHECK(scalar(monitor, "SELECT count(*) FROM lindra_log") == 4);
}

TEST_CASE("racing pushes through two stores: retries applied once, a new row created by both merged", "[pg][multi]") {
    PgDatabase db;
    auto one = server::open_store(db.conninfo(), {});
    auto two = server::open_store(db.conninfo(), {});
    const auto& person = *find_entity("person");
    constexpr int kRaces = 30;
    std::int64_t logged = 0;
    for (int race = 0; race < kRaces; ++race) {
        INFO("race " << race);
        // The same device's push, sent to both at once (a retry racing its
        // original).
        const Id device = Id::random();
        std::vector<protocol::Entry> entries;
        for (std::int64_t seq = 1; seq <= 4; ++seq)
            entries.push_back(person_entry(device, seq, Id::random(), "Racer " + std::to_string(seq)));
        auto a = std::async(std::launch::async, [&] { return one->push(device, kAdmin, entries); });
        auto b = std::async(std::launch::async, [&] { return two->push(device, kAdmin, entries); });
        const auto ra = a.get(), rb = b.get();
        CHECK(ra.acked_seq == 4);
        CHECK(rb.acked_seq == 4);
        CHECK(ra.applied_changes + rb.applied_changes == 4);
        logged += 4;

        // Two devices create one new row at once, each with a field of its
        // own: one insert wins, the other push runs again and merges.
        const Id row = Id::random(), d1 = Id::random(), d2 = Id::random();
        const auto stamp = hlc_now();
        const protocol::Entry e1{
            1, {{person.tag, row, person.field("display_name")->tag, std::string("Both"), stamp, d1}}};
        const protocol::Entry e2{
            1, {{person.tag, row, person.field("profession")->tag, std::string("nurse"), stamp + 1, d2}}};
        auto c1 = std::async(std::launch::async, [&] { return one->push(d1, kAdmin, {&e1, 1}); });
        auto c2 = std::async(std::launch::async, [&] { return two->push(d2, kAdmin, {&e2, 1}); });
        const auto r1 = c1.get(), r2 = c2.get();
        CHECK(r1.rejected.empty());
        CHECK(r2.rejected.empty());
        CHECK(r1.applied_changes == 1);
        CHECK(r2.applied_changes == 1);
        logged += 2;
        const auto pulled = one->pull(Id::random(), kAdmin, false, "", 100'000, 1 << 24);
        std::size_t of_row = 0;
        for (const auto& c : pulled.changes) of_row += c.row == row;
        CHECK(of_row == 2);
    }
    pg::Connection c(db.conninfo());
    require_log_sound(c);
    CHECK(scalar(c, "SELECT count(*) FROM lindra_log") == logged);
    CHECK(scalar(c, "SELECT count(*) FROM lindra_row") == kRaces * 5);
}

// Two halves of one candidate's rule, each the last piece from where its
// server stands, pushed through two servers at once: each push locks the
// membership before it reads the rule, so the second sees the first's
// commit and exactly one certificate is issued, never none, never two.
TEST_CASE("two halves of one rule pushed through two servers at once issue exactly one certificate", "[pg][multi]") {
    PgDatabase db;
    const auto issuer = std::make_shared<const server::Issuer>(std::vector{generate_issuer_key()}, "", "lindra");
    auto one = server::open_store(db.conninfo(), {.issuer = issuer});
    auto two = server::open_store(db.conninfo(), {.issuer = issuer});
    TempDir dir;
    Replica office(dir.file("office.db"));
    constexpr int kRaces = 12;
    Id course, group, m1, m2, mentor;
    std::vector<Id> candidates;
    office.batch([&](Writes& w) {
        const Id org = w.register_organization("Fjellvik kommune", OrganizationKind::municipality);
        course = w.register_course("Palliative care basics", "1", "nb", 0);
        m1 = w.register_module({.course = course, .ordinal = 1, .title = "M1"});
        m2 = w.register_module({.course = course, .ordinal = 2, .title = "M2"});
        group = w.create_group({.course = course, .organization = org, .name = "Fjellvik 1"});
        mentor = w.register_person("Mia Mentor", Profession::nurse, org);
        w.add_member(group, mentor, MemberRole::mentor);
        for (int i = 0; i < kRaces; ++i) {
            candidates.push_back(w.register_person("Racer " + std::to_string(i), Profession::assistant, org));
            w.add_member(group, candidates.back(), MemberRole::candidate);
            w.confirm_candidate(group, candidates.back(), mentor);
        }
    });
    std::vector<protocol::Entry> seed;
    for (auto& e : office.outbox(SIZE_MAX)) seed.push_back({e.seq, std::move(e.changes)});
    REQUIRE(one->push(office.device_id(), kAdmin, seed).rejected.empty());

    const auto& progress = *find_entity("module_progress");
    auto completed = [&](const Id& device, const Id& person, const Id& module) {
        const Id row = Id::derive("module_progress", {person, module, group});
        const auto stamp = hlc_now();
        std::vector<Change> changes;
        for (const auto& [field, value] : std::vector<std::pair<std::string_view, Value>>{
                 {"person_id", person}, {"module_id", module}, {"group_id", group}, {"progress", progress_value(0, 2)}})
            changes.push_back({progress.tag, row, progress.field(field)->tag, value, stamp, device});
        return protocol::Entry{1, std::move(changes)};
    };
    for (const Id& person : candidates) {
        const Id d1 = Id::random(), d2 = Id::random();
        const auto e1 = completed(d1, person, m1), e2 = completed(d2, person, m2);
        auto a = std::async(std::launch::async, [&] { return one->push(d1, kAdmin, {&e1, 1}); });
        auto b = std::async(std::launch::async, [&] { return two->push(d2, kAdmin, {&e2, 1}); });
        CHECK(a.get().rejected.empty());
        CHECK(b.get().rejected.empty());
    }
    pg::Connection c(db.conninfo());
    require_log_sound(c);
    const auto& certificate = *find_entity("certificate");
    for (const Id& person : candidates) {
        const Id id = Id::derive("certificate", {person, course, group});
        INFO("candidate " << person.to_string());
        CHECK(scalar(c, "SELECT count(*) FROM lindra_log WHERE entity = " + std::to_string(certificate.tag) +
                            " AND row_id = decode(replace('" + id.to_string() + "', '-', ''), 'hex')") == 1);
    }
}

// Revocations pushed through two servers at once: each locks the status
// list before it reads the bits, so neither saves its list over the
// other's and every revoked certificate's bit is set in the list signed
// last.
TEST_CASE("revocations through two servers at once all end in the signed list", "[pg][multi]") {
    PgDatabase db;
    const auto issuer = std::make_shared<const server::Issuer>(std::vector{generate_issuer_key()}, "", "lindra");
    auto one = server::open_store(db.conninfo(), {.issuer = issuer});
    auto two = server::open_store(db.conninfo(), {.issuer = issuer});
    TempDir dir;
    Replica office(dir.file("office.db"));
    constexpr int kCandidates = 10;
    Id course, group;
    std::vector<Id> candidates;
    office.batch([&](Writes& w) {
        const Id org = w.register_organization("Fjellvik kommune", OrganizationKind::municipality);
        course = w.register_course("Palliative care basics", "1", "nb", 0);
        const Id m1 = w.register_module({.course = course, .ordinal = 1, .title = "M1"});
        group = w.create_group({.course = course, .organization = org, .name = "Fjellvik 1"});
        const Id mentor = w.register_person("Mia Mentor", Profession::nurse, org);
        w.add_member(group, mentor, MemberRole::mentor);
        for (int i = 0; i < kCandidates; ++i) {
            candidates.push_back(w.register_person("Candidate " + std::to_string(i), Profession::assistant, org));
            w.add_member(group, candidates.back(), MemberRole::candidate);
            w.complete_module(candidates.back(), m1, group);
            w.confirm_candidate(group, candidates.back(), mentor);
        }
    });
    std::vector<protocol::Entry> seed;
    for (auto& e : office.outbox(SIZE_MAX)) seed.push_back({e.seq, std::move(e.changes)});
    REQUIRE(one->push(office.device_id(), kAdmin, seed).rejected.empty());

    const auto& revocation = *find_entity("revocation");
    auto revoke = [&](const Id& device, const Id& person) {
        const Id certificate = Id::derive("certificate", {person, course, group});
        const auto stamp = hlc_now();
        std::vector<Change> changes;
        for (const auto& [field, value] : std::vector<std::pair<std::string_view, Value>>{
                 {"certificate_id", certificate}, {"group_id", group}, {"person_id", person}, {"reason", "a test"}})
            changes.push_back({revocation.tag, Id::derive("revocation", {certificate}), revocation.field(field)->tag,
                               value, stamp, device});
        return protocol::Entry{1, std::move(changes)};
    };
    for (int i = 0; i + 1 < kCandidates; i += 2) {
        const Id d1 = Id::random(), d2 = Id::random();
        const auto e1 = revoke(d1, candidates[static_cast<std::size_t>(i)]);
        const auto e2 = revoke(d2, candidates[static_cast<std::size_t>(i) + 1]);
        auto a = std::async(std::launch::async, [&] { return one->push(d1, kAdmin, {&e1, 1}); });
        auto b = std::async(std::launch::async, [&] { return two->push(d2, kAdmin, {&e2, 1}); });
        CHECK(a.get().rejected.empty());
        CHECK(b.get().rejected.empty());
    }
    // A tablet pulls it all; the row's revoked_at cleared behind its back,
    // only the signed list can say "revoked".
    const auto pulled = one->pull(Id::random(), kAdmin, false, "", 100'000, 1 << 24);
    REQUIRE_FALSE(pulled.has_more);
    Replica tablet(dir.file("tablet.db"));
    tablet.apply_remote(pulled.changes);
    lindra::test::tamper(tablet.path(), "UPDATE certificate SET revoked_at = NULL");
    for (const Id& person : candidates) {
        const auto held = tablet.certificates_of(person);
        REQUIRE(held.size() == 1);
        INFO("candidate " << person.to_string());
        CHECK(tablet.verify_certificate(held[0]).status == CertificateStatus::revoked);
    }
}
