// Signed tokens: lindra's own (EdDSA) and an OpenID Connect provider's
// (ES256, RS256) become an identity; every other token is refused with a
// precise message that quotes neither the token nor a claim value.
#include "server/token.hpp"
#include "server/auth.hpp"
#include "support/sync_fixture.hpp"

#include <lindra/error.hpp>
#include <lindra/server.hpp>
#include <lindra/sync.hpp>

#include <catch2/catch.hpp>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

using namespace lindra;
using lindra::server::Identity;
using lindra::server::TokenRefused;

namespace {

constexpr std::int64_t kNow = 1'800'000'000;
constexpr const char* kSub = "user-7f3a9c";  // must never appear in a message
constexpr const char* kEcIssuer = "https://idp.example/ec";
constexpr const char* kRsIssuer = "https://idp.example/rs";
constexpr const char* kEcOnlyIssuer = "https://idp.example/ec-only";  // allows ES256 alone
constexpr const char* kCustomIssuer = "https://idp.example/custom";   // its own claim names
constexpr const char* kOidcAudience = "lindra-sync";
const Id kPerson = *Id::parse("6f1c2a34-9d0e-4b7a-8c55-0123456789ab");
const Id kOrg = *Id::parse("0a1b2c3d-4e5f-4a6b-8c7d-8e9fa0b1c2d3");

std::string pem_of(EVP_PKEY* key) {
    BIO* out = BIO_new(BIO_s_mem());
    REQUIRE(PEM_write_bio_PrivateKey(out, key, nullptr, nullptr, 0, nullptr, nullptr) == 1);
    char* data = nullptr;
    const long size = BIO_get_mem_data(out, &data);
    std::string pem(data, static_cast<std::size_t>(size));
    BIO_free(out);
    return pem;
}

struct Keys {
    std::string lindra = generate_token_key();
    std::string other = generate_token_key();  // signs what the server must not take
    std::string ec = server::generate_private_key_pem("ES256");
    std::string rsa = server::generate_private_key_pem("RS256");
    std::string rsa_1024 = [] {
        EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", std::size_t{1024});
        std::string pem = pem_of(key);
        EVP_PKEY_free(key);
        return pem;
    }();
};
const Keys& keys() {
    static const Keys k;  // RSA key generation is slow: once per process
    return k;
}

// The server's view: lindra's public key and three providers.
TokenOptions options() {
    const auto& k = keys();
    TokenOptions o;
    o.key_pem = server::public_key_pem(k.lindra);
    const auto ec = server::public_key_pem(k.ec);
    o.oidc.push_back({.issuer = kEcIssuer, .audience = kOidcAudience, .public_key_pem = ec});
    o.oidc.push_back({.issuer = kRsIssuer, .audience = kOidcAudience, .public_key_pem = server::public_key_pem(k.rsa)});
    o.oidc.push_back(
        {.issuer = kEcOnlyIssuer, .audience = kOidcAudience, .public_key_pem = ec, .algorithms = {"ES256"}});
    o.oidc.push_back({.issuer = kCustomIssuer,
                      .audience = kOidcAudience,
                      .public_key_pem = ec,
                      .role_claim = "app_role",
                      .person_claim = "app_person",
                      .organization_claim = "app_org"});
    return o;
}

// Claims as JSON members, each value JSON text already, in order.
using Claims = std::vector<std::pair<std::string, std::string>>;

std::string q(std::string_view s) {
    return server::Json(std::string(s)).dump();
}
std::string n(std::int64_t v) {
    return std::to_string(v);
}

std::string json(const Claims& claims) {
    std::string out = "{";
    for (const auto& [key, value] : claims) out += (out.size() > 1 ? "," : "") + q(key) + ":" + value;
    return out + "}";
}

// `claims` with `key` set to `value` (JSON text), or removed if nullopt.
Claims with(Claims claims, const std::string& key, std::optional<std::string> value) {
    std::erase_if(claims, [&](const auto& m) { return m.first == key; });
    if (value) claims.emplace_back(key, *value);
    return claims;
}

Claims lindra_claims() {
    return {
        {"iss", q("lindra")},  {"aud", q("lindra")},    {"sub", q(kSub)},         {"iat", n(kNow - 60)},
        {"nbf", n(kNow - 60)}, {"exp", n(kNow + 3600)}, {"role", q("candidate")}, {"person", q(kPerson.to_string())}};
}

Claims oidc_claims(const char* issuer = kEcIssuer) {
    return {{"iss", q(issuer)},
            {"aud", q(kOidcAudience)},
            {"sub", q(kSub)},
            {"exp", n(kNow + 3600)},
            {"lindra_role", q("coordinator")},
            {"lindra_person", q(kPerson.to_string())},
            {"lindra_org", q(kOrg.to_string())}};
}

std::string lindra_token(const Claims& claims, const std::string& key = keys().lindra) {
    return server::sign_jws(key, "EdDSA", json(claims));
}

// A token put together by hand, for what sign_jws would not make.
std::string raw_token(std::string_view header, std::string_view payload, std::string_view signature = "sig") {
    using server::base64url_encode;
    return base64url_encode(header) + "." + base64url_encode(payload) + "." + base64url_encode(signature);
}

// An HS256 token whose secret is `secret`, the classic attack on servers
// that let the token pick the algorithm for a public key.
std::string hs256_token(const Claims& claims, const std::string& secret) {
    using server::base64url_encode;
    const auto input = base64url_encode(R"({"alg":"HS256","typ":"JWT"})") + "." + base64url_encode(json(claims));
    unsigned char mac[32];
    std::size_t len = 0;
    REQUIRE(EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, secret.data(), secret.size(),
                      reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, sizeof mac,
                      &len) != nullptr);
    return input + "." + base64url_encode(std::string_view(reinterpret_cast<char*>(mac), len));
}

