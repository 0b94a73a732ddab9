#include <lindra/error.hpp>
#include <lindra/testing/certs.hpp>
#include <lindra/testing/mock_server.hpp>

#include "protocol/frame.hpp"
#include "server/service.hpp"

#include <algorithm>
#include <array>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <optional>

namespace lindra::testing {

namespace fs = std::filesystem;

std::string_view to_string(Frame frame) {
    static constexpr std::array<std::string_view, 10> names = {
        "any", "hello", "push", "pull", "ping", "welcome", "push_ack", "pull_batch", "pong", "error"};
    return names.at(static_cast<std::size_t>(frame));
}

namespace {

protocol::ErrorCode protocol_code(ErrorCode code) {
    // Declared in the protocol's order, which starts at 1.
    return static_cast<protocol::ErrorCode>(static_cast<int>(code) + 1);
}

// Client messages are variant alternatives 0..3 (Hello, Push, Pull, Ping),
// server messages 0..4 (Welcome, PushAck, PullBatch, Pong, Error).
Frame client_frame(std::size_t index) { return static_cast<Frame>(1 + index); }
Frame server_frame(std::size_t index) { return static_cast<Frame>(5 + index); }

std::string error_frame(const Fault& f) {
    return protocol::encode(protocol::ServerMessage{protocol::ErrorMessage{
        protocol_code(f.code), f.message, static_cast<std::uint32_t>(f.retry_after.count())}});
}

}  // namespace

// ---- the fault plan and what the mock saw -------------------------------

struct FaultPlan::State {
    mutable std::mutex mutex;  // guards everything below
    struct Pending {
        Fault fault;
        int left;  // matching frames still to pass before it fires
    };
    std::vector<Pending> pending;
    int fired = 0;
    int refuse_count = 0;
    std::chrono::steady_clock::time_point refuse_until{};
    std::vector<PushedWrite> pushed;
    std::array<std::size_t, 10> frames{};
    std::size_t connections = 0;
    bool quiet = false;  // seeding: nothing counted, recorded or fired

    // Counts a frame and returns the fault that fires on it, if any: every
    // pending fault for its kind counts it; the first one due fires, others
    // due at the same frame wait for the next.
    std::optional<Fault> on(Frame frame) {
        std::lock_guard lock(mutex);
        if (quiet) return std::nullopt;
        ++frames[0];
        ++frames[static_cast<std::size_t>(frame)];
        std::optional<std::size_t> due;
        for (std::size_t i = 0; i < pending.size(); ++i) {
            auto& p = pending[i];
            if (p.fault.frame != Frame::any && p.fault.frame != frame) continue;
            if (p.left > 1 || !due) --p.left;
            if (p.left <= 0 && !due) due = i;
        }
        if (!due) return std::nullopt;
        Fault f = std::move(pending[*due].fault);
        pending.erase(pending.begin() + static_cast<std::ptrdiff_t>(*due));
        ++fired;
        return f;
    }

