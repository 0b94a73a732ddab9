// An OpenID Connect provider's keys from its JWK Set: parsing, the choice by
// kid, the refetch rules (rate limit, stale-if-error, max-age bounds), and
// the token checks with keys from a set, attacks included. The real
// provider, over HTTP, is tests/oidc_test.sh's.
#include "net/http_get.hpp"
#include "server/auth.hpp"
#include "server/jwks.hpp"
#include "server/token.hpp"
#include "support/temp_dir.hpp"

#include <lindra/error.hpp>
#include <lindra/server.hpp>

#include <catch2/catch.hpp>

#include <openssl/evp.h>

#include <atomic>
#include <fstream>
#include <thread>

using namespace lindra;
using namespace lindra::server;
using namespace std::chrono_literals;

namespace {

constexpr const char* kIssuer = "https://idp.example";
constexpr const char* kAudience = "lindra-sync";

struct Keys {
    std::string ec1 = generate_private_key_pem("ES256");
    std::string ec2 = generate_private_key_pem("ES256");
    std::string rsa = generate_private_key_pem("RS256");
    std::string ed = generate_private_key_pem("EdDSA");
};
const Keys& keys() {
    static const Keys k;
    return k;
}

std::string jwks(std::initializer_list<Json> members) {
    Json set = {{"keys", Json::array()}};
    for (const auto& m : members) set["keys"].push_back(m);
    return set.dump();
}

std::int64_t now_s() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

Json claims(std::int64_t now = now_s()) {
    return {{"iss", kIssuer},          {"aud", kAudience}, {"sub", "office"}, {"iat", now - 10},
            {"exp", now + 300},        {"lindra_role", "admin"}};
}

std::string token(const std::string& pem, const char* alg, const std::string& kid, const Json& c = claims()) {
    return sign_jws(pem, alg, c.dump(), kid);
}

std::string b64(std::string_view s) {
    return base64url_encode(s);
}

// A JWK Set fetch whose answers the test sets, counting its calls.
struct FakeProvider {
    std::mutex mutex;
    std::string body;
    std::optional<std::chrono::seconds> max_age;
    bool down = false;
    std::chrono::milliseconds delay{0};
    std::atomic<int> calls{0};

    JwksCache::Fetch fetch() {
        return [this] {
            ++calls;
            std::this_thread::sleep_for(delay);
            const std::lock_guard lock(mutex);
            if (down) throw std::runtime_error("connection refused");
            return JwksDocument{body, max_age};
        };
    }
};

// A clock the test moves.
struct FakeClock {
    JwksCache::Clock::time_point now = JwksCache::Clock::time_point{} + 1000h;
    std::function<JwksCache::Clock::time_point()> fn() {
        return [this] { return now; };
    }
};

bool verifies(JwksCache& cache, const std::string& jws) {
    const DecodedJwt jwt = decode_jwt(jws);
    return cache.verify(jwt.kid, jwt.alg, jwt.signing_input, jwt.signature);
}

std::string refusal(JwksCache& cache, const std::string& jws) {
    try {
        verifies(cache, jws);
        return "";
    } catch (const TokenRefused& e) {
        return e.what();
    }
}

}  // namespace

TEST_CASE("a JWK Set's usable keys are read, the rest left out") {
    const auto& k = keys();
    const std::vector<std::string> algs{"ES256", "RS256", "EdDSA"};
    Json enc = public_jwk(k.rsa, "enc-1");
    enc["use"] = "enc";
    Json ps256 = public_jwk(k.rsa, "ps-1");
    ps256["alg"] = "PS256";
    Json mislabelled = public_jwk(k.ec1, "liar");
    mislabelled["alg"] = "RS256";  // an EC key claiming RSA's algorithm
    const Json oct = {{"kty", "oct"}, {"kid", "hmac"}, {"k", b64("secret")}, {"alg", "HS256"}};
    const auto set = KeySet::parse(
        jwks({public_jwk(k.ec1, "ec-1"), public_jwk(k.rsa, "rsa-1"), public_jwk(k.ed, "ed-1"), enc, ps256, mislabelled, oct}),
        algs);
    CHECK(set.size() == 3);
    CHECK(set.find("ec-1", "ES256"));
    CHECK(set.find("rsa-1", "RS256"));
    CHECK(set.find("ed-1", "EdDSA"));
    CHECK_FALSE(set.find("ec-1", "RS256"));  // kid and alg must agree
    CHECK_FALSE(set.find("hmac", "HS256"));
    CHECK_FALSE(set.find("liar", "RS256"));
    CHECK_FALSE(set.find("", "ES256") == nullptr);  // one ES256 key: a token without kid may use it
    CHECK(set.has("rsa-1"));
    CHECK_FALSE(set.has("nope"));

    // Only the provider's allowed algorithms.
    CHECK(KeySet::parse(jwks({public_jwk(k.ec1, "a"), public_jwk(k.rsa, "b")}), {"RS256"}).size() == 1);

    const auto why = [&](const std::string& text) -> std::string {
        try {
            KeySet::parse(text, algs);
            return "";
        } catch (const JsonRefused& e) {
            return e.what();
        }
    };
    CHECK(why("[]") == "it has no \"keys\" array");
    CHECK(why(R"({"keys":{}})") == "it has no \"keys\" array");
    CHECK(why(R"({"keys":[]})") == "it holds no key lindra may verify with");
    CHECK(why(jwks({oct})) == "it holds no key lindra may verify with (key 1 (kid hmac): its algorithm is not allowed)");
    CHECK(why(R"({"keys":[],"keys":[]})") == "duplicate key");
    CHECK(why(std::string(40, '[')) == "nested too deeply");
    CHECK(why("{\"keys\":[") == "not well-formed at byte 10");
    Json broken = public_jwk(k.ec1, "x");
    broken["y"] = broken["x"];  // not on the curve
    CHECK(why(jwks({broken})).find("its point is not on the P-256 curve") != std::string::npos);
    Json padded = public_jwk(k.rsa, "x");
    padded["n"] = padded["n"].get<std::string>() + "=";
    CHECK(why(jwks({padded})).find("its \"n\" is missing or not base64url") != std::string::npos);
    CHECK(why(std::string(2 << 20, ' ')) == "it is larger than 1 MiB");
}

