// Writes the fuzz targets' seed corpus, corpus/<target>/<name>, from valid
// messages and a few refused ones: run it again when the protocol or the
// schema table changes. Inputs the fuzzers found sit beside these under
// their own names (libFuzzer's hashes) and are kept.
//   fuzz_make_corpus <source>/tests/fuzz/corpus
#include "fuzz/fuzz_world.hpp"
#include "protocol/frame.hpp"

#include <lindra/schema.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

using namespace lindra;
using protocol::Entry;

namespace {

std::filesystem::path g_root;

void save(const std::string& target, const std::string& name, const std::string& bytes) {
    const auto dir = g_root / target;
    std::filesystem::create_directories(dir);
    std::ofstream(dir / name, std::ios::binary) << bytes;
}

std::string framed(const protocol::ClientMessage& m) {
    return protocol::frame(protocol::encode(m));
}
std::string framed(const protocol::ServerMessage& m) {
    return protocol::frame(protocol::encode(m));
}
std::string body(const protocol::ServerMessage& m) {
    return protocol::encode(m);
}

std::vector<Change> changes_of(const std::vector<Entry>& entries) {
    std::vector<Change> out;
    for (const Entry& e : entries) out.insert(out.end(), e.changes.begin(), e.changes.end());
    return out;
}

// The first change of `field` of `entity`; throws if there is none.
Change& change_of(std::vector<Entry>& entries, std::string_view entity, std::string_view field) {
    const EntityDef& e = *find_entity(entity);
    for (Entry& entry : entries)
        for (Change& c : entry.changes)
            if (c.entity == e.tag && c.field == e.field(field)->tag) return c;
    throw std::logic_error("no change of " + std::string(entity) + "." + std::string(field));
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s <corpus directory>\n", argv[0]);
        return 2;
    }
    g_root = argv[1];
    const fuzz::Seed& s = fuzz::seed();
    const auto users = fuzz::users();
    const Id& admin = users[0].device;

    // What each user might write, and what some may not.
    fuzz::Renamer rename(3);
    const std::vector<Entry> by_user[] = {
        fuzz::writes(
            [&](Writes& w) {
                const Id region = w.register_organization("Nordland", OrganizationKind::region);
                w.update("organization", s.organization, {{"parent_id", region}});
                w.remove("module", s.modules[3]);
                w.withdraw_member(s.group, s.candidates[1]);
                w.cancel_gathering(s.gatherings[2]);
                w.reset_module(s.candidates[0], s.modules[0], s.group);
            },
            users[0].device, rename),
        fuzz::writes(
            [&](Writes& w) {
                const Id p = w.register_person("Per Persen", Profession::assistant, s.organization);
                w.add_member(s.group, p, MemberRole::candidate);
                w.update("mentor_group", s.group, {{"name", "Fjellvik group 1 (autumn)"}});
            },
            users[1].device, rename),
        fuzz::writes(
            [&](Writes& w) {
                w.plan_gathering(
                    {.group = s.group, .ordinal = 4, .title = "G4: Wrap-up", .scheduled_at = fuzz::kNowMs});
                w.record_attendance(s.gatherings[0], s.candidates[1], AttendanceStatus::excused, "ill");
                w.confirm_candidate(s.group, s.candidates[0], s.mentor, "Completed all gatherings.");
            },
            users[2].device, rename),
        fuzz::writes(
            [&](Writes& w) {
                w.complete_module(s.candidates[0], s.modules[1], s.group, std::nullopt, 300);
                w.add_time_spent(s.candidates[0], s.modules[0], s.group, 60);
                w.write_reflection(s.candidates[0], s.group, s.modules[0], "Ask before assuming.");
            },
            users[3].device, rename),
    };
    const char* const names[] = {"admin", "coordinator", "mentor", "candidate"};
    const std::vector<Entry> denied_candidate = fuzz::writes(
        [&](Writes& w) { w.record_score(s.candidates[1], s.modules[0], s.group, 100); }, users[3].device, rename);
    const std::vector<Entry> denied_mentor = fuzz::writes(
        [&](Writes& w) {
            w.update("course", s.course, {{"title", "Renamed by a mentor"}});
        },
        users[2].device, rename);

