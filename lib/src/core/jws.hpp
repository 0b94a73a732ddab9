// The pieces of JOSE that certificates need on both sides, the server that
// signs and the tablet that verifies with no network: base64url (RFC 4648
// §5, unpadded, canonical) and Ed25519 (RFC 8032) signatures of a compact
// JWS (RFC 7515), with the public key as an RFC 8037 JWK.
//
// Thread-safety: free functions, safe from any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace lindra::jws {

std::string base64url_encode(std::string_view bytes);
// Nothing for padding, a character outside the alphabet, an impossible
// length or trailing bits that are not zero (one encoding per byte string).
std::optional<std::string> base64url_decode(std::string_view text);

// The raw 32-byte public key of an Ed25519 private key in PEM. Throws
// lindra::Error(invalid_argument) if `pem` is not one.
std::string ed25519_public_key(std::string_view private_key_pem);
// The signature of `input` (64 bytes). Throws as ed25519_public_key does.
std::string ed25519_sign(std::string_view private_key_pem, std::string_view input);
// Whether `signature` is `public_key`'s (32 raw bytes) over `input`.
bool ed25519_verify(std::string_view public_key, std::string_view input, std::string_view signature);

// {"crv":"Ed25519","kty":"OKP","x":"..."}: the RFC 7638 canonical form, whose
// SHA-256 (base64url) is the key's RFC 7638 thumbprint.
std::string ed25519_jwk(std::string_view public_key);
std::string jwk_thumbprint(std::string_view jwk);

// A compact JWS of `payload` with `header`, signed with Ed25519.
std::string sign_compact(std::string_view private_key_pem, std::string_view header_json, std::string_view payload);

struct Compact {
    std::string header, payload, signature;  // decoded
    std::string signing_input;               // the first two parts, as sent
};
// The three parts of a compact JWS, decoded; nothing if it is not one.
std::optional<Compact> split_compact(std::string_view jws);

}  // namespace lindra::jws
