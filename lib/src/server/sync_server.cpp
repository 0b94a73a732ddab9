#include "server/certificates.hpp"
#include "server/service.hpp"

#include "core/log.hpp"

#include <lindra/error.hpp>
#include <lindra/server.hpp>

namespace lindra {

namespace server {

namespace {

void require(bool ok, const char* what) {
    if (!ok) throw Error(Errc::invalid_argument, std::string("ServerOptions::") + what);
}

void check_limits(const ServerOptions& o) {
    require(o.max_connections >= 1, "max_connections must be at least 1");
    require(o.max_connections_per_address >= 1, "max_connections_per_address must be at least 1");
    require(o.min_frame_rate >= 1, "min_frame_rate must be at least 1 byte per second");
    constexpr std::size_t kMostThreads = 256;
    require(o.io_threads <= kMostThreads, "io_threads must be at most 256 (0: one per core)");
    require(o.worker_threads <= kMostThreads, "worker_threads must be at most 256 (0: one per core)");
    constexpr std::chrono::milliseconds kLongest = std::chrono::hours(24 * 366);  // deadlines stay far from overflow
    for (const auto t : {o.io_timeout, o.idle_timeout, o.hello_timeout})
        require(t.count() > 0 && t <= kLongest,
                "io_timeout, idle_timeout and hello_timeout must be positive and at most a year");
}

// "connections turned away: per_address_cap=530 ...", counts only: lindra's
// log never names a peer.
std::string describe(const net::Turnaways& t) {
    return "connections turned away: per_address_cap=" + std::to_string(t.over_address_cap) +
           " connection_cap=" + std::to_string(t.over_cap) + " shed_before_hello=" + std::to_string(t.shed) +
           " no_hello_in_time=" + std::to_string(t.late_hello);
}

}  // namespace

Identity Service::Tokens::authenticate(std::string_view token, std::int64_t now_s) const {
    std::shared_ptr<const Authenticator> a;
    {
        std::lock_guard lock(mutex_);
        a = current_;
    }
    return a->authenticate(token, now_s);
}

void Service::Tokens::replace(std::shared_ptr<const Authenticator> a) {
    std::lock_guard lock(mutex_);
    current_ = std::move(a);
}

void Service::reload(const TlsServerOptions& tls, const TokenOptions& tokens, const IssuerOptions& issuer) {
    std::lock_guard lock(reload_mutex_);
    // Everything checked before anything changes.
    std::shared_ptr<const net::TlsContext> fresh_tls;
    if (tls_) fresh_tls = net::TlsContext::server(tls.certificate_chain_pem, tls.private_key_pem);
    std::shared_ptr<const Authenticator> fresh_tokens = token_authenticator(tokens, log_);
    std::shared_ptr<const Issuer> fresh_issuer;
    if (!issuer.keys_pem.empty())
        fresh_issuer = std::make_shared<const Issuer>(issuer.keys_pem, issuer.id, issuer.name);
    store_->set_issuer(std::move(fresh_issuer));  // may throw: the store is down
    auth_->replace(std::move(fresh_tokens));
    if (tls_) tls_->present(std::move(fresh_tls));
}

net::HttpResponse Service::admin(std::string_view path) {
    if (path == "/healthz") return {200, "text/plain; charset=utf-8", "ok\n"};
    if (path == "/readyz")
        return store_->reachable() ? net::HttpResponse{200, "text/plain; charset=utf-8", "ready\n"}
                                   : net::HttpResponse{503, "text/plain; charset=utf-8", "the store is unreachable\n"};
    if (path == "/metrics" && admin_options_.metrics)
        return {200, "text/plain; version=0.0.4; charset=utf-8", admin_options_.metrics()};
    return {404, "text/plain; charset=utf-8", "not found: /healthz, /readyz and /metrics are here\n"};
}

Service::Service(ServerOptions options, SessionWrapper wrap) : wrap_(std::move(wrap)) {
    // Limits, TLS and tokens first: a server with bad options, TLS material
    // or token keys fails before it touches its store.
    check_limits(options);
    std::shared_ptr<const net::TlsContext> tls;
    if (!options.insecure) {
        if (options.tls.certificate_chain_pem.empty() && options.tls.private_key_pem.empty())
            throw Error(Errc::invalid_argument,
                        "the server needs a TLS certificate chain and private key (ServerOptions::tls), "
                        "or insecure = true for plain TCP");
        tls = net::TlsContext::server(options.tls.certificate_chain_pem, options.tls.private_key_pem);
    }
    tls_ = tls;
    // Sessions end on several worker threads; the operator's log sees one
    // line at a time, as it did when the server had one thread.
    if (options.log)
        log_ = [this, sink = std::move(options.log)](std::string_view line) {
            std::lock_guard lock(log_mutex_);
            sink(line);
        };
    auth_ = std::make_unique<Tokens>(token_authenticator(options.tokens, log_));
    observer_ = std::move(options.observer);
    admin_options_ = std::move(options.admin);
    std::shared_ptr<const Issuer> issuer;
    if (!options.issuer.keys_pem.empty())
        issuer = std::make_shared<const Issuer>(options.issuer.keys_pem, options.issuer.id, options.issuer.name);
    store_ = open_store(options.db_path, {.max_clock_ahead = options.max_clock_ahead,
                                          .issuer = std::move(issuer),
                                          .wall_clock_ms = options.wall_clock_ms,
                                          .statement_timeout = options.db_statement_timeout,
                                          .idle_in_transaction_timeout = options.db_idle_in_transaction_timeout});
    protocol::Limits limits;
    limits.max_frame_bytes = static_cast<std::uint32_t>(options.max_frame_bytes);
    limits.max_push_changes = options.max_push_changes;
    limits.max_pull_changes = options.max_pull_changes;
    auto wall_clock_ms = options.wall_clock_ms ? options.wall_clock_ms : [] {
        return std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
            .count();
    };
    context_.emplace(SessionContext{*store_, *auth_, limits, log_, std::move(wall_clock_ms), observer_.get()});
    net::ServerConfig config;
    config.host = options.host;
    config.port = options.port;
    config.max_frame = options.max_frame_bytes;
    config.io_timeout = options.io_timeout;
    config.min_frame_rate = options.min_frame_rate;
    config.idle_timeout = options.idle_timeout;
    config.hello_timeout = options.hello_timeout;
    config.max_connections = options.max_connections;
    config.max_connections_per_address = options.max_connections_per_address;
    config.io_threads = options.io_threads;
    config.worker_threads = options.worker_threads;
    config.on_turnaways = [this](const net::Turnaways& t) {
        if (context_->log) {
            std::string line = describe(t);
            if (!t.last_address.empty()) line += " last_over_address_cap=" + t.last_address;
            context_->log(line);
        }
        if (detail::log_enabled(LogLevel::warning)) detail::log(LogLevel::warning, "server", describe(t));
    };
    if (observer_)
        config.on_turned_away = [observer = observer_.get()](const net::Turnaways& t) {
            if (t.over_address_cap) observer->turned_away("address_cap", t.over_address_cap);
            if (t.over_cap) observer->turned_away("connection_cap", t.over_cap);
            if (t.shed) observer->turned_away("shed_before_hello", t.shed);
            if (t.late_hello) observer->turned_away("no_hello_in_time", t.late_hello);
        };
    config.tls = std::move(tls);
    listener_.emplace(config, [this](const std::string& peer) -> std::unique_ptr<net::Session> {
        auto session = std::make_unique<ServerSession>(*context_, peer);
        if (!wrap_) return session;
        return wrap_(std::move(session), peer);
    });
    if (admin_options_.port)
        admin_.emplace(admin_options_.host, *admin_options_.port,
                       [this](std::string_view path) { return admin(path); });
}

Service::~Service() { stop(); }

}  // namespace server

struct SyncServer::Impl {
    explicit Impl(ServerOptions options) : service(std::move(options)) {}
    server::Service service;
};

Id renew_server_id(const std::string& db) {
    auto store = server::open_store(db, {});
    store->storage().renew_server_id();
    return store->server_id();
}

SyncServer::SyncServer(ServerOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

SyncServer::~SyncServer() { stop(); }

std::uint16_t SyncServer::port() const noexcept { return impl_->service.port(); }

std::uint16_t SyncServer::admin_port() const noexcept { return impl_->service.admin_port(); }

void SyncServer::reload(const TlsServerOptions& tls, const TokenOptions& tokens, const IssuerOptions& issuer) {
    impl_->service.reload(tls, tokens, issuer);
}

void SyncServer::stop() { impl_->service.stop(); }

}  // namespace lindra
