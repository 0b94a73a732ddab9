#include "server/auth.hpp"

#include "server/jwks.hpp"
#include "server/token.hpp"

#include <lindra/error.hpp>

#include <algorithm>
#include <chrono>
#include <optional>
#include <vector>

namespace lindra {
namespace {

constexpr std::string_view kRoles[] = {"candidate", "mentor", "coordinator", "admin"};

std::optional<Role> role_named(std::string_view text) {
    for (std::size_t i = 0; i < std::size(kRoles); ++i)
        if (kRoles[i] == text) return static_cast<Role>(i);
    return std::nullopt;
}

// What a token must name besides its role (README, "Security model"): the
// rows a user may touch are found from their person, and a coordinator's
// from their organization.
bool needs_person(Role role) {
    return role != Role::admin;
}
bool needs_organization(Role role) {
    return role == Role::coordinator;
}

// The user goes into the server's one-line log: no control characters
// (no forged lines), and bounded.
bool valid_user(std::string_view user) {
    return !user.empty() && user.size() <= 256 &&
           std::none_of(user.begin(), user.end(), [](unsigned char c) { return c < 0x20 || c == 0x7F; });
}

std::int64_t now_seconds() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace

std::string_view to_string(Role role) {
    return kRoles[static_cast<int>(role)];
}

Role parse_role(std::string_view text) {
    if (const auto role = role_named(text)) return *role;
    throw Error(Errc::invalid_argument,
                "unknown role \"" + std::string(text) + "\" (candidate, mentor, coordinator or admin)");
}

std::string generate_token_key() {
    return server::generate_private_key_pem("EdDSA");
}

std::string generate_issuer_key() {
    return server::generate_private_key_pem("EdDSA");
}

std::string issue_token(std::string_view key_pem, const TokenClaims& claims, std::string_view issuer,
                        std::string_view audience, std::int64_t now_s) {
    const std::string role(to_string(claims.role));
    if (!valid_user(claims.user))
        throw Error(Errc::invalid_argument, "a token's user must be 1 to 256 bytes, without control characters");
    if (needs_person(claims.role) && claims.person.is_nil())
        throw Error(Errc::invalid_argument, "a " + role + " token needs a person");
    if (needs_organization(claims.role) && claims.organization.is_nil())
        throw Error(Errc::invalid_argument, "a " + role + " token needs an organization");
    if (claims.ttl <= std::chrono::seconds::zero())
        throw Error(Errc::invalid_argument, "a token's time to live must be positive");
    if (issuer.empty() || audience.empty())
        throw Error(Errc::invalid_argument, "a token needs an issuer and an audience");
    if (now_s == 0) now_s = now_seconds();

    server::Json payload = {{"iss", issuer},
                            {"aud", audience},
                            {"sub", claims.user},
                            {"iat", now_s},
                            {"nbf", now_s},
                            {"exp", now_s + claims.ttl.count()},
                            {"role", role}};
    if (!claims.person.is_nil()) payload["person"] = claims.person.to_string();
    if (!claims.organization.is_nil()) payload["org"] = claims.organization.to_string();
    std::string text;
    try {
        text = payload.dump();
    } catch (const server::Json::type_error&) {  // the server's JSON reader would refuse it too
        throw Error(Errc::invalid_argument, "a token's user, issuer and audience must be UTF-8");
    }
    return server::sign_jws(key_pem, "EdDSA", text);
}

}  // namespace lindra

namespace lindra::server {
namespace {

// An issuer whose tokens the server takes, and where its tokens say who
// their holder is.
struct Issuer {
    std::string describe;  // for configuration errors
    std::string name;      // the "iss" of its tokens
    std::string audience;
    std::vector<std::string> algorithms;
    // Exactly one of: one static key, or the provider's JWK Set.
    std::shared_ptr<const VerifyKey> key;
    std::shared_ptr<JwksCache> jwks;
    std::string role_claim;
    std::string person_claim;
    std::string organization_claim;
};

// `alg` comes from the token, so it is cut short and made printable before
// it goes into a message (and the server's log).
std::string printable_alg(std::string_view alg) {
    std::string out;
    for (const char c : alg.substr(0, 16)) {
        const bool plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                           c == '_' || c == '+' || c == '.';
        out += plain ? c : '?';
    }
    if (alg.size() > 16) out += "...";
    return out.empty() ? "(empty)" : out;
}

// The claim `name` if it is a string, else null.
const std::string* text_claim(const Json& claims, std::string_view name) {
    return text_member(claims, name);
}

// A claim holding a row id; nil if absent.
Id id_claim(const Json& claims, const std::string& name) {
    if (!claims.contains(name)) return {};
    const auto* text = text_member(claims, name);
    const auto id = text ? Id::parse(*text) : std::nullopt;
    if (!id || id->is_nil()) throw TokenRefused("the token has no valid " + name + " claim");
    return *id;
}

class TokenAuthenticator final : public Authenticator {
  public:
    TokenAuthenticator(const TokenOptions& o, std::function<void(std::string_view)> log) : leeway_s_(o.leeway.count()) {
        if (o.key_pem.empty() && o.oidc.empty())
            throw Error(Errc::invalid_argument,
                        "no way to verify tokens: give the server a token key or an OpenID Connect provider");
        if (leeway_s_ < 0) throw Error(Errc::invalid_argument, "the tokens' leeway must not be negative");
        if (!o.key_pem.empty()) {
            const std::vector<std::string> eddsa{"EdDSA"};
            add({"lindra's own tokens", o.issuer, o.audience, eddsa,
                 std::make_shared<const VerifyKey>(o.key_pem, eddsa, "the token key"), nullptr, "role", "person",
                 "org"});
        }
        for (const auto& p : o.oidc) add(provider(p, log));
    }

