// The wire protocol: every message survives encode/decode, ChangeSets stay
// compact, and no input makes a decoder do anything but decode or throw
// ProtocolError (DESIGN §5: bad input gets an error frame, never a crash).
#include "protocol/frame.hpp"
#include "protocol/messages.hpp"
#include "replica/hlc.hpp"

#include <lindra/change.hpp>
#include <lindra/id.hpp>
#include <lindra/schema.hpp>

#include <catch2/catch.hpp>

#include <cstdint>
#include <functional>
#include <iostream>
#include <optional>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

using lindra::Change;
using lindra::Id;
using lindra::Value;
using lindra::ScopeKind;
using lindra::replica::hlc_make;
using namespace lindra::protocol;

namespace Catch {
template <>
struct StringMaker<ErrorCode> {
    static std::string convert(ErrorCode code) { return std::string(to_string(code)); }
};
template <>
struct StringMaker<std::optional<ErrorCode>> {
    static std::string convert(const std::optional<ErrorCode>& code) {
        return code ? std::string(to_string(*code)) : "decoded";
    }
};
}  // namespace Catch

namespace {

constexpr std::size_t kNoLimit = SIZE_MAX;

// ---- building messages ----------------------------------------------------

// Deterministic "random" ids, so a failing run replays.
Id make_id(std::mt19937_64& rng) {
    Id id;
    for (auto& b : id.bytes) b = static_cast<std::uint8_t>(rng());
    id.bytes[6] = static_cast<std::uint8_t>((id.bytes[6] & 0x0F) | 0x40);
    return id;
}

std::mt19937_64 id_rng(42);
const Id kDevice = make_id(id_rng);
const Id kRow = make_id(id_rng);
const Id kServer = make_id(id_rng);
const Id kOtherDevice = make_id(id_rng);
const std::uint64_t kHlc = hlc_make(1'790'000'000'000, 0);  // early 2026

std::uint16_t entity_tag(std::string_view entity) {
    return lindra::find_entity(entity)->tag;
}

std::uint16_t field_tag(std::string_view entity, std::string_view field) {
    return lindra::find_entity(entity)->field(field)->tag;
}

Change change(std::string_view entity, const Id& row, std::string_view field, Value value, std::uint64_t hlc,
              const Id& origin = kDevice) {
    return {entity_tag(entity), row, field_tag(entity, field), std::move(value), hlc, origin};
}

// One write: the fields of one row at one hlc.
std::vector<Change> write(std::string_view entity, const Id& row, std::uint64_t hlc,
                          std::vector<std::pair<std::string_view, Value>> fields, const Id& origin = kDevice) {
    std::vector<Change> changes;
    for (auto& [field, value] : fields) changes.push_back(change(entity, row, field, std::move(value), hlc, origin));
    return changes;
}

std::span<const std::uint8_t> as_bytes(const std::string& body) {
    return {reinterpret_cast<const std::uint8_t*>(body.data()), body.size()};
}

std::string bytes_of(const Id& id) {
    return {reinterpret_cast<const char*>(id.bytes.data()), id.bytes.size()};
}

bool carries(const std::string& body, const Id& id) {
    return body.find(bytes_of(id)) != std::string::npos;
}

template <class T>
T client_round_trip(const T& message, const Id& device = kDevice) {
    const std::string body = encode(ClientMessage{message});
    const ClientMessage decoded = decode_client(as_bytes(body), device, kNoLimit);
    REQUIRE(std::holds_alternative<T>(decoded));
    return std::get<T>(decoded);
}

template <class T>
T server_round_trip(const T& message) {
    const std::string body = encode(ServerMessage{message});
    const ServerMessage decoded = decode_server(as_bytes(body), kNoLimit);
    REQUIRE(std::holds_alternative<T>(decoded));
    return std::get<T>(decoded);
}

void check_same(const Push& got, const Push& want) {
    REQUIRE(got.entries.size() == want.entries.size());
    for (std::size_t i = 0; i < want.entries.size(); ++i) {
        INFO("entry " << i);
        CHECK(got.entries[i].seq == want.entries[i].seq);
        CHECK(got.entries[i].changes == want.entries[i].changes);
    }
}

// The code of the ProtocolError decoding `body` throws; nullopt if it decodes.
std::optional<ErrorCode> client_refusal(const std::string& body) {
    try {
        decode_client(as_bytes(body), kDevice, kNoLimit);
        return std::nullopt;
    } catch (const ProtocolError& e) {
        return e.code();
    }
}

std::optional<ErrorCode> server_refusal(const std::string& body) {
    try {
        decode_server(as_bytes(body), kNoLimit);
        return std::nullopt;
    } catch (const ProtocolError& e) {
        return e.code();
    }
}

// Decodes `body` as both kinds of message and counts the refusals.
// ProtocolError is the only acceptable failure: anything else escapes and
// fails the test.
int decode_or_refuse(std::span<const std::uint8_t> body) {
    int refused = 0;
    try {
        decode_client(body, kDevice, kNoLimit);
    } catch (const ProtocolError&) {
        ++refused;
    }
    try {
        decode_server(body, kNoLimit);
    } catch (const ProtocolError&) {
        ++refused;
    }
    return refused;
}

// ---- hand-written protobuf, for messages the encoder never produces -------

class Wire {
  public:
    Wire& u64(int field, std::uint64_t v) {
        varint(static_cast<std::uint64_t>(field) << 3);
        varint(v);
        return *this;
    }
    Wire& s64(int field, std::int64_t v) {
        return u64(field, (static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63));
    }
    Wire& bytes(int field, std::string_view b) {
        varint(static_cast<std::uint64_t>(field) << 3 | 2);
        varint(b.size());
        out_.append(b);
        return *this;
    }
    Wire& message(int field, const Wire& m) { return bytes(field, m.str()); }
    const std::string& str() const noexcept { return out_; }

