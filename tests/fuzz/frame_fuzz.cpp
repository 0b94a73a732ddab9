// The frame decoder: the input is a byte stream as it arrives on a
// connection, read frame by frame; each body goes through both message
// decoders, as the server and the client would read it.
//
// Besides "no crash": only ProtocolError may leave the decoders, a length
// prefix is never read past the input or over the limit, and whatever
// decodes encodes again and decodes to the same bytes (what the server
// accepts it can hand on to other devices).
#include "fuzz/fuzz_world.hpp"
#include "protocol/frame.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <span>
#include <string>

using namespace lindra;
using lindra::fuzz::finding;

namespace {

constexpr std::size_t kMaxChanges = 1'000;
const Id kDevice = fuzz::fixed_id(2, 1);

// Runs a decoder: nullopt if it refused the bytes as it should.
template <class Decode>
auto decoded(std::span<const std::uint8_t> body, Decode decode, const char* side)
    -> std::optional<decltype(decode(body))> {
    try {
        return decode(body);
    } catch (const protocol::ProtocolError& e) {
        // The decoders turn any other exception into `internal`: a bug, not bad bytes.
        if (e.code() == protocol::ErrorCode::internal) finding(std::string(side) + ": " + e.what());
        return std::nullopt;
    } catch (const std::exception& e) {
        finding(std::string(side) + ": the decoder threw " + e.what());
    }
}

// encode(decode(body)) and the same once more must agree: a decoded message
// is one lindra could have sent, and its encoding is stable.
template <class Decode>
void check_round_trip(std::span<const std::uint8_t> body, Decode decode, const char* side) {
    const auto message = decoded(body, decode, side);
    if (!message) return;
    std::string first;
    try {
        first = protocol::encode(*message);
    } catch (const std::exception& e) {
        finding(std::string(side) + ": a decoded message did not encode: " + e.what());
    }
    const auto again =
        decoded(std::span(reinterpret_cast<const std::uint8_t*>(first.data()), first.size()), decode, side);
    if (!again) finding(std::string(side) + ": lindra's own encoding of a decoded message did not decode");
    if (protocol::encode(*again) != first)
        finding(std::string(side) + ": the encoding of a decoded message changed on a second trip");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::span<const std::uint8_t> rest(data, size);
    while (!rest.empty()) {
        std::optional<protocol::FrameHeader> header;
        try {
            header = protocol::parse_frame_header(rest, protocol::kDefaultMaxFrame);
        } catch (const protocol::ProtocolError&) {
            return 0;  // a connection would close here
        }
        if (!header) return 0;  // needs more bytes
        if (header->header_size == 0 || header->header_size > 10 || header->header_size > rest.size() ||
            header->body_size > protocol::kDefaultMaxFrame)
            finding("parse_frame_header returned an impossible header");
        // frame()'s prefix for a body that long parses back to the same length.
        const std::size_t n = std::min<std::size_t>(header->body_size, 1 << 16);
        const std::string framed = protocol::frame(std::string(n, 'x'));
        const auto canonical = protocol::parse_frame_header(
            std::span(reinterpret_cast<const std::uint8_t*>(framed.data()), framed.size()), protocol::kDefaultMaxFrame);
        if (!canonical || canonical->body_size != n || canonical->header_size + n != framed.size())
            finding("frame() and parse_frame_header() disagree");

        rest = rest.subspan(header->header_size);
        if (header->body_size > rest.size()) return 0;  // cut short
        const auto body = rest.first(header->body_size);
        rest = rest.subspan(header->body_size);

        check_round_trip(
            body, [](auto b) { return protocol::decode_client(b, kDevice, kMaxChanges); }, "client");
        check_round_trip(
            body, [](auto b) { return protocol::decode_server(b, kMaxChanges); }, "server");
    }
    return 0;
}
