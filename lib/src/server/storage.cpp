#include "server/storage.hpp"

#include "core/codec.hpp"

namespace lindra::server {
namespace {

template <class Scopes>
std::string encode(const Scopes& scopes) {
    codec::Writer w;
    for (const auto& s : scopes) {
        w.varint(s.size());
        w.bytes(codec::bytes_of(s));
    }
    return w.take();
}

}  // namespace

std::string encode_scopes(std::span<const std::string> scopes) { return encode(scopes); }
std::string encode_scopes(const std::set<std::string>& scopes) { return encode(scopes); }

bool is_postgres(std::string_view db) {
    if (db.starts_with("postgresql://") || db.starts_with("postgres://")) return true;
    // A keyword string starts with a keyword and '=' ("host=db dbname=x");
    // a path never does unless it is relative and named so, which libpq
    // then refuses by name.
    const auto eq = db.find('=');
    return eq != std::string_view::npos && eq > 0 &&
           db.substr(0, eq).find_first_not_of("abcdefghijklmnopqrstuvwxyz_") == std::string_view::npos;
}

std::vector<std::string> decode_scopes(std::span<const std::uint8_t> blob) {
    std::vector<std::string> out;
    codec::Reader r(blob);
    while (!r.done()) {
        const auto b = r.bytes(r.varint());
        out.emplace_back(reinterpret_cast<const char*>(b.data()), b.size());
    }
    return out;
}

}  // namespace lindra::server
