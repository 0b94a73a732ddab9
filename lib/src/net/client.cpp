#include "net/client.hpp"

#include "net/connection.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/strand.hpp>

#include <thread>

namespace lindra::net {
namespace {

using detail::Connection;
namespace asio = detail::asio;
using tcp = detail::tcp;

class ClientConnectionImpl final : public ClientConnection, public std::enable_shared_from_this<ClientConnectionImpl> {
public:
    ClientConnectionImpl(asio::io_context& io, ClientConfig config, ClientSession& session,
                         std::function<void(ClientOutcome)> finished)
        : strand_(asio::make_strand(io)),
          config_(std::move(config)),
          session_(session),
          finished_(std::move(finished)),
          resolver_(strand_),
          conn_(std::make_shared<Connection>(tcp::socket(strand_))) {
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
        try {
            conn_->arm(config_.connect_timeout);
            const auto endpoints =
                co_await resolver_.async_resolve(config_.host, std::to_string(config_.port), asio::use_awaitable);
            co_await asio::async_connect(conn_->socket(), endpoints, asio::use_awaitable);
            conn_->disarm();
            out.end = ClientEnd::broken;

            co_await conn_->write_frames(session_.first_frames(), config_.io_timeout);
            while (!session_.done()) {
                const auto body = co_await conn_->read_frame(config_.max_frame, config_.io_timeout, config_.io_timeout);
                const Reply reply = session_.on_frame(body);
                co_await conn_->write_frames(reply.frames, config_.io_timeout);
                if (reply.close) break;
            }
            out.end = session_.done() ? ClientEnd::done : ClientEnd::broken;
            reason = session_.done() ? "done" : "closed by the client";
        } catch (const protocol::ProtocolError& e) {
            // A server that closes mid-frame broke the connection; it did not
            // send anything unreadable.
            if (!conn_->peer_closed_mid_frame()) (void)session_.on_bad_frame(e);
            reason = e.what();
        } catch (const boost::system::system_error& e) {
            conn_->disarm();
            reason = conn_->timed_out() ? "timed out" : e.code() == asio::error::eof ? "closed by the server"
                                                                                      : e.code().message();
        } catch (const std::exception& e) {
            reason = e.what();
        }
        if (cancelled_ && out.end != ClientEnd::done) {
            out.end = ClientEnd::cancelled;
            reason = "cancelled";
        }
        conn_->close();
        out.message = reason;
        out.counters = conn_->counters();
        session_.on_close(reason);
        finished_(std::move(out));
        (void)self;
    }

    asio::strand<asio::io_context::executor_type> strand_;
    ClientConfig config_;
    ClientSession& session_;
    std::function<void(ClientOutcome)> finished_;
    tcp::resolver resolver_;
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

asio::io_context& IoThread::io() noexcept { return impl_->io; }

bool running_in(asio::io_context& io) noexcept { return io.get_executor().running_in_this_thread(); }

}  // namespace lindra::net
