#include "client/proxy.hpp"
#include "client/session.hpp"
#include "core/log.hpp"
#include "net/client.hpp"

#include <lindra/sync.hpp>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

namespace lindra {

std::string_view to_string(SyncOutcome outcome) {
    switch (outcome) {
        case SyncOutcome::ok: return "ok";
        case SyncOutcome::offline: return "offline";
        case SyncOutcome::auth_failed: return "auth failed";
        case SyncOutcome::tls_failed: return "TLS failed";
        case SyncOutcome::server_error: return "server error";
        case SyncOutcome::protocol_error: return "protocol error";
        case SyncOutcome::cancelled: return "cancelled";
        case SyncOutcome::local_error: return "local error";
        case SyncOutcome::timed_out: return "timed out";
    }
    return "?";
}

std::string_view to_string(SyncPhase phase) {
    switch (phase) {
        case SyncPhase::connecting: return "connecting";
        case SyncPhase::pushing: return "pushing";
        case SyncPhase::pulling: return "pulling";
        case SyncPhase::done: return "done";
    }
    return "?";
}

std::string_view to_string(SyncState state) {
    switch (state) {
        case SyncState::idle: return "idle";
        case SyncState::connecting: return "connecting";
        case SyncState::pushing: return "pushing";
        case SyncState::pulling: return "pulling";
        case SyncState::offline: return "offline";
        case SyncState::error: return "error";
    }
    return "?";
}

namespace {

// One line per round. The message goes in only where lindra wrote it about
// the network; the replica's and the server's may quote paths or input.
void log_round(const SyncResult& r) {
    const LogLevel level = r.ok() || r.outcome == SyncOutcome::cancelled ? LogLevel::info : LogLevel::warning;
    if (!detail::log_enabled(level)) return;
    std::string line = "round " + std::string(to_string(r.outcome));
    if (!r.error_code.empty()) line += " (" + r.error_code + ")";
    if (r.outcome == SyncOutcome::offline || r.outcome == SyncOutcome::tls_failed) line += ": " + r.message;
    line += "; pushed " + std::to_string(r.writes_pushed) + " writes (" + std::to_string(r.changes_pushed) +
            " changes; " + std::to_string(r.rejected.size()) + " writes refused), pulled " +
            std::to_string(r.changes_pulled) + " changes, purged " + std::to_string(r.rows_purged) +
            " rows; " + std::to_string(r.bytes_sent) + " B sent, " + std::to_string(r.bytes_received) + " B received";
    if (r.retry_after_ms > 0) line += "; retry after " + std::to_string(r.retry_after_ms) + " ms";
    detail::log(level, "sync", line);
}

}  // namespace

struct SyncClient::Impl {
    Impl(Replica& r, SyncOptions o, std::unique_ptr<net::IoThread> t, boost::asio::io_context* i)
        : replica(r), options(std::move(o)), own(std::move(t)), io(i ? i : &own->io()) {}

    Replica& replica;
    SyncOptions options;
    std::unique_ptr<net::IoThread> own;  // when the app brings no io_context
    boost::asio::io_context* io;

    mutable std::mutex mutex;  // guards the six below
    std::condition_variable idle;
    std::shared_ptr<net::ClientConnection> connection;
    std::unique_ptr<client::SyncSession> session;
    SyncOptions round_options;  // the running round's: `options` with the status kept up to date
    bool running = false;
    SyncStatus status;
    // Made by the first round, from options.tls; null while insecure.
    std::shared_ptr<const net::TlsContext> tls;
    std::shared_ptr<net::TlsSessions> tls_sessions;  // the last round's, resumed by the next
    std::vector<net::SpkiDigest> pins;

    // Changes the status and tells the app (never under `mutex`).
    void set_status(const std::function<void(SyncStatus&)>& change) {
        SyncStatus now;
        {
            std::lock_guard lock(mutex);
            change(status);
            now = status;
        }
        if (options.on_status) options.on_status(now);
    }

