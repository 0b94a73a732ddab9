#include "net/client.hpp"

#include "net/connection.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>

#include <thread>

namespace lindra::net {
namespace {

using detail::Connection;
using detail::is_peer_close;
namespace asio = detail::asio;
using tcp = detail::tcp;

// How long a client that is done waits for the server's close_notify.
constexpr std::chrono::milliseconds kCloseNotifyWait{1'000};

// The server's certificate or key was refused.
struct TlsRefused : std::runtime_error {
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
            const auto endpoints =
                co_await resolver_.async_resolve(config_.host, std::to_string(config_.port), asio::use_awaitable);
            co_await asio::async_connect(conn_->socket(), endpoints, asio::use_awaitable);
            conn_->no_delay();
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
            conn_->disarm();
            out.end = ClientEnd::broken;

            const detail::Pace pace{.idle = config_.io_timeout, .floor = config_.io_timeout};
            co_await conn_->write_frames(session_.first_frames(), pace);
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