    // Whether a new connection is let in.
    bool admit() {
        std::lock_guard lock(mutex);
        if (quiet) return true;
        ++connections;
        if (refuse_count > 0) {
            --refuse_count;
            ++fired;
            return false;
        }
        return std::chrono::steady_clock::now() >= refuse_until;
    }
};

FaultPlan& FaultPlan::add(Fault fault) {
    if (fault.nth < 1) throw Error(Errc::invalid_argument, "Fault::nth counts from 1");
    std::lock_guard lock(state_->mutex);
    const int left = fault.nth;
    state_->pending.push_back({std::move(fault), left});
    return *this;
}
FaultPlan& FaultPlan::drop(Frame frame, int nth) { return add({.frame = frame, .nth = nth}); }
FaultPlan& FaultPlan::drop_after(int frames) { return drop(Frame::any, frames + 1); }
FaultPlan& FaultPlan::lose_push_ack(int nth) { return drop(Frame::push_ack, nth); }
FaultPlan& FaultPlan::delay(Frame frame, std::chrono::milliseconds by, int nth) {
    return add({.frame = frame, .nth = nth, .action = Fault::Action::delay, .delay = by});
}
FaultPlan& FaultPlan::duplicate(Frame frame, int nth) {
    return add({.frame = frame, .nth = nth, .action = Fault::Action::duplicate});
}
FaultPlan& FaultPlan::truncate(Frame frame, std::size_t keep_bytes, int nth) {
    return add({.frame = frame, .nth = nth, .action = Fault::Action::truncate, .keep_bytes = keep_bytes});
}
FaultPlan& FaultPlan::fail(Frame frame, ErrorCode code, std::chrono::milliseconds retry_after, int nth) {
    return add({.frame = frame, .nth = nth, .action = Fault::Action::error, .code = code, .retry_after = retry_after});
}
FaultPlan& FaultPlan::reject_auth(int times) {
    for (int i = 1; i <= times; ++i)
        add({.frame = Frame::hello,
             .nth = i,
             .action = Fault::Action::error,
             .code = ErrorCode::unauthenticated,
             .message = "the mock server refuses this token"});
    return *this;
}
FaultPlan& FaultPlan::refuse_connections(int count) {
    std::lock_guard lock(state_->mutex);
    state_->refuse_count += count;
    return *this;
}
FaultPlan& FaultPlan::refuse_connections_for(std::chrono::milliseconds period) {
    std::lock_guard lock(state_->mutex);
    state_->refuse_until = std::chrono::steady_clock::now() + period;
    return *this;
}
void FaultPlan::clear() {
    std::lock_guard lock(state_->mutex);
    state_->pending.clear();
    state_->refuse_count = 0;
    state_->refuse_until = {};
}
int FaultPlan::fired() const {
    std::lock_guard lock(state_->mutex);
    return state_->fired;
}
int FaultPlan::pending() const {
    std::lock_guard lock(state_->mutex);
    return static_cast<int>(state_->pending.size()) + state_->refuse_count;
}

// ---- the fault layer around the real server's session --------------------

namespace {

// Runs where the server runs its sessions, on its worker pool: the plan's
// state is under its mutex, and a fault is only ever a Reply (a delay is a
// timer on the connection's strand, a cut is done by net/), so no fault
// holds a worker.
class FaultySession final : public net::Session {
public:
    FaultySession(std::unique_ptr<net::Session> inner, std::shared_ptr<FaultPlan::State> state)
        : inner_(std::move(inner)), state_(std::move(state)) {}

    std::size_t max_frame() const override { return inner_->max_frame(); }
    bool authenticated() const override { return inner_->authenticated(); }
    net::Reply on_bad_frame(const protocol::ProtocolError& error) override { return inner_->on_bad_frame(error); }
    void on_close(std::string_view reason) override { inner_->on_close(reason); }

    net::Reply on_frame(std::span<const std::uint8_t> body) override {
        std::vector<PushedWrite> writes;
        const auto fault = state_->on(read_client_frame(body, writes));
        if (!fault) return handle(body, writes);
        switch (fault->action) {
        case Fault::Action::drop:
            return {.close = true};
        case Fault::Action::error:
            return {{error_frame(*fault)}, true};
        case Fault::Action::truncate:
            return inner_->on_bad_frame(protocol::ProtocolError(
                protocol::ErrorCode::invalid_argument, "the peer closed the connection in the middle of a frame"));
        case Fault::Action::duplicate: {
            auto first = handle(body, writes);
            if (first.close) return first;
            const std::size_t before = first.frames.size();
            auto second = handle(body, writes);
            if (second.cut_after_bytes) first.cut_after_bytes = framed_size(first.frames, before) + *second.cut_after_bytes;
            first.frames.insert(first.frames.end(), second.frames.begin(), second.frames.end());
            first.close = second.close;
            first.delay += second.delay;
            return first;
        }
        case Fault::Action::delay: {
            auto r = handle(body, writes);
            r.delay += fault->delay;
            return r;
        }
        }
        return handle(body, writes);
    }

private:
    // Which message a client frame is; a Push's writes go to `writes`.
    Frame read_client_frame(std::span<const std::uint8_t> body, std::vector<PushedWrite>& writes) {
        try {
            auto m = protocol::decode_client(body, device_, SIZE_MAX);
            if (const auto* hello = std::get_if<protocol::Hello>(&m)) device_ = hello->device;
            if (auto* push = std::get_if<protocol::Push>(&m))
                for (auto& e : push->entries) writes.push_back({device_, e.seq, std::move(e.changes)});
            return client_frame(m.index());
        } catch (const protocol::ProtocolError&) {
            return Frame::any;  // the server refuses it; only Frame::any faults see it
        }
    }

