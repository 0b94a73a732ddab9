#include "net/client.hpp"

#include "net/connection.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>

#include <thread>

namespace lindra::net {
namespace {

using detail::Clock;
using detail::Connection;
using detail::is_peer_close;
namespace asio = detail::asio;
namespace beast = detail::beast;
namespace websocket = detail::websocket;
using tcp = detail::tcp;

// How long a client that is done waits for the server's close_notify.
constexpr std::chrono::milliseconds kCloseNotifyWait{1'000};

// The server's certificate or key was refused, or the server does not
// speak what the client does (TLS, WebSocket): retrying will not help.
struct TlsRefused : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// The proxy refused or botched the CONNECT: the round cannot reach the
// server through it.
struct ProxyRefused : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// The largest proxy answer to CONNECT read (a status line and headers).
constexpr std::size_t kProxyAnswerLimit = 16 * 1024;

// What the server answered instead of a WebSocket upgrade.
struct UpgradeRefused : std::runtime_error {
    using std::runtime_error::runtime_error;
};

std::shared_ptr<Connection> make_connection(const asio::strand<asio::io_context::executor_type>& strand,
                                            std::optional<asio::ssl::context>& tls) {
    if (tls) return std::make_shared<Connection>(tcp::socket(strand), *tls);
    return std::make_shared<Connection>(tcp::socket(strand));
}

class ClientConnectionImpl final : public ClientConnection, public std::enable_shared_from_this<ClientConnectionImpl> {
  public:
    ClientConnectionImpl(asio::io_context& io, ClientConfig config, ClientSession& session,
                         std::function<void(ClientOutcome)> finished)
        : strand_(asio::make_strand(io)),
          config_(std::move(config)),
          session_(session),
          finished_(std::move(finished)),
          resolver_(strand_),
          tls_(config_.tls ? std::optional<asio::ssl::context>(config_.tls->new_reference()) : std::nullopt),
          conn_(make_connection(strand_, tls_)) {
        conn_->on_timeout([this] { resolver_.cancel(); });
    }

    void run() { asio::co_spawn(strand_, body(shared_from_this()), asio::detached); }

    void cancel() override {
        asio::post(strand_, [self = shared_from_this()] {
            self->cancelled_ = true;
            self->resolver_.cancel();
            self->conn_->close();
        });
    }

  private:
    asio::awaitable<void> body(std::shared_ptr<ClientConnectionImpl> self) {
        ClientOutcome out;
        out.end = ClientEnd::connect_failed;
        std::string reason;
        bool handshaking = false;
        bool clean = false;  // no error: the connection can still carry a close_notify
        try {
            conn_->arm(config_.connect_timeout);
            const auto& dial_host = config_.proxy ? config_.proxy->host : config_.host;
            const auto dial_port = config_.proxy ? config_.proxy->port : config_.port;
            try {
                const auto endpoints =
                    co_await resolver_.async_resolve(dial_host, std::to_string(dial_port), asio::use_awaitable);
                co_await asio::async_connect(conn_->socket(), endpoints, asio::use_awaitable);
            } catch (const boost::system::system_error& e) {
                if (!config_.proxy || conn_->timed_out() || cancelled_) throw;
                throw ProxyRefused("the proxy " + dial_host + ":" + std::to_string(dial_port) + " is unreachable (" +
                                   e.code().message() + ")");
            }
            conn_->no_delay();
            if (config_.proxy) co_await proxy_connect();
            if (auto* tls = conn_->tls()) {
                // Within the connect deadline: a server that accepts and
                // stalls is as unreachable as one that does not answer.
                try {
                    expect_server(tls->native_handle(), server_name());
                } catch (const std::exception& e) {
                    throw TlsRefused(e.what());
                }
                if (config_.sessions) config_.sessions->offer(tls->native_handle(), peer());
                handshaking = true;
                co_await conn_->handshake(asio::ssl::stream_base::client);
                handshaking = false;
                if (!matches_pin(tls->native_handle(), config_.pins))
                    throw TlsRefused("the server's key matches no pin");
                out.tls_resumed = TlsSessions::resumed(tls->native_handle());
            }
            if (!config_.websocket_path.empty()) co_await websocket_handshake();
            conn_->disarm();
            out.end = ClientEnd::broken;

            const detail::Pace pace{.idle = config_.io_timeout, .floor = config_.io_timeout};
            co_await conn_->write_frames(session_.first_frames(), pace);
            if (!conn_->tls() && !conn_->websocket()) {
                // A TLS server's alert where a frame should be: say what
                // is wrong instead of "closed by the server".
                co_await conn_->read_at_least(2, Clock::now() + config_.io_timeout,
                                              [](auto b) { return b.size() >= 2; });
                if (detail::looks_like_tls(conn_->buffered()))
                    throw TlsRefused("the server speaks TLS: drop --insecure (or use a tls:// or wss:// URL)");
            }
            while (!session_.done()) {
                const auto body = co_await conn_->read_frame(config_.max_frame, pace);
                const Reply reply = session_.on_frame(body);
                co_await conn_->write_frames(reply.frames, pace);
                if (reply.close) break;
            }
            out.end = session_.done() ? ClientEnd::done : ClientEnd::broken;
            reason = session_.done() ? "done" : "closed by the client";
            clean = true;
            // The session's ticket came after the handshake, so by now.
            if (auto* tls = conn_->tls(); tls && config_.sessions) config_.sessions->keep(tls->native_handle(), peer());
        } catch (const protocol::ProtocolError& e) {
            // A server that closes mid-frame broke the connection; it did not
            // send anything unreadable.
            if (!conn_->peer_closed_mid_frame()) (void)session_.on_bad_frame(e);
            reason = e.what();
        } catch (const boost::system::system_error& e) {
            conn_->disarm();
            // A handshake cut off by the network is "try again later"; one
            // that TLS refused is not.
            if (handshaking && !conn_->timed_out() && detail::is_tls_error(e.code())) {
                out.end = ClientEnd::tls_failed;
                reason = conn_->tls_failure(e.code());
            } else {
                reason = conn_->timed_out()        ? "timed out"
                         : is_peer_close(e.code()) ? "closed by the server"
                                                   : e.code().message();
                if (handshaking) reason += " during the TLS handshake";
            }
        } catch (const TlsRefused& e) {
            conn_->disarm();
            out.end = ClientEnd::tls_failed;
            reason = e.what();
        } catch (const ProxyRefused& e) {
            conn_->disarm();
            out.end = ClientEnd::connect_failed;
            reason = e.what();
        } catch (const UpgradeRefused& e) {
            conn_->disarm();
            out.end = ClientEnd::connect_failed;
            reason = e.what();
        } catch (const std::exception& e) {
            reason = e.what();
        }
        if (cancelled_ && out.end != ClientEnd::done) {
            out.end = ClientEnd::cancelled;
            reason = "cancelled";
        }
        // The outcome is settled; a close_notify that goes unanswered no
        // longer changes it.
        if (clean) co_await conn_->shutdown(std::min(config_.io_timeout, kCloseNotifyWait));
        conn_->close();
        out.message = reason;
        out.counters = conn_->counters();
        session_.on_close(reason);
        finished_(std::move(out));
        (void)self;
    }

    // "host:port" as a request target or Host header: IPv6 in brackets.
    std::string authority() const {
        return (config_.host.find(':') != std::string::npos ? "[" + config_.host + "]" : config_.host) + ":" +
               std::to_string(config_.port);
    }

    // The tunnel through the proxy (RFC 9110, CONNECT), within the connect
    // deadline: lindra's own, as Beast has none; Beast only parses the
    // answer, bounded to kProxyAnswerLimit. Throws ProxyRefused saying
    // what went wrong and what to do.
    asio::awaitable<void> proxy_connect() {
        const auto& proxy = *config_.proxy;
        const std::string where = "the proxy " + proxy.host + ":" + std::to_string(proxy.port);
        std::string request = "CONNECT " + authority() + " HTTP/1.1\r\nHost: " + authority() + "\r\n";
        if (!proxy.authorization.empty()) request += "Proxy-Authorization: " + proxy.authorization + "\r\n";
        request += "User-Agent: lindra\r\n\r\n";
        auto& socket = conn_->socket();
        beast::flat_buffer buffer(kProxyAnswerLimit);
        beast::http::response_parser<beast::http::empty_body> parser;
        parser.header_limit(kProxyAnswerLimit);
        boost::system::error_code ec;
        co_await asio::async_write(socket, asio::buffer(request), asio::redirect_error(asio::use_awaitable, ec));
        if (!ec)
            co_await beast::http::async_read_header(socket, buffer, parser,
                                                    asio::redirect_error(asio::use_awaitable, ec));
        if (ec) {
            if (conn_->timed_out()) throw ProxyRefused(where + " did not answer CONNECT in time");
            if (ec == beast::http::error::end_of_stream || ec == asio::error::eof ||
                ec == asio::error::connection_reset || ec == beast::http::error::partial_message)
                throw ProxyRefused(where + " closed the connection before answering CONNECT");
            if (ec == beast::http::error::header_limit || ec == beast::http::error::buffer_overflow)
                throw ProxyRefused(where + " answered CONNECT with more than " +
                                   std::to_string(kProxyAnswerLimit / 1024) + " KiB of headers");
            if (ec.category() == beast::http::make_error_code(beast::http::error::bad_version).category())
                throw ProxyRefused(where + " answered CONNECT with something that is not HTTP (" + ec.message() +
                                   "): is " + proxy.host + ":" + std::to_string(proxy.port) + " an HTTP proxy?");
            throw boost::system::system_error(ec);
        }
        const auto& answer = parser.get();
        const unsigned status = answer.result_int();
        const std::string said = std::to_string(status) + " " + std::string(answer.reason());
        if (status == 407) {
            if (proxy.authorization.empty())
                throw ProxyRefused(where + " wants credentials (HTTP " + said + "): give them in " + proxy.fix +
                                   " as http://user:password@" + proxy.host + ":" + std::to_string(proxy.port));
            throw ProxyRefused(where + " refused the credentials (HTTP " + said + "): check the user:password in " +
                               proxy.fix);
        }
        if (status == 403)
            throw ProxyRefused(where + " refused CONNECT to " + authority() + " (HTTP " + said +
                               "): ask its operator to allow port " + std::to_string(config_.port) +
                               ", or run the server on 443 and sync over wss://");
        if (status < 200 || status > 299)
            throw ProxyRefused(where + " answered CONNECT to " + authority() + " with HTTP " + said);
        // The tunnel is open; the server speaks only after the client's
        // first bytes, so anything here came from the proxy.
        if (buffer.size() > 0) throw ProxyRefused(where + " sent data after accepting CONNECT: not a clean tunnel");
    }

    // Upgrades the connection to WebSocket, within the connect deadline.
    // The client then pings a server it has waited on for half of
    // io_timeout (Connection::keep_alive); the frame pace still ends a
    // connection quiet for all of it.
    asio::awaitable<void> websocket_handshake() {
        conn_->to_websocket(false);
        conn_->keep_alive(config_.io_timeout / 2);
        websocket::response_type response;
        const bool default_port = config_.port == (conn_->tls() ? 443 : 80);
        const std::string host =
            (config_.host.find(':') != std::string::npos ? "[" + config_.host + "]" : config_.host) +
            (default_port ? "" : ":" + std::to_string(config_.port));
        try {
            co_await std::visit(
                [&](auto& s) -> asio::awaitable<void> {
                    if constexpr (detail::is_websocket<std::decay_t<decltype(s)>>) {
                        s.set_option(websocket::stream_base::timeout{config_.connect_timeout,
                                                                     websocket::stream_base::none(), false});
                        s.set_option(websocket::stream_base::decorator([](websocket::request_type& req) {
                            req.set(beast::http::field::user_agent, "lindra");
                        }));
                        return s.async_handshake(response, host, config_.websocket_path, asio::use_awaitable);
                    } else {
                        throw std::logic_error("not a WebSocket");
                    }
                },
                conn_->stream());
        } catch (const boost::system::system_error& e) {
            if (e.code() == beast::error::timeout) throw boost::system::system_error(asio::error::timed_out);
            if (response.result_int() == 0) throw;
            const auto status = response.result_int();
            // A lindra-server says why in the body's first line.
            std::string said = response.body().substr(0, std::min<std::size_t>(response.body().find('\n'), 200));
            if (!said.empty()) said = " (\"" + said + "\")";
            throw UpgradeRefused("the server answered HTTP " + std::to_string(status) + " " +
                                 std::string(response.reason()) + said + " to the WebSocket upgrade at " +
                                 config_.websocket_path +
                                 (status == 404 ? ": check the URL's path (lindra-server serves /lindra)"
                                                : ": is it a lindra server, or a proxy in the way?"));
        }
    }

    const std::string& server_name() const { return config_.server_name.empty() ? config_.host : config_.server_name; }
    // Whom a TLS session was made with: a session is resumed with no other.
    std::string peer() const { return config_.host + ":" + std::to_string(config_.port) + " " + server_name(); }

    asio::strand<asio::io_context::executor_type> strand_;
    ClientConfig config_;
    ClientSession& session_;
    std::function<void(ClientOutcome)> finished_;
    tcp::resolver resolver_;
    std::optional<asio::ssl::context> tls_;  // from config_.tls
    std::shared_ptr<Connection> conn_;
    bool cancelled_ = false;  // strand only
};

}  // namespace

std::shared_ptr<ClientConnection> ClientConnection::start(asio::io_context& io, ClientConfig config,
                                                          ClientSession& session,
                                                          std::function<void(ClientOutcome)> finished) {
    auto c = std::make_shared<ClientConnectionImpl>(io, std::move(config), session, std::move(finished));
    c->run();
    return c;
}

struct IoThread::Impl {
    asio::io_context io{1};
    asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
    std::thread thread{[this] { io.run(); }};
};

IoThread::IoThread() : impl_(std::make_unique<Impl>()) {}

IoThread::~IoThread() {
    impl_->work.reset();
    impl_->io.stop();
    impl_->thread.join();
}

asio::io_context& IoThread::io() noexcept {
    return impl_->io;
}

bool running_in(asio::io_context& io) noexcept {
    return io.get_executor().running_in_this_thread();
}

}  // namespace lindra::net
