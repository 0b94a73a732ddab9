#include "net/admin.hpp"

#include <lindra/error.hpp>

#include <utility>  // Boost 1.74's awaitable.hpp uses std::exchange without including it

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <atomic>
#include <thread>

namespace lindra::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

// A probe or a scrape is small and quick; anything else is not one.
constexpr auto kTimeout = std::chrono::seconds(10);
constexpr std::size_t kMostConnections = 16;
constexpr std::size_t kLargestRequest = 8 * 1024;

}  // namespace

struct AdminServer::Impl {
    asio::io_context io{1};
    tcp::acceptor acceptor{io};
    HttpHandler handler;
    std::atomic<std::size_t> connections{0};
    std::thread thread;
    bool stopped = false;

    asio::awaitable<void> accept() {
        for (;;) {
            boost::system::error_code ec;
            auto socket = co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
            if (ec == asio::error::operation_aborted) co_return;
            if (ec) {
                // Out of file descriptors, say: wait a little rather than spin.
                asio::steady_timer pause(io, std::chrono::milliseconds(100));
                co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
                continue;
            }
            if (connections >= kMostConnections) continue;  // closed: a prober tries again
            ++connections;
            asio::co_spawn(io, serve(beast::tcp_stream(std::move(socket))), [this](std::exception_ptr) {
                --connections;
            });
        }
    }

    asio::awaitable<void> serve(beast::tcp_stream stream) {
        beast::flat_buffer buffer(kLargestRequest);
        http::request_parser<http::empty_body> parser;
        parser.header_limit(kLargestRequest);
        stream.expires_after(kTimeout);
        co_await http::async_read(stream, buffer, parser, asio::use_awaitable);
        const auto& request = parser.get();
        http::response<http::string_body> response;
        response.version(request.version());
        response.keep_alive(false);
        if (request.method() != http::verb::get && request.method() != http::verb::head) {
            response.result(http::status::method_not_allowed);
            response.set(http::field::allow, "GET, HEAD");
            response.set(http::field::content_type, "text/plain; charset=utf-8");
            response.body() = "only GET and HEAD\n";
        } else {
            std::string_view target(request.target().data(), request.target().size());
            target = target.substr(0, target.find('?'));
            HttpResponse answer;
            try {
                answer = handler(target);
            } catch (const std::exception& e) {
                answer = {500, "text/plain; charset=utf-8", std::string(e.what()) + "\n"};
            }
            response.result(answer.status);
            response.set(http::field::content_type, answer.content_type);
            response.set(http::field::cache_control, "no-store");
            response.body() = std::move(answer.body);
        }
        response.prepare_payload();
        if (request.method() == http::verb::head) response.body().clear();
        co_await http::async_write(stream, response, asio::use_awaitable);
        beast::error_code ignored;
        stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    }
};

AdminServer::AdminServer(const std::string& host, std::uint16_t port, HttpHandler handler)
    : impl_(std::make_unique<Impl>()) {
    impl_->handler = std::move(handler);
    boost::system::error_code ec;
    const auto address = asio::ip::make_address(host, ec);
    if (ec) throw Error(Errc::invalid_argument, "the admin listener wants an IP address, not \"" + host + "\"");
    const tcp::endpoint endpoint(address, port);
    auto& a = impl_->acceptor;
    a.open(endpoint.protocol(), ec);
    if (!ec) a.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) a.bind(endpoint, ec);
    if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
    if (ec)
        throw Error(Errc::invalid_argument, "the admin listener cannot listen on " + host + ":" + std::to_string(port) + ": " +
                                        ec.message());
    asio::co_spawn(impl_->io, impl_->accept(), asio::detached);
    impl_->thread = std::thread([this] { impl_->io.run(); });
}

AdminServer::~AdminServer() { stop(); }

std::uint16_t AdminServer::port() const noexcept {
    boost::system::error_code ec;
    const auto endpoint = impl_->acceptor.local_endpoint(ec);
    return ec ? 0 : endpoint.port();
}

void AdminServer::stop() {
    if (impl_->stopped) return;
    impl_->stopped = true;
    impl_->io.stop();
    if (impl_->thread.joinable()) impl_->thread.join();
}

}  // namespace lindra::net
