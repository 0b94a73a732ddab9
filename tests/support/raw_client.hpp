// A raw TCP client for feeding the server bytes no SyncClient would send:
// POSIX sockets on 127.0.0.1 (or ::1), every read bounded by a timeout.
#pragma once

#include "protocol/frame.hpp"
#include "protocol/messages.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace lindra::test {

class RawClient {
  public:
    // What one read_message() saw.
    struct Eof {};  // the server closed the connection
    struct Failure {
        std::string what;  // a timeout, a reset, or bytes that are not a server message
    };
    using Read = std::variant<protocol::ServerMessage, Eof, Failure>;

    // `host` is "127.0.0.1" or "::1".
    explicit RawClient(std::uint16_t port, std::chrono::milliseconds timeout = std::chrono::seconds(5),
                       std::string_view host = "127.0.0.1") {
        const bool v6 = host == "::1";
        fd_ = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd_ < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
        const auto us = std::chrono::duration_cast<std::chrono::microseconds>(timeout).count();
        const timeval tv{static_cast<time_t>(us / 1'000'000), static_cast<suseconds_t>(us % 1'000'000)};
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        sockaddr_in6 a6{};
        a6.sin6_family = AF_INET6;
        a6.sin6_port = htons(port);
        a6.sin6_addr = in6addr_loopback;
        const int rc = v6 ? ::connect(fd_, reinterpret_cast<const sockaddr*>(&a6), sizeof a6)
                          : ::connect(fd_, reinterpret_cast<const sockaddr*>(&a), sizeof a);
        if (rc != 0) {
            const std::string what = std::strerror(errno);
            ::close(fd_);
            throw std::runtime_error("connect: " + what);
        }
    }
    ~RawClient() { ::close(fd_); }
    RawClient(const RawClient&) = delete;
    RawClient& operator=(const RawClient&) = delete;

    // Sends raw bytes; false if the server had already closed.
    bool send(std::string_view bytes) {
        while (!bytes.empty()) {
            const auto n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return false;
            bytes.remove_prefix(static_cast<std::size_t>(n));
        }
        return true;
    }
    // Sends a message body as a frame.
    bool send_frame(std::string_view body) { return send(protocol::frame(body)); }
    bool send_message(const protocol::ClientMessage& m) { return send_frame(protocol::encode(m)); }
    // No more bytes from this side (the server reads EOF).
    void shutdown_write() { ::shutdown(fd_, SHUT_WR); }

    // The next frame from the server, decoded.
    Read read_message() {
        for (;;) {
            try {
                const std::span<const std::uint8_t> have(buffer_.data(), buffer_.size());
                if (const auto header = protocol::parse_frame_header(have, protocol::kDefaultMaxFrame)) {
                    const auto total = header->header_size + header->body_size;
                    if (have.size() >= total) {
                        auto message = protocol::decode_server(have.subspan(header->header_size, header->body_size),
                                                               protocol::kDefaultMaxFrame);
                        buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(total));
                        return message;
                    }
                }
            } catch (const protocol::ProtocolError& e) {
                return Failure{std::string("not a server frame: ") + e.what()};
            }
            std::uint8_t chunk[4096];
            const auto n = ::recv(fd_, chunk, sizeof chunk, 0);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) {
                const bool timeout = errno == EAGAIN || errno == EWOULDBLOCK;
                return Failure{timeout ? std::string("timed out") : std::string("recv: ") + std::strerror(errno)};
            }
            if (n == 0) {
                if (buffer_.empty()) return Eof{};
                return Failure{"the server closed in the middle of a frame"};
            }
            buffer_.insert(buffer_.end(), chunk, chunk + n);
        }
    }

  private:
    int fd_ = -1;
    std::vector<std::uint8_t> buffer_;
};

}  // namespace lindra::test
