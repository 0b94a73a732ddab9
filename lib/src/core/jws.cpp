#include "core/jws.hpp"

#include <lindra/error.hpp>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <cstdint>
#include <memory>

namespace lindra::jws {
namespace {

constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int sextet(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;  // '=' padding included: JWS never pads
}

const unsigned char* bytes(std::string_view s) {
    return reinterpret_cast<const unsigned char*>(s.data());
}

using Pkey = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using MdCtx = std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)>;

Pkey read_private(std::string_view pem) {
    std::unique_ptr<BIO, decltype(&BIO_free)> in(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
    Pkey key(in ? PEM_read_bio_PrivateKey(in.get(), nullptr, nullptr, const_cast<char*>("")) : nullptr, &EVP_PKEY_free);
    ERR_clear_error();
    if (!key || !EVP_PKEY_is_a(key.get(), "ED25519"))
        throw Error(Errc::invalid_argument,
                    "the issuer key is not an unencrypted Ed25519 private key in PEM"
                    " (lindra-server gen-issuer-key makes one)");
    return key;
}

}  // namespace

std::string base64url_encode(std::string_view in) {
    std::string out;
    out.reserve((in.size() * 4 + 2) / 3);
    std::uint32_t acc = 0;
    int bits = 0;
    for (const unsigned char b : in) {
        acc = acc << 8 | b;
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out += kAlphabet[(acc >> bits) & 63];
        }
    }
    if (bits > 0) out += kAlphabet[(acc << (6 - bits)) & 63];
    return out;
}

std::optional<std::string> base64url_decode(std::string_view text) {
    if (text.size() % 4 == 1) return std::nullopt;
    std::string out;
    out.reserve(text.size() * 3 / 4);
    std::uint32_t acc = 0;
    int bits = 0;
    for (const char c : text) {
        const int v = sextet(c);
        if (v < 0) return std::nullopt;
        acc = acc << 6 | static_cast<std::uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((acc >> bits) & 0xFF);
        }
    }
    // The 2 or 4 bits left over must be zero, or several texts would
    // decode to the same bytes.
    if ((acc & ((1u << bits) - 1)) != 0) return std::nullopt;
    return out;
}

std::string ed25519_public_key(std::string_view private_key_pem) {
    const Pkey key = read_private(private_key_pem);
    std::string raw(32, '\0');
    std::size_t len = raw.size();
    if (EVP_PKEY_get_raw_public_key(key.get(), reinterpret_cast<unsigned char*>(raw.data()), &len) != 1 || len != 32) {
        ERR_clear_error();
        throw Error(Errc::invalid_argument, "cannot read the issuer key's public half");
    }
    return raw;
}

std::string ed25519_sign(std::string_view private_key_pem, std::string_view input) {
    const Pkey key = read_private(private_key_pem);
    const MdCtx ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
    std::string signature(64, '\0');
    std::size_t len = signature.size();
    const bool ok = ctx && EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) == 1 &&
                    EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &len, bytes(input),
                                   input.size()) == 1 &&
                    len == 64;
    ERR_clear_error();
    if (!ok) throw Error(Errc::invalid_argument, "OpenSSL could not sign with the issuer key");
    return signature;
}

bool ed25519_verify(std::string_view public_key, std::string_view input, std::string_view signature) {
    if (public_key.size() != 32 || signature.size() != 64) return false;
    const Pkey key(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, bytes(public_key), public_key.size()),
                   &EVP_PKEY_free);
    const MdCtx ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
    const bool ok = key && ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) == 1 &&
                    EVP_DigestVerify(ctx.get(), bytes(signature), signature.size(), bytes(input), input.size()) == 1;
    ERR_clear_error();
    return ok;
}

std::string ed25519_jwk(std::string_view public_key) {
    return R"({"crv":"Ed25519","kty":"OKP","x":")" + base64url_encode(public_key) + "\"}";
}

std::string jwk_thumbprint(std::string_view jwk) {
    unsigned char digest[32];
    unsigned int n = 0;
    EVP_Digest(jwk.data(), jwk.size(), digest, &n, EVP_sha256(), nullptr);
    return base64url_encode(std::string_view(reinterpret_cast<const char*>(digest), n));
}

std::string sign_compact(std::string_view private_key_pem, std::string_view header_json, std::string_view payload) {
    const std::string input = base64url_encode(header_json) + "." + base64url_encode(payload);
    return input + "." + base64url_encode(ed25519_sign(private_key_pem, input));
}

std::optional<Compact> split_compact(std::string_view jws) {
    const auto a = jws.find('.');
    const auto b = a == std::string_view::npos ? a : jws.find('.', a + 1);
    if (b == std::string_view::npos || jws.find('.', b + 1) != std::string_view::npos) return std::nullopt;
    auto header = base64url_decode(jws.substr(0, a));
    auto payload = base64url_decode(jws.substr(a + 1, b - a - 1));
    auto signature = base64url_decode(jws.substr(b + 1));
    if (!header || !payload || !signature) return std::nullopt;
    return Compact{std::move(*header), std::move(*payload), std::move(*signature), std::string(jws.substr(0, b))};
}

}  // namespace lindra::jws