  private:
    void varint(std::uint64_t v) {
        for (; v >= 0x80; v >>= 7) out_.push_back(static_cast<char>((v & 0x7F) | 0x80));
        out_.push_back(static_cast<char>(v));
    }
    std::string out_;
};

// A ChangeGroup field by field; the defaults are one valid write of a person
// (display_name, profession, organization_id) against the id table of SetSpec.
struct GroupSpec {
    std::uint64_t entity = 2;
    std::uint64_t row = 1;
    std::int64_t hlc_delta = static_cast<std::int64_t>(kHlc);
    std::uint64_t origin = 0;
    std::int64_t seq_delta = 5;
    std::vector<std::uint64_t> fields = {2, 3, 4};
    std::vector<std::int64_t> ints = {1};
    std::vector<std::string> texts = {"Ola"};
    std::vector<std::uint64_t> refs = {1};
    std::vector<std::uint64_t> nulls = {};

    Wire wire() const {
        Wire w;
        w.u64(1, entity).u64(2, row).s64(3, hlc_delta).u64(4, origin).s64(5, seq_delta);
        for (auto f : fields) w.u64(6, f);
        for (auto i : ints) w.s64(7, i);
        for (const auto& t : texts) w.bytes(8, t);
        for (auto r : refs) w.u64(9, r);
        for (auto n : nulls) w.u64(10, n);
        return w;
    }
};

std::mt19937_64 spec_rng(7);
const Id kSpecRow = make_id(spec_rng);
const Id kSpecOrganization = make_id(spec_rng);

struct SetSpec {
    std::vector<std::string> ids = {bytes_of(kSpecRow), bytes_of(kSpecOrganization)};
    std::vector<GroupSpec> groups = {GroupSpec{}};

