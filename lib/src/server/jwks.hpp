// An OpenID Connect provider's keys from its JWK Set (RFC 7517), kept fresh
// under rules that neither break tablets when the provider rotates its key
// nor let a client make the server hammer the provider:
// - the token's kid picks the key, and the key's type must agree with the
//   token's alg;
// - an unknown kid refetches the set, at most once per min_refresh for all
//   sessions together; a fetch under way is waited for, not repeated;
// - a set is kept for its Cache-Control max-age, within bounds;
// - a failed fetch, or a set that does not parse or holds no usable key,
//   keeps the last good set, until max_stale past its expiry.
//
// Thread-safety: a JwksCache may be used from any number of threads.
#pragma once

#include "server/token.hpp"

#include <lindra/log.hpp>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace lindra::server {

// The keys of one JWK Set that lindra can verify with, each with its kid.
// Keys of other types or uses (encryption, HS*) are left out, not errors.
class KeySet {
  public:
    // Throws JsonRefused saying why the text is not a JWK Set lindra can
    // use: not JSON, no "keys" array, no usable key, or a usable one broken.
    static KeySet parse(std::string_view text, const std::vector<std::string>& algorithms);

    struct Entry {
        std::string kid;
        VerifyKey key;
    };
    // The key named `kid` (any key if `kid` is empty and the set holds one
    // key of `alg` alone); nullptr if none.
    const VerifyKey* find(std::string_view kid, std::string_view alg) const;
    bool has(std::string_view kid) const;
    std::size_t size() const { return entries_.size(); }

  private:
    std::vector<Entry> entries_;
};

struct JwksDocument {
    std::string body;
    std::optional<std::chrono::seconds> max_age;  // from Cache-Control, if it says
};

class JwksCache {
  public:
    using Clock = std::chrono::steady_clock;
    // Returns the set's text; throws std::exception saying why not.
    using Fetch = std::function<JwksDocument()>;

    struct Policy {
        std::chrono::seconds min_refresh{30};
        std::chrono::seconds max_stale{std::chrono::hours(24)};
        std::chrono::seconds default_max_age{std::chrono::minutes(5)};
        std::chrono::seconds min_max_age{std::chrono::minutes(1)};
        std::chrono::seconds max_max_age{std::chrono::hours(24)};
        std::chrono::seconds wait{10};  // the longest a token waits for another's fetch
    };

    // `provider` names it in messages and the log; `log` hears each fetch's
    // outcome besides lindra's log.
    JwksCache(std::string provider, Fetch fetch, std::vector<std::string> algorithms, Policy policy,
              std::function<void(std::string_view)> log = {}, std::function<Clock::time_point()> now = Clock::now);

    // Fetches the set now; the reason if that failed (the cache is then
    // empty and the next token fetches again, rate-limited).
    std::optional<std::string> load();

    // Whether `signature` verifies `signing_input` with the key `kid`
    // names. Throws TokenRefused if no key of the set fits `kid` and `alg`
    // (after a refetch, where the rules allow one) or there are no keys.
    bool verify(std::string_view kid, std::string_view alg, std::string_view signing_input,
                std::string_view signature);

    // How many fetches were started, for tests.
    int fetches() const;

  private:
    std::shared_ptr<const KeySet> current(std::string_view kid);
    void refresh(std::unique_lock<std::mutex>& lock);
    void note(LogLevel level, const std::string& message) const;

    const std::string provider_;
    const Fetch fetch_;
    const std::vector<std::string> algorithms_;
    const Policy policy_;
    const std::function<void(std::string_view)> log_;
    const std::function<Clock::time_point()> now_;

    mutable std::mutex mutex_;
    std::condition_variable fetched_;
    std::shared_ptr<const KeySet> keys_;           // the last good set, or null
    Clock::time_point expires_{};                  // when keys_ is due for a refetch
    std::optional<Clock::time_point> attempted_;   // the last fetch's start
    bool fetching_ = false;
    std::string last_error_;
    int fetches_ = 0;
};

// A Fetch for `source`: an http(s) URL (via net::http_get) or a file path.
JwksCache::Fetch jwks_fetch(const OidcProvider& provider);

}  // namespace lindra::server
