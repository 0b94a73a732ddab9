// What keeps one client from crowding out the tablets (DESIGN §9,
// exhaustion), in-process with raw sockets: the cap per peer address, the
// Hello deadline, shedding connections that have not said Hello before any
// that have, the minimum rate of a frame's bytes, and the rate-limited
// report of what was turned away. tests/connection_flood_test.cpp tries the
// same from outside, against lindra-server.
#include "support/raw_client.hpp"
#include "support/sync_fixture.hpp"
#include "support/temp_dir.hpp"

#include <lindra/error.hpp>
#include <lindra/log.hpp>
#include <lindra/schema.hpp>
#include <lindra/server.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <mutex>
#include <regex>
#include <string>
#include <thread>
#include <vector>

using namespace lindra;
using lindra::test::RawClient;
using lindra::test::require_ok;
using lindra::test::SyncWorld;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

constexpr auto kPromptly = std::chrono::seconds(3);  // far below what the old rules allowed

// Plain TCP on "::" (IPv4 and IPv6 peers alike), with `tweak` on top: the
// raw clients speak lindra's framing, not TLS.
std::function<void(ServerOptions&)> plain_dual_stack(std::function<void(ServerOptions&)> tweak = {}) {
    return [tweak = std::move(tweak)](ServerOptions& o) {
        o.insecure = true;
        o.host = "::";
        if (tweak) tweak(o);
    };
}

bool is_eof(const RawClient::Read& r) {
    return std::holds_alternative<RawClient::Eof>(r);
}

template <class Message>
bool is(const RawClient::Read& r) {
    const auto* m = std::get_if<protocol::ServerMessage>(&r);
    return m && std::holds_alternative<Message>(*m);
}

// Says Hello with a valid token on `raw`; whether a Welcome came back.
bool welcomed(SyncWorld& w, RawClient& raw) {
    protocol::Hello h;
    h.versions = {protocol::kVersion};
    h.device = Id::random();
    h.token = w.token_for("coordinator-token");
    h.schema_version = schema_version();
    return raw.send_message(h) && is<protocol::Welcome>(raw.read_message());
}

// Still served: a Ping gets its Pong.
bool served(RawClient& raw) {
    return raw.send_message(protocol::Ping{7}) && is<protocol::Pong>(raw.read_message());
}

// A varint frame length.
std::string length_prefix(std::uint64_t v) {
    std::string out;
    for (;; v >>= 7) {
        out.push_back(static_cast<char>((v & 0x7F) | (v >= 0x80 ? 0x80 : 0)));
        if (v < 0x80) return out;
    }
}

// The server's turnaway lines (the operator's log), after it stopped.
std::vector<std::string> turnaway_lines(SyncWorld& w) {
    w.stop_server();
    std::vector<std::string> out;
    for (const auto& line : w.log())
        if (line.rfind("connections turned away:", 0) == 0) out.push_back(line);
    return out;
}

// The sum of `key=N` over `lines`.
std::uint64_t total(const std::vector<std::string>& lines, const std::string& key) {
    std::uint64_t sum = 0;
    const std::regex number(" " + key + "=([0-9]+)");
    for (const auto& line : lines) {
        std::smatch m;
        if (std::regex_search(line, m, number)) sum += std::stoull(m[1].str());
    }
    return sum;
}

// lindra's own log, for as long as it lives.
struct CapturedLog {
    CapturedLog() {
        set_log_handler([this](LogLevel, std::string_view domain, std::string_view message) {
            std::lock_guard lock(mutex);
            lines.push_back(std::string(domain) + ": " + std::string(message));
        });
    }
    ~CapturedLog() { set_log_handler({}); }
    std::vector<std::string> with(const std::string& part) {
        std::lock_guard lock(mutex);
        std::vector<std::string> out;
        for (const auto& l : lines)
            if (l.find(part) != std::string::npos) out.push_back(l);
        return out;
    }
    std::mutex mutex;
    std::vector<std::string> lines;  // guarded by mutex
};

}  // namespace

