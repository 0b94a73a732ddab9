// Bad input on the server's socket: bytes no SyncClient would send, from a
// raw POSIX socket. For each case the server answers with an Error frame of
// the right code at once, closes the connection, writes nothing (domain
// tables, lindra_log and lindra_device are unchanged), logs one line for the
// refused session without any token in it, and goes on serving: the tablet
// whose device id the bad session used syncs normally right after.
#include "store/database.hpp"
#include "support/db.hpp"
#include "support/fixture.hpp"
#include "support/raw_client.hpp"
#include "support/sync_fixture.hpp"
#include "support/temp_dir.hpp"

#include <lindra/schema.hpp>
#include <lindra/server.hpp>
#include <lindra/sync.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace lindra;
using lindra::protocol::ErrorCode;
using lindra::test::dump;
using lindra::test::dump_table;
using lindra::test::RawClient;
using lindra::test::Seeded;
using lindra::test::require_ok;
using lindra::test::SyncWorld;
using lindra::test::Tables;

namespace {

constexpr const char* kToken = "coordinator-token";  // SyncWorld's name for a valid token
constexpr const char* kWrongToken = "wrong-token-5f0c2e91";
constexpr auto kPromptly = std::chrono::seconds(2);  // the server's own timeouts are 30 s and more

// The raw client speaks lindra's framing over plain TCP: these tests are
// about framing and the server's answers to bad bytes, not TLS (tls_test.cpp
// covers that), so their servers run insecure.
std::function<void(ServerOptions&)> plain_tcp(std::function<void(ServerOptions&)> tweak = {}) {
    return [tweak = std::move(tweak)](ServerOptions& o) {
        o.insecure = true;
        if (tweak) tweak(o);
    };
}

// ---- the server's side ------------------------------------------------------


// What a refused session must leave as it was.
std::string server_state(const std::string& server_db) {
    return dump(server_db, Tables::domain) + dump_table(server_db, "lindra_log") +
           dump_table(server_db, "lindra_device");
}

// A session the server refused logs `end="<code>: <why>"`.
bool is_refusal(const std::string& line) {
    for (int c = 1; c <= 7; ++c)
        if (line.find("end=\"" + std::string(protocol::to_string(static_cast<ErrorCode>(c))) + ":") !=
            std::string::npos)
            return true;
    return false;
}

// One line per session, `refused` of them refusals, and no token anywhere.
void require_log(const SyncWorld& w, std::size_t sessions, std::size_t refused) {
    const auto log = w.log();
    std::ostringstream all;
    for (const auto& line : log) all << line << "\n";
    INFO("server log:\n" << all.str());
    CHECK(log.size() == sessions);
    CHECK(static_cast<std::size_t>(std::count_if(log.begin(), log.end(), is_refusal)) == refused);
    for (const std::string name : {kToken, "mentor-token", "candidate-1-token"})
        CHECK(all.str().find(w.token_for(name)) == std::string::npos);
    CHECK(all.str().find(kWrongToken) == std::string::npos);
}


// The server holds the seeded group; "tablet" has pulled it and made four
// writes it has not pushed yet, the last a score (see bad_score()).
struct Scene {
    SyncWorld& w;
    Replica& coordinator = w.tablet("coordinator");
    Seeded s = test::seed_group(coordinator);
    Replica& tablet = w.tablet("tablet");