// The refusal's message, or "" if the token was taken.
std::string refusal(const std::string& token, std::int64_t now = kNow) {
    static const auto auth = server::token_authenticator(options());
    try {
        auth->authenticate(token, now);
        return "";
    } catch (const TokenRefused& e) {
        return e.what();
    }
}

Identity identity(const std::string& token, std::int64_t now = kNow) {
    return server::token_authenticator(options())->authenticate(token, now);
}

}  // namespace

TEST_CASE("base64url is strict and round-trips") {
    using server::base64url_decode;
    using server::base64url_encode;
    const std::vector<std::string> samples = {"",     "f",     "fo",     "foo",
                                              "foob", "fooba", "foobar", std::string("\xff\xfe\x00\x01", 4)};
    for (const auto& bytes : samples) CHECK(base64url_decode(base64url_encode(bytes)) == bytes);
    CHECK(base64url_encode("\xfb\xff") == "-_8");
    for (const char* bad : {"e30=", "e3+", "e3/", "e 0", "e", "e31"})  // e31: "{}" with a trailing bit set
        CHECK_THROWS_WITH(base64url_decode(bad), "the token is malformed: it is not canonical base64url");
}

TEST_CASE("the JSON reader takes RFC 8259 and no more") {
    using server::parse_json;
    const auto doc = parse_json(R"( {"s":"a\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00","i":-42,"d":1.5e3,"t":true,"f":false,)"
                                R"("z":null,"a":[1,[2,{}]],"big":123456789012345678901234} )");
    CHECK(doc["s"] == "a\"\\/\b\f\n\r\t\xc3\xa9\xf0\x9f\x98\x80");
    CHECK(doc["i"] == -42);
    CHECK(doc["d"] == 1500.0);
    CHECK(doc["t"] == true);
    CHECK(doc["f"] == false);
    CHECK(doc["z"].is_null());
    CHECK(doc["a"].size() == 2);
    CHECK(doc["big"].is_number_float());  // past 64 bits
    CHECK_FALSE(doc.contains("missing"));
    CHECK(parse_json("\"\xc3\xa9\"") == "\xc3\xa9");

    const std::string deepest = std::string(server::kMaxJsonDepth, '[') + std::string(server::kMaxJsonDepth, ']');
    CHECK_NOTHROW(parse_json(deepest));
    // What lindra adds to the parser, named; the rest is not well-formed.
    const std::vector<std::pair<std::string, std::string>> bad = {
        {"[" + deepest + "]", "nested too deeply"},
        {std::string(100000, '['), "nested too deeply"},
        {R"({"a":1,"a":2})", "duplicate key"},
        {R"({"a":{"b":1,"b":1}})", "duplicate key"},
        {"{", "not well-formed at byte 2"},
        {"[1,]", "not well-formed at byte 4"},
        {"{} x", "not well-formed at byte 4"},
        {"01", "not well-formed at byte 2"},
        {"-", "not well-formed at byte 2"},
        {"1.", "not well-formed at byte 3"},
        {"\"a\nb\"", "not well-formed at byte 3"},  // a control character in a string
        {R"("\x")", "not well-formed at byte 3"},
        {R"("\u12")", "not well-formed at byte 6"},
        {R"("\ud800")", "not well-formed at byte 8"},   // a lone surrogate
        {R"("\udc00")", "not well-formed at byte 7"},
        {"\"\xc3\"", "not well-formed at byte 3"},          // invalid UTF-8
        {"\"\xc0\xaf\"", "not well-formed at byte 2"},      // overlong '/'
        {"\"\xed\xa0\x80\"", "not well-formed at byte 3"},  // a surrogate
        {"\"\xf4\x90\x80\x80\"", "not well-formed at byte 3"},  // past U+10FFFF
        {"\"abc", "not well-formed at byte 5"},
        {"tru", "not well-formed at byte 4"},
        {"", "not well-formed at byte 1"},
    };
    for (const auto& [text, why] : bad) {
        INFO(text.substr(0, 40));
        CHECK_THROWS_WITH(parse_json(text), "the token is malformed: invalid JSON (" + why + ")");
    }
}

