#include "protocol/frame.hpp"

#include <cstdint>
#include <string>

namespace lindra::protocol {
namespace {

// A varint carries 7 bits a byte: 64 bits need 10 bytes, the last holding one bit.
constexpr std::size_t kMaxVarintBytes = 10;

}  // namespace

std::string frame(std::string_view body) {
    std::string out;
    out.reserve(kMaxVarintBytes + body.size());
    std::uint64_t n = body.size();
    for (; n >= 0x80; n >>= 7) out.push_back(static_cast<char>((n & 0x7F) | 0x80));
    out.push_back(static_cast<char>(n));
    out.append(body);
    return out;
}

std::size_t framed_size(std::size_t body_size) noexcept {
    std::size_t n = 1;
    for (std::uint64_t v = body_size; v >= 0x80; v >>= 7) ++n;
    return n + body_size;
}

std::optional<FrameHeader> parse_frame_header(std::span<const std::uint8_t> bytes, std::size_t max_body) {
    std::uint64_t length = 0;
    for (std::size_t i = 0; i < kMaxVarintBytes; ++i) {
        if (i == bytes.size()) return std::nullopt;
        const std::uint64_t part = bytes[i] & 0x7F;
        if (i == kMaxVarintBytes - 1 && part > 1)
            throw ProtocolError(ErrorCode::invalid_argument, "frame length does not fit in 64 bits");
        length |= part << (7 * i);
        if (bytes[i] & 0x80) continue;
        // Checked before the caller allocates or waits for the body.
        if (length > max_body)
            throw ProtocolError(
                ErrorCode::frame_too_large,
                "frame of " + std::to_string(length) + " bytes is over the limit of " + std::to_string(max_body));
        return FrameHeader{.header_size = i + 1, .body_size = static_cast<std::size_t>(length)};
    }
    throw ProtocolError(ErrorCode::invalid_argument, "frame length varint is longer than 10 bytes");
}

}  // namespace lindra::protocol
