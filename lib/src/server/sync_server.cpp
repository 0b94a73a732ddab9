#include "server/service.hpp"

#include <lindra/error.hpp>
#include <lindra/server.hpp>

namespace lindra {

namespace server {

Service::Service(ServerOptions options, SessionWrapper wrap) : wrap_(std::move(wrap)) {
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
    auth_ = token_authenticator(options.tokens);
    store_ = open_sqlite_store(options.db_path,
                               {.max_clock_ahead = options.max_clock_ahead, .wall_clock_ms = options.wall_clock_ms});
    protocol::Limits limits;
    limits.max_frame_bytes = static_cast<std::uint32_t>(options.max_frame_bytes);
    limits.max_push_changes = options.max_push_changes;
    limits.max_pull_changes = options.max_pull_changes;
    auto wall_clock_ms = options.wall_clock_ms ? options.wall_clock_ms : [] {
        return std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
            .count();
    };
    context_.emplace(
        SessionContext{*store_, store_mutex_, *auth_, limits, std::move(options.log), std::move(wall_clock_ms)});
    net::ServerConfig config;
    config.host = options.host;
    config.port = options.port;
    config.max_frame = options.max_frame_bytes;
    config.io_timeout = options.io_timeout;
    config.idle_timeout = options.idle_timeout;
    config.max_connections = options.max_connections;
    config.tls = std::move(tls);
    listener_.emplace(config, [this](const std::string& peer) -> std::unique_ptr<net::Session> {
        auto session = std::make_unique<ServerSession>(*context_, peer);
        if (!wrap_) return session;
        return wrap_(std::move(session), peer);
    });
}

Service::~Service() { stop(); }

}  // namespace server

struct SyncServer::Impl {
    explicit Impl(ServerOptions options) : service(std::move(options)) {}
    server::Service service;
};

SyncServer::SyncServer(ServerOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

SyncServer::~SyncServer() { stop(); }

std::uint16_t SyncServer::port() const noexcept { return impl_->service.port(); }

void SyncServer::stop() { impl_->service.stop(); }

}  // namespace lindra