TEST_CASE("a valid token becomes an identity") {
    SECTION("lindra's own, from issue_token") {
        const auto token = issue_token(keys().lindra, {.user = "cand-1", .role = Role::candidate, .person = kPerson},
                                       "lindra", "lindra", kNow - 10);
        const auto id = identity(token);
        CHECK(id.user == "cand-1");
        CHECK(id.role == Role::candidate);
        CHECK(id.person == kPerson);
        CHECK(id.organization.is_nil());
    }
    SECTION("a coordinator names an organization") {
        const auto token = issue_token(
            keys().lindra, {.user = "coord", .role = Role::coordinator, .person = kPerson, .organization = kOrg},
            "lindra", "lindra", kNow);
        const auto id = identity(token);
        CHECK(id.role == Role::coordinator);
        CHECK(id.organization == kOrg);
    }
    SECTION("an admin is no person, even if the token names one") {
        const auto id = identity(lindra_token(with(lindra_claims(), "role", q("admin"))));
        CHECK(id.role == Role::admin);
        CHECK(id.person.is_nil());
        CHECK(identity(lindra_token(with(with(lindra_claims(), "role", q("admin")), "person", {}))).user == kSub);
    }
    SECTION("within the leeway of exp, nbf and iat") {
        auto claims = with(lindra_claims(), "exp", n(kNow - 59));
        CHECK(identity(lindra_token(claims)).user == kSub);
        claims = with(with(lindra_claims(), "nbf", n(kNow + 60)), "iat", n(kNow + 60));
        CHECK(identity(lindra_token(claims)).user == kSub);
        CHECK(identity(lindra_token(with(lindra_claims(), "exp", "1800003600.5"))).user == kSub);  // NumericDate
    }
    SECTION("an audience in an array") {
        const auto id = identity(lindra_token(with(lindra_claims(), "aud", R"(["other","lindra"])")));
        CHECK(id.user == kSub);
    }
    SECTION("an OpenID Connect provider's ES256 token") {
        const auto id = identity(server::sign_jws(keys().ec, "ES256", json(oidc_claims())));
        CHECK(id.user == kSub);
        CHECK(id.role == Role::coordinator);
        CHECK(id.person == kPerson);
        CHECK(id.organization == kOrg);
    }
    SECTION("an OpenID Connect provider's RS256 token") {
        const auto claims = with(oidc_claims(kRsIssuer), "aud", "[" + q(kOidcAudience) + "]");
        CHECK(identity(server::sign_jws(keys().rsa, "RS256", json(claims))).role == Role::coordinator);
    }
    SECTION("a provider's own claim names") {
        const Claims claims = {{"iss", q(kCustomIssuer)},  {"aud", q(kOidcAudience)},
                               {"sub", q(kSub)},           {"exp", n(kNow + 60)},
                               {"app_role", q("mentor")},  {"app_person", q(kPerson.to_string())},
                               {"lindra_role", q("admin")}};  // not this provider's name for it
        const auto id = identity(server::sign_jws(keys().ec, "ES256", json(claims)));
        CHECK(id.role == Role::mentor);
        CHECK(id.person == kPerson);
    }
    SECTION("the server may hold the private key itself") {
        auto o = options();
        o.key_pem = keys().lindra;
        CHECK(server::token_authenticator(o)->authenticate(lindra_token(lindra_claims()), kNow).user == kSub);
    }
}

