// A TCP proxy on 127.0.0.1 for fault tests: it forwards each connection to a
// target port in both directions and can cut it (close both sides) at a
// chosen point of one direction's byte stream.
//
// The cut point is "after `frames` whole frames, then `bytes` more bytes" of
// that direction: frames are lindra's (a varint length, then the body), so a
// test can say "after the Welcome and 3 bytes of the next frame" without
// knowing how long the Welcome is. With frames = 0 it is a plain byte count.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace lindra::test {

enum class Direction { client_to_server, server_to_client };

struct Cut {
    Direction direction = Direction::client_to_server;
    std::uint64_t frames = 0;  // whole frames to let through first
    std::uint64_t bytes = 0;   // then this many bytes more
};

class Proxy {
  public:
    // Listens on 127.0.0.1, any free port, and forwards to 127.0.0.1:target_port.
    explicit Proxy(std::uint16_t target_port);
    ~Proxy();  // closes every connection and joins its threads
    Proxy(const Proxy&) = delete;
    Proxy& operator=(const Proxy&) = delete;

    std::uint16_t port() const noexcept { return port_; }

    // Applies to connections accepted from now on; nullopt: pass everything.
    void set_cut(std::optional<Cut> cut);

    // Bytes forwarded in a direction, over all connections so far.
    std::uint64_t bytes(Direction d) const noexcept;
    // Connections cut so far.
    int cuts() const noexcept { return cuts_; }
    // Connections that have ended (cut or closed by a peer).
    int finished() const noexcept { return finished_; }

  private:
    void accept_loop();
    void forward(int client, int server, std::optional<Cut> cut);

    std::uint16_t target_port_;
    std::uint16_t port_ = 0;
    int listener_ = -1;
    std::atomic<bool> stopping_{false};
    std::atomic<std::uint64_t> bytes_[2] = {0, 0};
    std::atomic<int> cuts_{0}, finished_{0};

    std::mutex mutex_;  // guards cut_ and connections_
    std::optional<Cut> cut_;
    std::vector<std::thread> connections_;
    std::thread acceptor_;
};

}  // namespace lindra::test
