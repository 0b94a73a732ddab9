#include "net/server.hpp"
#include "server/auth.hpp"
#include "server/session.hpp"
#include "server/store.hpp"

#include <lindra/error.hpp>
#include <lindra/server.hpp>

namespace lindra {

struct SyncServer::Impl {
    std::unique_ptr<server::ServerStore> store;
    std::mutex store_mutex;
    std::unique_ptr<server::Authenticator> auth;
    std::optional<server::SessionContext> context;
    std::optional<net::Server> listener;  // last: stops before the rest goes
};

SyncServer::SyncServer(ServerOptions options) : impl_(std::make_unique<Impl>()) {
    // TLS and tokens first: a server with bad TLS material or token keys
    // fails before it touches its store.
    std::shared_ptr<const net::TlsContext> tls;
    if (!options.insecure) {
        if (options.tls.certificate_chain_pem.empty() && options.tls.private_key_pem.empty())
            throw Error(Errc::invalid_argument,
                        "the server needs a TLS certificate chain and private key (ServerOptions::tls), "
                        "or insecure = true for plain TCP");
        tls = net::TlsContext::server(options.tls.certificate_chain_pem, options.tls.private_key_pem);
    }
    impl_->auth = server::token_authenticator(options.tokens);
    impl_->store = server::open_sqlite_store(
        options.db_path, {.max_clock_ahead = options.max_clock_ahead, .wall_clock_ms = options.wall_clock_ms});
    protocol::Limits limits;
    limits.max_frame_bytes = static_cast<std::uint32_t>(options.max_frame_bytes);
    limits.max_push_changes = options.max_push_changes;
    limits.max_pull_changes = options.max_pull_changes;
    auto wall_clock_ms = options.wall_clock_ms ? options.wall_clock_ms : [] {
        return std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
            .count();
    };
    impl_->context.emplace(server::SessionContext{*impl_->store, impl_->store_mutex, *impl_->auth, limits,
                                                  std::move(options.log), std::move(wall_clock_ms)});
    net::ServerConfig config;
    config.host = options.host;
    config.port = options.port;
    config.max_frame = options.max_frame_bytes;
    config.io_timeout = options.io_timeout;
    config.idle_timeout = options.idle_timeout;
    config.max_connections = options.max_connections;
    config.tls = std::move(tls);
    impl_->listener.emplace(config, [this](const std::string& peer) {
        return std::make_unique<server::ServerSession>(*impl_->context, peer);
    });
}

SyncServer::~SyncServer() { stop(); }

std::uint16_t SyncServer::port() const noexcept { return impl_->listener->port(); }

void SyncServer::stop() { impl_->listener->stop(); }

}  // namespace lindra