TEST_CASE("one peer address gets at most its share of connections, and other addresses still get in") {
    CapturedLog lindra_log;
    SyncWorld w(plain_dual_stack([](ServerOptions& o) { o.max_connections_per_address = 3; }));
    std::vector<std::unique_ptr<RawClient>> held;
    for (int i = 0; i < 3; ++i) {
        held.push_back(std::make_unique<RawClient>(w.port(), std::chrono::seconds(5), "::1"));
        REQUIRE(welcomed(w, *held.back()));
    }
    RawClient fourth(w.port(), std::chrono::seconds(5), "::1");
    CHECK(is_eof(fourth.read_message()));  // closed at once, before any byte

    // A tablet on another address syncs as usual, and the three are served.
    require_ok(w.sync(w.tablet("tablet")));
    for (auto& c : held) CHECK(served(*c));
    held.clear();
    // A connection the address gave back can be taken again.
    for (int i = 0;; ++i) {  // the server sees the closes a moment later
        RawClient again(w.port(), std::chrono::seconds(5), "::1");
        if (welcomed(w, again)) break;
        REQUIRE(i < 100);
        std::this_thread::sleep_for(milliseconds(20));
    }

    const auto lines = turnaway_lines(w);
    CHECK(total(lines, "per_address_cap") >= 1);
    REQUIRE(!lines.empty());
    CHECK(lines.front().find("last_over_address_cap=::/64") != std::string::npos);  // the operator's log
    // lindra's log has the counts, never the address.
    const auto ours = lindra_log.with("connections turned away");
    REQUIRE(!ours.empty());
    for (const auto& l : ours) {
        CHECK(l.find("per_address_cap=") != std::string::npos);
        CHECK(l.find("::") == std::string::npos);
        CHECK(l.find("127.0.0.1") == std::string::npos);
    }
}

TEST_CASE("over the connection cap, the oldest connection that has not said Hello makes room") {
    SyncWorld w(plain_dual_stack([](ServerOptions& o) { o.max_connections = 3; }));
    RawClient a(w.port());  // never says anything
    RawClient b(w.port());
    REQUIRE(welcomed(w, b));
    RawClient c(w.port());
    RawClient d(w.port());  // a fourth: a goes, not b
    CHECK(is_eof(a.read_message()));
    REQUIRE(welcomed(w, d));
    RawClient e(w.port());  // c goes
    CHECK(is_eof(c.read_message()));
    REQUIRE(welcomed(w, e));
    // b, d and e have said Hello: a fourth is refused, and they stay.
    RawClient f(w.port());
    CHECK(is_eof(f.read_message()));
    CHECK(served(b));
    CHECK(served(d));
    CHECK(served(e));

    const auto lines = turnaway_lines(w);
    CHECK(total(lines, "shed_before_hello") == 2);
    CHECK(total(lines, "connection_cap") == 1);
    // Rate-limited: the first at once, the rest together when the server
    // stopped, a minute not having passed.
    CHECK(lines.size() == 2);
}

