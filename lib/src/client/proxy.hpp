// The HTTP CONNECT proxy a round goes through (README, "Sync over wss://
// and through proxies"): from SyncOptions::proxy, or from the environment
// as curl reads it (https_proxy, HTTPS_PROXY; no_proxy, NO_PROXY).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace lindra::client {

struct Proxy {
    std::string host{};
    std::uint16_t port = 1080;     // curl's default for a proxy without one
    std::string authorization{};   // "Basic ...", or empty
    bool from_environment = false;  // for messages: which setting to fix
};

// "http://[user[:password]@]host[:port][/]" (user and password
// percent-decoded). Throws Error(invalid_argument) saying what is wrong;
// `what` names the setting ("proxy", "https_proxy").
Proxy parse_proxy_url(std::string_view url, std::string_view what = "proxy");

// Whether `no_proxy` (curl's rules: a comma list; "*" is every host; an
// entry matches the host itself and, as a domain, every host under it; a
// leading dot is ignored; IPv6 addresses without brackets; "10.0.0.0/8" or
// "fd00::/8" covers the addresses in that network, never a name) covers
// `host`.
bool no_proxy_covers(std::string_view no_proxy, std::string_view host);

// The proxy for a round to `host`: `configured` if set ("" is none),
// else https_proxy (or HTTPS_PROXY) unless no_proxy (or NO_PROXY) covers
// `host`.
std::optional<Proxy> proxy_for(const std::optional<std::string>& configured, std::string_view host);

}  // namespace lindra::client