TEST_CASE("every other token is refused, saying why and nothing more") {
    const auto& k = keys();
    const auto valid = lindra_token(lindra_claims());
    const auto parts_of = [](const std::string& token) {
        const auto a = token.find('.'), b = token.rfind('.');
        return std::tuple{token.substr(0, a), token.substr(a + 1, b - a - 1), token.substr(b + 1)};
    };
    const auto [header, payload, signature] = parts_of(valid);
    const auto admin_payload = server::base64url_encode(json(with(lindra_claims(), "role", q("admin"))));
    const auto ec_token = [&](const Claims& c) { return server::sign_jws(k.ec, "ES256", json(c)); };
    const std::string long_alg = "HS256\n" + std::string(200, 'A');

    struct Case {
        std::string name;
        std::string token;
        std::string message;
    };
    const std::vector<Case> cases = {
        {"expired", lindra_token(with(lindra_claims(), "exp", n(kNow - 60))), "the token has expired"},
        {"long expired",
         issue_token(k.lindra, {.user = kSub, .role = Role::admin}, "lindra", "lindra", kNow - 13 * 3600),
         "the token has expired"},
        {"not valid yet", lindra_token(with(lindra_claims(), "nbf", n(kNow + 61))), "the token is not valid yet"},
        {"issued in the future", lindra_token(with(lindra_claims(), "iat", n(kNow + 3600))),
         "the token is not valid yet"},
        {"no exp", lindra_token(with(lindra_claims(), "exp", {})), "the token has no valid exp claim"},
        {"exp as text", lindra_token(with(lindra_claims(), "exp", q("1800003600"))),
         "the token has no valid exp claim"},
        {"nbf as text", lindra_token(with(lindra_claims(), "nbf", q("0"))), "the token has no valid nbf claim"},
        {"signed by another key", lindra_token(lindra_claims(), k.other), "the token's signature does not verify"},
        {"a tampered payload", header + "." + admin_payload + "." + signature, "the token's signature does not verify"},
        {"a signature cut short", header + "." + payload + "." + signature.substr(0, 40),
         "the token's signature does not verify"},
        {"no signature", header + "." + payload + ".", "the token's signature does not verify"},
        {"an ES256 signature cut short",
         [&] {
             const auto [h, p, s] = parts_of(ec_token(oidc_claims()));
             return h + "." + p + "." + server::base64url_encode(server::base64url_decode(s).substr(0, 63));
         }(),
         "the token's signature does not verify"},
        {"another audience", lindra_token(with(lindra_claims(), "aud", q("billing"))),
         "the token is for another audience"},
        {"another audience in an array", lindra_token(with(lindra_claims(), "aud", R"(["billing","hr"])")),
         "the token is for another audience"},
        {"no aud", lindra_token(with(lindra_claims(), "aud", {})), "the token has no valid aud claim"},
        {"aud as a number", lindra_token(with(lindra_claims(), "aud", "7")), "the token has no valid aud claim"},
        {"another issuer", lindra_token(with(lindra_claims(), "iss", q("https://evil.example"))),
         "the token's issuer is not trusted"},
        {"no iss", lindra_token(with(lindra_claims(), "iss", {})), "the token has no valid iss claim"},
        {"alg none", raw_token(R"({"alg":"none"})", json(lindra_claims()), ""),
         "the token's algorithm none is not allowed"},
        {"HS256 keyed with lindra's public key", hs256_token(lindra_claims(), server::public_key_pem(k.lindra)),
         "the token's algorithm HS256 is not allowed"},
        {"HS256 keyed with a provider's RSA public key",
         hs256_token(oidc_claims(kRsIssuer), server::public_key_pem(k.rsa)),
         "the token's algorithm HS256 is not allowed"},
        {"EdDSA for a provider with an RSA key", lindra_token(oidc_claims(kRsIssuer), k.lindra),
         "the token's algorithm EdDSA is not allowed"},
        {"RS256 for lindra's own issuer", server::sign_jws(k.rsa, "RS256", json(lindra_claims())),
         "the token's algorithm RS256 is not allowed"},
        {"RS256 for a provider with an EC key", server::sign_jws(k.rsa, "RS256", json(oidc_claims(kEcIssuer))),
         "the token's algorithm RS256 is not allowed"},
        {"RS256 where only ES256 is allowed", server::sign_jws(k.rsa, "RS256", json(oidc_claims(kEcOnlyIssuer))),
         "the token's algorithm RS256 is not allowed"},
        {"an alg too long to print", raw_token(R"({"alg":)" + q(long_alg) + "}", json(lindra_claims())),
         "the token's algorithm HS256?AAAAAAAAAA... is not allowed"},
        {"a critical extension", raw_token(R"({"alg":"EdDSA","crit":["exp"],"exp":1})", json(lindra_claims())),
         "the token has critical header parameters lindra does not support"},
        {"empty", "", "the token is missing"},
        {"one part", "not-a-token", "the token is malformed: it is not three dot-separated parts"},
        {"two parts", header + "." + payload, "the token is malformed: it is not three dot-separated parts"},
        {"four parts", valid + ".x", "the token is malformed: it is not three dot-separated parts"},
        {"bad base64url", header + "." + payload + ".!!", "the token is malformed: it is not canonical base64url"},
        {"padded base64url", header + "=." + payload + "." + signature,
         "the token is malformed: it is not canonical base64url"},
        {"a header that is not JSON", raw_token("{alg:EdDSA}", json(lindra_claims())),
         "the token is malformed: invalid JSON (not well-formed at byte 2)"},
        {"a header that is an array", raw_token(R"(["EdDSA"])", json(lindra_claims())),
         "the token is malformed: its header is not a JSON object"},
        {"a header without alg", raw_token(R"({"typ":"JWT"})", json(lindra_claims())),
         "the token is malformed: its header has no alg"},
        {"a header with alg twice", raw_token(R"({"alg":"EdDSA","alg":"none"})", json(lindra_claims())),
         "the token is malformed: invalid JSON (duplicate key)"},
        {"claims with sub twice", raw_token(R"({"alg":"EdDSA"})", R"({"sub":"a","sub":"b"})"),
         "the token is malformed: invalid JSON (duplicate key)"},
        {"claims that are a string", raw_token(R"({"alg":"EdDSA"})", R"("lindra")"),
         "the token is malformed: its claims are not a JSON object"},
        {"claims nested too deeply",
         raw_token(R"({"alg":"EdDSA"})", R"({"x":)" + std::string(40, '[') + std::string(40, ']') + "}"),
         "the token is malformed: invalid JSON (nested too deeply)"},
        {"a huge token", lindra_token(with(lindra_claims(), "pad", q(std::string(9000, 'p')))),
         "the token is malformed: it is longer than 8192 bytes"},
        {"no sub", lindra_token(with(lindra_claims(), "sub", {})), "the token has no valid sub claim"},
        {"a sub that forges log lines", lindra_token(with(lindra_claims(), "sub", q("x\nend=ok"))),
         "the token has no valid sub claim"},
        {"no role", lindra_token(with(lindra_claims(), "role", {})), "the token has no valid role claim"},
        {"an unknown role", lindra_token(with(lindra_claims(), "role", q("superuser"))),
         "the token has no valid role claim"},
        {"a candidate without a person", lindra_token(with(lindra_claims(), "person", {})),
         "the token's role needs the person claim"},
        {"a person that is not a UUID", lindra_token(with(lindra_claims(), "person", q("ola"))),
         "the token has no valid person claim"},
        {"a coordinator without an organization", lindra_token(with(lindra_claims(), "role", q("coordinator"))),
         "the token's role needs the org claim"},
        {"an organization that is nil",
         lindra_token(with(lindra_claims(), "org", q("00000000-0000-0000-0000-000000000000"))),
         "the token has no valid org claim"},
        {"a provider's token without its role claim", ec_token(with(oidc_claims(), "lindra_role", {})),
         "the token has no valid lindra_role claim"},
        {"a provider's coordinator without an organization", ec_token(with(oidc_claims(), "lindra_org", {})),
         "the token's role needs the lindra_org claim"},
        {"a provider's token for lindra's audience", ec_token(with(oidc_claims(), "aud", q("lindra"))),
         "the token is for another audience"},
    };
    for (const auto& c : cases) {
        INFO(c.name);
        const auto message = refusal(c.token);
        CHECK(message == c.message);
        CHECK(message.find(kSub) == std::string::npos);
        if (!c.token.empty()) CHECK(message.find(c.token) == std::string::npos);
        CHECK(message.find('\n') == std::string::npos);
    }
    CHECK(refusal(valid) == "");
}

