#include "core/status_list.hpp"

#include "core/jws.hpp"

#include <zlib.h>

#include <new>

namespace lindra::status_list {
namespace {

// windowBits 15 + 16: a gzip wrapper, not zlib's own.
constexpr int kGzip = 15 + 16;

}  // namespace

std::size_t bytes_for(std::int64_t entries) {
    const auto needed = static_cast<std::size_t>(entries < 0 ? 0 : (entries + 7) / 8);
    return needed <= kMinBytes ? kMinBytes : (needed + kMinBytes - 1) / kMinBytes * kMinBytes;
}

bool bit(std::string_view bytes, std::int64_t index) {
    const auto byte = static_cast<std::size_t>(index / 8);
    if (index < 0 || byte >= bytes.size()) return false;
    return (static_cast<unsigned char>(bytes[byte]) >> (7 - index % 8)) & 1;
}

void set_bit(std::string& bytes, std::int64_t index) {
    const auto byte = static_cast<std::size_t>(index / 8);
    if (byte >= bytes.size()) bytes.resize(bytes_for(index + 1), '\0');
    bytes[byte] = static_cast<char>(static_cast<unsigned char>(bytes[byte]) | (0x80u >> (index % 8)));
}

std::string encode(std::string_view bytes) {
    z_stream z{};
    if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, kGzip, 9, Z_DEFAULT_STRATEGY) != Z_OK)
        throw std::bad_alloc();  // the parameters are fixed: only memory can fail
    std::string out(deflateBound(&z, static_cast<uLong>(bytes.size())), '\0');
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
    z.avail_in = static_cast<uInt>(bytes.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    const int rc = deflate(&z, Z_FINISH);
    out.resize(z.total_out);
    deflateEnd(&z);
    if (rc != Z_STREAM_END) throw std::bad_alloc();  // deflateBound holds it all
    return "u" + jws::base64url_encode(out);
}

std::optional<std::string> decode(std::string_view encoded, std::size_t max_bytes) {
    if (encoded.empty() || encoded.front() != 'u') return std::nullopt;
    const auto gz = jws::base64url_decode(encoded.substr(1));
    if (!gz) return std::nullopt;
    z_stream z{};
    if (inflateInit2(&z, kGzip) != Z_OK) return std::nullopt;
    std::string out(max_bytes + 1, '\0');  // one byte more: a longer list shows as too long
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gz->data()));
    z.avail_in = static_cast<uInt>(gz->size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    const int rc = inflate(&z, Z_FINISH);
    const auto n = z.total_out;
    const bool whole = rc == Z_STREAM_END && z.avail_in == 0;
    inflateEnd(&z);
    if (!whole || n > max_bytes) return std::nullopt;
    out.resize(n);
    return out;
}

}  // namespace lindra::status_list