TEST_CASE("a peer must finish its Hello within the Hello deadline, however it spreads its bytes") {
    SyncWorld w(plain_dual_stack([](ServerOptions& o) {
        o.hello_timeout = milliseconds(500);
        o.io_timeout = milliseconds(60'000);  // the frame rule alone would wait a minute
        o.idle_timeout = milliseconds(60'000);
    }));
    SECTION("a peer that sends nothing") {
        const auto started = Clock::now();
        RawClient silent(w.port());
        CHECK(is_eof(silent.read_message()));
        CHECK(Clock::now() - started < kPromptly);
    }
    SECTION("a peer that dribbles its Hello") {
        const auto started = Clock::now();
        RawClient slow(w.port());
        REQUIRE(slow.send(length_prefix(300)));
        bool cut_off = false;
        for (int i = 0; i < 50 && !cut_off; ++i) {  // 50 bytes over 5 s, if the server let it
            std::this_thread::sleep_for(milliseconds(100));
            cut_off = !slow.send("x");
        }
        if (!cut_off) cut_off = is_eof(slow.read_message());
        CHECK(cut_off);
        CHECK(Clock::now() - started < kPromptly);
    }
    SECTION("a welcomed session is held to the idle timeout, not the Hello deadline") {
        RawClient fine(w.port());
        REQUIRE(welcomed(w, fine));
        std::this_thread::sleep_for(milliseconds(1'000));
        CHECK(served(fine));
    }
    SECTION("the late ones are counted") {
        RawClient silent(w.port());
        CHECK(is_eof(silent.read_message()));
        const auto lines = turnaway_lines(w);
        CHECK(total(lines, "no_hello_in_time") == 1);
    }
}

TEST_CASE("a frame's bytes must keep coming at the minimum rate") {
    SyncWorld w(plain_dual_stack([](ServerOptions& o) {
        o.io_timeout = milliseconds(500);
        o.min_frame_rate = 16 * 1024;
    }));
    RawClient raw(w.port());
    REQUIRE(welcomed(w, raw));
    SECTION("a declared 4 MiB frame, trickled, is cut off after the floor") {
        // Before, its deadline came from the declared size: 0.5 s + 256 s.
        const auto started = Clock::now();
        REQUIRE(raw.send(length_prefix(4 * 1024 * 1024 - 64)));
        bool cut_off = false;
        for (int i = 0; i < 50 && !cut_off; ++i) {
            std::this_thread::sleep_for(milliseconds(100));
            cut_off = !raw.send("x");
        }
        if (!cut_off) cut_off = is_eof(raw.read_message());
        CHECK(cut_off);
        CHECK(Clock::now() - started < kPromptly);
    }
    SECTION("a frame that keeps coming faster than that may take longer than the floor") {
        // 96 KiB at about 64 KiB/s: 1.5 s, three times the floor.
        constexpr std::size_t kSize = 96 * 1024, kChunk = 8 * 1024;
        REQUIRE(raw.send(length_prefix(kSize)));
        for (std::size_t sent = 0; sent < kSize; sent += kChunk) {
            std::this_thread::sleep_for(milliseconds(125));
            REQUIRE(raw.send(std::string(kChunk, '\0')));
        }
        // All of it was read: zeros are no message, and the server says so.
        const auto answer = raw.read_message();
        REQUIRE(is<protocol::ErrorMessage>(answer));
    }
}

TEST_CASE("connection limits that make no sense are refused before the store is touched") {
    lindra::test::TempDir dir;
    struct Case {
        const char* name;
        std::function<void(ServerOptions&)> set;
        const char* says;
    };
    const Case cases[] = {
        {"no connections", [](ServerOptions& o) { o.max_connections = 0; }, "max_connections"},
        {"none per address", [](ServerOptions& o) { o.max_connections_per_address = 0; },
         "max_connections_per_address"},
        {"a rate of zero", [](ServerOptions& o) { o.min_frame_rate = 0; }, "min_frame_rate"},
        {"no time for Hello", [](ServerOptions& o) { o.hello_timeout = milliseconds(0); }, "hello_timeout"},
        {"forever between frames", [](ServerOptions& o) { o.idle_timeout = milliseconds::max(); }, "idle_timeout"},
    };
    for (const auto& c : cases) {
        INFO(c.name);
        ServerOptions o;
        o.db_path = dir.file("server.db");
        o.insecure = true;
        c.set(o);
        try {
            SyncServer server(o);
            FAIL("the server started");
        } catch (const Error& e) {
            CHECK(e.errc() == Errc::invalid_argument);
            CHECK(std::string(e.what()).find(c.says) != std::string::npos);
        }
        CHECK_FALSE(std::filesystem::exists(o.db_path));
    }
}
