// A TCP server, TLS unless told otherwise, that runs one Session per
// connection: its network work on I/O threads (one strand per connection),
// its Session calls on a pool of worker threads (server.cpp, "Threads").
// It keeps one peer from crowding out the
// rest (DESIGN §9, exhaustion): a cap per peer address beside the global
// one, a deadline for the TLS handshake and Hello, frames that must keep
// arriving at a minimum rate, and, over the global cap, connections that
// have not authenticated closed before any that have.
//
// Thread-safety: construct, port() and stop() from any one thread, never
// from a Session call or a callback of the server's (stop() joins them).
#pragma once

#include "net/handler.hpp"
#include "net/tls.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace lindra::net {

// Connections the server turned away or cut short since its last report.
struct Turnaways {
    std::uint64_t over_address_cap = 0;  // refused: their peer address held its share already
    std::uint64_t over_cap = 0;          // refused: every slot held by an authenticated session
    std::uint64_t shed = 0;              // closed before authenticating, to make room for a newer one
    std::uint64_t late_hello = 0;        // closed for not finishing the TLS handshake and Hello in time
    std::string last_address{};          // the last address over its cap (for the operator, not lindra's log)

    std::uint64_t total() const noexcept { return over_address_cap + over_cap + shed + late_hello; }
};

struct ServerConfig {
    std::string host = "127.0.0.1";  // "::" takes IPv4 and IPv6 alike
    std::uint16_t port = 0;          // 0: any free port
    std::size_t max_frame = protocol::kDefaultMaxFrame;
    // Where WebSocket clients (wss://host/PATH) upgrade; raw frames come on
    // the same port, told apart by their first bytes.
    std::string websocket_path = "/lindra";
    std::chrono::milliseconds io_timeout{30'000};     // a frame's floor: see min_frame_rate
    std::size_t min_frame_rate = 16 * 1024;           // bytes per second, once a frame has begun
    std::chrono::milliseconds idle_timeout{60'000};   // between frames
    std::chrono::milliseconds hello_timeout{10'000};  // from accepting to an authenticated session
    // Threads that move bytes, and threads that run the sessions (their
    // store work); 0: one per core.
    std::size_t io_threads = 0;
    std::size_t worker_threads = 0;
    std::size_t max_connections = 512;
    std::size_t max_connections_per_address = 32;  // an IPv4 address, or an IPv6 /64
    // The certificate and key; null: plain TCP (SyncServer allows that only
    // when told to be insecure).
    std::shared_ptr<const TlsContext> tls{};
    // Told what was turned away: at once for the first one, then at most
    // once per `report_interval`, and at stop(). Runs on a worker thread,
    // possibly at the same time as a Session call.
    std::function<void(const Turnaways&)> on_turnaways{};
    // Told of each connection turned away as it happens, for counters
    // (the report above is for logs): on an I/O thread, so it must only
    // count.
    std::function<void(const Turnaways&)> on_turned_away{};
    std::chrono::milliseconds report_interval{60'000};
};

// Makes the Session of a new connection; `peer` is "address:port". Null
// refuses the connection: it is closed before the TLS handshake. Runs on an
// I/O thread, one call at a time: it must not block.
using SessionFactory = std::function<std::unique_ptr<Session>(const std::string& peer)>;

class Server {
public:
    // Binds and starts accepting; throws lindra::Error if the address
    // cannot be bound.
    Server(ServerConfig config, SessionFactory factory);
    ~Server();  // stop()
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    std::uint16_t port() const noexcept;
    // Stops accepting, closes every connection (each Session sees
    // on_close, after its call in progress if any), and joins the threads.
    // Idempotent.
    void stop();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace lindra::net
