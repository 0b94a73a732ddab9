// Writes the fuzz targets' seed corpus, corpus/<target>/<name>, from valid
// messages, a few refused ones, and values at and beyond the limits of every
// typed field of the schema table: run it again when the protocol or the
// schema table changes. Inputs the fuzzers found sit beside these under
// their own names (libFuzzer's hashes) and are kept.
//   fuzz_make_corpus <source>/tests/fuzz/corpus
#include "fuzz/fuzz_world.hpp"
#include "model/validate.hpp"
#include "protocol/frame.hpp"

#include <lindra/schema.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

using namespace lindra;
using protocol::Entry;

namespace {

std::filesystem::path g_root;
constexpr std::size_t kMaxChanges = 1'000;  // as frame_fuzz decodes

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

// A Hello that opens a new connection as user `user` (fuzz::kUserToken).
std::string connect(std::size_t user, const Id& device, std::string cursor = {}, std::int64_t acked_seq = 0) {
    return framed(protocol::Hello{.versions = {protocol::kVersion},
                                  .device = device,
                                  .token = std::string(fuzz::kUserToken) + std::to_string(user),
                                  .schema_version = schema_version(),
                                  .app = "lindra-fuzz/1",
                                  .cursor = std::move(cursor),
                                  .acked_seq = acked_seq});
}

// The `back`-th latest cursor the server handed the device (fuzz::kHandedCursor).
std::string handed(std::size_t back = 1) {
    return std::string(back, fuzz::kHandedCursor);
}

// ---- values at the limits of every typed field, from the schema table

// A value of `f` at or beyond its limits, and whether the field takes it.
struct Limit {
    Value value;
    bool valid;
};

std::vector<Limit> limits_of(const EntityDef& e, const FieldDef& f) {
    std::vector<Value> candidates = {Value{}};
    auto numbers = [&](std::initializer_list<std::int64_t> ns) {
        for (const std::int64_t n : ns)
            if (std::find(candidates.begin(), candidates.end(), Value{n}) == candidates.end()) candidates.push_back(n);
    };
    auto text = [](std::int64_t code_points) {
        std::string out;
        for (std::int64_t i = 0; i < code_points; ++i) out += "\u00f8";  // two bytes, one code point
        return out;
    };
    switch (f.type) {
        case FieldType::integer:
        case FieldType::boolean:
        case FieldType::timestamp:
            numbers({f.min, f.max, f.min == INT64_MIN ? f.min : f.min - 1, f.max == INT64_MAX ? f.max : f.max + 1,
                     INT64_MIN, INT64_MAX});
            break;
        case FieldType::progress: {
            const int last = static_cast<int>(f.values.size()) - 1;
            numbers({progress_value(0, 0), progress_value(f.max, last), progress_value(f.max + 1, 0),
                     progress_value(0, last + 1), -1, INT64_MIN, INT64_MAX});
            break;
        }
        case FieldType::enumeration:  // an index outside the list: with_enum_index()
            candidates.emplace_back(std::string(f.values.front()));
            candidates.emplace_back(std::string(f.values.back()));
            break;
        case FieldType::text:
            for (auto v : {std::string(), text(f.max), text(f.max + 1), std::string("a\0b", 3)})
                candidates.emplace_back(std::move(v));
            break;
        case FieldType::date:
            for (const char* v : {"0000-01-01", "9999-12-31", "2024-02-29", "2026-02-30", "2026-13-01", ""})
                candidates.emplace_back(std::string(v));
            break;
        case FieldType::ref:  // an id has no limits; only "no value"
            break;
    }
    std::vector<Limit> out;
    for (auto& v : candidates) {
        bool valid = true;
        try {
            model::validate(e, f, v);
        } catch (const Error&) {
            valid = false;
        }
        out.push_back({std::move(v), valid});
    }
    return out;
}

// A row of `e` the seed holds, or a new one.
Id row_of(const EntityDef& e) {
    for (const Entry& entry : fuzz::seed().entries)
        if (entry.changes.front().entity == e.tag) return entry.changes.front().row;
    return fuzz::fixed_id(7, e.tag);
}

// One change of `f` to `row` per value, each its own write at its own hlc.
std::vector<Change> changes_at_limits(const EntityDef& e, const FieldDef& f, const Id& row,
                                      const std::vector<Limit>& limits, const Id& origin) {
    std::vector<Change> out;
    std::uint64_t hlc = std::uint64_t(fuzz::kNowMs) << 16;
    for (const Limit& l : limits) out.push_back({e.tag, row, f.tag, l.value, ++hlc, origin});
    return out;
}

std::vector<Entry> entries_of(const std::vector<Change>& changes, std::int64_t first_seq) {
    std::vector<Entry> out;
    for (const Change& c : changes) out.push_back({first_seq++, {c}});
    return out;
}

// `body`, a message with one enum value whose index is `index`, with that
// index set to `bad` (one byte for another: protobuf's packed sint64
// `ints`, ChangeGroup field 7, holding that value alone). Checked: `decode`
// must refuse the result for its enum index.
template <class Decode>
std::string with_enum_index(const std::string& body, int index, std::int64_t bad, Decode decode) {
    if (index < 0 || index >= 64 || bad < -64 || bad >= 64) throw std::logic_error("an enum index of two bytes");
    auto zigzag = [](std::int64_t v) { return static_cast<char>((static_cast<std::uint64_t>(v) << 1) ^ (v >> 63)); };
    const std::string ints = std::string("\x3a\x01") + zigzag(index);
    for (auto at = body.find(ints); at != std::string::npos; at = body.find(ints, at + 1)) {
        std::string patched = body;
        patched[at + 2] = zigzag(bad);
        try {
            decode(std::span(reinterpret_cast<const std::uint8_t*>(patched.data()), patched.size()));
        } catch (const protocol::ProtocolError& e) {
            if (std::string_view(e.what()).find("enum index") != std::string_view::npos) return patched;
        }
    }
    throw std::logic_error("no enum index " + std::to_string(index) + " to change in the message");
}

// Decodes `bytes` as `decode` would, or throws: a seed meant to be valid must be.
template <class Decode>
void require_decodes(const std::string& what, const std::string& bytes, Decode decode) {
    try {
        decode(std::span(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
    } catch (const protocol::ProtocolError& e) {
        throw std::logic_error("the seed " + what + " does not decode: " + e.what());
    }
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
        // Rows whose identity is wrong: a derived id that is not its keys', a
        // new row without one of its keys, a reflection moved to another group.
        auto as_admin = [&](std::vector<Entry> entries) {
            for (Entry& e : entries)
                for (Change& c : e.changes) c.origin = admin;
            return std::string(1, 0) + framed(protocol::Push{entries});
        };
        auto not_its_keys = by_user[3];
        for (Change& c : not_its_keys.front().changes) c.row = fuzz::fixed_id(7, 1);
        save("server_session_fuzz", "admin-row-not-its-keys", as_admin(not_its_keys));
        auto keyless = by_user[1];
        const std::uint16_t person_key = find_entity("membership")->field("person_id")->tag;
        for (Entry& e : keyless)
            if (e.changes.front().entity == find_entity("membership")->tag)
                std::erase_if(e.changes, [&](const Change& c) { return c.field == person_key; });
        save("server_session_fuzz", "admin-row-without-a-key", as_admin(keyless));
        auto moved = s.entries;
        change_of(moved, "reflection", "group_id").value = fuzz::fixed_id(9, 1);
        save("server_session_fuzz", "admin-moves-a-reflection", as_admin(moved));
        save("server_session_fuzz", "admin-garbage", std::string(1, 0) + protocol::frame("\x12\x07garbage"));
        save("server_session_fuzz", "admin-frame-too-large", std::string(1, 0) + std::string("\x80\x80\x80\x01"));
        save("server_session_fuzz", "admin-server-message",
             std::string(1, 0) + framed(protocol::ServerMessage{protocol::Pong{1}}));
    }
    {
        // Values at and beyond every typed field's limits, one write each,
        // pushed by an admin (whom no access rule stops) to a row the store
        // holds; an enum index outside its list comes last, in a Push of
        // its own, which the decoder refuses.
        const auto decode = [&](auto bytes) { return protocol::decode_client(bytes, admin, 10'000); };
        for (const EntityDef& e : entities())
            for (const FieldDef& f : e.fields) {
                const auto limits = limits_of(e, f);
                const Id row = row_of(e);
                const auto changes = changes_at_limits(e, f, row, limits, admin);
                std::string input = std::string(1, 0) + framed(protocol::Push{entries_of(changes, 1)});
                if (f.type == FieldType::enumeration) {
                    const std::int64_t seq = static_cast<std::int64_t>(changes.size()) + 1;
                    const Change bad{e.tag, row, f.tag, std::string(f.values.front()), changes.back().hlc + 1, admin};
                    const std::string body = protocol::encode(protocol::ClientMessage{protocol::Push{{{seq, {bad}}}}});
                    input +=
                        protocol::frame(with_enum_index(body, 0, static_cast<std::int64_t>(f.values.size()), decode));
                }
                save("server_session_fuzz", "limits-" + std::string(e.name) + "." + std::string(f.name), input);
            }
        // The case: a candidate pushes a total of her own time at
        // the limits, to her progress row that holds 600 s from another device.
        const EntityDef& progress = *find_entity("module_progress");
        const FieldDef& time = *progress.field("time_spent_s");
        const Id own = Id::derive("module_progress", {s.candidates[0], s.modules[0], s.group});
        std::vector<Limit> totals;
        for (const std::int64_t t : {INT64_MAX, INT64_MIN, time.max + 1, time.max})
            totals.push_back({t, t == time.max});
        save("server_session_fuzz", "candidate-time-spent-limits",
             std::string(1, 3) + framed(protocol::Push{
                                     entries_of(changes_at_limits(progress, time, own, totals, users[3].device), 1)}));
    }
    {
        // Several connections per input, reusing the cursors the server
        // handed out: scope loss and purges, refusals that refill a scope,
        // backfill of a scope gained again, a second tablet, stale cursors.
        const Id& candidate = users[3].device;
        const Id& coordinator = users[1].device;
        // The coordinator withdraws Ola, adds her again, and withdraws her again.
        const auto membership = fuzz::writes(
            [&](Writes& w) {
                w.withdraw_member(s.group, s.candidates[0]);
                w.add_member(s.group, s.candidates[0], MemberRole::candidate);
                w.withdraw_member(s.group, s.candidates[0]);
            },
            coordinator, rename);
        const protocol::Push withdraw{{membership[0]}}, readd{{membership[1]}}, withdraw_again{{membership[2]}};
        // What Ola writes after she was withdrawn, to rows that exist.
        const auto late = fuzz::writes(
            [&](Writes& w) {
                w.add_time_spent(s.candidates[0], s.modules[0], s.group, 60);
                w.write_reflection(s.candidates[0], s.group, s.modules[1], "Written after I left.");
            },
            candidate, rename);
        const protocol::Pull pull{handed(), 200, false};
        save("server_session_fuzz", "candidate-withdrawn-and-back",
             std::string(1, 3) + framed(protocol::Pull{"", 200, false}) + connect(1, coordinator) + framed(withdraw) +
                 connect(3, candidate, handed()) + framed(pull) + framed(protocol::Push{late}) + framed(pull) +
                 connect(1, coordinator) + framed(readd) + connect(3, candidate, handed()) + framed(pull));
        save("server_session_fuzz", "mentor-loses-a-candidate",
             std::string(1, 2) + framed(protocol::Pull{"", 200, false}) + connect(1, coordinator) + framed(withdraw) +
                 connect(2, users[2].device, handed()) + framed(pull) + framed(protocol::Pull{handed(2), 200, false}) +
                 connect(1, coordinator) + framed(readd) + connect(2, users[2].device) + framed(pull));
        // Withdrawn again while the group's past is still coming back to her, five rows a pull.
        save("server_session_fuzz", "candidate-backfill-cut-short",
             std::string(1, 3) + framed(protocol::Pull{"", 200, false}) + connect(1, coordinator) + framed(withdraw) +
                 connect(3, candidate) + framed(pull) + connect(1, coordinator) + framed(readd) +
                 connect(3, candidate) + framed(protocol::Pull{handed(), 5, false}) + connect(1, coordinator) +
                 framed(withdraw_again) + connect(3, candidate) + framed(protocol::Pull{handed(), 5, false}));
        // Nothing new since its last pull: the Welcome says so.
        save("server_session_fuzz", "candidate-reconnects-at-head",
             std::string(1, 3) + framed(protocol::Pull{"", 200, false}) + connect(3, candidate, handed()) +
                 framed(pull));
        const Id second_tablet = fuzz::fixed_id(2, 14);
        save("server_session_fuzz", "candidate-second-tablet",
             std::string(1, 3) + framed(protocol::Push{by_user[3]}) + connect(3, second_tablet) +
                 framed(protocol::Pull{"", 5, false}) + framed(protocol::Pull{handed(), 5, false}) +
                 framed(protocol::Pull{handed(), 5, false}) + connect(3, candidate) +
                 framed(protocol::Pull{handed(), 100, true}));
        save("server_session_fuzz", "device-of-another-user",
             std::string(1, 1) + framed(protocol::Push{by_user[1]}) + connect(3, coordinator) + connect(3, candidate) +
                 framed(protocol::Pull{"", 100, false}));
        // A refusal the device says it heard is forgotten: its retry is acknowledged, not refused.
        save("server_session_fuzz", "candidate-refusal-heard",
             std::string(1, 3) + framed(protocol::Push{denied_candidate}) +
                 connect(3, candidate, {}, denied_candidate.back().seq) + framed(protocol::Push{denied_candidate}));
        save("server_session_fuzz", "admin-stale-cursors",
             std::string(1, 0) + framed(protocol::Pull{"", 10, false}) + framed(protocol::Pull{handed(), 10, false}) +
                 framed(protocol::Pull{handed(2), 10, false}) + framed(protocol::Pull{handed(3), 10, true}));
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
    std::string push_ack;  // a PushAck as a server sends one: refused entries with their rows' state, or a drop
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
        push_ack = body(protocol::PushAck{3, {put_back, drop}});
        save("apply_remote_fuzz", "push-ack", push_ack);
        put_back.current.front().row = s.candidates[1];
        save("apply_remote_fuzz", "push-ack-other-row", body(protocol::PushAck{2, {put_back}}));
    }
    save("apply_remote_fuzz", "welcome", body(protocol::Welcome{.version = 1, .server_id = server_origin}));
    {
        // Values at and beyond every typed field's limits, each from its own
        // origin, to a row the replica holds: those the field takes; then
        // with those it refuses after them (the batch is refused whole);
        // then an enum index outside its list.
        const auto decode = [](auto bytes) { return protocol::decode_server(bytes, 10'000); };
        for (const EntityDef& e : entities())
            for (const FieldDef& f : e.fields) {
                std::vector<Change> valid, invalid;
                std::uint64_t hlc = std::uint64_t(fuzz::kNowMs) << 16;
                std::uint16_t origin = 20;
                for (const Limit& l : limits_of(e, f))
                    (l.valid ? valid : invalid)
                        .push_back({e.tag, row_of(e), f.tag, l.value, ++hlc, fuzz::fixed_id(2, origin++)});
                const std::string name = std::string(e.name) + "." + std::string(f.name);
                save("apply_remote_fuzz", "limits-" + name, body(protocol::PullBatch{valid, "\x30", false, {}, 0}));
                if (!invalid.empty()) {
                    auto all = valid;
                    all.insert(all.end(), invalid.begin(), invalid.end());
                    save("apply_remote_fuzz", "beyond-" + name, body(protocol::PullBatch{all, "\x30", false, {}, 0}));
                }
                if (f.type == FieldType::enumeration) {
                    Change c = valid.back();
                    c.value = std::string(f.values.front());
                    save("apply_remote_fuzz", "bad-index-" + name,
                         with_enum_index(body(protocol::PullBatch{{c}, "\x30", false, {}, 0}), 0,
                                         static_cast<std::int64_t>(f.values.size()), decode));
                }
            }
    }
    {
        // A refusal of write 1 of the replica's (fuzz::unpushed_writes) while
        // write 4, to the same row, is still pending: the row goes back to the
        // server's state (or, if the server has none, to no values) with
        // write 4 on top.
        const auto pending = fuzz::writes(fuzz::unpushed_writes, admin, rename);
        const Entry& first = pending.front();
        const EntityDef& e = *find_entity(first.changes.front().entity);
        const std::uint16_t score = e.field("best_score")->tag;
        const auto& last = pending.back().changes;
        if (last.front().row != first.changes.front().row ||
            std::none_of(last.begin(), last.end(), [&](const Change& c) { return c.field == score; }))
            throw std::logic_error("the replica's last unpushed write is not a score for the row of its first");
        protocol::Rejected refused{.seq = first.seq,
                                   .code = protocol::ErrorCode::permission_denied,
                                   .reason = "not yours",
                                   .entity = e.tag,
                                   .row = first.changes.front().row,
                                   .drop_row = true};
        for (const Change& c : first.changes) refused.fields.push_back(c.field);
        save("apply_remote_fuzz", "push-ack-below-pending-dropped", body(protocol::PushAck{first.seq, {refused}}));
        refused.drop_row = false;
        refused.current = first.changes;
        for (Change& c : refused.current) {
            c.origin = server_origin;
            c.hlc = std::uint64_t(fuzz::kSeedMs) << 16;
            if (c.field == score) c.value = std::int64_t{30};  // below write 4's 60, which stays on top
        }
        save("apply_remote_fuzz", "push-ack-below-pending", body(protocol::PushAck{first.seq, {refused}}));
    }

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
    require_decodes("push-ack", push_ack, [](auto b) { return protocol::decode_server(b, kMaxChanges); });
    save("frame_fuzz", "push-ack", protocol::frame(push_ack));
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
