// Asio internals shared by net/server.cpp and net/client.cpp, the only two
// translation units that include Asio (compile cost, and DESIGN §7: only
// net/ touches Asio).
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

#include <array>
#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

namespace lindra::net::detail {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using TlsStream = asio::ssl::stream<tcp::socket>;
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
    return ec == asio::error::eof || ec == asio::ssl::error::stream_truncated;
}

// One connection, plain TCP or TLS over it: its stream, a deadline for the
// operation in flight, and a buffer that reads whole frames. Both kinds
// share every line below; they differ only in the stream std::visit picks
// for a read or a write, and in the TLS handshake and close_notify.
class Connection : public std::enable_shared_from_this<Connection> {
public:
    explicit Connection(tcp::socket socket)
        : stream_(std::in_place_type<tcp::socket>, std::move(socket)), timer_(this->socket().get_executor()) {}
    // TLS with `context` (the stream keeps its own reference to the SSL_CTX).
    Connection(tcp::socket socket, asio::ssl::context& context)
        : stream_(std::in_place_type<TlsStream>, std::move(socket), context), timer_(this->socket().get_executor()) {}

    // The TCP socket (under TLS, if any).
    tcp::socket& socket() noexcept {
        if (auto* s = tls()) return s->next_layer();
        return std::get<tcp::socket>(stream_);
    }
    // The TLS stream; null for plain TCP.
    TlsStream* tls() noexcept { return std::get_if<TlsStream>(&stream_); }
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
                [&](auto& s) { return asio::async_write(s, buffers, asio::use_awaitable); }, stream_);
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
        if (auto* s = tls(); s && socket().is_open() && !timed_out_) {
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
    std::variant<tcp::socket, TlsStream> stream_;
    asio::steady_timer timer_;
    std::function<void()> on_timeout_;
    std::vector<std::uint8_t> buffer_;
    std::size_t begin_ = 0, end_ = 0;
    Counters counters_;
    bool timed_out_ = false;
    bool peer_closed_mid_frame_ = false;
};

}  // namespace lindra::net::detail
