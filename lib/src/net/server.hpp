// A TCP server, TLS unless told otherwise, that runs one Session per
// connection on its own thread.
//
// Thread-safety: construct, port() and stop() from any one thread.
#pragma once

#include "net/handler.hpp"
#include "net/tls.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace lindra::net {

struct ServerConfig {
    std::string host = "127.0.0.1";
    std::uint16_t port = 0;  // 0: any free port
    std::size_t max_frame = protocol::kDefaultMaxFrame;
    std::chrono::milliseconds io_timeout{30'000};    // a frame must arrive or leave within this
    std::chrono::milliseconds idle_timeout{60'000};  // between frames
    std::size_t max_connections = 512;               // more are closed at once
    // The certificate and key; null: plain TCP (SyncServer allows that only
    // when told to be insecure).
    std::shared_ptr<const TlsContext> tls{};
};

// Makes the Session of a new connection; `peer` is "address:port". Null
// refuses the connection: it is closed before the TLS handshake.
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
    // on_close), and joins the thread. Idempotent.
    void stop();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace lindra::net
