// Asio internals shared by net/server.cpp and net/client.cpp, the only two
// translation units that include Asio (compile cost, and DESIGN §7: only
// net/ touches Asio).
#pragma once

// Boost 1.74's awaitable.hpp uses std::exchange without including <utility>.
#include <utility>

#include "net/handler.hpp"
#include "protocol/frame.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
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
#include <vector>

namespace lindra::net::detail {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using std::chrono::milliseconds;

// The slowest link a frame may cross: a frame's deadline is the io timeout
// plus its size at this rate, so a full batch still crosses a rural mobile
// link, while a stalled peer is still cut off.
constexpr std::size_t kMinBytesPerSecond = 16 * 1024;

inline milliseconds deadline_for(milliseconds base, std::size_t bytes) {
    return base + milliseconds(bytes * 1000 / kMinBytesPerSecond);
}

// One TCP connection: its socket, a deadline for the operation in flight,
// and a buffer that reads whole frames. The stream type is a template
// parameter in spirit: TLS (the security milestone) replaces `socket` with
// an ssl::stream over it, and nothing else here changes shape.
class Connection : public std::enable_shared_from_this<Connection> {
public:
    explicit Connection(tcp::socket socket) : socket_(std::move(socket)), timer_(socket_.get_executor()) {}

    tcp::socket& socket() noexcept { return socket_; }
    bool timed_out() const noexcept { return timed_out_; }
    // The last read failed because the peer closed with a frame half sent:
    // bad input from a client, a broken connection for a client's view of
    // the server.
    bool peer_closed_mid_frame() const noexcept { return peer_closed_mid_frame_; }
    const Counters& counters() const noexcept { return counters_; }
    // Called when the deadline passes, besides closing the socket.
    void on_timeout(std::function<void()> f) { on_timeout_ = std::move(f); }

    // The operation that follows must finish within `d`, or the socket is
    // closed under it and it fails.
    void arm(milliseconds d) { arm_until(asio::steady_timer::clock_type::now() + d); }
    void arm_until(asio::steady_timer::time_point deadline) {
        timer_.expires_at(deadline);
        timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
            // A disarmed timer's expiry is in the far future, even if this
            // handler was already queued when disarm() ran.
            if (ec || self->timer_.expiry() > asio::steady_timer::clock_type::now()) return;
            self->timed_out_ = true;
            if (self->on_timeout_) self->on_timeout_();
            self->close();
        });
    }
    void disarm() { timer_.expires_at(asio::steady_timer::time_point::max()); }

    // The next frame's body; valid until the next call. Waits up to `idle`
    // for a frame to begin, then deadline_for(io, its size) for the whole
    // rest of it, however the peer spreads its bytes (no slow-loris). Throws
    // ProtocolError for
    // broken framing (checked before the buffer grows) and
    // boost::system::system_error for I/O errors and timeouts.
    asio::awaitable<std::span<const std::uint8_t>> read_frame(std::size_t max_body, milliseconds idle,
                                                              milliseconds io) {
        if (begin_ == end_) begin_ = end_ = 0;
        // The frame's clock starts with its first byte, not with the idle
        // wait before it.
        std::optional<asio::steady_timer::time_point> frame_started, frame_deadline;
        for (;;) {
            const std::span<const std::uint8_t> avail(buffer_.data() + begin_, end_ - begin_);
            if (!avail.empty() && !frame_started) frame_started = asio::steady_timer::clock_type::now();
            if (const auto header = protocol::parse_frame_header(avail, max_body)) {
                const std::size_t total = header->header_size + header->body_size;
                frame_deadline = *frame_started + deadline_for(io, total);
                if (avail.size() >= total) {
                    begin_ += total;
                    co_return avail.subspan(header->header_size, header->body_size);
                }
                make_room(total);
            } else {
                make_room(avail.size() + 16);  // the rest of a varint
            }
            if (begin_ == end_) {
                arm(idle);
            } else {
                if (!frame_deadline) frame_deadline = *frame_started + io;  // until the length is known
                arm_until(*frame_deadline);
            }
            std::size_t n = 0;
            try {
                n = co_await socket_.async_read_some(asio::buffer(buffer_.data() + end_, buffer_.size() - end_),
                                                     asio::use_awaitable);
            } catch (const boost::system::system_error& e) {
                disarm();
                if (e.code() == asio::error::eof && end_ > begin_ && !timed_out_) {
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

    // Sends the bodies as frames in one gathered write.
    asio::awaitable<void> write_frames(const std::vector<std::string>& bodies, milliseconds io) {
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
        arm(deadline_for(io, asio::buffer_size(buffers)));
        try {
            const auto n = co_await asio::async_write(socket_, buffers, asio::use_awaitable);
            counters_.bytes_sent += n;
        } catch (...) {
            disarm();
            throw;
        }
        disarm();
    }

    // Sends FIN, then closes; never throws.
    void close() noexcept {
        boost::system::error_code ignored;
        socket_.shutdown(tcp::socket::shutdown_both, ignored);
        socket_.close(ignored);
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
    tcp::socket socket_;
    asio::steady_timer timer_;
    std::function<void()> on_timeout_;
    std::vector<std::uint8_t> buffer_;
    std::size_t begin_ = 0, end_ = 0;
    Counters counters_;
    bool timed_out_ = false;
    bool peer_closed_mid_frame_ = false;
};

}  // namespace lindra::net::detail
