#include "core/codec.hpp"

#include <lindra/error.hpp>

namespace lindra::codec {
namespace {
enum Tag : std::uint8_t { kNull = 0, kInt = 1, kText = 2, kId = 3 };
[[noreturn]] void malformed() {
    throw Error(Errc::corrupt, "malformed lindra blob");
}
}  // namespace

void Writer::varint(std::uint64_t v) {
    while (v >= 0x80) {
        out_.push_back(static_cast<char>((v & 0x7F) | 0x80));
        v >>= 7;
    }
    out_.push_back(static_cast<char>(v));
}

void Writer::fixed64(std::uint64_t v) {
    for (int i = 0; i < 8; ++i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

void Writer::value(const Value& v) {
    switch (v.index()) {
        case 0:
            out_.push_back(kNull);
            break;
        case 1:
            out_.push_back(kInt);
            svarint(std::get<std::int64_t>(v));
            break;
        case 2: {
            const auto& s = std::get<std::string>(v);
            out_.push_back(kText);
            varint(s.size());
            out_.append(s);
            break;
        }
        case 3:
            out_.push_back(kId);
            bytes(std::get<Id>(v).bytes);
            break;
    }
}

std::span<const std::uint8_t> Reader::take(std::size_t n) {
    if (n > in_.size() - pos_) malformed();
    auto s = in_.subspan(pos_, n);
    pos_ += n;
    return s;
}

std::uint64_t Reader::varint() {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        const std::uint8_t b = take(1)[0];
        if (shift == 63 && b > 1) malformed();  // more than 64 bits
        v |= static_cast<std::uint64_t>(b & 0x7F) << shift;
        if (!(b & 0x80)) return v;
    }
    malformed();
}

std::uint64_t Reader::fixed64() {
    auto b = take(8);
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= static_cast<std::uint64_t>(b[i]) << (8 * i);
    return v;
}

Id Reader::id() {
    Id id;
    auto b = take(16);
    std::copy(b.begin(), b.end(), id.bytes.begin());
    return id;
}

Value Reader::value() {
    switch (take(1)[0]) {
        case kNull:
            return std::monostate{};
        case kInt:
            return svarint();
        case kText: {
            const auto n = varint();
            auto b = take(n);
            return std::string(reinterpret_cast<const char*>(b.data()), b.size());
        }
        case kId:
            return id();
        default:
            malformed();
    }
}

std::string encode_fields(std::span<const Change> changes) {
    Writer w;
    for (const auto& c : changes) {
        w.varint(c.field);
        w.value(c.value);
    }
    return w.take();
}

void decode_fields(std::span<const std::uint8_t> blob, const Change& prototype, std::vector<Change>& out) {
    Reader r(blob);
    while (!r.done()) {
        Change c = prototype;
        const auto tag = r.varint();
        if (tag > 0xFFFF) malformed();
        c.field = static_cast<std::uint16_t>(tag);
        c.value = r.value();
        out.push_back(std::move(c));
    }
}

}  // namespace lindra::codec
