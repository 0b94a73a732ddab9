// Asio internals shared by net/server.cpp and net/client.cpp, the only two
// translation units that include Asio and Beast (compile cost, and DESIGN
// §7: only net/ touches Asio).
#pragma once

// Boost 1.74's awaitable.hpp uses std::exchange without including <utility>.
#include <utility>

#include "net/handler.hpp"
#include "net/tls.hpp"
#include "protocol/frame.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/beast/websocket/stream.hpp>

#include <array>
#include <chrono>
#include <cstring>
#include <functional>
#include <limits>
#include <stdexcept>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

namespace lindra::net::detail {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using TlsStream = asio::ssl::stream<tcp::socket>;
// The same frames as binary WebSocket messages (DESIGN §11), one message
// per frame body: WebSocket carries the length, so no varint goes before it.
using WsStream = websocket::stream<tcp::socket>;
using WssStream = websocket::stream<TlsStream>;
template <class S>
constexpr bool is_websocket = std::is_same_v<S, WsStream> || std::is_same_v<S, WssStream>;
using std::chrono::milliseconds;

using Clock = asio::steady_timer::clock_type;

// How long a frame may take. A frame has `floor` from its first byte, plus
// a second for each `min_rate` bytes that have arrived: its bytes must keep
// coming at `min_rate` on average, so a rural mobile link still carries a
// full batch while a peer that declares a large frame and trickles it is
// cut off after `floor`. Writes get the floor plus their size at that rate.
struct Pace {
    milliseconds idle{60'000};  // for a frame to begin
    milliseconds floor{30'000};
    std::size_t min_rate = 16 * 1024;                        // bytes per second
    Clock::time_point not_after = Clock::time_point::max();  // whatever the rest says (the Hello deadline)

    // When the next byte of a frame that began at `started` and has brought
    // `bytes` so far is due.
    Clock::time_point due(Clock::time_point started, std::size_t bytes) const {
        const milliseconds credit(bytes * 1000 / std::max<std::size_t>(min_rate, 1));
        return std::min(not_after, started + floor + credit);
    }
};

// TLS said no (a certificate, a protocol version, a record that is not
// TLS), as opposed to the network failing or the peer going away.
inline bool is_tls_error(const boost::system::error_code& ec) {
    return ec.category() == asio::error::get_ssl_category();
}

// The peer ended the stream: a FIN, or for TLS a close_notify or a FIN
// without one (a truncation, which only matters to a reader that trusts an
// end of stream to mean "complete"; lindra's frames carry their lengths).
inline bool is_peer_close(const boost::system::error_code& ec) {
    return ec == asio::error::eof || ec == asio::ssl::error::stream_truncated || ec == websocket::error::closed;
}

// Whether `bytes` begin like a TLS record (a handshake or an alert, TLS 1.0
// to 1.3 record versions): what a server that speaks TLS sends to a client
// that does not, and what a TLS client sends to a server that does not. No
// frame starts so: 0x15 or 0x16 is a 21- or 22-byte frame whose message
// starts with 0x03, a field number 0 that protobuf never writes.
inline bool looks_like_tls(std::span<const std::uint8_t> bytes) {
    return bytes.size() >= 2 && (bytes[0] == 0x15 || bytes[0] == 0x16) && bytes[1] == 0x03;
}

// One connection, plain TCP or TLS over it, raw frames or WebSocket
// messages over either: its stream, a deadline for the operation in
// flight, and a buffer that reads whole frames. Every kind shares every
// line below; they differ only in the stream std::visit picks for a read
// or a write, in the TLS handshake and close_notify, and in how a frame's
// end is found (its varint length, or the end of a WebSocket message).
class Connection : public std::enable_shared_from_this<Connection> {
public:
    explicit Connection(tcp::socket socket)
        : stream_(std::in_place_type<tcp::socket>, std::move(socket)), timer_(this->socket().get_executor()) {}
    // TLS with `context` (the stream keeps its own reference to the SSL_CTX).
    Connection(tcp::socket socket, asio::ssl::context& context)
        : stream_(std::in_place_type<TlsStream>, std::move(socket), context), timer_(this->socket().get_executor()) {}

    // The TCP socket (under TLS and WebSocket, if any).
    tcp::socket& socket() noexcept {
        return std::visit([](auto& s) -> tcp::socket& { return beast::get_lowest_layer(s); }, stream_);
    }
    // The TLS stream; null for plain TCP.
    TlsStream* tls() noexcept {
        if (auto* s = std::get_if<WssStream>(&stream_)) return &s->next_layer();
        return std::get_if<TlsStream>(&stream_);
    }
    bool websocket() const noexcept {
        return std::holds_alternative<WsStream>(stream_) || std::holds_alternative<WssStream>(stream_);
    }
    // The stream, for a handshake of the caller's (HTTP, WebSocket, a proxy's CONNECT).
    using Stream = std::variant<tcp::socket, TlsStream, WsStream, WssStream>;
    Stream& stream() noexcept { return stream_; }

    // From now on frames travel as WebSocket messages over the stream the
    // connection had (which must be plain TCP or TLS), as a server's or a
    // client's; the caller then makes the WebSocket handshake on stream().
    void to_websocket(bool server) {
        server_ = server;
        if (auto* s = std::get_if<TlsStream>(&stream_)) {
            TlsStream tls = std::move(*s);
            stream_.emplace<WssStream>(std::move(tls));
        } else {
            tcp::socket plain = std::move(std::get<tcp::socket>(stream_));
            stream_.emplace<WsStream>(std::move(plain));
        }
        std::visit(
            [](auto& s) {
                if constexpr (is_websocket<std::decay_t<decltype(s)>>) {
                    s.binary(true);
                    s.auto_fragment(false);  // one WebSocket frame per message
                    s.read_message_max(0);   // read_frame() holds the limit, and answers with an Error first
                }
            },
            stream_);
    }
    // A WebSocket client's keep-alive: while it waits for a message, a ping
    // every `every` (a proxy cuts a connection that is quiet for long, and
    // a round may wait on the server's store). Not Beast's idle timeout,
    // which also runs while a long message is being written and would end
    // a slow upload that the frame pace allows.
    void keep_alive(milliseconds every) { ping_every_ = every; }

    // Drops TLS (a TLS server's connection whose peer does not speak it),
    // to answer in plain TCP.
    void to_plain() {
        if (auto* s = std::get_if<TlsStream>(&stream_)) {
            tcp::socket plain = std::move(s->next_layer());
            stream_.emplace<tcp::socket>(std::move(plain));
        }
    }
    // Reads and drops what has arrived and is not read yet, without
    // waiting: closing a socket with unread bytes resets the connection,
    // which may destroy the answer sent just before. Returns true.
    bool discard_available() noexcept {
        boost::system::error_code ec;
        std::array<std::uint8_t, 4096> scratch;
        for (int i = 0; i < 16; ++i) {
            const std::size_t n = socket().available(ec);
            if (ec || n == 0) break;
            socket().read_some(asio::buffer(scratch), ec);
            if (ec) break;
        }
        begin_ = end_ = 0;
        return true;
    }
    // Bytes read and not yet consumed by a frame (what a server peeked at to
    // tell WebSocket from raw frames); consume_buffered() drops them.
    std::span<const std::uint8_t> buffered() const noexcept { return {buffer_.data() + begin_, end_ - begin_}; }
    void consume_buffered() noexcept { begin_ = end_ = 0; }
    // Reads until `n` bytes are buffered or `enough` says the buffered ones
    // tell what is wanted, within `deadline`.
    template <class Enough>
    asio::awaitable<void> read_at_least(std::size_t n, Clock::time_point deadline, Enough enough) {
        make_room(n);
        arm_until(deadline);
        try {
            while (end_ - begin_ < n && !enough(buffered())) {
                const auto into = asio::buffer(buffer_.data() + end_, buffer_.size() - end_);
                const std::size_t got = co_await std::visit(
                    [&](auto& s) -> asio::awaitable<std::size_t> {
                        if constexpr (is_websocket<std::decay_t<decltype(s)>>)
                            throw std::logic_error("read_at_least on a WebSocket");
                        else
                            return s.async_read_some(into, asio::use_awaitable);
                    },
                    stream_);
                end_ += got;
                counters_.bytes_received += got;
            }
        } catch (...) {
            disarm();
            throw;
        }
        disarm();
    }
    bool timed_out() const noexcept { return timed_out_; }
    // The last read failed because the peer closed with a frame half sent:
    // bad input from a client, a broken connection for a client's view of
    // the server.
    bool peer_closed_mid_frame() const noexcept { return peer_closed_mid_frame_; }
    const Counters& counters() const noexcept { return counters_; }
    // Called when the deadline passes, besides closing the socket.
    void on_timeout(std::function<void()> f) { on_timeout_ = std::move(f); }

    // Sends each write at once instead of holding a small one back until
    // the last is acknowledged (Nagle). A round is a few small writes, most
    // waiting for an answer; with Nagle, the Hello a client wrote right after
    // its TLS Finished waited for the server's delayed ACK of the Finished,
    // some 40 ms a round. Never throws: without it a round is slower, not
    // wrong.
    void no_delay() noexcept {
        boost::system::error_code ignored;
        socket().set_option(tcp::no_delay(true), ignored);
    }

    // The operation that follows must finish within `d`, or the socket is
    // closed under it and it fails.
    void arm(milliseconds d) { arm_until(Clock::now() + d); }
    void arm_until(Clock::time_point deadline) {
        timer_.expires_at(deadline);
        timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
            // A disarmed timer's expiry is in the far future, even if this
            // handler was already queued when disarm() ran.
            if (ec || self->timer_.expiry() > Clock::now()) return;
            self->timed_out_ = true;
            if (self->on_timeout_) self->on_timeout_();
            self->close();
        });
    }
    void disarm() { timer_.expires_at(Clock::time_point::max()); }

