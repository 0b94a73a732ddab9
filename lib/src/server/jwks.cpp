#include "server/jwks.hpp"

#include "core/log.hpp"
#include "net/http_get.hpp"

#include <lindra/error.hpp>

#include <algorithm>
#include <fstream>
#include <iterator>

namespace lindra::server {
namespace {

constexpr std::size_t kMaxJwksBytes = 1 << 20;

bool is_url(std::string_view source) {
    return source.starts_with("https://") || source.starts_with("http://");
}

}  // namespace

KeySet KeySet::parse(std::string_view text, const std::vector<std::string>& algorithms) {
    if (text.size() > kMaxJwksBytes) throw JsonRefused("it is larger than 1 MiB");
    const Json doc = strict_json(text);
    const auto keys = doc.is_object() ? doc.find("keys") : doc.end();
    if (keys == doc.end() || !keys->is_array()) throw JsonRefused("it has no \"keys\" array");
    KeySet set;
    std::string skipped;  // why the first key left out was
    for (std::size_t i = 0; i < keys->size(); ++i) {
        const Json& jwk = (*keys)[i];
        const auto* kid = text_member(jwk, "kid");
        const auto* use = text_member(jwk, "use");
        const auto* alg = text_member(jwk, "alg");
        const std::string name = "key " + std::to_string(i + 1);
        try {
            if (!jwk.is_object()) throw JsonRefused("it is not a JSON object");
            // Encryption keys and keys for algorithms lindra does not verify
            // (HS256 "oct" keys above all) share sets with signing keys.
            if (jwk.contains("use") && (!use || *use != "sig")) throw JsonRefused("it is not for signatures");
            if (jwk.contains("alg") && (!alg || std::find(algorithms.begin(), algorithms.end(), *alg) == algorithms.end()))
                throw JsonRefused("its algorithm is not allowed");
            VerifyKey key(jwk_public_key(jwk), algorithms, name);
            if (alg && !key.allows(*alg)) throw JsonRefused("its algorithm does not match its key type");
            set.entries_.push_back({kid ? *kid : std::string(), std::move(key)});
        } catch (const std::exception& e) {  // JsonRefused, or Error for a key of an algorithm not allowed
            if (skipped.empty()) skipped = name + (kid ? " (kid " + *kid + ")" : std::string()) + ": " + e.what();
        }
    }
    if (set.entries_.empty())
        throw JsonRefused("it holds no key lindra may verify with" + (skipped.empty() ? "" : " (" + skipped + ")"));
    return set;
}

const VerifyKey* KeySet::find(std::string_view kid, std::string_view alg) const {
    const VerifyKey* found = nullptr;
    for (const auto& e : entries_) {
        if (!e.key.allows(alg)) continue;
        if (!kid.empty() && e.kid == kid) return &e.key;
        if (kid.empty()) {
            if (found) return nullptr;  // a token without kid must not leave the choice open
            found = &e.key;
        }
    }
    return found;
}

bool KeySet::has(std::string_view kid) const {
    return kid.empty() || std::any_of(entries_.begin(), entries_.end(), [&](const Entry& e) { return e.kid == kid; });
}

JwksCache::JwksCache(std::string provider, Fetch fetch, std::vector<std::string> algorithms, Policy policy,
                     std::function<void(std::string_view)> log, std::function<Clock::time_point()> now)
    : provider_(std::move(provider)),
      fetch_(std::move(fetch)),
      algorithms_(std::move(algorithms)),
      policy_(policy),
      log_(std::move(log)),
      now_(std::move(now)) {}

void JwksCache::note(LogLevel level, const std::string& message) const {
    if (log_) log_(message);
    if (detail::log_enabled(level)) detail::log(level, "server", message);
}

std::optional<std::string> JwksCache::load() {
    std::unique_lock lock(mutex_);
    refresh(lock);
    if (keys_) return std::nullopt;
    return last_error_;
}

int JwksCache::fetches() const {
    const std::lock_guard lock(mutex_);
    return fetches_;
}

void JwksCache::refresh(std::unique_lock<std::mutex>& lock) {
    fetching_ = true;
    attempted_ = now_();
    ++fetches_;
    lock.unlock();
    std::shared_ptr<const KeySet> fresh;
    std::optional<std::chrono::seconds> max_age;
    std::string error;
    try {
        JwksDocument doc = fetch_();
        max_age = doc.max_age;
        fresh = std::make_shared<const KeySet>(KeySet::parse(doc.body, algorithms_));
    } catch (const JsonRefused& e) {
        error = std::string("the JWK Set is not usable: ") + e.what();
    } catch (const std::exception& e) {
        error = e.what();
    }
    lock.lock();
    fetching_ = false;
    const auto now = now_();
    if (fresh) {
        keys_ = std::move(fresh);
        expires_ = now + std::clamp(max_age.value_or(policy_.default_max_age), policy_.min_max_age,
                                    policy_.max_max_age);
        last_error_.clear();
        const auto n = keys_->size();
        note(LogLevel::info, "fetched " + std::to_string(n) + (n == 1 ? " key" : " keys") +
                                 " of OpenID Connect provider " + provider_);
    } else {
        last_error_ = error;
        note(LogLevel::warning, "cannot fetch the keys of OpenID Connect provider " + provider_ + ": " + error +
                                   (keys_ ? "; keeping the keys fetched before" : ""));
    }
    fetched_.notify_all();
}

std::shared_ptr<const KeySet> JwksCache::current(std::string_view kid) {
    std::unique_lock lock(mutex_);
    const auto now = now_();
    if (keys_ && now >= expires_ + policy_.max_stale) {  // stale-if-error ends
        keys_.reset();
        note(LogLevel::warning, "dropping the keys of OpenID Connect provider " + provider_ +
                                   ": they are out of date and could not be fetched again");
    }
    const bool known = keys_ && keys_->has(kid);
    const bool due = !known || now >= expires_;
    const bool may = !attempted_ || now - *attempted_ >= policy_.min_refresh;
    if (due && may && !fetching_)
        refresh(lock);
    else if (!known && fetching_)
        fetched_.wait_for(lock, policy_.wait, [&] { return !fetching_; });
    return keys_;
}

bool JwksCache::verify(std::string_view kid, std::string_view alg, std::string_view signing_input,
                       std::string_view signature) {
    const auto keys = current(kid);
    if (!keys) throw TokenRefused("the keys of the token's issuer cannot be fetched at the moment; try again later");
    const VerifyKey* key = keys->find(kid, alg);
    if (!key && kid.empty())
        throw TokenRefused("the token names no key (kid), and its issuer has not exactly one key for its algorithm");
    if (!key && keys->has(kid)) throw TokenRefused("the token's algorithm does not match its key");
    if (!key) throw TokenRefused("the token's key (kid) is not one of its issuer's keys");
    return key->verify(signing_input, signature);
}

JwksCache::Fetch jwks_fetch(const OidcProvider& p) {
    if (is_url(p.jwks)) {
        net::HttpGetOptions options{.ca_pem = p.jwks_ca_pem, .allow_http = p.jwks_allow_http};
        net::check_url(p.jwks, options);  // throws at startup for a URL that could never be fetched
        return [url = p.jwks, options] {
            auto r = net::http_get(url, options);
            return JwksDocument{std::move(r.body), r.max_age};
        };
    }
    return [path = p.jwks] {
        std::ifstream in(path, std::ios::binary);
        std::string text;
        if (in) text.assign(std::istreambuf_iterator<char>(in), {});  // KeySet::parse bounds the size
        if (!in && !in.eof()) throw std::runtime_error("the JWK Set file cannot be read");
        return JwksDocument{std::move(text), std::nullopt};
    };
}

}  // namespace lindra::server
