// The one place a token becomes an identity. The security milestone
// replaces the user list with signed tokens; nothing else changes.
#pragma once

#include <lindra/server.hpp>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lindra::server {

struct Identity {
    std::string user{};
    std::string role{};
};

class Authenticator {
public:
    virtual ~Authenticator() = default;
    virtual std::optional<Identity> authenticate(std::string_view token) const = 0;
};

// Tokens compared in constant time against every user's.
std::unique_ptr<Authenticator> user_list_authenticator(std::vector<User> users);

}  // namespace lindra::server
