#include "support/proxy.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace lindra::test {
namespace {

constexpr int kPollMs = 50;  // how often the threads look at stopping_

sockaddr_in loopback(std::uint16_t port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

[[noreturn]] void fail(const std::string& what) {
    throw std::runtime_error("proxy: " + what + ": " + std::strerror(errno));
}

// A blocked send gives up after 5 s, so no thread can hang on a stuck peer.
void set_send_timeout(int fd) {
    const timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

bool send_all(int fd, const std::uint8_t* data, std::size_t size) {
    while (size > 0) {
        const auto n = ::send(fd, data, size, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        data += n;
        size -= static_cast<std::size_t>(n);
    }
    return true;
}

// Where lindra frames (a varint length, then the body) end in a byte stream.
class FrameTracker {
  public:
    // Consumes the next `size` bytes of the stream, which start at stream
    // offset `offset`; returns the offset just past the `target`-th frame if
    // that frame ends in them.
    std::optional<std::uint64_t> feed(const std::uint8_t* data, std::size_t size, std::uint64_t offset,
                                      std::uint64_t target) {
        std::optional<std::uint64_t> end;
        for (std::size_t i = 0; i < size;) {
            if (body_left_ > 0) {
                const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(body_left_, size - i));
                body_left_ -= n;
                i += n;
            } else {
                const std::uint8_t b = data[i++];
                length_ |= std::uint64_t{b & 0x7Fu} << shift_;
                shift_ += 7;
                if ((b & 0x80) != 0 && shift_ < 64) continue;
                body_left_ = length_;
                length_ = 0;
                shift_ = 0;
            }
            if (body_left_ == 0 && ++frames_ == target) end = offset + i;
        }
        return end;
    }

  private:
    std::uint64_t frames_ = 0, body_left_ = 0, length_ = 0;
    unsigned shift_ = 0;
};

}  // namespace

Proxy::Proxy(std::uint16_t target_port) : target_port_(target_port) {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listener_ < 0) fail("socket");
    auto address = loopback(0);
    if (::bind(listener_, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0 ||
        ::listen(listener_, 16) != 0) {
        ::close(listener_);
        fail("bind/listen");
    }
    socklen_t len = sizeof address;
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &len);
    port_ = ntohs(address.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
}

Proxy::~Proxy() {
    stopping_ = true;
    acceptor_.join();
    std::lock_guard lock(mutex_);
    for (auto& t : connections_) t.join();
    ::close(listener_);
}

void Proxy::set_cut(std::optional<Cut> cut) {
    std::lock_guard lock(mutex_);
    cut_ = cut;
}

std::uint64_t Proxy::bytes(Direction d) const noexcept {
    return bytes_[static_cast<int>(d)];
}

void Proxy::accept_loop() {
    while (!stopping_) {
        pollfd p{listener_, POLLIN, 0};
        if (::poll(&p, 1, kPollMs) <= 0) continue;
        const int client = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
        if (client < 0) continue;
        const int server = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        const auto target = loopback(target_port_);
        if (server < 0 || ::connect(server, reinterpret_cast<const sockaddr*>(&target), sizeof target) != 0) {
            if (server >= 0) ::close(server);
            ::close(client);  // the client sees its connection close, as if the server were down
            continue;
        }
        set_send_timeout(client);
        set_send_timeout(server);
        std::lock_guard lock(mutex_);
        connections_.emplace_back([this, client, server, cut = cut_] { forward(client, server, cut); });
    }
}

void Proxy::forward(int client, int server, std::optional<Cut> cut) {
    struct Side {
        int from, to;
        Direction direction;
        bool open = true;
        std::uint64_t passed = 0;
        FrameTracker frames{};
    };
    std::array<Side, 2> sides{Side{client, server, Direction::client_to_server},
                              Side{server, client, Direction::server_to_client}};
    // The offset in the cut direction's stream where the connection is cut.
    std::optional<std::uint64_t> cut_at;
    if (cut && cut->frames == 0) cut_at = cut->bytes;
    bool was_cut = false;
    std::array<std::uint8_t, 16 * 1024> buffer;

    while (!stopping_ && !was_cut && (sides[0].open || sides[1].open)) {
        std::array<pollfd, 2> fds{};
        std::array<Side*, 2> polled{};
        nfds_t n = 0;
        for (auto& s : sides)
            if (s.open) {
                fds[n] = {s.from, POLLIN, 0};
                polled[n++] = &s;
            }
        const int ready = ::poll(fds.data(), n, kPollMs);
        if (ready < 0 && errno != EINTR) break;
        for (nfds_t i = 0; i < n && ready > 0 && !was_cut; ++i) {
            if (fds[i].revents == 0) continue;
            Side& s = *polled[i];
            const auto got = ::recv(s.from, buffer.data(), buffer.size(), 0);
            if (got < 0 && errno == EINTR) continue;
            if (got <= 0) {  // the peer closed (or reset): pass the end on
                s.open = false;
                ::shutdown(s.to, SHUT_WR);
                continue;
            }
            auto size = static_cast<std::size_t>(got);
            const bool cutting = cut && cut->direction == s.direction;
            if (cutting && !cut_at)
                if (const auto end = s.frames.feed(buffer.data(), size, s.passed, cut->frames))
                    cut_at = *end + cut->bytes;
            if (cutting && cut_at) size = static_cast<std::size_t>(std::min<std::uint64_t>(size, *cut_at - s.passed));
            if (!send_all(s.to, buffer.data(), size)) {
                sides[0].open = sides[1].open = false;
                break;
            }
            s.passed += size;
            bytes_[static_cast<int>(s.direction)] += size;
            was_cut = cutting && cut_at && s.passed >= *cut_at;
        }
    }
    // Counted before closing: a peer that sees the close may ask at once.
    if (was_cut) ++cuts_;
    for (const int fd : {client, server}) {
        ::shutdown(fd, SHUT_RDWR);
        ::close(fd);
    }
    ++finished_;
}

}  // namespace lindra::test
