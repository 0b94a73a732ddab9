// The one place a token becomes an identity (DESIGN §6): identity comes
// only from a verified token, never from message fields.
#pragma once

#include <lindra/id.hpp>
#include <lindra/server.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

namespace lindra::server {

struct Identity {
    std::string user{};  // the token's subject, for the log and device binding
    Role role = Role::candidate;
    Id person{};        // nil for admin
    Id organization{};  // nil unless the token names one
};

// Why a token was refused. The message never contains the token or any
// claim's value, so it is safe to log and to send back.
class TokenRefused : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class Authenticator {
public:
    virtual ~Authenticator() = default;
    // The identity a valid token proves, at `now_s` (seconds since the
    // epoch); throws TokenRefused otherwise.
    virtual Identity authenticate(std::string_view token, std::int64_t now_s) const = 0;
};

// Verifies lindra's own tokens with options.key_pem and each OpenID
// Connect provider's with its key, choosing by the token's "iss".
// Safe from any thread. Throws lindra::Error(invalid_argument) for options
// that could never verify a token: no key and no provider, a key that is
// not a key or of the wrong type, an empty issuer, audience or claim name,
// a JWK Set file that does not hold a usable set. `log` hears (besides
// lindra's log) how fetching providers' key sets goes.
std::unique_ptr<Authenticator> token_authenticator(const TokenOptions& options,
                                                   std::function<void(std::string_view)> log = {});

}  // namespace lindra::server
