// Scoped sync end to end, over TLS with signed tokens: a refused change is
// rolled back on the tablet and reported, and what it set is kept until
// dismissed (also when a purge takes its row); a withdrawn candidate's rows are
// purged from other tablets, bytes and all; a new member gets the group's
// past backfilled (DESIGN §6, README "Security model").
#include "client/session.hpp"
#include "protocol/messages.hpp"
#include "store/database.hpp"
#include "support/db.hpp"
#include "support/fixture.hpp"
#include "support/sync_fixture.hpp"

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

namespace lindra::test {
namespace {

// Whether the bytes of the file at `path` (if it exists) contain `needle`.
bool file_contains(const std::string& path, const std::string& needle) {
    std::ifstream in(path, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return bytes.find(needle) != std::string::npos;
}

struct Group {
    SyncWorld w;
    Replica& office = w.tablet("office");  // the coordinator's import, with an admin token
    Seeded s = seed_group(office);

    Group() { require_ok(w.sync(office)); }

    std::string token(Role role, const Id& person) {
        return w.token({.user = person.to_string().substr(0, 8), .role = role, .person = person});
    }
    const Id& ola() const { return s.candidates[0]; }
    const Id& kari() const { return s.candidates[1]; }
};

}  // namespace

TEST_CASE("a refused change is rolled back on the tablet and reported to the app") {
    Group g;
    Replica& tablet = g.w.tablet("ola");
    const auto ola = g.token(Role::candidate, g.ola());
    require_ok(g.w.sync(tablet, ola));
    REQUIRE(tablet.gathering(g.s.gatherings[0]));

    // Ola's own progress is hers to write; attendance and gatherings are the mentor's.
    tablet.complete_module(g.ola(), g.s.modules[0], g.s.group, 85);
    tablet.record_attendance(g.s.gatherings[0], g.ola(), AttendanceStatus::present);
    tablet.batch([&](Writes& w) { w.update("gathering", g.s.gatherings[0], {{"title", "Renamed by Ola"}}); });

    std::vector<SyncRejection> told;
    SyncOptions options;
    options.on_rejected = [&](const SyncRejection& r) { told.push_back(r); };
    const auto r = g.w.sync(tablet, ola, options);
    require_ok(r);
    REQUIRE(r.rejected.size() == 2);
    REQUIRE(told.size() == 2);
    for (const auto& x : told) {
        CHECK(x.code == "permission_denied");
        CHECK(x.reason.find("mentor") != std::string::npos);
    }
    CHECK(told[0].entity == "attendance");
    CHECK(told[0].row_removed);  // the server has none: it goes here too
    CHECK(told[1].entity == "gathering");
    CHECK(told[1].fields == std::vector<std::string>{"title"});
    CHECK_FALSE(told[1].row_removed);

    CHECK(tablet.count("attendance") == 0);
    CHECK(tablet.gathering(g.s.gatherings[0])->title == g.office.gathering(g.s.gatherings[0])->title);
    CHECK(tablet.outbox_size() == 0);
    // The server kept the allowed change and nothing of the refused ones.
    CHECK(count_rows(g.w.server_db(), "module_progress") == 1);
    CHECK(count_rows(g.w.server_db(), "attendance") == 0);
    // Ola's tablet and the server agree on every row she may see.
    require_ok(g.w.sync(tablet, ola));
    CHECK(dump_table(tablet.path(), "gathering") == dump_table(g.w.server_db(), "gathering"));
}

// The text of `field` among a refused write's values; "" if none.
std::string text_of(const std::vector<FieldValue>& values, std::string_view field) {
    for (const auto& v : values)
        if (v.field == field)
            if (const auto* t = std::get_if<std::string>(&v.value)) return *t;
    return {};
}

TEST_CASE("a reflection written after an offline withdrawal is refused, and kept for its writer until dismissed") {
    Group g;
    Replica& tablet = g.w.tablet("ola");
    const auto ola = g.token(Role::candidate, g.ola());
    require_ok(g.w.sync(tablet, ola));
    // The office withdraws Ola while her tablet is offline; she writes on.
    g.office.withdraw_member(g.s.group, g.ola());
    require_ok(g.w.sync(g.office));
    const std::string text = "What the night shift taught me: listen before you speak";
    const Id reflection = tablet.write_reflection(g.ola(), g.s.group, g.s.modules[2], text);

    std::vector<SyncRejection> told;
    std::vector<RefusedWrite> kept_when_told;
    SyncOptions options;
    options.on_rejected = [&](const SyncRejection& r) {
        told.push_back(r);
        kept_when_told = tablet.refused_writes();  // kept before the app hears of it
    };
    const auto r = g.w.sync(tablet, ola, options);
    require_ok(r);
    CHECK_FALSE(r.clean());
    REQUIRE(r.rejected.size() == 1);
    REQUIRE(told.size() == 1);
    const SyncRejection& x = r.rejected[0];
    CHECK(x.code == "permission_denied");
    CHECK(x.entity == "reflection");
    CHECK(x.row == reflection);
    CHECK(x.row_removed);
    CHECK(text_of(x.values, "text") == text);
    CHECK(text_of(told[0].values, "text") == text);
    CHECK(x.refused_id > 0);
    CHECK(kept_when_told.size() == 1);
    // The row is gone with the group; the words are not.
    CHECK(tablet.count("reflection") == 0);
    CHECK_FALSE(tablet.group(g.s.group));
    CHECK(tablet.outbox_size() == 0);
    CHECK(count_rows(g.w.server_db(), "reflection") == 0);

    const auto check_kept = [&](const Replica& replica) {
        const auto kept = replica.refused_writes();
        REQUIRE(kept.size() == 1);
        const RefusedWrite& k = kept[0];
        CHECK(k.id == x.refused_id);
        CHECK(k.seq == x.seq);
        CHECK(k.entity == "reflection");
        CHECK(k.row == reflection);
        CHECK(k.code == "permission_denied");
        CHECK(k.reason == x.reason);
        CHECK(text_of(k.values, "text") == text);
        CHECK(std::any_of(k.values.begin(), k.values.end(),
                          [&](const FieldValue& v) { return v.field == "person_id" && v.value == Value{g.ola()}; }));
        CHECK(k.written_at > 0);
        CHECK(k.refused_at >= k.written_at);
    };
    check_kept(tablet);
    // Another round, and another connection to the file, find it as it was.
    require_ok(g.w.sync(tablet, ola));
    check_kept(tablet);
    check_kept(Replica(tablet.path()));

    CHECK_FALSE(tablet.dismiss_refused(x.refused_id + 1));
    CHECK(tablet.dismiss_refused(x.refused_id));
    CHECK(tablet.refused_writes().empty());
    CHECK_FALSE(tablet.dismiss_refused(x.refused_id));
    CHECK(tablet.dismiss_all_refused() == 0);
}

TEST_CASE("an edit made while the round pulls a purge of its row is kept, not thrown away with the row") {
    Group g;
    Replica& tablet = g.w.tablet("ola");
    const auto ola = g.token(Role::candidate, g.ola());
    require_ok(g.w.sync(tablet, ola));
    const Id reflection = tablet.write_reflection(g.ola(), g.s.group, std::nullopt, "First thoughts");
    require_ok(g.w.sync(tablet, ola));
    g.office.withdraw_member(g.s.group, g.ola());
    require_ok(g.w.sync(g.office));

    // The app edits the reflection once the round has pushed and starts to
    // pull: the pull's purge takes the row, and the edit with it.
    const std::string text = "Edited while the tablet synced";
    bool edited = false;
    SyncOptions options;
    options.on_progress = [&](const SyncProgress& p) {
        if (p.phase != SyncPhase::pulling || edited) return;
        tablet.update("reflection", reflection, {{"text", text}});
        edited = true;
    };
    const auto r = g.w.sync(tablet, ola, options);
    require_ok(r);
    REQUIRE(edited);
    CHECK(r.rows_purged > 0);
    REQUIRE(r.rejected.size() == 1);
    CHECK(r.rejected[0].row == reflection);
    CHECK(r.rejected[0].row_removed);
    CHECK(r.rejected[0].fields == std::vector<std::string>{"text"});
    CHECK(text_of(r.rejected[0].values, "text") == text);
    CHECK(tablet.count("reflection") == 0);
    CHECK(tablet.outbox_size() == 0);
    const auto kept = tablet.refused_writes();
    REQUIRE(kept.size() == 1);
    CHECK(kept[0].id == r.rejected[0].refused_id);
    CHECK(kept[0].row == reflection);
    CHECK(text_of(kept[0].values, "text") == text);
}

// The session alone, fed a server's frames: a refusal must name a write the
// PushAck answers, or it could take a write the server never judged.
TEST_CASE("a refusal of a write the PushAck does not answer ends the round; the write stays pending") {
    TempDir dir;
    Replica tablet(dir.file("tablet.db"));
    const Id first = tablet.register_organization("First", OrganizationKind::municipality);
    const Id second = tablet.register_organization("Second", OrganizationKind::municipality);
    SyncOptions options;
    options.push_batch_changes = 1;  // one write per push: two pushes in flight
    client::SyncSession session(detail::core_of(tablet), options);
    session.first_frames();
    const auto frame = [](const protocol::ServerMessage& m) {
        const std::string body = protocol::encode(m);
        return std::vector<std::uint8_t>(body.begin(), body.end());
    };
    const auto pushes = session.on_frame(frame(protocol::Welcome{.version = protocol::kVersion, .server_id = Id::random(),
                                                                  .server_hlc = tablet.hlc()}));
    REQUIRE(pushes.frames.size() == 2);
    const auto outbox = tablet.outbox(2);
    REQUIRE(outbox.size() == 2);

    protocol::Rejected wrong{.seq = outbox[1].seq, .code = protocol::ErrorCode::permission_denied,
                             .reason = "not yours", .entity = find_entity("organization")->tag, .row = second,
                             .drop_row = true};
    session.on_frame(frame(protocol::PushAck{.acked_seq = outbox[0].seq, .rejected = {wrong}}));
    REQUIRE(session.done());
    CHECK(session.result({}).outcome == SyncOutcome::protocol_error);
    CHECK(tablet.outbox_size() == 2);
    CHECK(tablet.refused_writes().empty());
    CHECK(tablet.count("organization") == 2);
    CHECK(tablet.find("organization", "first") == first);
}

TEST_CASE("a withdrawn candidate's rows are purged from the mentor's tablet, bytes and all") {
    Group g;
    Replica& ola_tablet = g.w.tablet("ola");
    Replica& mentor_tablet = g.w.tablet("mentor");
    const auto ola = g.token(Role::candidate, g.ola());
    const auto mentor = g.token(Role::mentor, g.s.mentor);
    const std::string secret = "Ola's reflection: the night shift with Mrs. Q stays with me";
    require_ok(g.w.sync(ola_tablet, ola));
    ola_tablet.write_reflection(g.ola(), g.s.group, g.s.modules[2], secret);
    ola_tablet.complete_module(g.ola(), g.s.modules[0], g.s.group);
    require_ok(g.w.sync(ola_tablet, ola));
    require_ok(g.w.sync(mentor_tablet, mentor));
    REQUIRE(mentor_tablet.person(g.ola()));
    REQUIRE(mentor_tablet.count("reflection") == 1);
    // The mentor's own unpushed work must survive the purge.
    mentor_tablet.hold_gathering(g.s.gatherings[0]);

    g.office.withdraw_member(g.s.group, g.ola());
    require_ok(g.w.sync(g.office));
    const auto r = g.w.sync(mentor_tablet, mentor);
    require_ok(r);
    CHECK(r.rows_purged >= 3);  // Ola's person row, progress and reflection
    // Each scope comes with what it was, named as the tablet knew it.
    std::int64_t rows = 0;
    bool person_told = false, progress_told = false, reflections_told = false;
    for (const auto& p : r.purged) {
        rows += p.rows;
        CHECK(p.person == g.ola());
        CHECK(p.person_name == "Ola Nordmann");
        if (p.kind == ScopeKind::person) {
            person_told = true;
            CHECK(p.group.is_nil());
            CHECK(p.group_name.empty());
        } else {
            REQUIRE((p.kind == ScopeKind::person_in_group || p.kind == ScopeKind::personal));
            (p.kind == ScopeKind::personal ? reflections_told : progress_told) = true;
            CHECK(p.group == g.s.group);
            CHECK(p.group_name == "Fjellvik group 1");
        }
    }
    CHECK(rows == r.rows_purged);
    CHECK((person_told && progress_told && reflections_told));
    // The roster keeps her membership without her name, and says why.
    const auto roster = mentor_tablet.roster(g.s.group);
    const auto gone = std::find_if(roster.members.begin(), roster.members.end(),
                                   [&](const RosterEntry& m) { return m.person == g.ola(); });
    REQUIRE(gone != roster.members.end());
    CHECK(gone->status == MemberStatus::withdrawn);
    CHECK(gone->display_name.empty());
    CHECK(member_name(gone->display_name, gone->status) == "a withdrawn member");
    CHECK(member_name("Kari Hansen", MemberStatus::active) == "Kari Hansen");
    CHECK_FALSE(mentor_tablet.person(g.ola()));
    CHECK(mentor_tablet.count("reflection") == 0);
    CHECK(mentor_tablet.count("module_progress") == 0);
    CHECK(mentor_tablet.person(g.kari()));  // the others stay
    CHECK(mentor_tablet.gathering(g.s.gatherings[0])->status == GatheringStatus::held);
    for (const auto& file : {mentor_tablet.path(), mentor_tablet.path() + "-wal"}) {
        INFO(file);
        CHECK_FALSE(file_contains(file, "Ola Nordmann"));
        CHECK_FALSE(file_contains(file, secret));
    }
    // Nothing comes back on the next pull.
    require_ok(g.w.sync(mentor_tablet, mentor));
    CHECK_FALSE(mentor_tablet.person(g.ola()));

    // Ola's own tablet loses the group, and keeps her own person row.
    const auto own = g.w.sync(ola_tablet, ola);
    require_ok(own);
    CHECK(own.rows_purged > 0);
    // Her tablet can say which group she left.
    const auto left = std::find_if(own.purged.begin(), own.purged.end(),
                                   [](const PurgedScope& p) { return p.kind == ScopeKind::group; });
    REQUIRE(left != own.purged.end());
    CHECK(left->group == g.s.group);
    CHECK(left->group_name == "Fjellvik group 1");
    CHECK(left->person.is_nil());
    CHECK(left->rows > 0);
    CHECK_FALSE(ola_tablet.group(g.s.group));
    CHECK(ola_tablet.count("reflection") == 0);
    CHECK(ola_tablet.person(g.ola()));

    // The server's log names sessions, never what they carried or who signed.
    g.w.stop_server();
    const auto log = g.w.log();
    REQUIRE_FALSE(log.empty());
    for (const auto& line : log) {
        INFO(line);
        CHECK(line.find(secret) == std::string::npos);
        CHECK(line.find("Ola Nordmann") == std::string::npos);
        CHECK(line.find(ola) == std::string::npos);
        CHECK(line.find(mentor) == std::string::npos);
    }
}

TEST_CASE("a candidate added to a group gets its past, and no one else's progress") {
    Group g;
    const Id nora = g.office.register_person("Nora Newcomer", Profession::nurse, g.s.organization);
    require_ok(g.w.sync(g.office));
    Replica& ola_tablet = g.w.tablet("ola");
    const auto ola = g.token(Role::candidate, g.ola());
    require_ok(g.w.sync(ola_tablet, ola));
    ola_tablet.complete_module(g.ola(), g.s.modules[0], g.s.group);
    require_ok(g.w.sync(ola_tablet, ola));

    Replica& tablet = g.w.tablet("nora");
    const auto token = g.token(Role::candidate, nora);
    require_ok(g.w.sync(tablet, token));
    CHECK(tablet.person(nora));
    CHECK_FALSE(tablet.group(g.s.group));
    CHECK(tablet.count("gathering") == 0);

    g.office.add_member(g.s.group, nora, MemberRole::candidate);
    require_ok(g.w.sync(g.office));
    require_ok(g.w.sync(tablet, token));
    CHECK(tablet.group(g.s.group));
    CHECK(tablet.count("gathering") == 3);    // planned long before she joined
    CHECK(tablet.person(g.ola()));            // her fellow members
    CHECK(tablet.count("module_progress") == 0);  // not Ola's progress
}

// Pushes go out two at a time (client/session.cpp). When the answer to one
// refuses a write, a later write of the tablet to the same row is still
// waiting for its own answer: the row goes back to the server's state with
// the later write on top, as the server holds it once it takes that write.
// Without it the tablet would keep the server's old value for good: its own
// writes never come back in a pull.
TEST_CASE("a refused write below a pending write to the same row keeps the later write") {
    Group g;
    Replica& tablet = g.w.tablet("ola");
    const auto ola = g.token(Role::candidate, g.ola());
    require_ok(g.w.sync(tablet, ola));
    // Her name is hers to write, her profession only a coordinator's.
    tablet.batch([&](Writes& w) {
        w.update("person", g.ola(), {{"display_name", "Ola A."}, {"profession", "nurse"}});
    });
    tablet.batch([&](Writes& w) { w.update("person", g.ola(), {{"display_name", "Ola B."}}); });
    const auto outbox = tablet.outbox(SIZE_MAX);
    REQUIRE(outbox.size() == 2);

    SyncOptions options;
    options.push_batch_changes = 1;  // one write per Push
    const auto r = g.w.sync(tablet, ola, options);
    require_ok(r);
    REQUIRE(r.rejected.size() == 1);
    CHECK(r.rejected[0].seq == outbox[0].seq);
    CHECK(r.rejected[0].fields == std::vector<std::string>{"display_name", "profession"});
    CHECK(tablet.outbox_size() == 0);
    CHECK(tablet.person(g.ola())->display_name == "Ola B.");
    CHECK(tablet.person(g.ola())->profession == Profession::health_care_worker);

    // The tablet holds the row as the server does, clocks and all.
    auto row = [&](const std::string& db) {
        const auto all = dump_table(db, "person");
        const auto at = all.find(g.ola().to_string());
        REQUIRE(at != std::string::npos);
        return all.substr(at, all.find('\n', at) - at);
    };
    CHECK(row(tablet.path()) == row(g.w.server_db()));
    require_ok(g.w.sync(tablet, ola));
    CHECK(row(tablet.path()) == row(g.w.server_db()));
}

}  // namespace lindra::test