    // The TLS handshake, within the deadline the caller armed. Throws
    // boost::system::system_error; see tls_failure().
    asio::awaitable<void> handshake(asio::ssl::stream_base::handshake_type role) {
        co_await std::get<TlsStream>(stream_).async_handshake(role, asio::use_awaitable);
    }
    // Why a TLS operation failed with `ec`, in words (net/tls.hpp).
    std::string tls_failure(const boost::system::error_code& ec) {
        auto* s = tls();
        return handshake_failure(s ? s->native_handle() : nullptr, is_tls_error(ec) ? ec.value() : 0, ec.message());
    }

    // The next frame's body; valid until the next call. Waits up to
    // pace.idle for a frame to begin, then holds it to pace.due() (no
    // slow-loris). Throws ProtocolError for broken framing (checked before
    // the buffer grows) and boost::system::system_error for I/O errors and
    // timeouts.
    asio::awaitable<std::span<const std::uint8_t>> read_frame(std::size_t max_body, const Pace& pace) {
        if (websocket()) co_return co_await read_message(max_body, pace);
        if (begin_ == end_) begin_ = end_ = 0;
        // The frame's clock starts with its first byte, not with the idle
        // wait before it.
        std::optional<Clock::time_point> frame_started;
        for (;;) {
            const std::span<const std::uint8_t> avail(buffer_.data() + begin_, end_ - begin_);
            if (!avail.empty() && !frame_started) frame_started = Clock::now();
            if (const auto header = protocol::parse_frame_header(avail, max_body)) {
                const std::size_t total = header->header_size + header->body_size;
                if (avail.size() >= total) {
                    begin_ += total;
                    co_return avail.subspan(header->header_size, header->body_size);
                }
                make_room(total);
            } else {
                make_room(avail.size() + 16);  // the rest of a varint
            }
            if (frame_started)
                arm_until(pace.due(*frame_started, avail.size()));
            else
                arm_until(std::min(pace.not_after, Clock::now() + pace.idle));
            std::size_t n = 0;
            try {
                const auto into = asio::buffer(buffer_.data() + end_, buffer_.size() - end_);
                n = co_await std::visit([&](auto& s) { return s.async_read_some(into, asio::use_awaitable); },
                                        stream_);
            } catch (const boost::system::system_error& e) {
                disarm();
                if (is_peer_close(e.code()) && end_ > begin_ && !timed_out_) {
                    peer_closed_mid_frame_ = true;
                    throw protocol::ProtocolError(protocol::ErrorCode::invalid_argument,
                                                  "the peer closed the connection in the middle of a frame");
                }
                throw;
            }
            disarm();
            end_ += n;
            counters_.bytes_received += n;
        }
    }