    explicit Scene(SyncWorld& world) : w(world) {
        require_ok(w.sync(coordinator));
        require_ok(w.sync(tablet));
        tablet.register_person("Nora New", Profession::nurse, s.organization);
        tablet.add_time_spent(s.candidates[0], s.modules[1], s.group, 300);
        tablet.complete_module(s.candidates[1], s.modules[1], s.group);
        tablet.record_score(s.candidates[0], s.modules[1], s.group, 70);
    }
};

// ---- the client's side -------------------------------------------------------

std::string describe(const RawClient::Read& r) {
    if (std::holds_alternative<RawClient::Eof>(r)) return "the connection closed";
    if (const auto* f = std::get_if<RawClient::Failure>(&r)) return f->what;
    const auto& m = std::get<protocol::ServerMessage>(r);
    if (const auto* e = std::get_if<protocol::ErrorMessage>(&m))
        return "Error " + std::string(protocol::to_string(e->code)) + ": " + e->message;
    return "a server message of kind " + std::to_string(m.index());
}

// Empty if the server answered with an Error of one of `codes`, promptly,
// then closed; else what went wrong. (No Catch assertions: worker threads
// call it too.)
std::string refusal_problem(RawClient& c, const std::vector<ErrorCode>& codes,
                            std::chrono::steady_clock::time_point since) {
    const auto first = c.read_message();
    const auto elapsed = std::chrono::steady_clock::now() - since;
    const auto* m = std::get_if<protocol::ServerMessage>(&first);
    const auto* e = m ? std::get_if<protocol::ErrorMessage>(m) : nullptr;
    if (!e) return "expected an Error frame, got " + describe(first);
    if (std::find(codes.begin(), codes.end(), e->code) == codes.end()) return "unexpected " + describe(first);
    if (elapsed > kPromptly) return "the Error came only after " + std::to_string(elapsed.count()) + " ns";
    const auto second = c.read_message();
    if (!std::holds_alternative<RawClient::Eof>(second))
        return "expected the connection to close after the Error, got " + describe(second);
    return {};
}

protocol::Hello hello(const Replica& r, std::string token) {
    protocol::Hello h;
    h.versions = {protocol::kVersion};
    h.device = r.device_id();
    h.token = std::move(token);
    h.schema_version = schema_version();
    h.app = "raw-socket-test/1";
    return h;
}

// Says Hello as `r` and reads the Welcome; throws if anything else comes.
void say_hello(RawClient& c, const Replica& r, const std::string& token) {
    if (!c.send_message(hello(r, token))) throw std::runtime_error("the server closed before the Hello");
    const auto reply = c.read_message();
    const auto* m = std::get_if<protocol::ServerMessage>(&reply);
    if (!m || !std::holds_alternative<protocol::Welcome>(*m))
        throw std::runtime_error("expected a Welcome, got " + describe(reply));
}

// The tablet's outbox as one Push, with `edit` applied to its entries.
protocol::Push push_of(const Replica& r, const std::function<void(std::vector<protocol::Entry>&)>& edit = {}) {
    protocol::Push p;
    for (auto& e : r.outbox(SIZE_MAX)) p.entries.push_back({e.seq, std::move(e.changes)});
    if (edit) edit(p.entries);
    return p;
}

// Sets every change of `field` of `entity` in `entries` to `value`; throws if there is none.
void set_value(std::vector<protocol::Entry>& entries, std::string_view entity, std::string_view field, Value value) {
    const auto* e = find_entity(entity);
    const auto tag = e->field(field)->tag;
    int set = 0;
    for (auto& entry : entries)
        for (auto& c : entry.changes)
            if (c.entity == e->tag && c.field == tag) {
                c.value = value;
                ++set;
            }
    if (set == 0) throw std::logic_error("no change of " + std::string(field) + " to edit");
}

// Protobuf wire format written by hand, for what protocol::encode() refuses to build.
class Pb {
  public:
    Pb& uint(int field, std::uint64_t v) {
        key(field, 0);
        varint(v);
        return *this;
    }
    Pb& sint(int field, std::int64_t v) {
        return uint(field, (static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63));
    }
    Pb& bytes(int field, std::string_view b) {
        key(field, 2);
        varint(b.size());
        out.append(b);
        return *this;
    }
    std::string out;

