// lindra::SyncServer — the central server the tablets sync with.
//
// The server is itself a lindra replica (the same merge code as the
// tablets) plus a change log that devices pull from by cursor, and the
// highest outbox seq applied per device, so a retried push is acknowledged
// and never applied twice. It listens on its own thread.
//
// Authentication, for now: a list of users with their tokens (the security
// milestone replaces it with signed tokens and scoped authorization).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace lindra {

struct User {
    std::string id{};
    std::string role{};  // coordinator, mentor or candidate
    std::string token{};
};

// Reads a users file: one "user ID ROLE TOKEN" per line, '#' starts a
// comment. Throws lindra::Error naming the line on bad input.
std::vector<User> load_users(const std::string& path);

struct ServerOptions {
    std::string db_path{};
    std::string host = "127.0.0.1";
    std::uint16_t port = 0;  // 0: any free port, see SyncServer::port()
    std::vector<User> users{};
    std::size_t max_frame_bytes = std::size_t{4} << 20;
    // Per message. Larger batches are fewer transactions on both sides (a
    // batch of random-key rows rewrites most of a table's leaf pages);
    // pushes and pulls also stay within half a frame of values.
    std::uint32_t max_push_changes = 50'000;
    std::uint32_t max_pull_changes = 50'000;
    std::chrono::milliseconds io_timeout{30'000};
    std::chrono::milliseconds idle_timeout{60'000};
    std::size_t max_connections = 512;  // further connections are closed at once
    // A pushed change stamped further ahead of the server's clock than this
    // is refused and reported in the PushAck, so a tablet whose clock runs
    // days ahead cannot win every conflict.
    std::chrono::milliseconds max_clock_ahead{std::chrono::hours(24)};
    std::function<std::int64_t()> wall_clock_ms{};
    // One line per session (peer, user, device, what moved, how it ended);
    // never a token or personal data. Called from the server's thread.
    std::function<void(std::string_view)> log{};
};

// Thread-safety: construct, port() and stop() from one thread.
class SyncServer {
public:
    // Opens (creating if needed) the store and starts listening; throws
    // lindra::Error if either fails.
    explicit SyncServer(ServerOptions options);
    ~SyncServer();  // stop()
    SyncServer(const SyncServer&) = delete;
    SyncServer& operator=(const SyncServer&) = delete;

    std::uint16_t port() const noexcept;
    // Closes every connection and waits for the sessions to end. Idempotent.
    void stop();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace lindra