    // The server handles the frame (its writes are recorded as received),
    // then the faults due on its answer apply.
    net::Reply handle(std::span<const std::uint8_t> body, const std::vector<PushedWrite>& writes) {
        if (!writes.empty()) {
            std::lock_guard lock(state_->mutex);
            if (!state_->quiet) state_->pushed.insert(state_->pushed.end(), writes.begin(), writes.end());
        }
        return answer(inner_->on_frame(body));
    }

    // Bytes of the first `n` frames once framed.
    static std::size_t framed_size(const std::vector<std::string>& frames, std::size_t n) {
        std::size_t bytes = 0;
        for (std::size_t i = 0; i < n; ++i) bytes += protocol::framed_size(frames[i].size());
        return bytes;
    }

    // Applies the faults due on the server's answer, frame by frame.
    net::Reply answer(net::Reply r) {
        for (std::size_t i = 0; i < r.frames.size(); ++i) {
            const auto kind = server_frame(protocol::decode_server(
                std::span(reinterpret_cast<const std::uint8_t*>(r.frames[i].data()), r.frames[i].size()), SIZE_MAX)
                                               .index());
            const auto fault = state_->on(kind);
            if (!fault) continue;
            switch (fault->action) {
            case Fault::Action::drop:
                r.frames.resize(i);
                r.close = true;
                return r;
            case Fault::Action::error:
                r.frames[i] = error_frame(*fault);
                r.frames.resize(i + 1);
                r.close = true;
                return r;
            case Fault::Action::truncate: {
                const std::size_t header = protocol::framed_size(r.frames[i].size()) - r.frames[i].size();
                r.cut_after_bytes = framed_size(r.frames, i) + header + std::min(fault->keep_bytes, r.frames[i].size());
                r.frames.resize(i + 1);
                return r;
            }
            case Fault::Action::duplicate:
                r.frames.insert(r.frames.begin() + static_cast<std::ptrdiff_t>(i), r.frames[i]);
                ++i;
                break;
            case Fault::Action::delay:
                r.delay += fault->delay;
                break;
            }
        }
        return r;
    }

    std::unique_ptr<net::Session> inner_;
    std::shared_ptr<FaultPlan::State> state_;
    Id device_{};
};

}  // namespace

// ---- the mock server ------------------------------------------------------

struct MockServer::Impl {
    MockServerOptions options;
    fs::path dir;
    std::string token_key = generate_token_key();
    std::string issuer_key = generate_issuer_key();  // the mock issues certificates, as the real one with a key
    std::string ca_pem;
    Leaf certificate;
    std::shared_ptr<FaultPlan::State> state = std::make_shared<FaultPlan::State>();
    FaultPlan faults{state};
    std::uint16_t port = 0;

    mutable std::mutex log_mutex;
    std::vector<std::string> log;  // guarded by log_mutex

    std::optional<server::Service> service;
    std::optional<Replica> view;      // the server's store, read-only to tests
    std::optional<Replica> back_office;  // seed()'s device

    Impl() {
        std::string tmpl = (fs::temp_directory_path() / "lindra-mock-XXXXXX").string();
        if (!::mkdtemp(tmpl.data())) throw Error(Errc::storage, "cannot create a temporary folder in " + tmpl);
        dir = tmpl;
    }
    ~Impl() {
        back_office.reset();
        view.reset();
        service.reset();
        std::error_code ignored;
        fs::remove_all(dir, ignored);
    }

    void quiet(bool on) {
        std::lock_guard lock(state->mutex);
        state->quiet = on;
    }

    // A round of the mock's own (seeding, reading rows back): not under
    // test, so no fault fires on it and nothing is recorded.
    SyncResult quiet_sync(Replica& replica, const SyncOptions& options) {
        quiet(true);
        struct Loud {
            Impl& impl;
            ~Loud() { impl.quiet(false); }
        } loud{*this};
        SyncClient client(replica, options);
        return client.sync();
    }