TEST_CASE("options that could never verify a token stop the server from starting") {
    const auto& k = keys();
    const auto refused = [](const TokenOptions& o) -> std::string {
        try {
            server::token_authenticator(o);
            return "";
        } catch (const Error& e) {
            CHECK(e.errc() == Errc::invalid_argument);
            return e.what();
        }
    };
    const auto provider = [&](std::string key_pem, std::vector<std::string> algorithms = {"ES256", "RS256"}) {
        TokenOptions o;
        o.oidc.push_back({.issuer = kEcIssuer,
                          .audience = kOidcAudience,
                          .public_key_pem = std::move(key_pem),
                          .algorithms = std::move(algorithms)});
        return o;
    };
    CHECK(refused(TokenOptions{}) ==
          "no way to verify tokens: give the server a token key or an OpenID Connect provider");
    CHECK(refused({.key_pem = "not a key"}) == "the token key is not a PEM public or private key");
    CHECK(refused({.key_pem = server::public_key_pem(k.ec)}) ==
          "the token key is EC, which verifies ES256, and ES256 is not among its allowed algorithms");
    CHECK(refused({.key_pem = k.lindra, .issuer = ""}) == "lindra's own tokens: the issuer is empty");
    CHECK(refused({.key_pem = k.lindra, .leeway = std::chrono::seconds(-1)}) ==
          "the tokens' leeway must not be negative");
    CHECK(refused(provider(k.ec)) == "");
    CHECK(refused(provider(k.rsa_1024)) == std::string("the key of OpenID Connect provider ") + kEcIssuer +
                                               " is RSA, not Ed25519, EC P-256 or RSA of 2048 bits or more");
    CHECK(refused(provider(k.rsa, {"ES256"})) == std::string("the key of OpenID Connect provider ") + kEcIssuer +
                                                     " is RSA, which verifies RS256, and RS256 is not among its "
                                                     "allowed algorithms");
    CHECK(refused(provider(k.ec, {"ES256", "HS256"})) ==
          std::string("the key of OpenID Connect provider ") + kEcIssuer +
              ": \"HS256\" is not an algorithm lindra verifies (EdDSA, ES256 or RS256)");
    CHECK(refused(provider(k.ec, {"none"})) != "");
    auto o = provider(k.ec);
    o.oidc[0].audience.clear();
    CHECK(refused(o) == std::string("OpenID Connect provider ") + kEcIssuer + ": the audience is empty");
    o = provider(k.ec);
    o.oidc[0].role_claim.clear();
    CHECK(refused(o) == std::string("OpenID Connect provider ") + kEcIssuer + ": a claim name is empty");
    o = provider(k.ec);
    o.oidc.push_back(o.oidc[0]);
    CHECK(refused(o) != "");
    o = provider(k.ec);
    o.key_pem = k.lindra;
    o.issuer = kEcIssuer;
    CHECK(refused(o) ==
          std::string("OpenID Connect provider ") + kEcIssuer + " has the same issuer as lindra's own tokens");
}

