// What net/ drives: sans-I/O protocol sessions that turn received frame
// bodies into frames to send. net/ moves bytes and keeps time; the client
// and server sessions (client/, server/) know the protocol.
#pragma once

#include "protocol/messages.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace lindra::net {

struct Reply {
    std::vector<std::string> frames{};  // message bodies; net/ adds the length prefixes
    bool close = false;                 // close the connection once they are sent
    // Faults a server session may ask for (MockServer's fault layer): wait
    // this long before sending; send only the first `cut_after_bytes` bytes
    // of the framed replies, then close.
    std::chrono::milliseconds delay{0};
    std::optional<std::size_t> cut_after_bytes{};
};

// One connection's protocol state. net/ calls it one call at a time, in the
// order of the connection's frames, but not always from the same thread: a
// server calls on_frame, on_bad_frame and on_close on its worker pool (they
// may block on the store), max_frame and authenticated on the connection's
// strand in between.
class Session {
public:
    virtual ~Session() = default;
    // The largest frame body the session accepts now: a server takes only
    // small frames until the peer has authenticated.
    virtual std::size_t max_frame() const { return SIZE_MAX; }
    // Whether the peer has shown who it is (a server session: its Hello was
    // welcomed). Until then the server holds the connection to its Hello
    // deadline and, over its connection cap, closes it before any
    // authenticated one.
    virtual bool authenticated() const { return false; }
    // A complete frame arrived. `body` is valid for this call only.
    virtual Reply on_frame(std::span<const std::uint8_t> body) = 0;
    // The peer broke framing (length over the limit, malformed length, a
    // frame cut off by the peer closing): what to answer before closing.
    virtual Reply on_bad_frame(const protocol::ProtocolError& error) = 0;
    // The connection is gone; `reason` says why ("closed by peer",
    // "timed out", ...). Called exactly once.
    virtual void on_close(std::string_view reason) = 0;
};

struct Counters {
    std::uint64_t bytes_sent = 0;
    std::uint64_t bytes_received = 0;
};

}  // namespace lindra::net
