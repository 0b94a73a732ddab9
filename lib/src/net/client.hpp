// One client connection: connect (and TLS handshake, unless plain TCP),
// send the Session's first frames, then answer frames until the Session is
// done.
//
// Thread-safety: cancel() from any thread; the rest runs on the io_context.
#pragma once

#include "net/handler.hpp"
#include "net/tls.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace boost::asio {
class io_context;
}

namespace lindra::net {

struct ClientConfig {
    std::string host = "127.0.0.1";
    std::uint16_t port = 0;
    std::size_t max_frame = protocol::kDefaultMaxFrame;
    std::chrono::milliseconds connect_timeout{10'000};  // resolving, connecting and the TLS handshake
    std::chrono::milliseconds io_timeout{30'000};
    // An HTTP proxy to reach the server through (CONNECT), if any.
    struct Proxy {
        std::string host{};
        std::uint16_t port = 0;
        std::string authorization{};  // the Proxy-Authorization value, or empty
        std::string fix{};            // where its settings come from, for messages ("--proxy", "https_proxy")
    };
    std::optional<Proxy> proxy{};
    // Non-empty: frames travel as WebSocket messages, upgrading at this
    // path (wss:// or, without TLS, ws://).
    std::string websocket_path{};
    // The CAs to trust; null: plain TCP.
    std::shared_ptr<const TlsContext> tls{};
    std::string server_name{};       // what the certificate must name; empty: host
    std::vector<SpkiDigest> pins{};  // if any, the server's key must match one
    // The session to resume and keep, shared by the rounds of one client; null: none.
    std::shared_ptr<TlsSessions> sessions{};
};

// A client Session also says what to send first and when it is done.
class ClientSession : public Session {
  public:
    virtual std::vector<std::string> first_frames() = 0;
    // True once the exchange is complete; the connection is then closed.
    virtual bool done() const = 0;
};

enum class ClientEnd {
    done,            // the session finished
    connect_failed,  // no connection (refused, unreachable, timed out, cut during the handshake)
    tls_failed,      // the server's certificate, key or TLS version was refused
    broken,          // connected, then the peer closed, reset or timed out
    cancelled,
};

struct ClientOutcome {
    ClientEnd end = ClientEnd::done;
    std::string message{};
    Counters counters{};
    bool tls_resumed = false;  // the handshake resumed a session of an earlier round
};

class ClientConnection {
  public:
    // Starts on `io`; `finished` runs once, on `io`, when it ends. The
    // session must outlive the connection's end.
    static std::shared_ptr<ClientConnection> start(boost::asio::io_context& io, ClientConfig config,
                                                   ClientSession& session, std::function<void(ClientOutcome)> finished);
    virtual ~ClientConnection() = default;
    virtual void cancel() = 0;
};

// An io_context run by a thread of its own, for clients that bring none.
class IoThread {
  public:
    IoThread();
    ~IoThread();  // stops and joins
    IoThread(const IoThread&) = delete;
    IoThread& operator=(const IoThread&) = delete;
    boost::asio::io_context& io() noexcept;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// Whether the calling thread is running `io` (where blocking on it would
// deadlock).
bool running_in(boost::asio::io_context& io) noexcept;

}  // namespace lindra::net