  private:
    void key(int field, int wire_type) { varint(static_cast<std::uint64_t>(field) << 3 | wire_type); }
    void varint(std::uint64_t v) {
        for (; v >= 0x80; v >>= 7) out.push_back(static_cast<char>((v & 0x7F) | 0x80));
        out.push_back(static_cast<char>(v));
    }
};

// A ClientMessage with a Push of one new person whose profession is enum index `index`.
std::string push_with_profession(const Replica& r, std::int64_t index) {
    const auto* person = find_entity("person");
    const Id row = Id::random();
    const std::int64_t seq = 1'000;
    Pb group;
    group.uint(1, person->tag).uint(2, 1).sint(3, static_cast<std::int64_t>(r.hlc() + 1)).sint(5, seq);
    group.uint(6, person->field("display_name")->tag).uint(6, person->field("profession")->tag);
    group.bytes(8, "Eve Enum").sint(7, index);
    Pb set;
    set.bytes(1, std::string_view(reinterpret_cast<const char*>(row.bytes.data()), row.bytes.size()));
    set.bytes(2, group.out);
    Pb push;
    push.uint(1, seq).uint(2, seq).bytes(3, set.out);
    return Pb().bytes(2, push.out).out;
}

// A frame's length prefix alone.
std::string varint_bytes(std::uint64_t v) {
    std::string out;
    for (; v >= 0x80; v >>= 7) out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    out.push_back(static_cast<char>(v));
    return out;
}

std::string random_bytes(std::size_t n, unsigned seed) {
    std::mt19937 gen(seed);
    std::string out;
    for (std::size_t i = 0; i < n; ++i) out.push_back(static_cast<char>(gen() & 0xFF));
    return out;
}

// ---- the cases ----------------------------------------------------------------

// One bad conversation: what to send (throwing if the server answers out of
// turn), as the tablet holding a valid token, and the Error codes it may be
// refused with.
using Send = std::function<void(RawClient&, const Replica& tablet, const std::string& token)>;
struct BadCase {
    std::string name;
    Send send;
    std::vector<ErrorCode> codes;
};

Send raw(std::string bytes, bool then_shutdown = false) {
    return [bytes = std::move(bytes), then_shutdown](RawClient& c, const Replica&, const std::string&) {
        c.send(bytes);
        if (then_shutdown) c.shutdown_write();
    };
}

Send message(protocol::ServerMessage m) {
    return [body = protocol::encode(m)](RawClient& c, const Replica&, const std::string&) { c.send_frame(body); };
}

// Hello as the tablet, then the message `make` builds from the tablet.
Send after_hello(std::function<std::string(const Replica&)> make) {
    return [make = std::move(make)](RawClient& c, const Replica& r, const std::string& token) {
        say_hello(c, r, token);
        c.send_frame(make(r));
    };
}

std::vector<BadCase> bad_cases() {
    using enum ErrorCode;
    const std::vector<ErrorCode> wrong_way = {invalid_argument, unauthenticated};
    protocol::Welcome welcome;
    welcome.version = protocol::kVersion;
    welcome.server_id = Id::random();
    welcome.server_hlc = 123'456'789;
    welcome.user = "coord-1";
    welcome.roles = {"coordinator"};
    welcome.highest_seq = 5;
    welcome.pull_needed = true;
    protocol::PullBatch batch;
    batch.changes = {Change{1, Id::random(), 2, std::string("Org"), 99, Id::random()}};
    batch.next_cursor = "\x05";
    batch.has_more = true;
    batch.remaining = 10;
    return {
        {"a length over the limit (5 MiB, the limit is 4 MiB)", raw(varint_bytes(5u << 20)), {frame_too_large}},
        {"a length varint longer than 10 bytes", raw(std::string(11, '\xFF')), {invalid_argument}},
        {"garbage after a valid length", raw(protocol::frame(random_bytes(64, 42))), {invalid_argument}},
        {"a frame cut short by the client closing",
         raw(varint_bytes(100) + std::string(10, 'x'), true),
         {invalid_argument}},
        {"a Welcome sent to the server", message(welcome), wrong_way},
        {"a PushAck sent to the server", message(protocol::PushAck{7, {{3, invalid_argument, "no"}}}), wrong_way},
        {"a PullBatch sent to the server", message(batch), wrong_way},
        {"a Pong sent to the server", message(protocol::Pong{77}), wrong_way},
        {"an Error sent to the server", message(protocol::ErrorMessage{internal, "oops", 5}), wrong_way},
        {"a Push before Hello",
         [](RawClient& c, const Replica& r, const std::string&) { c.send_message(push_of(r)); },
         {unauthenticated}},
        {"a wrong token",
         [](RawClient& c, const Replica& r, const std::string&) { c.send_message(hello(r, kWrongToken)); },
         {unauthenticated}},
        {"no token",
         [](RawClient& c, const Replica& r, const std::string&) { c.send_message(hello(r, "")); },
         {unauthenticated}},
        {"an unsupported protocol version",
         [](RawClient& c, const Replica& r, const std::string& token) {
             auto h = hello(r, token);
             h.versions = {99};
             c.send_message(h);
         },
         {unsupported_version}},
        {"a data model newer than the server's",
         [](RawClient& c, const Replica& r, const std::string& token) {
             auto h = hello(r, token);
             h.schema_version = schema_version() + 1;
             c.send_message(h);
         },
         {unsupported_version}},
        {"a second Hello",
         [](RawClient& c, const Replica& r, const std::string& token) {
             say_hello(c, r, token);
             c.send_message(hello(r, token));
         },
         {invalid_argument}},
        {"a Push with an enum index out of range",
         after_hello([](const Replica& r) { return push_with_profession(r, 99); }),
         {invalid_argument}},
        {"a Pull from a cursor the server never handed out",
         after_hello([](const Replica&) {
             return protocol::encode(protocol::Pull{"\xFF\xFF\xFF", 100, false});
         }),
         {invalid_argument}},
    };
}

// Runs one bad conversation on a new connection; empty if it was refused as it should be.
std::string run_bad(std::uint16_t port, const std::string& token, const BadCase& bad, const Replica& tablet) {
    try {
        RawClient c(port);
        bad.send(c, tablet, token);
        return refusal_problem(c, bad.codes, std::chrono::steady_clock::now());
    } catch (const std::exception& e) {
        return e.what();
    }
}

// The whole check for one case; see the file's comment.
void require_refused_cleanly(SyncWorld& w, const BadCase& bad) {
    Scene scene(w);
    const auto before = server_state(w.server_db());
    {
        INFO("case: " << bad.name);
        CHECK(run_bad(w.port(), w.token_for(kToken), bad, scene.tablet) == "");
    }
    CHECK(server_state(w.server_db()) == before);
    require_ok(w.sync(scene.tablet));  // the tablet's own, valid, push goes through
    CHECK(scene.tablet.outbox_size() == 0);
    CHECK(dump(w.path("tablet"), Tables::domain) == dump(w.server_db(), Tables::domain));
    w.stop_server();             // the log is complete once the server stopped
    require_log(w, 4, 1);  // coordinator, tablet, the bad session, the tablet again
}

}  // namespace

