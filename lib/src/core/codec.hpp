// Compact binary encoding for lindra's own blobs (outbox payloads, per-row
// clocks). Not a wire format: the protocol uses protobuf.
#pragma once

#include <lindra/change.hpp>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace lindra::codec {

// The bytes of a string, for blobs bound or decoded.
inline std::span<const std::uint8_t> bytes_of(std::string_view s) noexcept {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

class Writer {
  public:
    void varint(std::uint64_t v);
    void svarint(std::int64_t v) { varint((static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63)); }
    void fixed64(std::uint64_t v);
    void bytes(std::span<const std::uint8_t> b) { out_.append(reinterpret_cast<const char*>(b.data()), b.size()); }
    void value(const Value& v);
    const std::string& data() const noexcept { return out_; }
    std::string take() { return std::move(out_); }

  private:
    std::string out_;
};

// Reads what Writer wrote; throws Error(Errc::corrupt) on malformed input.
class Reader {
  public:
    explicit Reader(std::span<const std::uint8_t> in) : in_(in) {}
    bool done() const noexcept { return pos_ == in_.size(); }
    std::size_t remaining() const noexcept { return in_.size() - pos_; }
    std::uint64_t varint();
    std::int64_t svarint() {
        const auto u = varint();
        return static_cast<std::int64_t>(u >> 1) ^ -static_cast<std::int64_t>(u & 1);
    }
    std::uint64_t fixed64();
    Id id();
    Value value();
    std::span<const std::uint8_t> bytes(std::size_t n) { return take(n); }

  private:
    std::span<const std::uint8_t> take(std::size_t n);
    std::span<const std::uint8_t> in_;
    std::size_t pos_ = 0;
};

// The fields of one write, as the outbox and the server's change log keep
// them: (field tag, value) pairs; entity, row, hlc and origin are columns.
std::string encode_fields(std::span<const Change> changes);
void decode_fields(std::span<const std::uint8_t> blob, const Change& prototype, std::vector<Change>& out);

}  // namespace lindra::codec