    Identity authenticate(std::string_view token, std::int64_t now_s) const override {
        const DecodedJwt jwt = decode_jwt(token);
        // The issuer picks the key; the key, never the token, picks the
        // algorithm.
        const auto* name = text_claim(jwt.claims, "iss");
        if (!name) throw TokenRefused("the token has no valid iss claim");
        const auto from =
            std::find_if(issuers_.begin(), issuers_.end(), [&](const Issuer& i) { return i.name == *name; });
        if (from == issuers_.end()) throw TokenRefused("the token's issuer is not trusted");
        if (std::find(from->algorithms.begin(), from->algorithms.end(), jwt.alg) == from->algorithms.end() ||
            (from->key && !from->key->allows(jwt.alg)))
            throw TokenRefused("the token's algorithm " + printable_alg(jwt.alg) + " is not allowed");
        const bool signed_well = from->key ? from->key->verify(jwt.signing_input, jwt.signature)
                                           : from->jwks->verify(jwt.kid, jwt.alg, jwt.signing_input, jwt.signature);
        if (!signed_well) throw TokenRefused("the token's signature does not verify");
        check_time_and_audience(jwt.claims, from->audience, now_s, leeway_s_);
        return identity(jwt.claims, *from);
    }

  private:
    static Issuer provider(const OidcProvider& p, const std::function<void(std::string_view)>& log) {
        const std::string describe = "OpenID Connect provider " + p.issuer;
        Issuer issuer{describe,  p.issuer,       p.audience,         p.algorithms, nullptr, nullptr,
                      p.role_claim, p.person_claim, p.organization_claim};
        check_algorithms(p.algorithms, "the key of " + describe);
        if (p.jwks.empty() == p.public_key_pem.empty())
            throw Error(Errc::invalid_argument, describe + ": give it either a JWK Set or one public key, not " +
                                                    (p.jwks.empty() ? "neither" : "both"));
        if (!p.public_key_pem.empty()) {
            issuer.key = std::make_shared<const VerifyKey>(p.public_key_pem, p.algorithms, "the key of " + describe);
            return issuer;
        }
        if (p.jwks_min_refresh.count() < 1 || p.jwks_max_stale.count() < 0)
            throw Error(Errc::invalid_argument, describe + ": the JWK Set's refresh interval must be positive");
        JwksCache::Policy policy;
        policy.min_refresh = p.jwks_min_refresh;
        policy.max_stale = p.jwks_max_stale;
        JwksCache::Fetch fetch;
        try {
            fetch = jwks_fetch(p);
        } catch (const Error& e) {  // a URL lindra would never fetch
            throw Error(Errc::invalid_argument, describe + ": " + e.what());
        }
        issuer.jwks = std::make_shared<JwksCache>(p.issuer, std::move(fetch), p.algorithms, policy, log);
        // A file is the operator's own: it must be right from the start. A
        // provider may be down while the server starts; its keys are then
        // fetched when the first token comes (the load logged why not).
        if (const auto failed = issuer.jwks->load(); failed && !p.jwks.starts_with("http"))
            throw Error(Errc::invalid_argument, describe + ": " + *failed + " (" + p.jwks + ")");
        return issuer;
    }

    void add(Issuer issuer) {
        if (issuer.name.empty()) throw Error(Errc::invalid_argument, issuer.describe + ": the issuer is empty");
        if (issuer.audience.empty()) throw Error(Errc::invalid_argument, issuer.describe + ": the audience is empty");
        if (issuer.role_claim.empty() || issuer.person_claim.empty() || issuer.organization_claim.empty())
            throw Error(Errc::invalid_argument, issuer.describe + ": a claim name is empty");
        for (const auto& i : issuers_)
            if (i.name == issuer.name)
                throw Error(Errc::invalid_argument, issuer.describe + " has the same issuer as " + i.describe);
        issuers_.push_back(std::move(issuer));
    }

    static Identity identity(const Json& claims, const Issuer& from) {
        Identity id;
        const auto* user = text_claim(claims, "sub");
        if (!user || !valid_user(*user)) throw TokenRefused("the token has no valid sub claim");
        id.user = *user;
        const auto* role_text = text_claim(claims, from.role_claim);
        const auto role = role_text ? role_named(*role_text) : std::nullopt;
        if (!role) throw TokenRefused("the token has no valid " + from.role_claim + " claim");
        id.role = *role;
        id.person = id_claim(claims, from.person_claim);
        id.organization = id_claim(claims, from.organization_claim);
        if (needs_person(id.role) && id.person.is_nil())
            throw TokenRefused("the token's role needs the " + from.person_claim + " claim");
        if (needs_organization(id.role) && id.organization.is_nil())
            throw TokenRefused("the token's role needs the " + from.organization_claim + " claim");
        if (!needs_person(id.role)) id.person = {};  // an admin is no one's person row
        return id;
    }

    std::vector<Issuer> issuers_;
    std::int64_t leeway_s_;
};

}  // namespace

std::unique_ptr<Authenticator> token_authenticator(const TokenOptions& options,
                                                   std::function<void(std::string_view)> log) {
    return std::make_unique<TokenAuthenticator>(options, std::move(log));
}

}  // namespace lindra::server
