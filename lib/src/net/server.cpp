#include "net/server.hpp"

#include "net/connection.hpp"

#include <lindra/error.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include <algorithm>
#include <atomic>
#include <list>
#include <mutex>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <vector>

namespace lindra::net {

using detail::Clock;
using detail::Connection;
using detail::is_peer_close;
namespace asio = detail::asio;
namespace beast = detail::beast;
namespace http = beast::http;
namespace websocket = detail::websocket;
using tcp = detail::tcp;

namespace {

// How long a connection that is done waits for the peer's close_notify.
constexpr std::chrono::milliseconds kCloseNotifyWait{1'000};
// How long accepting pauses after a failure that is not the listener
// closing (out of file descriptors, say) before it tries again.
constexpr std::chrono::milliseconds kAcceptRetry{100};

asio::ip::address unmapped(const asio::ip::address& a) {
    if (a.is_v6() && a.to_v6().is_v4_mapped()) return asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
    return a;
}

// What the per-address cap counts a peer as: its IPv4 address (also when it
// arrives mapped into IPv6), or its IPv6 /64, the block a single host or
// subscriber usually holds; counting single IPv6 addresses would let one
// host take 2^64 shares.
std::string address_key(const asio::ip::address& address) {
    const auto a = unmapped(address);
    if (a.is_v4()) return a.to_string();
    auto bytes = a.to_v6().to_bytes();
    std::fill(bytes.begin() + 8, bytes.end(), 0);
    return asio::ip::address_v6(bytes).to_string() + "/64";
}

// "address:port", "[v6 address]:port".
std::string peer_name(const tcp::endpoint& e) {
    const auto a = unmapped(e.address());
    return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(e.port());
}

// A thread count from the config: 0 is one per core.
std::size_t threads_for(std::size_t configured) {
    if (configured > 0) return configured;
    return std::max(1u, std::thread::hardware_concurrency());
}

// What a peer that does not speak TLS is told on a TLS port (as a frame
// when it sent one, as HTTP when it sent HTTP).
constexpr const char* kSpeaksTls =
    "this server speaks TLS and the client did not: drop --insecure (or use a tls:// or wss:// URL)";

// An HTTP request that does not lead to a WebSocket session, and the answer
// it got.
struct HttpRefused : std::runtime_error {
    using std::runtime_error::runtime_error;
};

bool starts_http(std::span<const std::uint8_t> bytes) {
    constexpr std::string_view get = "GET ";
    const std::size_t n = std::min(bytes.size(), get.size());
    return std::equal(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n), get.begin());
}

// Whether the first bytes tell already what the peer speaks: "GET " (HTTP),
// or anything else (raw frames) once they differ from it.
bool told(std::span<const std::uint8_t> bytes) {
    return bytes.size() >= 4 || !starts_http(bytes);
}

}  // namespace

// Threads. The io_context runs on config.io_threads threads. Each
// connection's socket, timer and serve() coroutine live on a strand of their
// own; the accept loop, the listener and the report timer on
// `accept_strand`. Every Session call but the two getters (max_frame,
// authenticated) runs on the worker pool while the connection's coroutine
// waits for it, then resumes on the connection's strand: store work never
// runs on an I/O thread, and one session's calls never overlap and keep the
// order of its frames (the next frame is read only after the last reply was
// written). The bookkeeping shared by the accept loop and every connection
// (`live` and the counts below it) is guarded by `mutex`, held briefly and
// never across an await or a call out.
struct Server::Impl {
    Impl(ServerConfig c, SessionFactory f)
        : config(std::move(c)), factory(std::move(f)), io(static_cast<int>(threads_for(config.io_threads))) {}

    ServerConfig config;
    SessionFactory factory;
    std::optional<asio::ssl::context> tls;  // from config.tls
    asio::io_context io;
    asio::strand<asio::io_context::executor_type> accept_strand{io.get_executor()};
    tcp::acceptor acceptor{accept_strand};
    std::uint16_t port = 0;
    std::vector<std::thread> threads;          // run io
    std::optional<asio::thread_pool> workers;  // runs the sessions
    std::atomic<bool> stopped{false};          // stop() has closed the connections