TEST_CASE("issue_token refuses what no server would take") {
    const auto& k = keys();
    const auto refused = [&](const TokenClaims& claims, const std::string& key) -> std::string {
        try {
            issue_token(key, claims);
            return "";
        } catch (const Error& e) {
            CHECK(e.errc() == Errc::invalid_argument);
            return e.what();
        }
    };
    CHECK(refused({.user = "a", .role = Role::admin}, k.lindra) == "");
    CHECK(refused({.user = "", .role = Role::admin}, k.lindra) ==
          "a token's user must be 1 to 256 bytes, without control characters");
    CHECK(refused({.user = "a", .role = Role::mentor}, k.lindra) == "a mentor token needs a person");
    CHECK(refused({.user = "a", .role = Role::coordinator, .person = kPerson}, k.lindra) ==
          "a coordinator token needs an organization");
    CHECK(refused({.user = "a", .role = Role::admin, .ttl = std::chrono::seconds(0)}, k.lindra) ==
          "a token's time to live must be positive");
    CHECK(refused({.user = "a", .role = Role::admin}, "junk") ==
          "the signing key is not a PEM private key (unencrypted)");
    CHECK(refused({.user = "a", .role = Role::admin}, server::public_key_pem(k.lindra)) ==
          "the signing key is not a PEM private key (unencrypted)");
    CHECK(refused({.user = "a", .role = Role::admin}, k.rsa) ==
          "the signing key is RSA, which cannot sign EdDSA tokens");
    // Valid for exactly its ttl.
    const auto token = issue_token(k.lindra, {.user = "a", .role = Role::admin, .ttl = std::chrono::minutes(30)},
                                   "lindra", "lindra", kNow);
    CHECK(refusal(token, kNow + 1800 + 59) == "");
    CHECK(refusal(token, kNow + 1800 + 60) == "the token has expired");
    CHECK(to_string(Role::coordinator) == "coordinator");
    CHECK(parse_role("mentor") == Role::mentor);
    CHECK_THROWS_AS(parse_role("Mentor"), Error);
}

