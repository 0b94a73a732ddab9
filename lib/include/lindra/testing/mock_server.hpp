// lindra::testing::MockServer — the real SyncServer for an app's
// integration tests: in-process on 127.0.0.1, a port of its own, a
// temporary store, TLS with a certificate it makes (or plain TCP), plus
// seeding, inspection, and a scripted fault plan.
//
//     lindra::testing::MockServer mock;
//     Id ola;
//     mock.seed([&](lindra::Writes& w) { ola = w.register_person("Ola", lindra::Profession::nurse); });
//     lindra::Replica tablet(path);
//     mock.faults().lose_push_ack();       // the server commits, the ack never arrives
//     lindra::SyncClient client(tablet, mock.client_options(mock.token({.user = "ola", .person = ola})));
//     CHECK(client.sync().outcome == lindra::SyncOutcome::offline);
//     CHECK(client.sync().ok());           // the retry is acknowledged, not applied twice
//
// Link the CMake target lindra::testing. Everything here is for tests: the
// store and its certificate live in a temporary folder removed with the
// MockServer.
#pragma once

#include <lindra/replica.hpp>
#include <lindra/server.hpp>
#include <lindra/sync.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace lindra::testing {

// Protocol messages a fault can wait for: the first four come from the
// client, the rest from the server.
enum class Frame { any, hello, push, pull, ping, welcome, push_ack, pull_batch, pong, error };
std::string_view to_string(Frame frame);

// The error codes of the protocol (SyncResult::error_code spells them).
enum class ErrorCode { unauthenticated, permission_denied, invalid_argument, frame_too_large,
                       unsupported_version, rate_limited, internal };

// One scripted fault: when the `nth` frame of kind `frame` passes from now
// on (counting over all connections), `action` happens to it.
struct Fault {
    enum class Action {
        drop,       // close the connection instead of passing the frame
        delay,      // pass it after `delay`
        duplicate,  // pass it twice
        truncate,   // pass its length and `keep_bytes` bytes of it, then close
        error,      // answer with Error{code, message, retry_after} instead, then close
    };
    Frame frame = Frame::any;
    int nth = 1;
    Action action = Action::drop;
    std::chrono::milliseconds delay{};
    std::size_t keep_bytes = 0;
    ErrorCode code = ErrorCode::internal;
    std::string message = "fault injected by the mock server";
    std::chrono::milliseconds retry_after{};
};

// What happens to a client's frame: the server never sees a dropped one,
// handles a duplicated one twice (a retry that raced the original), reads a
// truncated one as a frame cut off by the peer, and answers an error
// without handling it. What happens to a server's frame happens after the
// server handled what it answers: a dropped PushAck is a push the server
// committed but the client never heard of.
//
// Thread-safety: every member function may be called from any thread,
// while clients sync.
class FaultPlan {
public:
    FaultPlan& add(Fault fault);
    // Shorthands for add().
    FaultPlan& drop(Frame frame, int nth = 1);
    // The next `frames` frames (either way) pass; then the connection drops.
    FaultPlan& drop_after(int frames);
    FaultPlan& lose_push_ack(int nth = 1);
    FaultPlan& delay(Frame frame, std::chrono::milliseconds by, int nth = 1);
    FaultPlan& duplicate(Frame frame, int nth = 1);
    FaultPlan& truncate(Frame frame, std::size_t keep_bytes, int nth = 1);
    FaultPlan& fail(Frame frame, ErrorCode code, std::chrono::milliseconds retry_after = {}, int nth = 1);
    // The next `times` Hellos are refused as if their token were bad.
    FaultPlan& reject_auth(int times = 1);
    // The next `count` connections are closed as soon as they are accepted.
    FaultPlan& refuse_connections(int count);
    // Every connection accepted within `period` from now is closed at once.
    FaultPlan& refuse_connections_for(std::chrono::milliseconds period);
    // Forgets every fault not yet fired.
    void clear();
    // Faults that have fired so far, and those still waiting.
    int fired() const;
    int pending() const;

    struct State;
    explicit FaultPlan(std::shared_ptr<State> state) : state_(std::move(state)) {}

private:
    std::shared_ptr<State> state_;
};

// One entry of a Push the server received: one local write of a device.
struct PushedWrite {
    Id device{};
    std::int64_t seq = 0;
    std::vector<Change> changes{};
};

struct MockServerOptions {
    bool tls = true;  // false: plain TCP (SyncOptions::insecure on the clients)
    // The server's clock; tests of expiry and clock skew set it.
    std::function<std::int64_t()> wall_clock_ms{};
    // Adjusts the real server's options (limits, timeouts) before each start.
    std::function<void(ServerOptions&)> tweak{};
    // Where the server keeps its store: empty for a SQLite file in the
    // mock's temporary folder, or a PostgreSQL connection string (a
    // database of the app's test PostgreSQL, which the mock leaves behind).
    std::string store{};
};

class MockServer {
public:
    // Starts the server; throws lindra::Error if it cannot.
    explicit MockServer(MockServerOptions options = {});
    ~MockServer();  // stop()
    MockServer(const MockServer&) = delete;
    MockServer& operator=(const MockServer&) = delete;

    std::uint16_t port() const noexcept;
    // Options for a SyncClient of this server: host, port, TLS trust (or
    // plain TCP) and `token`, with timeouts short enough for tests.
    SyncOptions client_options(std::string token) const;
    // The CA that signed the server's certificate (PEM); empty without TLS.
    const std::string& ca_pem() const noexcept;

    // ---- seeding ----
    // A token for `claims`, signed with the server's key.
    std::string token(const TokenClaims& claims, std::int64_t now_s = 0) const;
    // A token for an admin (every row but certificates), for back-office setups.
    std::string admin_token() const;
    // Runs `writes` as one batch on the mock's own back-office device (an
    // admin) and syncs it to the server. Throws lindra::Error if the server
    // refuses any of it.
    void seed(const std::function<void(Writes&)>& writes);

    // ---- inspection ----
    // The server's rows, through the typed queries of a read-only replica
    // view of its store (writes belong to sync rounds and seed()). On
    // PostgreSQL the view is a replica that pulls every row as an admin
    // on each call.
    const Replica& rows();
    // Every write pushed to the server so far, in order of arrival; a
    // retried push appears twice (the server applied it once).
    std::vector<PushedWrite> pushed() const;
    std::vector<PushedWrite> pushed_by(const Id& device) const;
    // Frames of a kind seen so far (Frame::any: all), and connections accepted.
    std::size_t frames(Frame frame) const;
    std::size_t connections() const;
    // One line per session the server ended (its log).
    std::vector<std::string> log() const;

    // ---- faults and lifecycle ----
    FaultPlan& faults() noexcept;
    // Stops the server and starts it again on the same port and store,
    // as a crash and restart would (connections are cut).
    void restart();
    // Stops accepting until start(); connections are refused.
    void stop();
    void start();
    bool running() const noexcept;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace lindra::testing