    // Runs f() on the worker pool; the calling coroutine resumes on its own
    // strand with f's result, or f's exception.
    template <class F>
    asio::awaitable<std::invoke_result_t<F&>> on_worker(F f) {
        using T = std::invoke_result_t<F&>;
        // Outstanding work on the I/O context while the call is away: else
        // its threads may run out of work and return (stop()), dropping
        // this coroutine before the session's on_close.
        const auto busy = asio::make_work_guard(io);
        co_return co_await asio::co_spawn(
            workers->get_executor(), [f = std::move(f)]() mutable -> asio::awaitable<T> { co_return f(); },
            asio::use_awaitable);
    }

    // Hands a report to the operator's callback on the worker pool: it may
    // write to a slow log, which must not hold an I/O thread.
    void report(Turnaways t) {
        if (!config.on_turnaways || t.total() == 0) return;
        asio::post(*workers, [this, t = std::move(t)] { config.on_turnaways(t); });
    }

    // A connection that has a session, oldest first.
    struct Live {
        std::shared_ptr<Connection> conn;
        std::string address;  // address_key() of its peer
        bool authenticated = false;
        bool shed = false;  // closed to make room, still ending
    };

    std::mutex mutex;  // guards everything below, report_timer included
    std::list<Live> live;
    std::unordered_map<std::string, std::size_t> per_address;  // live connections by address_key()
    std::size_t shedding = 0;                                  // entries of `live` with shed set
    bool stopping = false;
    Turnaways unreported;
    std::optional<Clock::time_point> last_report;
    asio::steady_timer report_timer{accept_strand};
    bool report_armed = false;

    // What to report now, if anything (mutex held). Turnaways are reported
    // at once when none were for report_interval, else gathered until that
    // much time has passed since the last report: an attack is logged when
    // it starts, then as a count per interval, never a line per connection.
    std::optional<Turnaways> report_due() {
        if (unreported.total() == 0 || !config.on_turnaways) return std::nullopt;
        const auto now = Clock::now();
        if (!last_report || now - *last_report >= config.report_interval) {
            last_report = now;
            return std::exchange(unreported, {});
        }
        if (!report_armed && !stopping) {
            report_armed = true;
            report_timer.expires_at(*last_report + config.report_interval);
            report_timer.async_wait([this](const boost::system::error_code& ec) {
                if (ec) return;  // stop() reports what is left
                std::optional<Turnaways> due;
                {
                    std::lock_guard lock(mutex);
                    report_armed = false;
                    due = report_due();
                }
                if (due) report(std::move(*due));
            });
        }
        return std::nullopt;
    }

    // Counts a connection turned away (mutex held): in the next report, and
    // in `now`, for on_turned_away once the mutex is released.
    void count(std::uint64_t Turnaways::*what, Turnaways& now) {
        ++(unreported.*what);
        ++(now.*what);
    }
    // On the accept loop's coroutine: a throwing callback must not end it.
    void tell(const Turnaways& now) noexcept {
        if (!config.on_turned_away || now.total() == 0) return;
        try {
            config.on_turned_away(now);
        } catch (...) {
            // A count lost; connections go on being accepted.
        }
    }

    // Closes the oldest connection that has not authenticated, to make room
    // (mutex held); false if every one has.
    bool shed_one(Turnaways& now) {
        for (auto& c : live) {
            if (c.authenticated || c.shed) continue;
            c.shed = true;
            ++shedding;
            count(&Turnaways::shed, now);
            asio::post(c.conn->socket().get_executor(), [conn = c.conn] { conn->close(); });
            return true;
        }
        return false;
    }

    asio::awaitable<void> accept_loop() {
        for (;;) {
            tcp::socket socket(asio::make_strand(io));
            boost::system::error_code ec;
            co_await acceptor.async_accept(socket, asio::redirect_error(asio::use_awaitable, ec));
            if (ec) {
                if (!acceptor.is_open()) co_return;  // closed by stop()
                asio::steady_timer pause(accept_strand, kAcceptRetry);
                co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
                continue;
            }
            const auto remote = socket.remote_endpoint(ec);
            if (ec) continue;  // already gone
            const std::string address = address_key(remote.address());
            std::shared_ptr<Connection> conn;
            std::unique_ptr<Session> session;
            std::list<Live>::iterator entry;
            std::optional<Turnaways> due;
            Turnaways now;
            {
                std::lock_guard lock(mutex);
                if (stopping) co_return;
                const auto held = per_address.find(address);
                if (held != per_address.end() && held->second >= config.max_connections_per_address) {
                    count(&Turnaways::over_address_cap, now);
                    unreported.last_address = address;
                } else if (live.size() - shedding >= config.max_connections && !shed_one(now)) {
                    count(&Turnaways::over_cap, now);
                } else {
                    // No TLS state, buffer or session for a connection that
                    // is refused.
                    conn = tls ? std::make_shared<Connection>(std::move(socket), *tls)
                               : std::make_shared<Connection>(std::move(socket));
                    conn->no_delay();
                    session = factory(peer_name(remote));
                    if (session) {
                        entry = live.insert(live.end(), Live{conn, address});
                        ++per_address[address];
                    }
                }
                due = report_due();
            }
            tell(now);
            if (due) report(std::move(*due));
            if (!session) {  // refused: closed before the TLS handshake
                if (conn)
                    conn->close();
                else
                    socket.close(ec);
                continue;
            }
            asio::co_spawn(conn->socket().get_executor(), serve(conn, std::move(session), entry), asio::detached);
        }
    }