    Wire wire() const {
        Wire w;
        for (const auto& id : ids) w.bytes(1, id);
        for (const auto& g : groups) w.message(2, g.wire());
        return w;
    }
};

std::string push_body(const SetSpec& set, std::int64_t first_seq = 5, std::int64_t last_seq = 5) {
    return Wire()
        .message(2, Wire()
                        .u64(1, static_cast<std::uint64_t>(first_seq))
                        .u64(2, static_cast<std::uint64_t>(last_seq))
                        .message(3, set.wire()))
        .str();
}

std::string pull_batch_body(const SetSpec& set) {
    return Wire().message(3, Wire().message(1, set.wire())).str();
}

// ---- realistic content ----------------------------------------------------

struct Sample {
    Push push;
    PullBatch batch;
    Welcome welcome;
};

Sample sample() {
    std::mt19937_64 rng(1);
    const Id org = make_id(rng), course = make_id(rng), module = make_id(rng), group = make_id(rng);
    const Id person = make_id(rng), gathering = make_id(rng), reflection = make_id(rng);
    const Id membership = Id::derive("membership", {group, person});
    const Id progress = Id::derive("module_progress", {person, module, group});
    const Id attendance = Id::derive("attendance", {gathering, person});
    Sample s;

    std::uint64_t hlc = kHlc;
    auto next = [&](std::uint64_t step) { return hlc += step; };
    s.push.entries = {
        {7, write("person", person, next(1),
                  {{"display_name", std::string("Kåre Ødegård")},
                   {"profession", std::string("health_care_worker")},
                   {"organization_id", org}})},
        {8, write("membership", membership, next(1 << 16),
                  {{"group_id", group},
                   {"person_id", person},
                   {"role", std::string("candidate")},
                   {"status", std::string("active")}})},
        {10, write("module_progress", progress, next(3 << 16),
                   {{"person_id", person},
                    {"module_id", module},
                    {"group_id", group},
                    {"progress", lindra::progress_value(1, 1)}})},
        {11, write("module_progress", progress, next(90'000ull << 16), {{"time_spent_s", std::int64_t{900}}})},
        // Null fields travel apart from the others, so a write lists them last.
        {12, write("reflection", reflection, next(1),
                   {{"person_id", person},
                    {"group_id", group},
                    {"module_id", module},
                    {"text", std::string("Jeg lærte å lytte — også når det er vanskelig. ✓")},
                    {"gathering_id", {}}})},
    };

    // Three origins, clocks out of order, every field type, nulls, a repeated
    // (entity, row, hlc, origin) that is not consecutive.
    const std::uint64_t t0 = kHlc + (5'000ull << 16);
    auto add = [&](std::vector<Change> changes) {
        s.batch.changes.insert(s.batch.changes.end(), changes.begin(), changes.end());
    };
    add(write("organization", org, t0 - 50,
              {{"name", std::string("Fjellvik kommune")}, {"kind", std::string("municipality")}, {"parent_id", {}}},
              kServer));
    add(write("course", course, t0 - 40,
              {{"title", std::string("Palliasjon — grunnkurs")},
               {"version", std::string("2026.1")},
               {"language", std::string("nb")},
               {"required_gatherings", std::int64_t{4}}},
              kServer));
    add(write("module", module, t0 - 30,
              {{"course_id", course},
               {"ordinal", std::int64_t{1}},
               {"title", std::string("M1: Smerte")},
               {"kind", std::string("elearning")},
               {"required", std::int64_t{1}},
               {"pass_score", std::int64_t{80}}},
              kServer));
    add(write("mentor_group", group, t0,
              {{"course_id", course},
               {"organization_id", org},
               {"name", std::string("Gruppe 1")},
               {"starts_on", std::string("2026-09-01")},
               {"ends_on", std::string("2026-12-15")},
               {"status", std::string("active")}},
              kOtherDevice));
    add(write("membership", membership, t0 + 7,
              {{"group_id", group},
               {"person_id", person},
               {"role", std::string("candidate")},
               {"status", std::string("registered")}},
              kOtherDevice));
    add(write("gathering", gathering, t0 + 3,
              {{"group_id", group},
               {"ordinal", std::int64_t{1}},
               {"title", std::string("Samling 1")},
               {"scheduled_at", std::int64_t{1'790'100'000'000}},
               {"mode", std::string("digital")},
               {"status", std::string("held")},
               {"module_id", {}}},
              kOtherDevice));
    add(write("attendance", attendance, t0 + 9,
              {{"gathering_id", gathering},
               {"person_id", person},
               {"group_id", group},
               {"status", std::string("excused")},
               {"note", {}}},
              kOtherDevice));
    add(write("module_progress", progress, t0 - 1000,
              {{"person_id", person},
               {"module_id", module},
               {"group_id", group},
               {"progress", lindra::progress_value(2, 3)},
               {"best_score", std::int64_t{95}},
               {"time_spent_s", std::int64_t{1'200}},
               {"first_completed_at", std::int64_t{1'789'999'000'000}}}));
    add(write("organization", org, t0 - 50, {{"deleted", std::int64_t{0}}}, kServer));
    s.batch.next_cursor = std::string("\x00\x01pos:42\xff", 9);
    s.batch.has_more = true;
    s.batch.purges = {{"group:" + group.to_string(), {}, ScopeKind::group, group, {}},
                      {"", {reflection, attendance}, ScopeKind::personal, group, org},
                      {"from an older server", {reflection}}};
    s.batch.remaining = 12'345;

    s.welcome = {.version = kVersion,
                 .server_id = kServer,
                 .server_hlc = kHlc + 77,
                 .user = "mia.mentor@fjellvik.kommune.no",
                 .roles = {"mentor", "candidate"},
                 .limits = {.max_frame_bytes = 1 << 20, .max_push_changes = 500, .max_pull_changes = 2'000},
                 .highest_seq = 12,
                 .pull_needed = true,
                 .highest_hlc = kHlc - 99,
                 .pull_remaining = 150'000};
    return s;
}

}  // namespace

// ---- round trips ----------------------------------------------------------

TEST_CASE("Hello, Pull and Ping round trip") {
    const Hello hello{.versions = {1, 2},
                      .device = kDevice,
                      .token = "eyJhbGciOiJFZERTQSJ9.payload.signature",
                      .schema_version = 1,
                      .app = "lindra-tablet/0.1.0",
                      .cursor = std::string("\x00\x7f\x80\xff", 4)};
    const Hello h = client_round_trip(hello);
    CHECK(h.versions == hello.versions);
    CHECK(h.device == hello.device);
    CHECK(h.token == hello.token);
    CHECK(h.schema_version == hello.schema_version);
    CHECK(h.app == hello.app);
    CHECK(h.cursor == hello.cursor);

    const Pull pull{.cursor = std::string("\xff\x00opaque", 8), .max_changes = 2'000, .include_own = true};
    const Pull p = client_round_trip(pull);
    CHECK(p.cursor == pull.cursor);
    CHECK(p.max_changes == pull.max_changes);
    CHECK(p.include_own == pull.include_own);

    CHECK(client_round_trip(Ping{0xFEEDFACECAFEBEEF}).nonce == 0xFEEDFACECAFEBEEF);
}

TEST_CASE("Welcome, PushAck, Pong and Error round trip") {
    const Welcome welcome = sample().welcome;
    const Welcome w = server_round_trip(welcome);
    CHECK(w.version == welcome.version);
    CHECK(w.server_id == welcome.server_id);
    CHECK(w.server_hlc == welcome.server_hlc);
    CHECK(w.user == welcome.user);
    CHECK(w.roles == welcome.roles);
    CHECK(w.limits.max_frame_bytes == welcome.limits.max_frame_bytes);
    CHECK(w.limits.max_push_changes == welcome.limits.max_push_changes);
    CHECK(w.limits.max_pull_changes == welcome.limits.max_pull_changes);
    CHECK(w.highest_seq == welcome.highest_seq);
    CHECK(w.pull_needed == welcome.pull_needed);
    CHECK(w.highest_hlc == welcome.highest_hlc);
    CHECK(w.pull_remaining == welcome.pull_remaining);

    const PushAck ack{.acked_seq = 42,
                      .rejected = {{17, ErrorCode::permission_denied, "only a mentor of the group may write its gatherings",
                                    7, kRow, {7}, {{7, kRow, 7, std::string("held"), 99, kDevice}}, false},
                                   {23, ErrorCode::invalid_argument, "best_score: 150 is outside 0..100", 9, kRow,
                                    {6}, {}, true}}};
    const PushAck a = server_round_trip(ack);
    CHECK(a.acked_seq == ack.acked_seq);
    REQUIRE(a.rejected.size() == ack.rejected.size());
    for (std::size_t i = 0; i < ack.rejected.size(); ++i) {
        CHECK(a.rejected[i].seq == ack.rejected[i].seq);
        CHECK(a.rejected[i].code == ack.rejected[i].code);
        CHECK(a.rejected[i].reason == ack.rejected[i].reason);
        CHECK(a.rejected[i].entity == ack.rejected[i].entity);
        CHECK(a.rejected[i].row == ack.rejected[i].row);
        CHECK(a.rejected[i].fields == ack.rejected[i].fields);
        CHECK(a.rejected[i].current == ack.rejected[i].current);
        CHECK(a.rejected[i].drop_row == ack.rejected[i].drop_row);
    }

    CHECK(server_round_trip(Pong{7}).nonce == 7);

    for (const ErrorCode code :
         {ErrorCode::unauthenticated, ErrorCode::permission_denied, ErrorCode::invalid_argument,
          ErrorCode::frame_too_large, ErrorCode::unsupported_version, ErrorCode::rate_limited, ErrorCode::internal}) {
        const ErrorMessage error{.code = code, .message = "slow down", .retry_after_ms = 30'000};
        const ErrorMessage e = server_round_trip(error);
        CHECK(e.code == code);
        CHECK(e.message == error.message);
        CHECK(e.retry_after_ms == error.retry_after_ms);
    }
}

TEST_CASE("a Welcome without limits means lindra's default limits") {
    const auto body = Wire().message(1, Wire().u64(1, 1).bytes(2, bytes_of(kServer))).str();
    const ServerMessage m = decode_server(as_bytes(body), kNoLimit);
    REQUIRE(std::holds_alternative<Welcome>(m));
    const Limits defaults;
    CHECK(std::get<Welcome>(m).limits.max_frame_bytes == defaults.max_frame_bytes);
    CHECK(std::get<Welcome>(m).limits.max_push_changes == defaults.max_push_changes);
    CHECK(std::get<Welcome>(m).limits.max_pull_changes == defaults.max_pull_changes);
}

TEST_CASE("error codes a peer does not know decode as internal") {
    for (const std::uint64_t code : {0ull, 8ull, 1000ull}) {
        INFO("code " << code);
        const auto body = Wire().message(5, Wire().u64(1, code).bytes(2, "?")).str();
        const ServerMessage m = decode_server(as_bytes(body), kNoLimit);
        REQUIRE(std::holds_alternative<ErrorMessage>(m));
        CHECK(std::get<ErrorMessage>(m).code == ErrorCode::internal);
    }
}

TEST_CASE("a Push round trips entry by entry, every origin the device's") {
    const Push push = sample().push;
    check_same(client_round_trip(push), push);

    // The origin is not on the wire: the receiver takes the device that said Hello.
    const Push other = client_round_trip(push, kOtherDevice);
    REQUIRE(other.entries.size() == push.entries.size());
    for (const Entry& e : other.entries)
        for (const Change& c : e.changes) CHECK(c.origin == kOtherDevice);
    CHECK_FALSE(carries(encode(ClientMessage{push}), kDevice));
}

TEST_CASE("a PullBatch with mixed origins, clocks and every field type round trips") {
    const PullBatch batch = sample().batch;
    const PullBatch b = server_round_trip(batch);
    CHECK(b.changes == batch.changes);
    CHECK(b.next_cursor == batch.next_cursor);
    CHECK(b.has_more == batch.has_more);
    CHECK(b.remaining == batch.remaining);
    REQUIRE(b.purges.size() == batch.purges.size());
    for (std::size_t i = 0; i < batch.purges.size(); ++i) {
        CHECK(b.purges[i].scope == batch.purges[i].scope);
        CHECK(b.purges[i].rows == batch.purges[i].rows);
        CHECK(b.purges[i].kind == batch.purges[i].kind);
        CHECK(b.purges[i].group == batch.purges[i].group);
        CHECK(b.purges[i].person == batch.purges[i].person);
    }

    const PullBatch empty = server_round_trip(PullBatch{});
    CHECK(empty.changes.empty());
    CHECK(empty.purges.empty());
    CHECK_FALSE(empty.has_more);
}

TEST_CASE("null fields decode after the valued fields of their write") {
    std::mt19937_64 rng(5);
    const Id row = make_id(rng);
    const auto nulls_first = write("attendance", row, kHlc, {{"note", {}}, {"status", std::string("present")}});
    const PullBatch b = server_round_trip(PullBatch{.changes = nulls_first});
    REQUIRE(b.changes.size() == 2);
    CHECK(b.changes[0] == nulls_first[1]);
    CHECK(b.changes[1] == nulls_first[0]);
}

TEST_CASE("a derived row id stays off the wire; other row ids travel") {
    std::mt19937_64 rng(3);
    const Id group = make_id(rng), person = make_id(rng);
    const Id derived = Id::derive("membership", {group, person});
    auto membership = [&](const Id& row) {
        return Push{{{1, write("membership", row, kHlc,
                               {{"group_id", group},
                                {"person_id", person},
                                {"role", std::string("mentor")},
                                {"status", std::string("active")}})}}};
    };

    const Push omitted = membership(derived);
    const std::string omitted_body = encode(ClientMessage{omitted});
    CHECK_FALSE(carries(omitted_body, derived));
    check_same(client_round_trip(omitted), omitted);

    // A row whose id is not its keys' (the replica will refuse it) keeps its id.
    const Push mismatched = membership(make_id(rng));
    const std::string mismatched_body = encode(ClientMessage{mismatched});
    CHECK(carries(mismatched_body, mismatched.entries[0].changes[0].row));
    CHECK(omitted_body.size() + 16 < mismatched_body.size());
    check_same(client_round_trip(mismatched), mismatched);

    // Without its keys (a later update) a derived row needs its id.
    const Push update{{{2, write("membership", derived, kHlc + 1, {{"status", std::string("withdrawn")}})}}};
    CHECK(carries(encode(ClientMessage{update}), derived));
    check_same(client_round_trip(update), update);

    // A reflection's id is random, whatever fields it carries.
    const Id reflection = make_id(rng);
    const Push reflect{{{3, write("reflection", reflection, kHlc + 2,
                                  {{"person_id", person}, {"group_id", group}, {"text", std::string("...")}})}}};
    CHECK(carries(encode(ClientMessage{reflect}), reflection));
    check_same(client_round_trip(reflect), reflect);

    // The same holds with explicit origins.
    const PullBatch batch{.changes = omitted.entries[0].changes};
    CHECK_FALSE(carries(encode(ServerMessage{batch}), derived));
    CHECK(server_round_trip(batch).changes == batch.changes);
}

TEST_CASE("a Push of 1,000 module completions takes under 60 bytes a write") {
    std::mt19937_64 rng(11);
    std::vector<Id> persons, modules;
    for (int i = 0; i < 50; ++i) persons.push_back(make_id(rng));
    for (int i = 0; i < 20; ++i) modules.push_back(make_id(rng));
    const Id group = make_id(rng);

    // As Writes::complete_module writes them: one person works through all 20
    // modules, then the next; a few milliseconds between writes.
    Push push;
    std::uint64_t hlc = kHlc;
    for (int i = 0; i < 1'000; ++i) {
        const Id& person = persons[static_cast<std::size_t>(i / 20)];
        const Id& module = modules[static_cast<std::size_t>(i % 20)];
        hlc += static_cast<std::uint64_t>(1 + i % 3) << 16;
        const Id row = Id::derive("module_progress", {person, module, group});
        push.entries.push_back(
            {100 + i, write("module_progress", row, hlc,
                            {{"person_id", person},
                             {"module_id", module},
                             {"group_id", group},
                             {"progress", lindra::progress_value(1, 2)},
                             {"first_completed_at", static_cast<std::int64_t>(lindra::replica::hlc_ms(hlc))},
                             {"best_score", std::int64_t{80}},
                             {"time_spent_s", std::int64_t{1'800 + i % 7 * 13}}})});
    }

    const std::string body = encode(ClientMessage{push});
    const double per_write = static_cast<double>(body.size()) / 1'000.0;
    std::cout << "protocol: a Push of 1,000 module completions is " << body.size() << " bytes, " << per_write
              << " bytes a write (id table included)\n";
    CHECK(per_write < 60);
    check_same(client_round_trip(push), push);
}

// ---- bad input ------------------------------------------------------------

TEST_CASE("the hand-written baseline decodes, so each bad case differs from a good one by one thing") {
    const ClientMessage m = decode_client(as_bytes(push_body(SetSpec{})), kDevice, kNoLimit);
    REQUIRE(std::holds_alternative<Push>(m));
    const Push& push = std::get<Push>(m);
    REQUIRE(push.entries.size() == 1);
    CHECK(push.entries[0].seq == 5);
    CHECK(push.entries[0].changes == write("person", kSpecRow, kHlc,
                                           {{"display_name", std::string("Ola")},
                                            {"profession", std::string("health_care_worker")},
                                            {"organization_id", kSpecOrganization}}));

    SetSpec pulled;
    pulled.groups[0].origin = 2;
    const ServerMessage s = decode_server(as_bytes(pull_batch_body(pulled)), kNoLimit);
    REQUIRE(std::holds_alternative<PullBatch>(s));
    REQUIRE(std::get<PullBatch>(s).changes.size() == 3);
    CHECK(std::get<PullBatch>(s).changes[0].origin == kSpecOrganization);
}

TEST_CASE("structurally bad messages are refused as invalid_argument") {
    using Edit = std::function<void(SetSpec&)>;
    auto group = [](std::function<void(GroupSpec&)> edit) { return [edit](SetSpec& s) { edit(s.groups[0]); }; };
    auto two_groups = [](std::int64_t second_seq_delta) {
        return [second_seq_delta](SetSpec& s) {
            GroupSpec second;
            second.hlc_delta = 1;
            second.seq_delta = second_seq_delta;
            s.groups.push_back(second);
        };
    };
    const std::vector<std::pair<const char*, Edit>> push_cases = {
        {"unknown entity tag", group([](GroupSpec& g) { g.entity = 99; })},
        {"entity tag that would alias person in 16 bits", group([](GroupSpec& g) { g.entity = 65536 + 2; })},
        {"unknown field tag", group([](GroupSpec& g) {
             g.fields = {2, 3, 4, 9};
         })},
        {"field tag that would alias in 16 bits", group([](GroupSpec& g) {
             g.fields = {65536 + 2, 3, 4};
         })},
        {"unknown null tag", group([](GroupSpec& g) { g.nulls = {9}; })},
        {"enum index out of range", group([](GroupSpec& g) { g.ints = {4}; })},
        {"negative enum index", group([](GroupSpec& g) { g.ints = {-1}; })},
        {"ref index past the table", group([](GroupSpec& g) { g.refs = {2}; })},
        {"row index past the table", group([](GroupSpec& g) { g.row = 3; })},
        {"row 0 for an entity without derived ids", group([](GroupSpec& g) { g.row = 0; })},
        {"row 0 without the keys to derive it", group([](GroupSpec& g) {
             g.entity = 6;  // membership: group_id, person_id
             g.row = 0;
             g.fields = {2};
             g.ints = {};
             g.texts = {};
             g.refs = {1};
         })},
        {"texts array too short", group([](GroupSpec& g) { g.texts = {}; })},
        {"refs array too short", group([](GroupSpec& g) {
             g.fields = {2, 3, 4, 4};
         })},
        {"leftover ints", group([](GroupSpec& g) {
             g.ints = {1, 2};
         })},
        {"leftover texts", group([](GroupSpec& g) {
             g.texts = {"Ola", "Kari"};
         })},
        {"leftover refs", group([](GroupSpec& g) {
             g.refs = {1, 0};
         })},
        {"a group without fields", group([](GroupSpec& g) {
             g.fields = {};
             g.ints = {};
             g.texts = {};
             g.refs = {};
         })},
        {"explicit origin in a Push", group([](GroupSpec& g) { g.origin = 1; })},
        {"hlc 0", group([](GroupSpec& g) { g.hlc_delta = 0; })},
        {"negative hlc", group([](GroupSpec& g) { g.hlc_delta = -5; })},
        {"an id table entry of 15 bytes", [](SetSpec& s) { s.ids[1].pop_back(); }},
        {"an id table entry of 17 bytes", [](SetSpec& s) { s.ids[0].push_back('x'); }},
        {"an empty Push", [](SetSpec& s) { s.groups.clear(); }},
        {"a decreasing seq", two_groups(-1)},
        {"a repeated seq", two_groups(0)},
    };
    for (const auto& [name, edit] : push_cases) {
        INFO(name);
        SetSpec set;
        edit(set);
        const std::int64_t last = 5 + (set.groups.size() > 1 ? set.groups[1].seq_delta : 0);
        CHECK(client_refusal(push_body(set, 5, last)) == ErrorCode::invalid_argument);
    }

    SECTION("first_seq or last_seq that do not match the groups") {
        SetSpec set;
        two_groups(2)(set);
        CHECK_FALSE(client_refusal(push_body(set, 5, 7)));
        CHECK(client_refusal(push_body(set, 4, 7)) == ErrorCode::invalid_argument);
        CHECK(client_refusal(push_body(set, 5, 6)) == ErrorCode::invalid_argument);
    }

    SECTION("seqs outside 1..2^53") {
        SetSpec set;
        set.groups[0].seq_delta = lindra::protocol::kMaxSeq + 1;
        CHECK(client_refusal(push_body(set, lindra::protocol::kMaxSeq + 1, lindra::protocol::kMaxSeq + 1)) ==
              ErrorCode::invalid_argument);
        set.groups[0].seq_delta = lindra::protocol::kMaxSeq;
        CHECK_FALSE(client_refusal(push_body(set, lindra::protocol::kMaxSeq, lindra::protocol::kMaxSeq)));
        const std::string id16(16, 's');
        const auto welcome = [&](std::uint64_t highest) {
            return Wire().message(1, Wire().u64(1, 1).bytes(2, id16).u64(7, highest)).str();
        };
        CHECK_FALSE(server_refusal(welcome(static_cast<std::uint64_t>(lindra::protocol::kMaxSeq))));
        CHECK(server_refusal(welcome(static_cast<std::uint64_t>(lindra::protocol::kMaxSeq) + 1)) ==
              ErrorCode::invalid_argument);
    }

    SECTION("a hlc that overflows") {
        SetSpec set;
        two_groups(1)(set);
        set.groups[1].hlc_delta = INT64_MAX;
        CHECK(client_refusal(push_body(set, 5, 6)) == ErrorCode::invalid_argument);
    }

    SECTION("PullBatch origins") {
        SetSpec set;
        CHECK(server_refusal(pull_batch_body(set)) == ErrorCode::invalid_argument);  // origin 0
        set.groups[0].origin = 3;
        CHECK(server_refusal(pull_batch_body(set)) == ErrorCode::invalid_argument);  // past the table
        set.groups[0].origin = 2;
        CHECK_FALSE(server_refusal(pull_batch_body(set)));
    }

    SECTION("ids of the wrong size outside the table") {
        const std::string id15(15, 'x');
        CHECK(client_refusal(Wire().message(1, Wire().u64(1, 1).bytes(2, id15)).str()) == ErrorCode::invalid_argument);
        CHECK(client_refusal(Wire().message(1, Wire().u64(1, 1)).str()) == ErrorCode::invalid_argument);
        CHECK(server_refusal(Wire().message(1, Wire().u64(1, 1).bytes(2, id15)).str()) == ErrorCode::invalid_argument);
        const auto purge = Wire().bytes(1, "scope").bytes(2, std::string(16, 'r')).bytes(2, id15);
        CHECK(server_refusal(Wire().message(3, Wire().message(4, purge)).str()) == ErrorCode::invalid_argument);
        const auto ok = Wire().bytes(1, "scope").bytes(2, std::string(16, 'r'));
        for (const int tag : {4, 5}) {
            CHECK(server_refusal(Wire().message(3, Wire().message(4, Wire(ok).bytes(tag, id15))).str()) ==
                  ErrorCode::invalid_argument);
            CHECK_FALSE(server_refusal(Wire().message(3, Wire().message(4, Wire(ok).bytes(tag, std::string(16, 'g')))).str()));
        }
        // A kind from a newer server reads as none.
        CHECK_FALSE(server_refusal(Wire().message(3, Wire().message(4, Wire(ok).u64(3, 99))).str()));
    }

    SECTION("no message in the oneof") {
        CHECK(client_refusal("") == ErrorCode::invalid_argument);
        CHECK(server_refusal("") == ErrorCode::invalid_argument);
        // A kind from a newer protocol is an unknown field to this one.
        const std::string future = Wire().message(15, Wire().u64(1, 1)).str();
        CHECK(client_refusal(future) == ErrorCode::invalid_argument);
        CHECK(server_refusal(future) == ErrorCode::invalid_argument);
    }

    SECTION("bytes that are not protobuf") {
        CHECK(client_refusal("\xff\xff\xff") == ErrorCode::invalid_argument);
        // An end-group tag stops protobuf's parser early, as if the message ended there.
        const std::string ping = encode(ClientMessage{Ping{1}});
        CHECK_FALSE(client_refusal(ping));
        CHECK(client_refusal(ping + "\x0c") == ErrorCode::invalid_argument);
        CHECK(client_refusal(ping + "\x0c" + ping) == ErrorCode::invalid_argument);
        CHECK(server_refusal("GET / HTTP/1.1\r\n\r\n") == ErrorCode::invalid_argument);
        const std::string truncated = push_body(SetSpec{});
        CHECK(client_refusal(truncated.substr(0, truncated.size() - 1)) == ErrorCode::invalid_argument);
    }
}

TEST_CASE("no input makes a decoder throw anything but ProtocolError") {
    const Sample s = sample();
    const std::vector<std::string> valid = {
        encode(ClientMessage{s.push}),
        encode(ServerMessage{s.batch}),
        encode(ServerMessage{s.welcome}),
        encode(ClientMessage{Hello{.versions = {1}, .device = kDevice, .token = "t", .app = "a", .cursor = "c"}}),
        encode(ServerMessage{PushAck{.acked_seq = 3, .rejected = {{2, ErrorCode::rate_limited, "later", 2, kDevice, {2}, {}, true}}}}),
    };

    SECTION("every truncation of a valid message") {
        // Each message is one length-prefixed field at the top, so no strict prefix is a message.
        for (const std::string& body : valid)
            for (std::size_t n = 0; n < body.size(); ++n) CHECK(decode_or_refuse(as_bytes(body).first(n)) == 2);
    }

    SECTION("random bytes") {
        const std::uint64_t seed = 20260115;
        INFO("seed " << seed);
        std::mt19937_64 rng(seed);
        std::string body;
        int refused = 0;
        for (int i = 0; i < 4'000; ++i) {
            body.resize(rng() % 96);
            for (char& c : body) c = static_cast<char>(rng());
            refused += decode_or_refuse(as_bytes(body));
        }
        CHECK(refused > 4'000);
    }

    SECTION("valid messages with a few bytes changed") {
        const std::uint64_t seed = 4242;
        INFO("seed " << seed);
        std::mt19937_64 rng(seed);
        int refused = 0;
        for (int i = 0; i < 4'000; ++i) {
            std::string body = valid[static_cast<std::size_t>(i) % valid.size()];
            for (std::uint64_t n = 1 + rng() % 3; n > 0; --n) body[rng() % body.size()] = static_cast<char>(rng());
            refused += decode_or_refuse(as_bytes(body));
        }
        // Two decoders per body: many refusals, yet some mutants are still valid messages.
        CHECK(refused > 2'000);
        CHECK(refused < 8'000);
    }
}

TEST_CASE("encode refuses what no peer could decode") {
    std::mt19937_64 rng(5);
    const Id row = make_id(rng);
    auto person = [&](std::int64_t seq, std::uint64_t hlc) {
        return Entry{seq, write("person", row, hlc, {{"display_name", std::string("Ola")}})};
    };
    auto refused = [](const Push& push) { CHECK_THROWS_AS(encode(ClientMessage{push}), std::invalid_argument); };
    refused(Push{});
    refused(Push{{Entry{1, {}}}});
    refused(Push{{person(2, kHlc), person(2, kHlc + 1)}});  // seqs must increase
    refused(Push{{person(1, 0)}});                          // hlc 0
    Entry mixed = person(1, kHlc);
    mixed.changes.push_back(change("person", make_id(rng), "display_name", std::string("Kari"), kHlc));
    refused(Push{{mixed}});
    refused(Push{
        {person(1, kHlc), Entry{2, write("person", row, kHlc, {{"display_name", std::string("x")}}, kOtherDevice)}}});
    refused(Push{{Entry{1, write("person", row, kHlc, {{"profession", std::string("astronaut")}})}}});
    refused(Push{{Entry{1, write("person", row, kHlc, {{"display_name", std::int64_t{7}}})}}});
}

// ---- framing --------------------------------------------------------------

TEST_CASE("frame lengths round trip through the header") {
    for (const std::size_t size : {std::size_t{0}, std::size_t{1}, std::size_t{127}, std::size_t{128}, std::size_t{300},
                                   std::size_t{16'383}, std::size_t{16'384}, kDefaultMaxFrame}) {
        INFO("size " << size);
        const std::string body(size, 'b');
        const std::string framed = frame(body);
        const auto header = parse_frame_header(as_bytes(framed), kDefaultMaxFrame);
        REQUIRE(header);
        CHECK(header->body_size == size);
        CHECK(header->header_size + size == framed.size());
        CHECK(framed.substr(header->header_size) == body);
    }
    // The largest 64-bit length still parses: the limit refuses it, not the varint reader.
    const std::string max(9, '\xff');
    const auto header = parse_frame_header(as_bytes(max + '\x01'), SIZE_MAX);
    REQUIRE(header);
    CHECK(header->header_size == 10);
    CHECK(header->body_size == SIZE_MAX);
}

TEST_CASE("a frame header asks for more bytes until its varint ends") {
    CHECK_FALSE(parse_frame_header({}, kDefaultMaxFrame));
    const std::string framed = frame(std::string(300, 'x'));
    CHECK_FALSE(parse_frame_header(as_bytes(framed).first(1), kDefaultMaxFrame));
    CHECK(parse_frame_header(as_bytes(framed).first(2), kDefaultMaxFrame));
    CHECK_FALSE(parse_frame_header(as_bytes(std::string(9, '\x80')), kDefaultMaxFrame));
}

TEST_CASE("a frame header enforces the limit and the varint's length") {
    auto refusal = [](const std::string& bytes, std::size_t max) -> std::optional<ErrorCode> {
        try {
            parse_frame_header(as_bytes(bytes), max);
        } catch (const ProtocolError& e) {
            return e.code();
        }
        return std::nullopt;
    };
    const std::string at_limit = frame(std::string(1'000, 'x'));
    const auto header = parse_frame_header(as_bytes(at_limit), 1'000);
    REQUIRE(header);
    CHECK(header->body_size == 1'000);

    const std::string over = frame(std::string(1'001, 'x'));
    CHECK(refusal(over, 1'000) == ErrorCode::frame_too_large);
    CHECK_THROWS_WITH(parse_frame_header(as_bytes(over), 1'000), Catch::Contains("1001") && Catch::Contains("1000"));

    // A huge length is refused from its header alone, before any body arrives.
    CHECK(refusal(std::string(9, '\xff') + '\x01', kDefaultMaxFrame) == ErrorCode::frame_too_large);

    CHECK(refusal(std::string(10, '\x80') + '\x00', kDefaultMaxFrame) == ErrorCode::invalid_argument);
    CHECK(refusal(std::string(9, '\xff') + '\x02', SIZE_MAX) == ErrorCode::invalid_argument);
}

TEST_CASE("a message with more changes than the limit is refused before it is built") {
    // A push of many writes: counted from the packed arrays, not decoded.
    Push push;
    const Id person = Id::random(), module = Id::random(), group = Id::random();
    for (std::int64_t i = 1; i <= 100; ++i) {
        const Id row = Id::derive("module_progress", {person, module, group});
        const auto hlc = static_cast<std::uint64_t>(i) << 16;
        push.entries.push_back({i, {{9, row, 2, person, hlc, kDevice}, {9, row, 3, module, hlc, kDevice},
                                    {9, row, 4, group, hlc, kDevice}}});
    }
    const auto body = encode(ClientMessage{push});
    CHECK_NOTHROW(decode_client(as_bytes(body), kDevice, 300));
    try {
        decode_client(as_bytes(body), kDevice, 299);
        FAIL("expected a ProtocolError");
    } catch (const ProtocolError& e) {
        CHECK(e.code() == ErrorCode::invalid_argument);
        CHECK(std::string(e.what()).find("limit") != std::string::npos);
    }
}
