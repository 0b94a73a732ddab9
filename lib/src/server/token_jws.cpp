// JWS: signing a token and taking one apart, its signature not yet checked.
#include "server/token.hpp"

#include <lindra/error.hpp>

namespace lindra::server {
namespace {

[[noreturn]] void malformed(std::string_view why) {
    throw TokenRefused("the token is malformed: " + std::string(why));
}

}  // namespace

std::string sign_jws(std::string_view private_key_pem, std::string_view alg, std::string_view payload,
                     std::string_view kid) {
    const Pkey key = read_pem_key(private_key_pem, "the signing key", true);
    if (alg_of(key) != alg)
        throw Error(Errc::invalid_argument,
                    "the signing key is " + kind_of(key) + ", which cannot sign " + std::string(alg) + " tokens");
    Json header = {{"alg", alg}, {"typ", "JWT"}};
    if (!kid.empty()) header["kid"] = kid;
    const std::string input = base64url_encode(header.dump()) + "." + base64url_encode(payload);
    return input + "." + base64url_encode(sign_bytes(key, alg, input));
}

DecodedJwt decode_jwt(std::string_view token) {
    if (token.empty()) throw TokenRefused("the token is missing");
    if (token.size() > kMaxTokenBytes) malformed("it is longer than " + std::to_string(kMaxTokenBytes) + " bytes");
    const auto first = token.find('.');
    const auto second = first == token.npos ? token.npos : token.find('.', first + 1);
    if (second == token.npos || token.find('.', second + 1) != token.npos)
        malformed("it is not three dot-separated parts");

    const Json header = parse_json(base64url_decode(token.substr(0, first)));
    if (!header.is_object()) malformed("its header is not a JSON object");
    const auto* alg = text_member(header, "alg");
    if (!alg) malformed("its header has no alg");
    // An extension the token says must be understood cannot be ignored
    // (RFC 7515 §4.1.11), and lindra implements none. Of the key hints only
    // kid is read, to choose among a provider's published keys; keys never
    // come from the token itself (jwk, jku, x5u, x5c are ignored).
    if (header.contains("crit")) throw TokenRefused("the token has critical header parameters lindra does not support");
    const auto* kid = text_member(header, "kid");
    if (header.contains("kid") && (!kid || kid->empty() || kid->size() > 256))
        malformed("its header's kid is not a short string");

    DecodedJwt jwt;
    jwt.alg = *alg;
    if (kid) jwt.kid = *kid;
    jwt.claims = parse_json(base64url_decode(token.substr(first + 1, second - first - 1)));
    if (!jwt.claims.is_object()) malformed("its claims are not a JSON object");
    jwt.signing_input = token.substr(0, second);
    jwt.signature = base64url_decode(token.substr(second + 1));
    return jwt;
}

}  // namespace lindra::server
