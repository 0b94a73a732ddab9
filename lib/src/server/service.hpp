// What a SyncServer runs: its store, authenticator, session context and
// listener. MockServer runs the same, with a hook that wraps each
// connection's session in its fault layer, so the server an app's tests
// talk to is the real one.
#pragma once

#include "net/server.hpp"
#include "server/auth.hpp"
#include "server/session.hpp"
#include "server/store.hpp"

#include <lindra/server.hpp>

#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace lindra::server {

// Given the session the server made for a new connection, the session to
// run instead; null refuses the connection.
using SessionWrapper =
    std::function<std::unique_ptr<net::Session>(std::unique_ptr<net::Session> session, const std::string& peer)>;

class Service {
public:
    // Opens the store and starts listening (SyncServer's constructor).
    explicit Service(ServerOptions options, SessionWrapper wrap = {});
    ~Service();  // stop()
    Service(const Service&) = delete;
    Service& operator=(const Service&) = delete;

    std::uint16_t port() const noexcept { return listener_->port(); }
    void stop() { listener_->stop(); }

private:
    std::unique_ptr<ServerStore> store_;
    std::mutex log_mutex_;  // held while the operator's log callback runs
    std::unique_ptr<Authenticator> auth_;
    std::optional<SessionContext> context_;
    SessionWrapper wrap_;
    std::optional<net::Server> listener_;  // last: stops before the rest goes
};

}  // namespace lindra::server
