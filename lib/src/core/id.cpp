#include <lindra/error.hpp>
#include <lindra/id.hpp>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <string>

namespace lindra {
namespace {

void shape_uuid(Id& id, int version) {
    id.bytes[6] = static_cast<std::uint8_t>((id.bytes[6] & 0x0F) | (version << 4));
    id.bytes[8] = static_cast<std::uint8_t>((id.bytes[8] & 0x3F) | 0x80);  // RFC 4122 variant
}

int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

}  // namespace

Id Id::random() {
    Id id;
    if (RAND_bytes(id.bytes.data(), static_cast<int>(id.bytes.size())) != 1)
        throw Error(Errc::invalid_argument, "the system's random number generator failed");
    shape_uuid(id, 4);
    return id;
}

Id Id::derive(std::string_view domain, std::span<const Id> parts) {
    std::string input(domain);
    input.push_back('\0');
    for (const Id& p : parts) input.append(reinterpret_cast<const char*>(p.bytes.data()), p.bytes.size());
    // Fetched once: OpenSSL 3 looks the algorithm up again on every
    // SHA256() call, which costs more than the hash of these few bytes.
    static EVP_MD* const sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (!sha256 || EVP_Digest(input.data(), input.size(), digest, &len, sha256, nullptr) != 1 || len < 16)
        throw Error(Errc::invalid_argument, "SHA-256 is not available from OpenSSL");
    Id id;
    std::copy_n(digest, id.bytes.size(), id.bytes.begin());
    shape_uuid(id, 8);
    return id;
}

std::optional<Id> Id::parse(std::string_view text) {
    if (text.size() != 36) return std::nullopt;
    Id id;
    std::size_t out = 0;
    for (std::size_t i = 0; i < text.size();) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (text[i] != '-') return std::nullopt;
            ++i;
            continue;
        }
        const int hi = hex_digit(text[i]), lo = hex_digit(text[i + 1]);
        if (hi < 0 || lo < 0) return std::nullopt;
        id.bytes[out++] = static_cast<std::uint8_t>(hi * 16 + lo);
        i += 2;
    }
    return id;
}

void Id::format(char out[37]) const noexcept {
    static constexpr char digits[] = "0123456789abcdef";
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) *out++ = '-';
        *out++ = digits[bytes[i] >> 4];
        *out++ = digits[bytes[i] & 0xF];
    }
    *out = '\0';
}

std::string Id::to_string() const {
    char text[37];
    format(text);
    return text;
}

bool Id::is_nil() const noexcept {
    for (auto b : bytes)
        if (b) return false;
    return true;
}

}  // namespace lindra