TEST_CASE("the token's kid picks the key; an unknown kid refetches, rate-limited") {
    const auto& k = keys();
    FakeProvider idp;
    FakeClock clock;
    idp.body = jwks({public_jwk(k.ec1, "one")});
    JwksCache cache(kIssuer, idp.fetch(), {"ES256", "RS256"}, {}, {}, clock.fn());
    REQUIRE_FALSE(cache.load());
    CHECK(idp.calls == 1);
    CHECK(verifies(cache, token(k.ec1, "ES256", "one")));
    CHECK_FALSE(verifies(cache, token(k.ec2, "ES256", "one")));  // another key under its kid
    CHECK(idp.calls == 1);

    // The provider rotates: a new key first, the old one kept.
    idp.body = jwks({public_jwk(k.ec2, "two"), public_jwk(k.ec1, "one")});
    clock.now += 31s;
    CHECK(verifies(cache, token(k.ec2, "ES256", "two")));
    CHECK(idp.calls == 2);
    CHECK(verifies(cache, token(k.ec1, "ES256", "one")));  // old tokens, until they expire

    // A client sending made-up kids: refused, and at most one fetch per 30 s.
    clock.now += 31s;
    for (int i = 0; i < 100; ++i) {
        CHECK(refusal(cache, token(k.ec2, "ES256", "random-" + std::to_string(i))) ==
              "the token's key (kid) is not one of its issuer's keys");
        clock.now += 100ms;
    }
    CHECK(idp.calls == 3);  // the first random kid; 10 s later the interval has not passed
    clock.now += 21s;
    refusal(cache, token(k.ec2, "ES256", "random-again"));
    CHECK(idp.calls == 4);

    // A known kid with another algorithm is not a reason to fetch.
    clock.now += 31s;
    CHECK(refusal(cache, token(k.rsa, "RS256", "two")) == "the token's algorithm does not match its key");
    CHECK(idp.calls == 4);
}

TEST_CASE("many sessions with a new kid at once share one fetch") {
    const auto& k = keys();
    FakeProvider idp;
    idp.body = jwks({public_jwk(k.ec1, "one")});
    JwksCache cache(kIssuer, idp.fetch(), {"ES256"}, {.min_refresh = 1s});
    REQUIRE_FALSE(cache.load());
    std::this_thread::sleep_for(1100ms);
    idp.body = jwks({public_jwk(k.ec2, "two")});
    idp.delay = 200ms;
    const auto jws = token(k.ec2, "ES256", "two");
    std::atomic<int> taken{0};
    std::vector<std::thread> sessions;
    for (int i = 0; i < 8; ++i)
        sessions.emplace_back([&] {
            if (verifies(cache, jws)) ++taken;
        });
    for (auto& t : sessions) t.join();
    CHECK(taken == 8);  // those that came during the fetch waited for it
    CHECK(idp.calls == 2);
}