    // Sends the bodies as frames in one write, within pace.due(now, their
    // size); only the first `max_bytes` of them if that is less (a fault a
    // test asked for).
    asio::awaitable<void> write_frames(const std::vector<std::string>& bodies, const Pace& pace,
                                       std::size_t max_bytes = SIZE_MAX) {
        if (bodies.empty()) co_return;
        if (websocket()) co_return co_await write_messages(bodies, pace, max_bytes);
        std::vector<std::array<std::uint8_t, 10>> headers(bodies.size());
        std::vector<asio::const_buffer> buffers;
        buffers.reserve(2 * bodies.size());
        for (std::size_t i = 0; i < bodies.size(); ++i) {
            std::size_t n = 0;
            for (std::uint64_t v = bodies[i].size(); ; v >>= 7) {
                headers[i][n++] = static_cast<std::uint8_t>((v & 0x7F) | (v >= 0x80 ? 0x80 : 0));
                if (v < 0x80) break;
            }
            buffers.emplace_back(headers[i].data(), n);
            buffers.emplace_back(bodies[i].data(), bodies[i].size());
        }
        for (auto& b : buffers) {
            b = asio::buffer(b, max_bytes);
            max_bytes -= b.size();
        }
        arm_until(pace.due(Clock::now(), asio::buffer_size(buffers)));
        try {
            const auto n = co_await std::visit(
                [&](auto& s) -> asio::awaitable<std::size_t> {
                    if constexpr (is_websocket<std::decay_t<decltype(s)>>)
                        throw std::logic_error("raw frames on a WebSocket");
                    else
                        return asio::async_write(s, buffers, asio::use_awaitable);
                },
                stream_);
            counters_.bytes_sent += n;
        } catch (...) {
            disarm();
            throw;
        }
        disarm();
    }

