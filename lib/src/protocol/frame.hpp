// Framing: a varint length, then the message body.
#pragma once

#include "protocol/messages.hpp"

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace lindra::protocol {

// The varint length prefix and the body.
std::string frame(std::string_view body);
// How many bytes a body of `body_size` takes once framed.
std::size_t framed_size(std::size_t body_size) noexcept;

struct FrameHeader {
    std::size_t header_size = 0;  // bytes of the varint
    std::size_t body_size = 0;
};

// Reads the length prefix at the start of `bytes`. nullopt: more bytes are
// needed. Throws ProtocolError(frame_too_large) for a length above
// `max_body` and ProtocolError(invalid_argument) for a varint longer than
// 10 bytes, both before anything is allocated.
std::optional<FrameHeader> parse_frame_header(std::span<const std::uint8_t> bytes, std::size_t max_body);

}  // namespace lindra::protocol