    // ---- server_session_fuzz: a user, then that user's frames after Hello
    for (std::size_t u = 0; u < users.size(); ++u) {
        const std::string who(1, static_cast<char>(u));
        const protocol::Push push{by_user[u]};
        save("server_session_fuzz", std::string(names[u]) + "-push-pull",
             who + framed(push) + framed(protocol::Pull{"", 100, false}) + framed(protocol::Ping{7}));
        save("server_session_fuzz", std::string(names[u]) + "-push-twice", who + framed(push) + framed(push));
        save("server_session_fuzz", std::string(names[u]) + "-pull-own", who + framed(protocol::Pull{"", 5, true}));
    }
    save("server_session_fuzz", "candidate-denied", std::string(1, 3) + framed(protocol::Push{denied_candidate}));
    save("server_session_fuzz", "mentor-denied", std::string(1, 2) + framed(protocol::Push{denied_mentor}));
    {
        // Cursors: a log position; a position with a grant generation and backfill.
        save("server_session_fuzz", "coordinator-cursors",
             std::string(1, 1) + framed(protocol::Pull{"\x05", 10, false}) +
                 framed(protocol::Pull{std::string("\x05\x01\x00\x00", 4), 10, true}));
        save("server_session_fuzz", "admin-bad-cursor", std::string(1, 0) + framed(protocol::Pull{"\xff", 10, false}));
        protocol::Hello hello{.versions = {protocol::kVersion}, .device = admin, .token = "x"};
        save("server_session_fuzz", "admin-hello-again", std::string(1, 0) + framed(hello));

        auto invalid = by_user[0];
        std::get<std::string>(change_of(invalid, "organization", "name").value) = std::string(201, 'n');
        save("server_session_fuzz", "admin-invalid-value", std::string(1, 0) + framed(protocol::Push{invalid}));
        auto ahead = by_user[0];
        for (Change& c : ahead.front().changes) c.hlc += std::uint64_t{48 * 3'600'000} << 16;
        save("server_session_fuzz", "admin-clock-ahead", std::string(1, 0) + framed(protocol::Push{ahead}));
        // The same seq again with another change: a copied device file.
        auto other = by_user[0];
        other.resize(1);
        std::get<std::string>(change_of(other, "organization", "name").value) = "Sørland";
        save("server_session_fuzz", "admin-retry-mismatch",
             std::string(1, 0) + framed(protocol::Push{by_user[0]}) + framed(protocol::Push{other}));
        save("server_session_fuzz", "admin-garbage", std::string(1, 0) + protocol::frame("\x12\x07garbage"));
        save("server_session_fuzz", "admin-frame-too-large", std::string(1, 0) + std::string("\x80\x80\x80\x01"));
        save("server_session_fuzz", "admin-server-message",
             std::string(1, 0) + framed(protocol::ServerMessage{protocol::Pong{1}}));
    }