TEST_CASE("the hand-made bad messages are bad only where intended") {
    test::TempDir dir;
    Replica r(dir.file("r.db"));
    auto decode = [&](const std::string& body) {
        return protocol::decode_client(std::span(reinterpret_cast<const std::uint8_t*>(body.data()), body.size()),
                                       r.device_id(), 10'000);
    };
    const auto good = decode(push_with_profession(r, 3));
    REQUIRE(std::holds_alternative<protocol::Push>(good));
    CHECK(std::get<protocol::Push>(good).entries.at(0).changes.size() == 2);
    CHECK_THROWS_AS(decode(push_with_profession(r, 99)), protocol::ProtocolError);
    CHECK_THROWS_AS(decode(random_bytes(64, 42)), protocol::ProtocolError);
}

// A bad value is the one write's problem, not the connection's: the server
// rejects that write with the field named and applies the others, so one
// damaged entry cannot keep a tablet from syncing the rest forever.
TEST_CASE("an invalid value in a pushed write rejects that write only") {
    struct ValueCase {
        const char* entity;
        const char* field;
        Value value;
    };
    for (const auto& bad : {ValueCase{"module_progress", "best_score", std::int64_t{500}},
                            ValueCase{"person", "display_name", std::string(300, 'n')}}) {
        INFO(bad.entity << "." << bad.field);
        SyncWorld w(plain_tcp());
        Scene scene(w);
        const auto push = push_of(scene.tablet, [&](auto& entries) { set_value(entries, bad.entity, bad.field, bad.value); });
        std::int64_t bad_seq = 0;
        for (const auto& e : push.entries)
            for (const auto& c : e.changes)
                if (c.entity == find_entity(bad.entity)->tag && c.value == bad.value) bad_seq = e.seq;
        const auto logged = test::count_rows(w.server_db(), "lindra_log");
        test::RawClient c(w.port());
        c.send_message(hello(scene.tablet, w.token_for(kToken)));
        REQUIRE(std::holds_alternative<protocol::ServerMessage>(c.read_message()));  // Welcome
        c.send_message(push);
        auto reply = c.read_message();
        REQUIRE(std::holds_alternative<protocol::ServerMessage>(reply));
        const auto* ack = std::get_if<protocol::PushAck>(&std::get<protocol::ServerMessage>(reply));
        REQUIRE(ack);
        CHECK(ack->acked_seq == push.entries.back().seq);
        REQUIRE(ack->rejected.size() == 1);
        CHECK(ack->rejected[0].seq == bad_seq);
        CHECK(ack->rejected[0].code == protocol::ErrorCode::invalid_argument);
        CHECK(ack->rejected[0].reason.find(std::string(bad.entity) + "." + bad.field) != std::string::npos);
        const std::int64_t applied = static_cast<std::int64_t>(push.entries.size()) - 1;
        CHECK(test::count_rows(w.server_db(), "lindra_log") == logged + applied);
    }
}

// A candidate's tablet pushes a running total of her own time at or beyond
// the integer limits, to her progress row that holds 600 s from the office's
// tablet. The server once merged a pushed change before checking it: 600 +
// INT64_MAX overflowed inside the server (UBSan aborted it) and the refusal
// that came after quoted the value.
TEST_CASE("a pushed counter total beyond its range is refused without touching the row") {
    const FieldDef& time = *find_entity("module_progress")->field("time_spent_s");
    for (const std::int64_t bad : {INT64_MAX, INT64_MIN, time.max + 1}) {
        INFO("time_spent_s = " << bad);
        SyncWorld w(plain_tcp());
        Replica& office = w.tablet("office");
        const Seeded s = test::seed_group(office);
        office.add_time_spent(s.candidates[0], s.modules[0], s.group, 600);
        require_ok(w.sync(office));
        const Id row = Id::derive("module_progress", {s.candidates[0], s.modules[0], s.group});
        auto time_spent = [&] {
            store::Database db(w.server_db());
            auto st = db.prepare("SELECT time_spent_s FROM module_progress WHERE id = ?");
            st.bind(1, row);
            REQUIRE(st.step());
            return st.int64(0);
        };
        REQUIRE(time_spent() == 600);

        Replica& ola = w.tablet("ola");
        const std::string token = w.token({.user = "ola", .role = Role::candidate, .person = s.candidates[0]});
        require_ok(w.sync(ola, token));
        ola.add_time_spent(s.candidates[0], s.modules[0], s.group, 60);
        const auto push =
            push_of(ola, [&](auto& entries) { set_value(entries, "module_progress", "time_spent_s", bad); });
        REQUIRE(push.entries.size() == 1);
        const auto before = dump(w.server_db(), Tables::domain) + dump_table(w.server_db(), "lindra_log");

        RawClient c(w.port());
        say_hello(c, ola, token);
        REQUIRE(c.send_message(push));
        const auto reply = c.read_message();
        INFO(describe(reply));
        const auto* m = std::get_if<protocol::ServerMessage>(&reply);
        const auto* ack = m ? std::get_if<protocol::PushAck>(m) : nullptr;
        REQUIRE(ack);
        CHECK(ack->acked_seq == push.entries[0].seq);
        REQUIRE(ack->rejected.size() == 1);
        const auto& refused = ack->rejected[0];
        CHECK(refused.code == ErrorCode::invalid_argument);
        CHECK(refused.reason.find("module_progress.time_spent_s") != std::string::npos);
        CHECK(refused.reason.find(std::to_string(bad)) == std::string::npos);
        CHECK(time_spent() == 600);
        CHECK(dump(w.server_db(), Tables::domain) + dump_table(w.server_db(), "lindra_log") == before);

        // The server goes on serving, this connection and others.
        REQUIRE(c.send_message(protocol::Ping{9}));
        const auto pong = c.read_message();
        m = std::get_if<protocol::ServerMessage>(&pong);
        CHECK((m && std::holds_alternative<protocol::Pong>(*m)));
        office.add_time_spent(s.candidates[0], s.modules[0], s.group, 30);
        require_ok(w.sync(office));
        CHECK(time_spent() == 630);
    }
}

TEST_CASE("bad input gets an Error frame and a closed connection, and changes nothing") {
    for (const auto& bad : bad_cases()) {
        DYNAMIC_SECTION(bad.name) {
            SyncWorld w(plain_tcp());
            require_refused_cleanly(w, bad);
        }
    }
}

TEST_CASE("a Push over the server's max_push_changes is refused") {
    SyncWorld w(plain_tcp([](ServerOptions& o) { o.max_push_changes = 50; }));
    const BadCase bad{"a Push of more than 50 changes",
                      after_hello([](const Replica& r) {
                          // The tablet's writes, then four copies under new seqs.
                          const auto push = push_of(r, [](auto& entries) {
                              const auto writes = entries;
                              for (std::int64_t copy = 1; copy <= 4; ++copy)
                                  for (auto e : writes) {
                                      e.seq += copy * 1'000;
                                      entries.push_back(std::move(e));
                                  }
                          });
                          std::size_t changes = 0;
                          for (const auto& e : push.entries) changes += e.changes.size();
                          if (changes <= 50) throw std::logic_error("the push is not over the limit");
                          return protocol::encode(push);
                      }),
                      {ErrorCode::invalid_argument}};
    require_refused_cleanly(w, bad);
}

TEST_CASE("many bad connections at once do not stop a good sync") {
    SyncWorld w(plain_tcp());
    Scene scene(w);
    const auto cases = bad_cases();
    std::vector<std::string> problems(cases.size() + 2);
    std::atomic<bool> good_done{false};
    std::vector<std::thread> threads;
    const auto token = w.token_for(kToken);
    for (std::size_t i = 0; i < cases.size(); ++i)
        threads.emplace_back([&, i] { problems[i] = run_bad(w.port(), token, cases[i], scene.tablet); });
    // Two peers that stall in the middle of a frame until the good sync is
    // done, then close their side: the server must not wait for them.
    for (std::size_t i = cases.size(); i < problems.size(); ++i)
        threads.emplace_back([&, i] {
            const BadCase stall{"a stalled frame",
                                [&](RawClient& c, const Replica&, const std::string&) {
                                    c.send(varint_bytes(1'000) + "partial");
                                    for (int n = 0; n < 1'000 && !good_done; ++n)
                                        std::this_thread::sleep_for(std::chrono::milliseconds(10));
                                    c.shutdown_write();
                                },
                                {ErrorCode::invalid_argument}};
            problems[i] = run_bad(w.port(), token, stall, scene.tablet);
        });

    scene.coordinator.add_time_spent(scene.s.candidates[1], scene.s.modules[0], scene.s.group, 45);
    const auto good = w.sync(scene.coordinator);
    good_done = true;
    for (auto& t : threads) t.join();
    require_ok(good);
    CHECK(good.changes_pushed > 0);
    CHECK(scene.coordinator.outbox_size() == 0);
    for (std::size_t i = 0; i < problems.size(); ++i) {
        INFO("connection " << i << ": " << (i < cases.size() ? cases[i].name : "a stalled frame"));
        CHECK(problems[i] == "");
    }
    CHECK(dump(w.path("coordinator"), Tables::domain) == dump(w.server_db(), Tables::domain));
    CHECK(test::count_rows(w.server_db(), "lindra_device") == 1);  // the coordinator's, nothing of the tablet's
    w.stop_server();
    require_log(w, 3 + problems.size(), problems.size());
}

TEST_CASE("a peer that dribbles a frame a byte at a time is cut off when the frame is late") {
    // Each byte arrives well within the io timeout, the frame as a whole not.
    SyncWorld w(plain_tcp([](ServerOptions& o) { o.io_timeout = std::chrono::milliseconds(500); }));
    test::RawClient raw(w.port());
    const auto started = std::chrono::steady_clock::now();
    REQUIRE(raw.send(std::string(1, '\x64')));  // a length of 100
    bool cut_off = false;
    for (int i = 0; i < 40 && !cut_off; ++i) {  // 40 bytes over ~4 s, if the server let it
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        cut_off = !raw.send("x");
    }
    if (!cut_off) cut_off = std::holds_alternative<test::RawClient::Eof>(raw.read_message());
    CHECK(cut_off);
    CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(3));
}

TEST_CASE("before Hello a peer may only send small frames") {
    SyncWorld w(plain_tcp());
    test::RawClient raw(w.port());
    std::string big_length;  // a varint of 100 KiB: fine after Hello, too much before it
    for (std::uint64_t v = 100 * 1024; ; v >>= 7) {
        big_length.push_back(static_cast<char>((v & 0x7F) | (v >= 0x80 ? 0x80 : 0)));
        if (v < 0x80) break;
    }
    REQUIRE(raw.send(big_length));
    const auto answer = raw.read_message();
    const auto* m = std::get_if<protocol::ServerMessage>(&answer);
    REQUIRE(m);
    const auto* error = std::get_if<protocol::ErrorMessage>(m);
    REQUIRE(error);
    CHECK(error->code == ErrorCode::frame_too_large);
    CHECK(std::holds_alternative<test::RawClient::Eof>(raw.read_message()));
}

TEST_CASE("a frame that starts after a long idle pause still gets its whole io timeout") {
    // Idle 1.5 s may pass between frames; each frame then has 0.5 s.
    SyncWorld w(plain_tcp([](ServerOptions& o) {
        o.io_timeout = std::chrono::milliseconds(500);
        o.idle_timeout = std::chrono::milliseconds(3'000);
    }));
    Replica& tablet = w.tablet("tablet");
    test::RawClient raw(w.port());
    protocol::Hello h;
    h.versions = {protocol::kVersion};
    h.device = tablet.device_id();
    h.token = w.token_for(kToken);
    h.schema_version = schema_version();
    REQUIRE(raw.send_message(h));
    REQUIRE(std::holds_alternative<protocol::ServerMessage>(raw.read_message()));  // Welcome
    std::this_thread::sleep_for(std::chrono::milliseconds(1'500));  // longer than the io timeout
    REQUIRE(raw.send_message(protocol::Ping{7}));
    const auto answer = raw.read_message();
    const auto* m = std::get_if<protocol::ServerMessage>(&answer);
    REQUIRE(m);
    CHECK(std::holds_alternative<protocol::Pong>(*m));
}