    // Ends the connection: for TLS, a close_notify first, waiting at most
    // `bound` for the peer's (a peer that never answers costs no more); then
    // close(). Never throws.
    asio::awaitable<void> shutdown(milliseconds bound) {
        if (websocket() && socket().is_open() && !timed_out_) {
            // The WebSocket close handshake, then (Beast's teardown) the
            // TLS close_notify.
            arm(bound);
            try {
                co_await std::visit(
                    [](auto& s) -> asio::awaitable<void> {
                        if constexpr (is_websocket<std::decay_t<decltype(s)>>)
                            return s.async_close(websocket::close_code::normal, asio::use_awaitable);
                        else
                            throw std::logic_error("not a WebSocket");
                    },
                    stream_);
            } catch (const std::exception&) {
                // The peer closed first, or never answered: either way done.
            }
            disarm();
        } else if (auto* s = tls(); s && socket().is_open() && !timed_out_) {
            arm(bound);
            try {
                co_await s->async_shutdown(asio::use_awaitable);
            } catch (const boost::system::system_error&) {
                // The peer closed first, or never answered: either way done.
            }
            disarm();
        }
        close();
    }

    // Sends FIN, then closes the socket (no close_notify); never throws.
    void close() noexcept {
        boost::system::error_code ignored;
        socket().shutdown(tcp::socket::shutdown_both, ignored);
        socket().close(ignored);
    }

private:
    // read_frame() over WebSocket: one binary message is one frame body.
    // The same limit, checked as bytes arrive (memory follows them, not a
    // declared length), and the same pace.
    asio::awaitable<std::span<const std::uint8_t>> read_message(std::size_t max_body, const Pace& pace) {
        begin_ = end_ = 0;
        std::optional<Clock::time_point> started;
        for (;;) {
            // Room for one byte over the limit, which tells a message over it.
            make_room(std::min(max_body, std::numeric_limits<std::size_t>::max() - 1) + 1);
            if (started)
                arm_until(pace.due(*started, end_));
            else
                arm_until(std::min(pace.not_after, Clock::now() + pace.idle));
            std::size_t n = 0;
            bool done = false, binary = true;
            try {
                const auto into = asio::buffer(buffer_.data() + end_, buffer_.size() - end_);
                if (!started) start_pinging();
                n = co_await std::visit(
                    [&](auto& s) -> asio::awaitable<std::size_t> {
                        if constexpr (is_websocket<std::decay_t<decltype(s)>>)
                            return s.async_read_some(into, asio::use_awaitable);
                        else
                            throw std::logic_error("not a WebSocket");
                    },
                    stream_);
                stop_pinging();
                std::visit(
                    [&](auto& s) {
                        if constexpr (is_websocket<std::decay_t<decltype(s)>>) {
                            done = s.is_message_done();
                            binary = s.got_binary();
                        }
                    },
                    stream_);
            } catch (const boost::system::system_error& e) {
                disarm();
                stop_pinging();
                if (is_peer_close(e.code()) && started && !timed_out_) {
                    peer_closed_mid_frame_ = true;
                    throw protocol::ProtocolError(protocol::ErrorCode::invalid_argument,
                                                  "the peer closed the connection in the middle of a message");
                }
                if (e.code() == beast::error::timeout) timed_out_ = true;
                throw;
            }
            disarm();
            if (!started) started = Clock::now();
            end_ += n;
            counters_.bytes_received += n;
            if (end_ > max_body)
                throw protocol::ProtocolError(protocol::ErrorCode::frame_too_large,
                                              "WebSocket message of more than " + std::to_string(max_body) +
                                                  " bytes is over the limit");
            if (!binary)
                throw protocol::ProtocolError(protocol::ErrorCode::invalid_argument,
                                              "a text WebSocket message: lindra's frames are binary messages");
            if (done) {
                // Its WebSocket header: 2 bytes, the extended length, the mask.
                counters_.bytes_received += 2 + (end_ < 126 ? 0 : end_ < 65536 ? 2 : 8) + (server_ ? 4 : 0);
                const std::span<const std::uint8_t> body(buffer_.data(), end_);
                end_ = 0;
                co_return body;
            }
        }
    }

