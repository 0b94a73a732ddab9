// A small HTTPS GET for documents lindra reads from other services (an
// OpenID provider's JWK Set), on Beast. Bounded in time and size, no
// redirects, no cookies, no proxies. Plain http only to loopback addresses
// unless allowed outright.
//
// Thread-safety: free functions; each call runs its own I/O on the calling
// thread (never the server's I/O threads) and returns within the timeout.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace lindra::net {

struct HttpGetOptions {
    std::string ca_pem{};  // the CAs trusted for https; empty: the system's
    bool allow_http = false;
    std::chrono::milliseconds timeout{5000};  // for all of it, from resolving to the last byte
    std::size_t max_body = 1 << 20;
};

struct HttpResponse {
    std::string body;
    std::optional<std::chrono::seconds> max_age;  // Cache-Control max-age; 0 for no-cache or no-store
};

// Throws lindra::Error(invalid_argument) for a URL http_get would never
// fetch: not http(s), no host, a bad port, or http to a name or address
// that is not loopback without allow_http.
void check_url(std::string_view url, const HttpGetOptions& options);

// The body of a 200 response to GET `url`. Throws lindra::Error
// (invalid_argument) as check_url does, and std::runtime_error saying what
// failed: resolving, connecting, TLS, the time, the status, a body too large.
HttpResponse http_get(std::string_view url, const HttpGetOptions& options);

}  // namespace lindra::net
