#include "client/session.hpp"
#include "net/client.hpp"

#include <lindra/sync.hpp>

#include <condition_variable>
#include <future>
#include <mutex>

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
    }
    return "?";
}

struct SyncClient::Impl {
    Impl(Replica& r, SyncOptions o, std::unique_ptr<net::IoThread> t, boost::asio::io_context* i)
        : replica(r), options(std::move(o)), own(std::move(t)), io(i ? i : &own->io()) {}

    Replica& replica;
    SyncOptions options;
    std::unique_ptr<net::IoThread> own;  // when the app brings no io_context
    boost::asio::io_context* io;

    std::mutex mutex;  // guards the five below
    std::condition_variable idle;
    std::shared_ptr<net::ClientConnection> connection;
    std::unique_ptr<client::SyncSession> session;
    bool running = false;
    // Made by the first round, from options.tls; null while insecure.
    std::shared_ptr<const net::TlsContext> tls;
    std::vector<net::SpkiDigest> pins;

    // The transport part of `config`: TLS as options.tls says, or plain
    // TCP if options.insecure. Throws lindra::Error for bad TLS options.
    void set_transport(net::ClientConfig& config) {
        if (options.insecure) return;
        if (!tls) {
            pins = net::parse_pins(options.tls.pins);
            tls = net::TlsContext::client(options.tls.ca_pem);
        }
        config.tls = tls;
        config.server_name = options.tls.server_name;
        config.pins = pins;
    }
};

SyncClient::SyncClient(Replica& replica, SyncOptions options)
    : impl_(std::make_unique<Impl>(replica, std::move(options), std::make_unique<net::IoThread>(), nullptr)) {}

SyncClient::SyncClient(Replica& replica, SyncOptions options, boost::asio::io_context& io)
    : impl_(std::make_unique<Impl>(replica, std::move(options), nullptr, &io)) {}

SyncClient::~SyncClient() {
    cancel();
    std::unique_lock lock(impl_->mutex);
    impl_->idle.wait(lock, [this] { return !impl_->running; });
}

void SyncClient::sync_async(std::function<void(SyncResult)> done) {
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
    impl_->session = std::make_unique<client::SyncSession>(detail::core_of(impl_->replica), impl_->options);
    config.host = impl_->options.host;
    config.port = impl_->options.port;
    config.max_frame = impl_->options.max_frame_bytes;
    config.connect_timeout = impl_->options.connect_timeout;
    config.io_timeout = impl_->options.io_timeout;
    impl_->connection = net::ClientConnection::start(
        *impl_->io, config, *impl_->session, [impl = impl_.get(), done = std::move(done)](net::ClientOutcome outcome) {
            // The round is over before `done` runs, so `done` (or whoever it
            // wakes) may start the next one at once.
            SyncResult result;
            {
                std::lock_guard lock(impl->mutex);
                result = impl->session->result(outcome);
                impl->connection.reset();
                impl->session.reset();
                impl->running = false;
                impl->idle.notify_all();
            }
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

}  // namespace lindra
