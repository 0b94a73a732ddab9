// A small HTTP/1.1 server for an operator's probes and scrapes (the admin
// listener, README "Operating the server"): GET and HEAD only, one request
// per connection, a few connections at once, every wait with a timeout.
// Boost.Beast stays in admin.cpp.
//
// Thread-safety: construct, port() and stop() from one thread. The handler
// runs on the server's one thread, one request at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace lindra::net {

struct HttpResponse {
    unsigned status = 200;
    std::string content_type = "text/plain; charset=utf-8";
    std::string body{};
};

// The answer for a GET of `path` (the target without its query).
using HttpHandler = std::function<HttpResponse(std::string_view path)>;

class AdminServer {
public:
    // Binds and starts serving; throws lindra::Error if the address cannot
    // be bound.
    AdminServer(const std::string& host, std::uint16_t port, HttpHandler handler);
    ~AdminServer();  // stop()
    AdminServer(const AdminServer&) = delete;
    AdminServer& operator=(const AdminServer&) = delete;

    std::uint16_t port() const noexcept;
    void stop();  // idempotent

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace lindra::net
