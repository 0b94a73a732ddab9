// Compact JWS (RFC 7515) and JWT (RFC 7519) with OpenSSL's EVP interface:
// the pieces server/auth.cpp builds lindra's token checks from, one file per
// concern: token_encoding.cpp (base64url, strict JSON), token_keys.cpp (PEM
// and JWK keys), token_jws.cpp (signing, decoding), token_claims.cpp.
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

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

struct evp_pkey_st;  // OpenSSL's EVP_PKEY

namespace lindra::server {

inline constexpr std::size_t kMaxTokenBytes = 8 * 1024;

// ---- encoding: base64url (RFC 4648 §5, without padding), JSON -------------

std::string base64url_encode(std::string_view bytes);
// Throws TokenRefused("the token is malformed: ...") for padding, a
// character outside the alphabet, an impossible length, or trailing bits
// that are not zero (so each byte string has exactly one encoding).
std::string base64url_decode(std::string_view text);

using Json = nlohmann::json;

inline constexpr int kMaxJsonDepth = 16;

// Thrown by strict_json: why the text is not JSON lindra takes, in words
// that never quote it.
class JsonRefused : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// One JSON value (RFC 8259, UTF-8 checked) spanning all of `text`, nested at
// most `max_depth` deep, no object with a key twice (parsers disagree on
// which duplicate wins; a document relying on one is refused).
Json strict_json(std::string_view text, int max_depth = kMaxJsonDepth);
// strict_json for a token's parts: throws TokenRefused("the token is
// malformed: invalid JSON (...)").
Json parse_json(std::string_view text);
// The member `key` of `object` if it is a string; nullptr otherwise.
const std::string* text_member(const Json& object, std::string_view key);

// ---- keys -----------------------------------------------------------------

struct PkeyFree {
    void operator()(evp_pkey_st* key) const noexcept;
};
using Pkey = std::unique_ptr<evp_pkey_st, PkeyFree>;

// A PEM public key (SubjectPublicKeyInfo) or an unencrypted private key
// (PKCS#8 or traditional), whose public half is then used. Throws
// lindra::Error(invalid_argument) naming `what` if it is neither.
Pkey read_pem_key(std::string_view pem, std::string_view what, bool want_private = false);

// The public key of a JWK (RFC 7517, 7518 §6, 8037): "kty" RSA with "n" and
// "e", EC with "crv" P-256, "x" and "y", or OKP with "crv" Ed25519 and "x".
// Throws JsonRefused saying what is missing or wrong.
Pkey jwk_public_key(const Json& jwk);

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
    VerifyKey(Pkey key, const std::vector<std::string>& algorithms, std::string_view what);

    bool allows(std::string_view alg) const { return alg == alg_; }
    const std::string& alg() const { return alg_; }
    // Whether `signature` is this key's signature of `signing_input` by
    // the one algorithm it allows.
    bool verify(std::string_view signing_input, std::string_view signature) const;

  private:
    Pkey key_;
    std::string alg_;  // each key type has exactly one algorithm in lindra
};

// The one algorithm lindra uses with keys of `key`'s type ("" for none),
// and the type's name.
std::string_view alg_of(const Pkey& key);
std::string kind_of(const Pkey& key);
// `key`'s signature of `input` by `alg` as JWS carries it. Throws
// std::runtime_error if OpenSSL fails.
std::string sign_bytes(const Pkey& key, std::string_view alg, std::string_view input);

// Throws lindra::Error(invalid_argument) naming `what` if an entry of
// `algorithms` is not one lindra verifies (EdDSA, ES256, RS256).
void check_algorithms(const std::vector<std::string>& algorithms, std::string_view what);

// A new private key for `alg` (EdDSA: Ed25519, ES256: EC P-256, RS256:
// RSA 2048), as PKCS#8 PEM.
std::string generate_private_key_pem(std::string_view alg);
// The public half of a PEM key, as SubjectPublicKeyInfo PEM. Throws
// lindra::Error(invalid_argument) if `pem` is not a key.
std::string public_key_pem(std::string_view pem);
// The public half of a PEM key as a JWK with "kid" (and "alg", "use": "sig").
Json public_jwk(std::string_view pem, std::string_view kid);

// ---- JWS ------------------------------------------------------------------

// A compact JWS of `payload` (a JSON object) signed with `private_key_pem`
// by `alg` (EdDSA, ES256 or RS256, matching the key), with the header
// {"alg":alg,"typ":"JWT"} and "kid" if one is given. Throws
// lindra::Error(invalid_argument) for a key that cannot sign `alg`.
std::string sign_jws(std::string_view private_key_pem, std::string_view alg, std::string_view payload,
                     std::string_view kid = {});

// A compact JWS split and decoded, its signature not yet checked.
struct DecodedJwt {
    std::string alg{};                 // the header's "alg"
    std::string kid{};                 // the header's "kid", empty if none
    Json claims{};                     // the payload, a JSON object
    std::string_view signing_input{};  // header.payload, as signed; views the token
    std::string signature{};
};

// Throws TokenRefused: "the token is missing", "the token is malformed: ...".
DecodedJwt decode_jwt(std::string_view token);

// ---- claims ---------------------------------------------------------------

// The registered time and audience claims at `now_s`, `leeway_s` of clock
// skew allowed: exp (required), nbf and iat (optional; a time in the
// future is "not valid yet"), aud (a string or an array holding
// `audience`). Throws TokenRefused.
void check_time_and_audience(const Json& claims, std::string_view audience, std::int64_t now_s, std::int64_t leeway_s);

}  // namespace lindra::server
