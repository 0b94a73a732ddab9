#include "net/server.hpp"

#include "net/connection.hpp"

#include <lindra/error.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>

#include <mutex>
#include <set>
#include <thread>

namespace lindra::net {

using detail::Connection;
using detail::is_peer_close;
namespace asio = detail::asio;
using tcp = detail::tcp;

// How long a connection that is done waits for the peer's close_notify.
constexpr std::chrono::milliseconds kCloseNotifyWait{1'000};

struct Server::Impl {
    ServerConfig config;
    SessionFactory factory;
    std::optional<asio::ssl::context> tls;  // from config.tls
    asio::io_context io{1};
    tcp::acceptor acceptor{io};
    std::uint16_t port = 0;
    std::thread thread;

    std::mutex mutex;                            // guards live and stopping
    std::set<std::shared_ptr<Connection>> live;  // for stop() to close them
    bool stopping = false;

    asio::awaitable<void> accept_loop() {
        for (;;) {
            tcp::socket socket(asio::make_strand(io));
            try {
                co_await acceptor.async_accept(socket, asio::use_awaitable);
            } catch (const boost::system::system_error&) {
                co_return;  // the acceptor was closed by stop()
            }
            boost::system::error_code ec;
            const auto remote = socket.remote_endpoint(ec);
            const std::string peer = ec ? "unknown" : remote.address().to_string() + ":" + std::to_string(remote.port());
            auto conn = tls ? std::make_shared<Connection>(std::move(socket), *tls)
                            : std::make_shared<Connection>(std::move(socket));
            conn->no_delay();
            std::unique_ptr<Session> session;
            {
                std::lock_guard lock(mutex);
                if (stopping) co_return;
                if (live.size() < config.max_connections) session = factory(peer);
                if (!session) {
                    conn->close();  // over the cap, or refused: no session, no buffer
                    continue;
                }
                live.insert(conn);
            }
            asio::co_spawn(conn->socket().get_executor(), serve(conn, std::move(session)), asio::detached);
        }
    }

    asio::awaitable<void> serve(std::shared_ptr<Connection> conn, std::unique_ptr<Session> session) {
        std::string reason;
        bool handshaken = !conn->tls();
        try {
            if (!handshaken) {
                // A peer gets the io timeout for the whole handshake, so one
                // that connects and stalls holds no slot for long.
                conn->arm(config.io_timeout);
                co_await conn->handshake(asio::ssl::stream_base::server);
                conn->disarm();
                handshaken = true;
            }
            for (bool close = false; !close;) {
                Reply reply;
                try {
                    const auto body = co_await conn->read_frame(std::min(config.max_frame, session->max_frame()),
                                                                config.idle_timeout, config.io_timeout);
                    reply = session->on_frame(body);
                } catch (const protocol::ProtocolError& e) {
                    reply = session->on_bad_frame(e);
                    reply.close = true;
                    reason = e.what();
                }
                if (reply.delay.count() > 0) {
                    asio::steady_timer pause(conn->socket().get_executor(), reply.delay);
                    co_await pause.async_wait(asio::use_awaitable);
                }
                co_await conn->write_frames(reply.frames, config.io_timeout, reply.cut_after_bytes.value_or(SIZE_MAX));
                close = reply.close || reply.cut_after_bytes;
            }
            if (reason.empty()) reason = "closed by the server";
        } catch (const boost::system::system_error& e) {
            conn->disarm();
            reason = conn->timed_out()                            ? "timed out"
                     : is_peer_close(e.code())                    ? "closed by the peer"
                     : e.code() == asio::error::operation_aborted ? "server stopping"
                     : !handshaken                                ? conn->tls_failure(e.code())
                                                                  : e.code().message();
            if (!handshaken) reason = "TLS handshake failed: " + reason;
        } catch (const std::exception& e) {
            reason = std::string("internal error: ") + e.what();
        }
        co_await conn->shutdown(std::min(config.io_timeout, kCloseNotifyWait));
        {
            std::lock_guard lock(mutex);
            live.erase(conn);
        }
        session->on_close(reason);
    }
};

Server::Server(ServerConfig config, SessionFactory factory) : impl_(std::make_unique<Impl>()) {
    impl_->config = std::move(config);
    impl_->factory = std::move(factory);
    if (impl_->config.tls) impl_->tls.emplace(impl_->config.tls->new_reference());
    try {
        const tcp::endpoint endpoint(asio::ip::make_address(impl_->config.host), impl_->config.port);
        impl_->acceptor.open(endpoint.protocol());
        impl_->acceptor.set_option(tcp::acceptor::reuse_address(true));
        impl_->acceptor.bind(endpoint);
        impl_->acceptor.listen();
        impl_->port = impl_->acceptor.local_endpoint().port();
    } catch (const boost::system::system_error& e) {
        throw Error(Errc::invalid_argument,
                    "cannot listen on " + impl_->config.host + ":" + std::to_string(impl_->config.port) + ": " +
                        e.code().message());
    }
    asio::co_spawn(impl_->io, impl_->accept_loop(), asio::detached);
    impl_->thread = std::thread([this] { impl_->io.run(); });
}

Server::~Server() { stop(); }

std::uint16_t Server::port() const noexcept { return impl_->port; }

void Server::stop() {
    if (!impl_->thread.joinable()) return;
    asio::post(impl_->io, [this] {
        boost::system::error_code ignored;
        impl_->acceptor.close(ignored);
        std::lock_guard lock(impl_->mutex);
        impl_->stopping = true;
        // Closing makes each session's pending read fail; it then ends
        // normally and reports on_close.
        for (const auto& conn : impl_->live) asio::post(conn->socket().get_executor(), [conn] { conn->close(); });
    });
    impl_->thread.join();  // run() returns once every coroutine has finished
}

}  // namespace lindra::net