    // ---- apply_remote_fuzz: one ServerMessage body
    const Id server_origin = fuzz::fixed_id(2, 9);
    auto with_origin = [](std::vector<Change> changes, const Id& origin) {
        for (Change& c : changes) c.origin = origin;
        return changes;
    };
    save("apply_remote_fuzz", "seed", body(protocol::PullBatch{changes_of(s.entries), "\x1e", false, {}, 0}));
    for (std::size_t u = 0; u < users.size(); ++u)
        save("apply_remote_fuzz", std::string(names[u]) + "-writes",
             body(protocol::PullBatch{changes_of(by_user[u]), "\x22", true, {}, 3}));
    save("apply_remote_fuzz", "purges",
         body(protocol::PullBatch{changes_of(by_user[3]),
                                  "\x23",
                                  false,
                                  {{"group", {s.candidates[1], s.gatherings[1]}}, {"person", {s.mentor}}},
                                  0}));
    {
        // Counters of one row from three devices, one of them this replica's own total again.
        auto counters = changes_of(by_user[3]);
        std::vector<Change> all;
        for (const Id& origin : {server_origin, users[0].device, users[3].device})
            for (const Change& c : with_origin(counters, origin)) all.push_back(c);
        save("apply_remote_fuzz", "origins", body(protocol::PullBatch{all, "\x24", false, {}, 0}));

        auto invalid = by_user[1];
        std::get<std::string>(change_of(invalid, "person", "display_name").value) = std::string(201, 'p');
        save("apply_remote_fuzz", "invalid-value", body(protocol::PullBatch{changes_of(invalid), "", false, {}, 0}));
        // A reflection moved to another group: its scope may never change.
        auto moved = s.entries;
        change_of(moved, "reflection", "group_id").value = fuzz::fixed_id(9, 1);
        save("apply_remote_fuzz", "scope-change", body(protocol::PullBatch{changes_of(moved), "", false, {}, 0}));
    }
    {
        const EntityDef& person = *find_entity("person");
        const std::uint16_t name = person.field("display_name")->tag;
        const std::uint64_t hlc = std::uint64_t(fuzz::kNowMs) << 16;
        protocol::Rejected put_back{
            .seq = 2,
            .code = protocol::ErrorCode::permission_denied,
            .reason = "not yours",
            .entity = person.tag,
            .row = s.candidates[0],
            .fields = {name},
            .current = {{person.tag, s.candidates[0], name, std::string("Ola N."), hlc, admin}}};
        protocol::Rejected drop{.seq = 3,
                                .code = protocol::ErrorCode::invalid_argument,
                                .reason = "without its group",
                                .entity = find_entity("reflection")->tag,
                                .row = fuzz::fixed_id(1, 99),
                                .drop_row = true};
        save("apply_remote_fuzz", "push-ack", body(protocol::PushAck{3, {put_back, drop}}));
        put_back.current.front().row = s.candidates[1];
        save("apply_remote_fuzz", "push-ack-other-row", body(protocol::PushAck{2, {put_back}}));
    }
    save("apply_remote_fuzz", "welcome", body(protocol::Welcome{.version = 1, .server_id = server_origin}));

    // ---- frame_fuzz: bytes as they arrive on a connection
    const protocol::Push seed_push{s.entries};
    const protocol::PullBatch batch{
        with_origin(changes_of(by_user[2]), server_origin), "\x07", true, {{"group", {s.candidates[1]}}}, 12};
    save("frame_fuzz", "hello",
         framed(protocol::Hello{{protocol::kVersion}, admin, "token", schema_version(), "app/1", "\x03"}));
    save("frame_fuzz", "push-seed", framed(seed_push));
    for (std::size_t u = 0; u < users.size(); ++u)
        save("frame_fuzz", std::string("push-") + names[u], framed(protocol::Push{by_user[u]}));
    save("frame_fuzz", "pull", framed(protocol::Pull{"\x05", 100, true}));
    save("frame_fuzz", "ping-pong", framed(protocol::Ping{42}) + framed(protocol::ServerMessage{protocol::Pong{42}}));
    save("frame_fuzz", "welcome",
         framed(protocol::Welcome{1, server_origin, 123456, "coord-1", {"coordinator"}, {}, 9, true, 99}));
    save("frame_fuzz", "push-ack", framed(protocol::PushAck{5, {{4, protocol::ErrorCode::permission_denied, "no"}}}));
    save("frame_fuzz", "pull-batch", framed(batch));
    save("frame_fuzz", "error", framed(protocol::ErrorMessage{protocol::ErrorCode::rate_limited, "slow down", 1500}));
    save("frame_fuzz", "conversation",
         framed(protocol::Hello{{protocol::kVersion}, admin, "t", 1, "a", ""}) + framed(protocol::Push{by_user[3]}) +
             framed(protocol::Pull{"", 10, false}) + framed(protocol::Ping{1}));
    save("frame_fuzz", "too-large", "\x80\x80\x80\x08");
    save("frame_fuzz", "long-varint", std::string(11, '\xff'));
    save("frame_fuzz", "empty-body", protocol::frame(""));
    std::printf("corpus written to %s\n", g_root.c_str());
    return 0;
}