    void start() {
        ServerOptions o;
        o.db_path = options.store.empty() ? (dir / "server.db").string() : options.store;
        o.port = port;
        o.tokens.key_pem = token_key;
        o.issuer.keys_pem = {issuer_key};
        o.insecure = !options.tls;
        if (options.tls) o.tls = {certificate.certificate_pem, certificate.private_key_pem};
        o.wall_clock_ms = options.wall_clock_ms;
        o.log = [this](std::string_view line) {  // from the server's worker threads
            std::lock_guard lock(log_mutex);
            log.emplace_back(line);
        };
        if (options.tweak) options.tweak(o);
        service.emplace(std::move(o), [state = state](std::unique_ptr<net::Session> session, const std::string&)
                                          -> std::unique_ptr<net::Session> {
            if (!state->admit()) return nullptr;
            return std::make_unique<FaultySession>(std::move(session), state);
        });
        port = service->port();
    }
};

MockServer::MockServer(MockServerOptions options) : impl_(std::make_unique<Impl>()) {
    impl_->options = std::move(options);
    if (impl_->options.tls) {
        const auto ca = make_ca("lindra mock server CA");
        impl_->certificate = issue_leaf(ca, {.dns_names = {"localhost"}, .ip_addresses = {"127.0.0.1"}});
        impl_->ca_pem = ca.certificate_pem;
    }
    impl_->start();
}

MockServer::~MockServer() = default;

std::uint16_t MockServer::port() const noexcept { return impl_->port; }
const std::string& MockServer::ca_pem() const noexcept { return impl_->ca_pem; }
bool MockServer::running() const noexcept { return impl_->service.has_value(); }

SyncOptions MockServer::client_options(std::string token) const {
    SyncOptions o;
    o.host = "127.0.0.1";
    o.port = impl_->port;
    o.token = std::move(token);
    o.insecure = !impl_->options.tls;
    o.tls.ca_pem = impl_->ca_pem;
    o.connect_timeout = std::chrono::milliseconds(2'000);
    o.io_timeout = std::chrono::milliseconds(5'000);
    return o;
}

std::string MockServer::token(const TokenClaims& claims, std::int64_t now_s) const {
    if (now_s == 0 && impl_->options.wall_clock_ms) now_s = impl_->options.wall_clock_ms() / 1000;
    return issue_token(impl_->token_key, claims, "lindra", "lindra", now_s);
}

std::string MockServer::admin_token() const { return token({.user = "mock-back-office", .role = Role::admin}); }

void MockServer::seed(const std::function<void(Writes&)>& writes) {
    if (!impl_->back_office)
        impl_->back_office.emplace((impl_->dir / "back-office.db").string(),
                                   ReplicaOptions{.wall_clock_ms = impl_->options.wall_clock_ms});
    impl_->back_office->batch(writes);
    const auto r = impl_->quiet_sync(*impl_->back_office, client_options(admin_token()));
    if (!r.ok()) throw Error(Errc::invalid_argument, "seeding the mock server failed: " + r.message);
    if (!r.rejected.empty())
        throw Error(Errc::invalid_argument, "the mock server refused a seeded write: " + r.rejected.front().reason);
}

const Replica& MockServer::rows() {
    if (impl_->options.store.empty()) {
        if (!impl_->view) impl_->view.emplace((impl_->dir / "server.db").string());
        return *impl_->view;
    }
    if (!impl_->view) impl_->view.emplace((impl_->dir / "view.db").string());
    const auto r = impl_->quiet_sync(*impl_->view, client_options(admin_token()));
    if (!r.ok()) throw Error(Errc::unavailable, "reading the mock server's rows failed: " + r.message);
    return *impl_->view;
}

std::vector<PushedWrite> MockServer::pushed() const {
    std::lock_guard lock(impl_->state->mutex);
    return impl_->state->pushed;
}

std::vector<PushedWrite> MockServer::pushed_by(const Id& device) const {
    auto all = pushed();
    std::erase_if(all, [&](const PushedWrite& w) { return w.device != device; });
    return all;
}

std::size_t MockServer::frames(Frame frame) const {
    std::lock_guard lock(impl_->state->mutex);
    return impl_->state->frames[static_cast<std::size_t>(frame)];
}

std::size_t MockServer::connections() const {
    std::lock_guard lock(impl_->state->mutex);
    return impl_->state->connections;
}

std::vector<std::string> MockServer::log() const {
    std::lock_guard lock(impl_->log_mutex);
    return impl_->log;
}

FaultPlan& MockServer::faults() noexcept { return impl_->faults; }

void MockServer::restart() {
    stop();
    start();
}

void MockServer::stop() { impl_->service.reset(); }

void MockServer::start() {
    if (!impl_->service) impl_->start();
}

}  // namespace lindra::testing
