// Compact JWS (RFC 7515) and JWT (RFC 7519) with OpenSSL's EVP interface:
// the pieces server/auth.cpp builds lindra's token checks from.
//
// Everything here reads bytes an attacker chose, so every reader is strict
// and bounded: a token is at most kMaxTokenBytes, base64url must be
// canonical, JSON must be exactly one well-formed value of bounded depth
// with no duplicate keys. Failures throw TokenRefused with a message that
// never quotes the token or a claim value.
//
// Thread-safety: free functions are safe from any thread; a VerifyKey is
// immutable after construction and may be shared between threads.
#pragma once

#include "server/auth.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

struct evp_pkey_st;  // OpenSSL's EVP_PKEY

namespace lindra::server {

inline constexpr std::size_t kMaxTokenBytes = 8 * 1024;

// ---- base64url (RFC 4648 §5, without padding) -------------------------------

std::string base64url_encode(std::string_view bytes);
// Throws TokenRefused("the token is malformed: ...") for padding, a
// character outside the alphabet, an impossible length, or trailing bits
// that are not zero (so each byte string has exactly one encoding).
std::string base64url_decode(std::string_view text);

// ---- JSON -------------------------------------------------------------------

struct JsonMember;

struct Json {
    using Array = std::vector<Json>;
    using Object = std::vector<JsonMember>;  // in document order, keys unique
    // Integers that fit in 64 bits are std::int64_t; other numbers, double.
    // No `{}` initializer: clang checks one where JsonMember is still
    // incomplete; the variant's default (null) is the same.
    std::variant<std::nullptr_t, bool, std::int64_t, double, std::string, Array, Object> value;

    // The member `key` of an object; nullptr if absent or not an object.
    const Json* find(std::string_view key) const;
    // The value as T, or nullptr if it is of another kind.
    template <class T>
    const T* as() const {
        return std::get_if<T>(&value);
    }
};

struct JsonMember {
    std::string key;
    Json value;
};

inline constexpr int kMaxJsonDepth = 16;

// Parses one JSON value (RFC 8259) spanning all of `text`. Strings must be
// valid UTF-8 (escapes included: no lone surrogates). Throws
// TokenRefused("the token is malformed: ...").
Json parse_json(std::string_view text);
// `text` as a JSON string literal, quotes included.
std::string json_quote(std::string_view text);

// ---- keys, signatures -------------------------------------------------------

struct PkeyFree {
    void operator()(evp_pkey_st* key) const noexcept;
};
using Pkey = std::unique_ptr<evp_pkey_st, PkeyFree>;

// A PEM public key (SubjectPublicKeyInfo) or an unencrypted private key
// (PKCS#8 or traditional), whose public half is then used. Throws
// lindra::Error(invalid_argument) naming `what` if it is neither.
Pkey read_pem_key(std::string_view pem, std::string_view what, bool want_private = false);

// A key that verifies JWS signatures with the one algorithm its type allows:
// EdDSA for Ed25519, ES256 for EC P-256, RS256 for RSA of 2048 bits or more.
// The key's type decides, never the token: "none", HS* and every algorithm
// of another key type are refused, so a public key can never be misused as
// an HMAC secret or an RSA key made to check an EdDSA signature.
class VerifyKey {
  public:
    // Throws lindra::Error(invalid_argument), naming `what`, for a key of
    // another type or size, an algorithm lindra does not verify in
    // `algorithms`, or a list without the key's own algorithm.
    VerifyKey(std::string_view pem, const std::vector<std::string>& algorithms, std::string_view what);

    bool allows(std::string_view alg) const { return alg == alg_; }
    // Whether `signature` is this key's signature of `signing_input` by
    // the one algorithm it allows.
    bool verify(std::string_view signing_input, std::string_view signature) const;

  private:
    Pkey key_;
    std::string alg_;  // each key type has exactly one algorithm in lindra
};

// A new private key for `alg` (EdDSA: Ed25519, ES256: EC P-256, RS256:
// RSA 2048), as PKCS#8 PEM.
std::string generate_private_key_pem(std::string_view alg);
// The public half of a PEM key, as SubjectPublicKeyInfo PEM. Throws
// lindra::Error(invalid_argument) if `pem` is not a key.
std::string public_key_pem(std::string_view pem);

// A compact JWS of `payload` (a JSON object) signed with `private_key_pem`
// by `alg` (EdDSA, ES256 or RS256, matching the key), with the header
// {"alg":alg,"typ":"JWT"}. Throws lindra::Error(invalid_argument) for a
// key that cannot sign `alg`.
std::string sign_jws(std::string_view private_key_pem, std::string_view alg, std::string_view payload);

// ---- decoding a JWT ---------------------------------------------------------

// A compact JWS split and decoded, its signature not yet checked.
struct DecodedJwt {
    std::string alg{};                 // the header's "alg"
    Json claims{};                     // the payload, a JSON object
    std::string_view signing_input{};  // header.payload, as signed; views the token
    std::string signature{};
};

// Throws TokenRefused: "the token is missing", "the token is malformed: ...".
DecodedJwt decode_jwt(std::string_view token);

// The registered time and audience claims at `now_s`, `leeway_s` of clock
// skew allowed: exp (required), nbf and iat (optional; a time in the
// future is "not valid yet"), aud (a string or an array holding
// `audience`). Throws TokenRefused.
void check_time_and_audience(const Json& claims, std::string_view audience, std::int64_t now_s, std::int64_t leeway_s);

}  // namespace lindra::server