    // The transport part of `config`: TLS as options.tls says, or plain
    // TCP if options.insecure. Throws lindra::Error for bad TLS options.
    void set_transport(net::ClientConfig& config) {
        config.host = options.host;
        config.port = options.port;
        if (!options.url.empty()) {
            const ServerUrl url = parse_server_url(options.url);
            const bool scheme = options.url.find("://") != std::string::npos;
            if (!url.tls && !options.insecure)
                throw Error(Errc::invalid_argument, "server URL \"" + options.url +
                                                        "\" has no TLS: ws:// and tcp:// need insecure (--insecure), "
                                                        "for development only; use wss:// or tls://");
            if (scheme && url.tls && options.insecure)
                throw Error(Errc::invalid_argument, "server URL \"" + options.url +
                                                        "\" asks for TLS and insecure is set: drop one of them");
            config.host = url.host;
            config.port = url.port;
            if (url.websocket) config.websocket_path = url.path;
        }
        if (auto proxy = client::proxy_for(options.proxy, config.host))
            config.proxy = net::ClientConfig::Proxy{proxy->host, proxy->port, std::move(proxy->authorization),
                                                    proxy->from_environment ? "https_proxy" : "--proxy"};
        if (options.insecure) return;
        if (!tls) {
            pins = net::parse_pins(options.tls.pins);
            tls = net::TlsContext::client(options.tls.ca_pem, options.tls.extra_ca_pems);
            tls_sessions = std::make_shared<net::TlsSessions>();
        }
        config.tls = tls;
        config.sessions = tls_sessions;
        config.server_name = options.tls.server_name;
        config.pins = pins;
    }
};

SyncClient::SyncClient(Replica& replica, SyncOptions options)
    : impl_(std::make_unique<Impl>(replica, std::move(options), std::make_unique<net::IoThread>(), nullptr)) {}

SyncClient::SyncClient(Replica& replica, SyncOptions options, boost::asio::io_context& io)
    : impl_(std::make_unique<Impl>(replica, std::move(options), nullptr, &io)) {}

SyncClient::~SyncClient() {
    try {
        cancel();
    } catch (...) {
        // Out of memory posting the cancel: the round still ends, by its
        // own timeouts, and the wait below sees it.
    }
    std::unique_lock lock(impl_->mutex);
    impl_->idle.wait(lock, [this] { return !impl_->running; });
}

void SyncClient::sync_async(std::function<void(SyncResult)> done) {
    std::int64_t pending = 0;
    try {
        pending = impl_->replica.outbox_size();
    } catch (const Error&) {
        // The round itself will report a failing replica.
    }
    std::unique_lock lock(impl_->mutex);
    if (impl_->running) {
        lock.unlock();  // `done` may call back into this client
        SyncResult busy;
        busy.outcome = SyncOutcome::local_error;
        busy.message = "a sync is already running";
        done(std::move(busy));
        return;
    }
    net::ClientConfig config;
    try {
        impl_->set_transport(config);  // before connecting: bad pins or CAs are this device's error
    } catch (const std::exception& e) {
        lock.unlock();
        SyncResult bad;
        bad.outcome = SyncOutcome::local_error;
        bad.message = e.what();
        done(std::move(bad));
        return;
    }
    impl_->running = true;
    impl_->round_options = impl_->options;
    impl_->round_options.host = config.host;  // from the URL, if any, for the round's messages
    impl_->round_options.port = config.port;
    impl_->round_options.on_progress = [impl = impl_.get(), last = SyncState::connecting](const SyncProgress& p) mutable {
        const auto state = p.phase == SyncPhase::pushing ? SyncState::pushing
                           : p.phase == SyncPhase::pulling ? SyncState::pulling
                                                           : last;
        if (state != last) impl->set_status([&](SyncStatus& s) { s.state = last = state; });
        if (impl->options.on_progress) impl->options.on_progress(p);
    };
    impl_->session = std::make_unique<client::SyncSession>(detail::core_of(impl_->replica), impl_->round_options);
    lock.unlock();  // `running` keeps other rounds out; the app hears "connecting" first
    impl_->set_status([&](SyncStatus& s) { s = {SyncState::connecting, {}, {}, s.last_synced, pending}; });
    lock.lock();
    config.max_frame = impl_->options.max_frame_bytes;
    config.connect_timeout = impl_->options.connect_timeout;
    config.io_timeout = impl_->options.io_timeout;
    impl_->connection = net::ClientConnection::start(
        *impl_->io, config, *impl_->session, [impl = impl_.get(), done = std::move(done)](net::ClientOutcome outcome) {
            // The round is over before `done` runs, so `done` (or whoever it
            // wakes) may start the next one at once.
            std::int64_t pending = -1;
            try {
                pending = impl->replica.outbox_size();
            } catch (const Error&) {
            }
            SyncResult result;
            SyncStatus status;
            {
                std::lock_guard lock(impl->mutex);
                result = impl->session->result(outcome);
                impl->connection.reset();
                impl->session.reset();
                impl->running = false;
                auto& s = impl->status;
                s.state = result.ok() || result.outcome == SyncOutcome::cancelled ? SyncState::idle
                          : result.outcome == SyncOutcome::offline                ? SyncState::offline
                                                                                  : SyncState::error;
                s.error_code = result.ok() ? std::string() : result.error_code;
                s.message = result.ok() ? std::string() : result.message;
                if (result.ok()) s.last_synced = std::chrono::system_clock::now();
                if (pending >= 0) s.pending = pending;
                status = s;
                impl->idle.notify_all();
            }
            if (impl->options.on_status) impl->options.on_status(status);
            log_round(result);
            done(std::move(result));
        });
}

SyncResult SyncClient::sync() {
    if (net::running_in(*impl_->io))
        throw Error(Errc::invalid_argument, "SyncClient::sync() would block the io_context it runs on; use sync_async");
    std::promise<SyncResult> promise;
    auto future = promise.get_future();
    sync_async([&promise](SyncResult r) { promise.set_value(std::move(r)); });
    return future.get();
}

void SyncClient::cancel() {
    std::lock_guard lock(impl_->mutex);
    if (impl_->connection) impl_->connection->cancel();
}

SyncStatus SyncClient::status() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->status;
}

SyncResult SyncClient::wait_until_synced(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::chrono::milliseconds pause{100};
    for (;;) {
        SyncResult r = sync();
        if (r.ok() && impl_->replica.outbox_size() == 0) return r;
        switch (r.outcome) {
            case SyncOutcome::auth_failed:
            case SyncOutcome::tls_failed:
            case SyncOutcome::protocol_error:
            case SyncOutcome::local_error:
            case SyncOutcome::cancelled:
                return r;  // waiting does not mend these
            default:
                break;
        }
        // ok with writes made during the round: go again at once.
        auto wait = r.ok() ? std::chrono::milliseconds(0)
                           : std::max(pause, std::chrono::milliseconds(r.retry_after_ms));
        if (!r.ok()) pause = std::min(2 * pause, std::chrono::milliseconds(2'000));
        if (std::chrono::steady_clock::now() + wait >= deadline) {
            r.message = "not in sync within the time allowed; last round: " +
                        (r.ok() ? std::string("changes still waiting") : r.message);
            r.outcome = SyncOutcome::timed_out;
            return r;
        }
        std::this_thread::sleep_for(wait);
    }
}

}  // namespace lindra