TEST_CASE("a failed refetch keeps the last good keys, for a bounded time") {
    const auto& k = keys();
    FakeProvider idp;
    FakeClock clock;
    idp.body = jwks({public_jwk(k.ec1, "one")});
    idp.max_age = 600s;
    std::vector<std::string> lines;
    JwksCache cache(kIssuer, idp.fetch(), {"ES256"}, {.max_stale = 2h},
                    [&](std::string_view line) { lines.emplace_back(line); }, clock.fn());
    REQUIRE_FALSE(cache.load());
    CHECK(lines.back() == std::string("fetched 1 key of OpenID Connect provider ") + kIssuer);
    const auto jws = token(k.ec1, "ES256", "one");

    clock.now += 599s;  // within max-age: no fetch
    CHECK(verifies(cache, jws));
    CHECK(idp.calls == 1);

    idp.down = true;
    clock.now += 2s;  // due: the fetch fails, the keys stay
    CHECK(verifies(cache, jws));
    CHECK(idp.calls == 2);
    CHECK(lines.back() == std::string("cannot fetch the keys of OpenID Connect provider ") + kIssuer +
                              ": connection refused; keeping the keys fetched before");

    idp.down = false;
    idp.body = "{\"keys\": [";  // the provider answers garbage: never taken
    clock.now += 31s;
    CHECK(verifies(cache, jws));
    CHECK(idp.calls == 3);
    CHECK(lines.back().find("the JWK Set is not usable: not well-formed") != std::string::npos);
    idp.body = R"({"keys":[]})";
    clock.now += 31s;
    CHECK(verifies(cache, jws));
    CHECK(idp.calls == 4);

    idp.down = true;
    clock.now += 2h;  // past max-age + max_stale: no keys at all
    CHECK(refusal(cache, jws) == "the keys of the token's issuer cannot be fetched at the moment; try again later");
    idp.down = false;
    idp.body = jwks({public_jwk(k.ec1, "one")});
    clock.now += 31s;  // back: the next token fetches again
    CHECK(verifies(cache, jws));
}

TEST_CASE("Cache-Control max-age is followed within bounds") {
    const auto& k = keys();
    FakeProvider idp;
    FakeClock clock;
    idp.body = jwks({public_jwk(k.ec1, "one")});
    const auto jws = token(k.ec1, "ES256", "one");
    const auto fetches_after = [&](std::optional<std::chrono::seconds> max_age, std::chrono::seconds later) {
        idp.calls = 0;
        idp.max_age = max_age;
        JwksCache cache(kIssuer, idp.fetch(), {"ES256"}, {}, {}, clock.fn());
        REQUIRE_FALSE(cache.load());
        clock.now += later;
        verifies(cache, jws);
        return idp.calls.load();
    };
    CHECK(fetches_after(3600s, 3599s) == 1);
    CHECK(fetches_after(3600s, 3601s) == 2);
    CHECK(fetches_after(0s, 59s) == 1);  // no-cache: kept a minute still
    CHECK(fetches_after(0s, 61s) == 2);
    CHECK(fetches_after(std::nullopt, 299s) == 1);  // none said: five minutes
    CHECK(fetches_after(std::nullopt, 301s) == 2);
    CHECK(fetches_after(std::chrono::seconds(365 * 86400), 86401s) == 2);  // a day at most
}