    // Answers an HTTP request that leads nowhere, then ends the connection
    // (throws HttpRefused saying why).
    asio::awaitable<void> refuse_http(Connection& conn, http::status status, std::string body) {
        http::response<http::string_body> res{status, 11};
        res.set(http::field::server, "lindra-server");
        res.set(http::field::content_type, "text/plain; charset=utf-8");
        res.set(http::field::connection, "close");
        if (status == http::status::upgrade_required) res.set(http::field::upgrade, "websocket");
        const std::string why = "HTTP " + std::to_string(static_cast<int>(status)) + ": " +
                                body.substr(0, body.find('\n'));
        res.body() = std::move(body);
        res.prepare_payload();
        conn.arm(config.io_timeout);
        co_await std::visit(
            [&](auto& s) -> asio::awaitable<std::size_t> {
                if constexpr (detail::is_websocket<std::decay_t<decltype(s)>>)
                    throw std::logic_error("HTTP on a WebSocket");
                else
                    return http::async_write(s, res, asio::use_awaitable);
            },
            conn.stream());
        conn.disarm();
        throw HttpRefused(why);
    }

    // The WebSocket handshake of a peer whose first bytes were "GET ", by
    // `deadline` (the Hello's); an HTTP request that is not a WebSocket
    // upgrade to config.websocket_path gets an HTTP error.
    asio::awaitable<void> accept_websocket(Connection& conn, Clock::time_point deadline) {
        beast::flat_buffer buffer;
        const auto head = conn.buffered();
        buffer.commit(asio::buffer_copy(buffer.prepare(head.size()), asio::buffer(head.data(), head.size())));
        conn.consume_buffered();
        http::request_parser<http::empty_body> parser;
        parser.header_limit(8 * 1024);
        parser.body_limit(0);
        boost::system::error_code ec;
        conn.arm_until(deadline);
        co_await std::visit(
            [&](auto& s) -> asio::awaitable<std::size_t> {
                if constexpr (detail::is_websocket<std::decay_t<decltype(s)>>)
                    throw std::logic_error("HTTP on a WebSocket");
                else
                    return http::async_read(s, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
            },
            conn.stream());
        conn.disarm();
        if (ec && (conn.timed_out() || ec.category() != http::make_error_code(http::error::bad_target).category() ||
                   ec == http::error::end_of_stream))
            throw boost::system::system_error(ec);
        if (ec) co_await refuse_http(conn, http::status::bad_request, "not a readable HTTP request: " + ec.message() + "\n");
        const auto& req = parser.get();
        const std::string target(req.target());
        if (target != config.websocket_path && !target.starts_with(config.websocket_path + "?"))
            co_await refuse_http(conn, http::status::not_found,
                                 "lindra syncs at " + config.websocket_path + ", not at " + target.substr(0, 200) + "\n");
        if (!websocket::is_upgrade(req))
            co_await refuse_http(conn, http::status::upgrade_required,
                                 "lindra syncs over WebSocket here: a plain HTTP request cannot sync\n");
        if (buffer.size() > 0)
            co_await refuse_http(conn, http::status::bad_request, "data sent before the WebSocket handshake ended\n");
        conn.to_websocket(true);
        conn.arm_until(deadline);
        co_await std::visit(
            [&](auto& s) -> asio::awaitable<void> {
                if constexpr (detail::is_websocket<std::decay_t<decltype(s)>>) {
                    // The Hello deadline and the frame pace hold the time
                    // (Connection), not Beast's own timers.
                    s.set_option(websocket::stream_base::timeout{websocket::stream_base::none(),
                                                                 websocket::stream_base::none(), false});
                    s.set_option(websocket::stream_base::decorator(
                        [](websocket::response_type& res) { res.set(http::field::server, "lindra-server"); }));
                    return s.async_accept(req, asio::use_awaitable);
                } else {
                    throw std::logic_error("not a WebSocket");
                }
            },
            conn.stream());
        conn.disarm();
    }

    asio::awaitable<void> serve(std::shared_ptr<Connection> conn, std::unique_ptr<Session> session,
                                std::list<Live>::iterator entry) {
        std::string reason;
        bool handshaken = !conn->tls();
        bool authenticated = false;
        detail::Pace pace{.idle = config.idle_timeout,
                          .floor = config.io_timeout,
                          .min_rate = config.min_frame_rate,
                          .not_after = Clock::now() + config.hello_timeout};
        // Set when the peer speaks something else than the server does: the
        // session answers it with an Error frame, as for a broken frame.
        std::optional<protocol::ProtocolError> mismatch;
        try {
            if (!handshaken) {
                // The Hello deadline covers the handshake, so a peer that
                // connects and stalls holds no slot for long.
                conn->arm_until(pace.not_after);
                // A TLS client's first byte is a handshake record's; a
                // client without TLS is told so in its own language
                // rather than seeing the connection close.
                std::array<std::uint8_t, 4> first{};
                const std::size_t n = co_await conn->socket().async_receive(
                    asio::buffer(first), tcp::socket::message_peek, asio::use_awaitable);
                if (!detail::looks_like_tls(std::span(first.data(), n))) {
                    conn->disarm();
                    handshaken = true;
                    conn->to_plain();
                    conn->discard_available();
                    if (starts_http(std::span(first.data(), n)))
                        co_await refuse_http(*conn, http::status::bad_request,
                                             "this port speaks TLS: use https:// or wss://\n");
                    mismatch.emplace(protocol::ErrorCode::invalid_argument, kSpeaksTls);
                } else {
                    co_await conn->handshake(asio::ssl::stream_base::server);
                    conn->disarm();
                    handshaken = true;
                }
            }
            if (!mismatch) {
                // Raw frames or an HTTP request (WebSocket), told apart by
                // the first bytes; a frame's length never starts "GET ".
                co_await conn->read_at_least(4, pace.not_after, told);
                if (starts_http(conn->buffered()))
                    co_await accept_websocket(*conn, pace.not_after);
                else if (!conn->tls() && detail::looks_like_tls(conn->buffered()) && conn->discard_available())
                    mismatch.emplace(protocol::ErrorCode::invalid_argument,
                                     "the client started a TLS handshake and this server does not speak TLS "
                                     "(it runs with --insecure): connect with --insecure");
            }
            for (bool close = false; !close;) {
                Reply reply;
                std::optional<protocol::ProtocolError> bad = std::exchange(mismatch, std::nullopt);
                std::span<const std::uint8_t> body;
                if (!bad) try {
                        body = co_await conn->read_frame(std::min(config.max_frame, session->max_frame()), pace);
                    } catch (const protocol::ProtocolError& e) {
                        bad = e;
                    }
                // No deadline runs while the session works: its time in the
                // worker pool (queued behind other sessions' store work, or
                // working) is the server's, not the peer's. The Hello
                // deadline moves by as much, so a refused Hello's Error is
                // still sent when the pool was slow. `body` stays valid:
                // nothing reads from the connection until the reply is
                // written.
                const auto handed = Clock::now();
                reply = co_await on_worker([&] {
                    if (!bad) try {
                            return session->on_frame(body);
                        } catch (const protocol::ProtocolError& e) {
                            bad = e;
                        }
                    auto r = session->on_bad_frame(*bad);
                    r.close = true;
                    return r;
                });
                if (bad) reason = bad->what();
                if (pace.not_after != Clock::time_point::max()) pace.not_after += Clock::now() - handed;
                if (!authenticated && session->authenticated()) {
                    authenticated = true;
                    pace.not_after = Clock::time_point::max();
                    std::lock_guard lock(mutex);
                    entry->authenticated = true;
                }
                if (reply.delay.count() > 0) {
                    asio::steady_timer pause(conn->socket().get_executor(), reply.delay);
                    co_await pause.async_wait(asio::use_awaitable);
                }
                co_await conn->write_frames(reply.frames, pace, reply.cut_after_bytes.value_or(SIZE_MAX));
                close = reply.close || reply.cut_after_bytes;
            }
            if (reason.empty()) reason = "closed by the server";
        } catch (const boost::system::system_error& e) {
            conn->disarm();
            // stop() closes the socket under a read (aborted), or under a
            // session at work (the write that follows fails).
            // A handshake's own failure is named even when stop() came
            // meanwhile (its completion may run after): only an aborted
            // operation is the stop's.
            reason = conn->timed_out()                           ? "timed out"
                     : is_peer_close(e.code())                   ? "closed by the peer"
                     : e.code() == asio::error::operation_aborted ? "server stopping"
                     : !handshaken                               ? conn->tls_failure(e.code())
                     : stopped                                   ? "server stopping"
                                                                 : e.code().message();
            if (!handshaken) reason = "TLS handshake failed: " + reason;
        } catch (const HttpRefused& e) {
            reason = e.what();
        } catch (const std::exception& e) {
            reason = std::string("internal error: ") + e.what();
        }
        co_await conn->shutdown(std::min(config.io_timeout, kCloseNotifyWait));
        std::optional<Turnaways> due;
        Turnaways now;
        {
            std::lock_guard lock(mutex);
            if (entry->shed) {
                --shedding;
                reason = "closed before Hello to make room: the server is at its connection cap";
            } else if (conn->timed_out() && !authenticated) {
                count(&Turnaways::late_hello, now);
                due = report_due();
            }
            if (--per_address[entry->address] == 0) per_address.erase(entry->address);
            live.erase(entry);
        }
        tell(now);
        if (due) report(std::move(*due));
        // The session's last call (it logs the session's line) and its end,
        // off the I/O threads too; stop() waits for both.
        co_await on_worker([&] {
            session->on_close(reason);
            session.reset();
        });
    }
};

Server::Server(ServerConfig config, SessionFactory factory)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(factory))) {
    if (impl_->config.tls) impl_->tls.emplace(impl_->config.tls->new_reference());
    try {
        const tcp::endpoint endpoint(asio::ip::make_address(impl_->config.host), impl_->config.port);
        impl_->acceptor.open(endpoint.protocol());
        impl_->acceptor.set_option(tcp::acceptor::reuse_address(true));
        // "::" takes IPv4 peers too, whatever the system's default.
        if (endpoint.address().is_v6() && endpoint.address().is_unspecified())
            impl_->acceptor.set_option(asio::ip::v6_only(false));
        impl_->acceptor.bind(endpoint);
        impl_->acceptor.listen();
        impl_->port = impl_->acceptor.local_endpoint().port();
    } catch (const boost::system::system_error& e) {
        throw Error(Errc::invalid_argument,
                    "cannot listen on " + impl_->config.host + ":" + std::to_string(impl_->config.port) + ": " +
                        e.code().message());
    }
    impl_->workers.emplace(threads_for(impl_->config.worker_threads));
    asio::co_spawn(impl_->accept_strand, impl_->accept_loop(), asio::detached);
    const std::size_t n = threads_for(impl_->config.io_threads);
    for (std::size_t i = 0; i < n; ++i) impl_->threads.emplace_back([this] { impl_->io.run(); });
}

Server::~Server() { stop(); }

std::uint16_t Server::port() const noexcept { return impl_->port; }

void Server::stop() {
    if (impl_->threads.empty()) return;
    asio::post(impl_->accept_strand, [this] {
        boost::system::error_code ignored;
        impl_->acceptor.close(ignored);
        impl_->stopped = true;
        Turnaways left;
        {
            std::lock_guard lock(impl_->mutex);
            impl_->stopping = true;
            impl_->report_timer.cancel();
            left = std::exchange(impl_->unreported, {});
            // Closing makes each session's pending read fail, or the write
            // after its session's work; it then ends normally and reports
            // on_close.
            for (const auto& c : impl_->live)
                asio::post(c.conn->socket().get_executor(), [conn = c.conn] { conn->close(); });
        }
        impl_->report(std::move(left));
    });
    // run() returns once every coroutine has finished, each having waited
    // for its session's last call on the worker pool.
    for (auto& t : impl_->threads) t.join();
    impl_->threads.clear();
    impl_->workers->join();  // the reports handed over last
}

}  // namespace lindra::net