    // Pings after ping_every_ of waiting, and again after each ping sent,
    // until stop_pinging(); one ping in flight at a time (Beast allows one
    // ping beside a read and a write).
    void start_pinging() {
        if (ping_every_.count() <= 0) return;
        pinging_ = true;
        if (!ping_timer_) ping_timer_.emplace(timer_.get_executor());
        ping_timer_->expires_after(ping_every_);
        ping_timer_->async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
            if (ec || !self->pinging_ || self->ping_in_flight_) return;
            self->ping_in_flight_ = true;
            std::visit(
                [&](auto& s) {
                    if constexpr (is_websocket<std::decay_t<decltype(s)>>)
                        s.async_ping({}, [self](const boost::system::error_code& e) {
                            self->ping_in_flight_ = false;
                            if (!e && self->pinging_) self->start_pinging();
                        });
                },
                self->stream_);
        });
    }
    void stop_pinging() {
        pinging_ = false;
        if (ping_timer_) ping_timer_->cancel();
    }

    // write_frames() over WebSocket: a binary message per body; a fault's
    // cut ends the last one unfinished.
    asio::awaitable<void> write_messages(const std::vector<std::string>& bodies, const Pace& pace,
                                         std::size_t max_bytes) {
        std::size_t total = 0;
        for (const auto& b : bodies) total += b.size();
        arm_until(pace.due(Clock::now(), total));
        try {
            for (const auto& body : bodies) {
                const bool whole = body.size() <= max_bytes;
                const auto part = asio::buffer(body.data(), std::min(body.size(), max_bytes));
                co_await std::visit(
                    [&](auto& s) -> asio::awaitable<std::size_t> {
                        if constexpr (is_websocket<std::decay_t<decltype(s)>>)
                            return s.async_write_some(whole, part, asio::use_awaitable);
                        else
                            throw std::logic_error("not a WebSocket");
                    },
                    stream_);
                counters_.bytes_sent +=
                    part.size() + 2 + (part.size() < 126 ? 0 : part.size() < 65536 ? 2 : 8) + (server_ ? 0 : 4);
                max_bytes -= part.size();
                if (!whole) break;
            }
        } catch (const boost::system::system_error& e) {
            disarm();
            if (e.code() == beast::error::timeout) timed_out_ = true;
            throw;
        } catch (...) {
            disarm();
            throw;
        }
        disarm();
    }

    // Room to read more of a frame of `total` bytes starting at begin_:
    // slide what is buffered to the front, then grow, at most doubling, so
    // memory follows the bytes that arrive rather than the length a peer
    // declares. Callers have checked `total` against the limit.
    void make_room(std::size_t total) {
        if (end_ < buffer_.size() && (buffer_.size() - begin_ >= total || buffer_.size() - end_ >= kInitialBuffer))
            return;
        if (begin_ > 0) {
            std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
            end_ -= begin_;
            begin_ = 0;
        }
        if (end_ == buffer_.size() || buffer_.size() < std::min(total, kInitialBuffer))
            buffer_.resize(std::min(std::max(total, kInitialBuffer), std::max(2 * buffer_.size(), kInitialBuffer)));
    }

    static constexpr std::size_t kInitialBuffer = 64 * 1024;
    Stream stream_;
    asio::steady_timer timer_;
    std::function<void()> on_timeout_;
    std::vector<std::uint8_t> buffer_;
    std::size_t begin_ = 0, end_ = 0;
    Counters counters_;
    bool timed_out_ = false;
    bool peer_closed_mid_frame_ = false;
    bool server_ = false;  // whose WebSocket frames are masked (a client's)
    milliseconds ping_every_{0};
    std::optional<asio::steady_timer> ping_timer_;
    bool pinging_ = false, ping_in_flight_ = false;
};

}  // namespace lindra::net::detail