TEST_CASE("tokens checked with keys from a JWK Set file") {
    const auto& k = keys();
    const test::TempDir dir;
    const auto file = dir.file("jwks.json");
    std::ofstream(file) << jwks({public_jwk(k.ec1, "ec"), public_jwk(k.rsa, "rsa")});
    TokenOptions options;
    options.oidc.push_back({.issuer = kIssuer, .audience = kAudience, .jwks = file});
    const auto auth = token_authenticator(options);
    const auto refusal = [&](const std::string& jws, std::int64_t now = now_s()) -> std::string {
        try {
            auth->authenticate(jws, now);
            return "";
        } catch (const TokenRefused& e) {
            return e.what();
        }
    };
    CHECK(refusal(token(k.ec1, "ES256", "ec")) == "");
    CHECK(refusal(token(k.rsa, "RS256", "rsa")) == "");
    CHECK(auth->authenticate(token(k.rsa, "RS256", "rsa"), now_s()).role == Role::admin);

    const auto rsa_jwk = public_jwk(k.rsa, "rsa");
    const auto hs256 = [&](const std::string& secret, const std::string& kid) {
        const auto input = b64(Json{{"alg", "HS256"}, {"kid", kid}}.dump()) + "." + b64(claims().dump());
        unsigned char mac[32];
        std::size_t len = 0;
        REQUIRE(EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, secret.data(), secret.size(),
                          reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, sizeof mac,
                          &len) != nullptr);
        return input + "." + b64(std::string_view(reinterpret_cast<char*>(mac), len));
    };
    const auto with = [](Json c, const char* key, Json value) {
        c[key] = std::move(value);
        return c;
    };
    const std::int64_t now = now_s();
    const std::vector<std::pair<std::string, std::string>> refused = {
        {token(k.ec1, "ES256", "ec", with(claims(), "iss", "https://evil.example")),
         "the token's issuer is not trusted"},
        {token(k.ec1, "ES256", "ec", with(claims(), "aud", "billing")), "the token is for another audience"},
        {b64(R"({"alg":"none","kid":"ec"})") + "." + b64(claims().dump()) + ".", "the token's algorithm none is not allowed"},
        {hs256("any secret", "rsa"), "the token's algorithm HS256 is not allowed"},
        // The classic confusion: the RSA public key, as PEM or as the JWK's
        // modulus, used as an HMAC secret.
        {hs256(public_key_pem(k.rsa), "rsa"), "the token's algorithm HS256 is not allowed"},
        {hs256(rsa_jwk.dump(), "rsa"), "the token's algorithm HS256 is not allowed"},
        {token(k.ed, "EdDSA", "ec"), "the token's algorithm EdDSA is not allowed"},
        {token(k.ec1, "ES256", "rsa"), "the token's algorithm does not match its key"},
        {token(k.ec2, "ES256", "ec"), "the token's signature does not verify"},
        {token(k.ec2, "ES256", "unknown"), "the token's key (kid) is not one of its issuer's keys"},
        {token(k.ec1, "ES256", "ec", with(claims(now - 3600), "exp", now - 120)), "the token has expired"},
        {token(k.ec1, "ES256", "ec", with(claims(), "nbf", now + 600)), "the token is not valid yet"},
        {b64(R"({"alg":"ES256","kid":7})") + "." + b64(claims().dump()) + ".AA",
         "the token is malformed: its header's kid is not a short string"},
    };
    for (const auto& [jws, message] : refused) {
        INFO(message);
        CHECK(refusal(jws) == message);
    }
    // Without kid: taken only where the set leaves no choice.
    CHECK(refusal(sign_jws(k.ec1, "ES256", claims().dump())) == "");
    CHECK(refusal(sign_jws(k.ed, "EdDSA", claims().dump())) == "the token's algorithm EdDSA is not allowed");

    // A file that is not a usable set stops the server from starting.
    std::ofstream(file) << R"({"keys":[{"kty":"oct","k":"c2VjcmV0"}]})";
    try {
        token_authenticator(options);
        FAIL("a set without a usable key was taken");
    } catch (const Error& e) {
        CHECK(std::string(e.what()) ==
              std::string("OpenID Connect provider ") + kIssuer +
                  ": the JWK Set is not usable: it holds no key lindra may verify with (key 1: its key type is not "
                  "RSA, EC or OKP) (" + file + ")");
    }
    options.oidc[0].jwks = "http://idp.example/jwks";
    CHECK_THROWS_WITH(token_authenticator(options),
                      std::string("OpenID Connect provider ") + kIssuer +
                          ": the URL is plain http to a host that is not a loopback address (use https)");
    options.oidc[0].jwks = file;
    options.oidc[0].public_key_pem = public_key_pem(k.ec1);
    CHECK_THROWS_WITH(token_authenticator(options), std::string("OpenID Connect provider ") + kIssuer +
                                                        ": give it either a JWK Set or one public key, not both");
}

TEST_CASE("a JWK Set URL must be one lindra may fetch") {
    const net::HttpGetOptions plain;
    const auto why = [&](const std::string& url, const net::HttpGetOptions& o = {}) -> std::string {
        try {
            net::check_url(url, o);
            return "";
        } catch (const Error& e) {
            return e.what();
        }
    };
    CHECK(why("https://idp.example/jwks") == "");
    CHECK(why("http://127.0.0.1:8080/jwks") == "");
    CHECK(why("http://[::1]:8080/jwks") == "");
    CHECK(why("http://localhost/jwks") == "");
    CHECK(why("http://idp.example/jwks") ==
          "the URL is plain http to a host that is not a loopback address (use https)");
    CHECK(why("http://idp.example/jwks", {.allow_http = true}) == "");
    CHECK(why("ftp://idp.example/jwks") == "the URL is not http:// or https://");
    CHECK(why("https://user:pw@idp.example/jwks") == "the URL holds credentials, which lindra does not send");
    CHECK(why("https://idp.example:99999/jwks") == "the URL has a port that is not 1 to 65535");
    CHECK(why("https:///jwks") == "the URL has no host");
    CHECK(why("https://idp.example/a b") == "the URL holds spaces, control or non-ASCII characters");
    // Nothing listens on port 1 of loopback: a clear failure, no hang.
    try {
        net::http_get("http://127.0.0.1:1/jwks", {.timeout = 2000ms});
        FAIL("fetched from a closed port");
    } catch (const std::runtime_error& e) {
        CHECK(std::string(e.what()).find("refused") != std::string::npos);
    }
}
