// What a SyncServer runs: its store, authenticator, session context and
// listener. MockServer runs the same, with a hook that wraps each
// connection's session in its fault layer, so the server an app's tests
// talk to is the real one.
#pragma once

#include "net/admin.hpp"
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
    std::uint16_t admin_port() const noexcept { return admin_ ? admin_->port() : 0; }
    void stop() {
        if (admin_) admin_->stop();
        listener_->stop();
    }
    // SyncServer::reload().
    void reload(const TlsServerOptions& tls, const TokenOptions& tokens, const IssuerOptions& issuer);

private:
    // The token authenticator, replaceable while sessions use it.
    class Tokens final : public Authenticator {
    public:
        explicit Tokens(std::shared_ptr<const Authenticator> a) : current_(std::move(a)) {}
        Identity authenticate(std::string_view token, std::int64_t now_s) const override;
        void replace(std::shared_ptr<const Authenticator> a);

    private:
        mutable std::mutex mutex_;
        std::shared_ptr<const Authenticator> current_;  // guarded by mutex_
    };

    net::HttpResponse admin(std::string_view path);

    std::shared_ptr<ServerObserver> observer_;
    std::unique_ptr<ServerStore> store_;
    std::mutex log_mutex_;  // held while the operator's log callback runs
    std::function<void(std::string_view)> log_;  // the operator's, one line at a time
    std::mutex reload_mutex_;  // one reload at a time
    std::unique_ptr<Tokens> auth_;
    std::shared_ptr<const net::TlsContext> tls_;  // the listener's; null when insecure
    AdminOptions admin_options_;
    std::optional<net::AdminServer> admin_;
    std::optional<SessionContext> context_;
    SessionWrapper wrap_;
    std::optional<net::Server> listener_;  // last: stops before the rest goes
};

}  // namespace lindra::server