TEST_CASE("the server refuses an expired or wrongly signed token and logs why, not the token") {
    test::SyncWorld w;
    Replica& tablet = w.tablet("tablet");
    const std::int64_t now =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    const auto expired = w.token({.user = "late-user", .role = Role::admin}, now - 2 * 24 * 3600);
    const auto forged = issue_token(generate_token_key(), {.user = "forger", .role = Role::admin});
    for (const auto& [token, why] :
         {std::pair{expired, "the token has expired"}, std::pair{forged, "the token's signature does not verify"}}) {
        const auto r = w.sync(tablet, token);
        INFO(to_string(r.outcome) << ": " << r.message);
        CHECK(r.outcome == SyncOutcome::auth_failed);
        CHECK(r.message.find(why) != std::string::npos);
    }
    test::require_ok(w.sync(tablet));
    w.stop_server();  // the log is complete once the server stopped
    const auto log = w.log();
    REQUIRE(log.size() == 3);
    CHECK(log[0].find("the token has expired") != std::string::npos);
    CHECK(log[1].find("the token's signature does not verify") != std::string::npos);
    for (const auto& line : log) {
        INFO(line);
        for (const auto& token : {expired, forged, w.token_for("coordinator-token")})
            CHECK(line.find(token) == std::string::npos);
        CHECK(line.find("late-user") == std::string::npos);
        CHECK(line.find("forger") == std::string::npos);
    }
}

TEST_CASE("a server with a bad token key does not create its store") {
    lindra::test::TempDir dir;
    ServerOptions o;
    o.db_path = dir.file("server.db");
    o.insecure = true;
    o.tokens.key_pem = "not a key";
    CHECK_THROWS_AS(SyncServer(o), Error);
    CHECK_FALSE(std::filesystem::exists(o.db_path));
}
