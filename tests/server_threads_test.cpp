// The server's threads (DESIGN §6, Threads; docs/decisions.md, "Threads"):
// sessions work on a worker pool, so one session stuck in its work stalls no
// other tablet; one session's frames are still handled one at a time and in
// order, however many threads there are; on_close comes once, also when the
// server stops while a session is at work. In-process on loopback, with a
// session wrapper (as MockServer's fault layer wraps the real session) that
// blocks or checks the real server's sessions.
#include "protocol/messages.hpp"
#include "server/service.hpp"
#include "support/raw_client.hpp"
#include "support/sync_fixture.hpp"
#include "support/temp_dir.hpp"

#include <lindra/error.hpp>
#include <lindra/replica.hpp>
#include <lindra/schema.hpp>
#include <lindra/server.hpp>
#include <lindra/sync.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

using namespace lindra;
using lindra::test::RawClient;
using lindra::test::require_ok;
using std::chrono::milliseconds;

namespace {

// Long enough never to be reached when the server works; a bound on the
// test when it does not.
constexpr milliseconds kBound{10'000};

// A Ping, as a session sees it.
bool is_ping(std::span<const std::uint8_t> body, std::uint64_t* nonce = nullptr) {
    try {
        Id device;
        const auto m = protocol::decode_client(body, device, SIZE_MAX);
        const auto* ping = std::get_if<protocol::Ping>(&m);
        if (ping && nonce) *nonce = ping->nonce;
        return ping != nullptr;
    } catch (const protocol::ProtocolError&) {
        return false;
    }
}

bool is_push(std::span<const std::uint8_t> body) {
    try {
        Id device;
        return std::holds_alternative<protocol::Push>(protocol::decode_client(body, device, SIZE_MAX));
    } catch (const protocol::ProtocolError&) {
        return false;
    }
}

// Holds the first session that handles a Ping (or a Push) until opened: a
// session stuck in its work (a huge push, a slow disk), without the store's
// mutex.
struct Gate {
    enum class Holds { ping, push };
    explicit Gate(Holds h) : holds(h) {}

    const Holds holds;
    std::mutex mutex;
    std::condition_variable changed;
    bool taken = false;  // guarded by mutex: a session was held
    int waiting = 0;     // guarded by mutex
    bool open = false;   // guarded by mutex

    void pass(std::span<const std::uint8_t> body) {
        if (holds == Holds::ping ? !is_ping(body) : !is_push(body)) return;
        std::unique_lock lock(mutex);
        if (std::exchange(taken, true)) return;
        ++waiting;
        changed.notify_all();
        changed.wait_for(lock, 3 * kBound, [&] { return open; });
        --waiting;
    }
    // Whether a session is held within the bound.
    bool holding() {
        std::unique_lock lock(mutex);
        return changed.wait_for(lock, kBound, [&] { return waiting > 0; });
    }
    void let_go() {
        std::lock_guard lock(mutex);
        open = true;
        changed.notify_all();
    }
};

// What the wrapped sessions saw: the Ping nonces of each in the order its
// on_frame calls began, whether two calls of one session ever overlapped,
// and each session's on_close reasons.
struct Seen {
    std::mutex mutex;
    std::vector<std::vector<std::uint64_t>> pings;  // guarded by mutex; one per session
    std::vector<std::vector<std::string>> closes;   // guarded by mutex; one per session
    std::atomic<bool> overlapped{false};
};

class CheckedSession final : public net::Session {
public:
    CheckedSession(std::unique_ptr<net::Session> inner, std::shared_ptr<Seen> seen, std::shared_ptr<Gate> gate)
        : inner_(std::move(inner)), seen_(std::move(seen)), gate_(std::move(gate)) {
        std::lock_guard lock(seen_->mutex);
        index_ = seen_->pings.size();
        seen_->pings.emplace_back();
        seen_->closes.emplace_back();
    }
    std::size_t max_frame() const override { return inner_->max_frame(); }
    bool authenticated() const override { return inner_->authenticated(); }

    net::Reply on_frame(std::span<const std::uint8_t> body) override {
        const Busy busy(*this);
        if (gate_) gate_->pass(body);
        std::uint64_t nonce = 0;
        if (is_ping(body, &nonce)) {
            {
                std::lock_guard lock(seen_->mutex);
                seen_->pings[index_].push_back(nonce);
            }
            // Shuffles the threads' timing a little.
            if (nonce % 7 == 0) std::this_thread::sleep_for(std::chrono::microseconds(nonce % 300));
        }
        return inner_->on_frame(body);
    }
    net::Reply on_bad_frame(const protocol::ProtocolError& error) override {
        const Busy busy(*this);
        return inner_->on_bad_frame(error);
    }
    void on_close(std::string_view reason) override {
        const Busy busy(*this);
        {
            std::lock_guard lock(seen_->mutex);
            seen_->closes[index_].emplace_back(reason);
        }
        inner_->on_close(reason);
    }

private:
    // Marks a call in progress; another one of the same session at the
    // same time is an overlap.
    struct Busy {
        explicit Busy(CheckedSession& s) : s_(s) {
            if (s_.busy_.exchange(true)) s_.seen_->overlapped = true;
        }
        ~Busy() { s_.busy_ = false; }
        CheckedSession& s_;
    };

    std::unique_ptr<net::Session> inner_;
    std::shared_ptr<Seen> seen_;
    std::shared_ptr<Gate> gate_;
    std::size_t index_ = 0;
    std::atomic<bool> busy_{false};
};

// A server (the real Service) whose sessions are wrapped in CheckedSession.
struct World {
    explicit World(std::function<void(ServerOptions&)> tweak, std::shared_ptr<Gate> gate = {})
        : seen(std::make_shared<Seen>()) {
        ServerOptions o;
        o.db_path = dir.file("server.db");
        o.tokens.key_pem = token_key;
        o.tls = {lindra::test::test_pki().server.certificate_pem, lindra::test::test_pki().server.private_key_pem};
        tweak(o);
        insecure = o.insecure;
        service.emplace(std::move(o), [seen = seen, gate](std::unique_ptr<net::Session> session, const std::string&) {
            return std::make_unique<CheckedSession>(std::move(session), seen, gate);
        });
    }

    std::string token() const { return issue_token(token_key, {.user = "admin-1", .role = Role::admin}); }

    // Says Hello on `raw`; whether it was welcomed.
    bool welcomed(RawClient& raw) const {
        protocol::Hello h;
        h.versions = {protocol::kVersion};
        h.device = Id::random();
        h.token = token();
        h.schema_version = schema_version();
        if (!raw.send_message(h)) return false;
        const auto r = raw.read_message();
        const auto* m = std::get_if<protocol::ServerMessage>(&r);
        return m && std::holds_alternative<protocol::Welcome>(*m);
    }

    // `io_timeout` is far beyond a round on loopback.
    SyncResult sync(Replica& tablet, milliseconds io_timeout = milliseconds(5'000)) {
        SyncOptions o;
        o.port = service->port();
        o.token = token();
        o.connect_timeout = milliseconds(2'000);
        o.io_timeout = io_timeout;
        if (insecure)
            o.insecure = true;
        else
            o.tls.ca_pem = lindra::test::test_pki().ca.certificate_pem;
        SyncClient client(tablet, o);
        return client.sync();
    }

    lindra::test::TempDir dir;
    std::string token_key = generate_token_key();
    std::shared_ptr<Seen> seen;
    bool insecure = false;
    std::optional<server::Service> service;
};

// Whether `r` is a Pong for `nonce`.
bool is_pong(const RawClient::Read& r, std::uint64_t nonce) {
    const auto* m = std::get_if<protocol::ServerMessage>(&r);
    const auto* pong = m ? std::get_if<protocol::Pong>(m) : nullptr;
    return pong && pong->nonce == nonce;
}

}  // namespace

TEST_CASE("while one session is stuck in its work, another tablet says Hello and finishes its round", "[net]") {
    const auto gate = std::make_shared<Gate>(Gate::Holds::ping);
    World w([](ServerOptions& o) { o.insecure = true; o.io_threads = 1; o.worker_threads = 2; }, gate);
    // Opens the gate however the test ends, so the server can stop.
    const std::unique_ptr<Gate, void (*)(Gate*)> open_at_end(gate.get(), [](Gate* g) { g->let_go(); });

    RawClient stuck(w.service->port(), kBound);
    REQUIRE(w.welcomed(stuck));
    REQUIRE(stuck.send_message(protocol::Ping{1}));
    REQUIRE(gate->holding());

    // On a server that did its sessions' work on its one I/O thread, this
    // round waited for the stuck session and timed out.
    Replica tablet(w.dir.file("tablet.db"));
    tablet.batch([](Writes& wr) { wr.register_person("Ola Nordmann", Profession::nurse); });
    require_ok(w.sync(tablet));
    require_ok(w.sync(tablet));  // a no-op round, too

    gate->let_go();
    CHECK(is_pong(stuck.read_message(), 1));
}

TEST_CASE("while one tablet's push is stuck in its work, another does its TLS handshake, Hello and round", "[net]") {
    const auto gate = std::make_shared<Gate>(Gate::Holds::push);
    World w([](ServerOptions& o) { o.io_threads = 1; o.worker_threads = 2; }, gate);
    const std::unique_ptr<Gate, void (*)(Gate*)> open_at_end(gate.get(), [](Gate* g) { g->let_go(); });

    Replica stuck(w.dir.file("stuck.db"));
    stuck.batch([](Writes& wr) { wr.register_person("Kari Nordmann", Profession::nurse); });
    SyncResult stuck_result;
    std::thread stuck_round([&] { stuck_result = w.sync(stuck, kBound); });
    const bool held = gate->holding();
    if (!held) gate->let_go();
    REQUIRE(held);

    Replica tablet(w.dir.file("tablet.db"));
    tablet.batch([](Writes& wr) { wr.register_person("Ola Nordmann", Profession::nurse); });
    const auto r = w.sync(tablet);
    gate->let_go();
    stuck_round.join();
    require_ok(r);
    require_ok(stuck_result);
}

TEST_CASE("one session's frames are handled one at a time and in order, however many threads", "[net]") {
    World w([](ServerOptions& o) { o.insecure = true; o.io_threads = 4; o.worker_threads = 4; });
    constexpr int kClients = 8;
    constexpr std::uint64_t kPings = 200;
    std::vector<std::thread> clients;
    std::atomic<int> in_order{0};
    for (int c = 0; c < kClients; ++c)
        clients.emplace_back([&] {
            RawClient raw(w.service->port(), kBound);
            if (!w.welcomed(raw)) return;
            // Every Ping in one write: the frames wait in the socket while
            // the session works on the ones before.
            std::string frames;
            for (std::uint64_t n = 1; n <= kPings; ++n)
                frames += protocol::frame(protocol::encode(protocol::ClientMessage{protocol::Ping{n}}));
            if (!raw.send(frames)) return;
            for (std::uint64_t n = 1; n <= kPings; ++n)
                if (!is_pong(raw.read_message(), n)) return;
            ++in_order;
        });
    for (auto& t : clients) t.join();
    CHECK(in_order == kClients);

    w.service->stop();
    CHECK_FALSE(w.seen->overlapped);
    std::lock_guard lock(w.seen->mutex);
    REQUIRE(w.seen->pings.size() == kClients);
    for (std::size_t s = 0; s < w.seen->pings.size(); ++s) {
        INFO("session " << s);
        CHECK(w.seen->pings[s].size() == kPings);
        CHECK(std::is_sorted(w.seen->pings[s].begin(), w.seen->pings[s].end()));
        CHECK(w.seen->closes[s].size() == 1);
    }
}

TEST_CASE("a server stopped while a session is at work ends that session once, after its work", "[net]") {
    const auto gate = std::make_shared<Gate>(Gate::Holds::ping);
    World w([](ServerOptions& o) { o.insecure = true; o.io_threads = 2; o.worker_threads = 2; }, gate);
    const std::unique_ptr<Gate, void (*)(Gate*)> open_at_end(gate.get(), [](Gate* g) { g->let_go(); });

    RawClient stuck(w.service->port(), kBound);
    REQUIRE(w.welcomed(stuck));
    RawClient idle(w.service->port(), kBound);
    REQUIRE(w.welcomed(idle));
    REQUIRE(stuck.send_message(protocol::Ping{1}));
    REQUIRE(gate->holding());

    // stop() closes both connections, then waits for the stuck session.
    std::thread stopping([&] { w.service->stop(); });
    std::this_thread::sleep_for(milliseconds(100));
    gate->let_go();
    stopping.join();

    CHECK_FALSE(w.seen->overlapped);
    std::lock_guard lock(w.seen->mutex);
    REQUIRE(w.seen->closes.size() == 2);
    for (const auto& reasons : w.seen->closes) CHECK(reasons == std::vector<std::string>{"server stopping"});
}

TEST_CASE("thread counts that make no sense are refused before the store is touched", "[net]") {
    lindra::test::TempDir dir;
    const auto refused = [&](std::function<void(ServerOptions&)> tweak, const std::string& what) {
        ServerOptions o;
        o.db_path = dir.file("server.db");
        o.insecure = true;
        o.tokens.key_pem = generate_token_key();
        tweak(o);
        try {
            SyncServer server(std::move(o));
        } catch (const Error& e) {
            CHECK(e.code() == Errc::invalid_argument);
            CHECK_THAT(e.what(), Catch::Contains(what));
            return true;
        }
        return false;
    };
    CHECK(refused([](ServerOptions& o) { o.io_threads = 257; }, "io_threads must be at most 256"));
    CHECK(refused([](ServerOptions& o) { o.worker_threads = 100'000; }, "worker_threads must be at most 256"));
    CHECK_FALSE(std::filesystem::exists(dir.file("server.db")));
    // 0 is one per core.
    ServerOptions o;
    o.db_path = dir.file("server.db");
    o.insecure = true;
    o.tokens.key_pem = generate_token_key();
    SyncServer server(std::move(o));
    CHECK(server.port() != 0);
}
