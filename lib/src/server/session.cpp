#include "server/session.hpp"
#include "core/log.hpp"

#include <lindra/schema.hpp>

#include <algorithm>

namespace lindra::server {

using protocol::ErrorCode;

namespace {

template <class Message>
net::Reply reply(const Message& m, bool close = false) {
    return {{protocol::encode(protocol::ServerMessage{m})}, close};
}

}  // namespace

ServerSession::ServerSession(SessionContext& context, std::string peer) : context_(context), peer_(std::move(peer)) {
    if (context_.observer) context_.observer->session_opened();
}

template <class F>
auto ServerSession::timed(std::string_view operation, F&& f) {
    if (!context_.observer) return f();
    const auto start = std::chrono::steady_clock::now();
    struct Report {  // on the way out, thrown or not: a store that fails slowly is slow
        ServerObserver* observer;
        std::string_view operation;
        std::chrono::steady_clock::time_point start;
        ~Report() { observer->store_call(operation, std::chrono::steady_clock::now() - start); }
    } report{context_.observer, operation, start};
    return f();
}

net::Reply ServerSession::refuse(ErrorCode code, const std::string& message) {
    refused_ = std::string(protocol::to_string(code)) + ": " + message;
    if (context_.observer) context_.observer->refused(protocol::to_string(code));
    return reply(protocol::ErrorMessage{code, message, 0}, true);
}

// How long a device waits before it tries again when the store is unavailable.
constexpr std::uint32_t kRetryAfterMs = 2'000;

// A Hello is a few hundred bytes; until one has authenticated the peer, a
// declared length must not make the server hold megabytes for it.
constexpr std::size_t kFrameBeforeHello = 64 * 1024;

std::size_t ServerSession::max_frame() const {
    return identity_ ? context_.limits.max_frame_bytes : kFrameBeforeHello;
}

net::Reply ServerSession::on_bad_frame(const protocol::ProtocolError& error) {
    return refuse(error.code(), error.what());
}

net::Reply ServerSession::on_frame(std::span<const std::uint8_t> body) {
    auto reply = handle(body);
    if (context_.observer) {
        std::size_t sent = 0;
        for (const auto& f : reply.frames) sent += f.size();
        context_.observer->bytes(body.size(), sent);
    }
    return reply;
}

net::Reply ServerSession::handle(std::span<const std::uint8_t> body) {
    try {
        const auto message = protocol::decode_client(body, device_, context_.limits.max_push_changes);
        if (const auto* m = std::get_if<protocol::Hello>(&message)) return hello(*m);
        if (!identity_) return refuse(ErrorCode::unauthenticated, "say Hello first");
        if (const auto* m = std::get_if<protocol::Push>(&message)) return push(*m);
        if (const auto* m = std::get_if<protocol::Pull>(&message)) return pull(*m);
        return reply(protocol::Pong{std::get<protocol::Ping>(message).nonce});
    } catch (const protocol::ProtocolError& e) {
        return refuse(e.code(), e.what());
    } catch (const Error& e) {
        // The store is down or busy (a database restarting, a lock held
        // too long): nothing was applied, and the device tries again soon.
        if (e.errc() == Errc::unavailable || e.errc() == Errc::busy) {
            refused_ = "unavailable: " + std::string(e.what());
            unavailable_ = true;
            return reply(protocol::ErrorMessage{ErrorCode::internal,
                                                "the server's store is unavailable for now; try again", kRetryAfterMs},
                         true);
        }
        // Bad values in a change, an unknown cursor: nothing was applied.
        return refuse(e.storage_failure() ? ErrorCode::internal : ErrorCode::invalid_argument, e.what());
    } catch (const std::exception& e) {
        return refuse(ErrorCode::internal, e.what());
    }
}

net::Reply ServerSession::hello(const protocol::Hello& m) {
    if (identity_) return refuse(ErrorCode::invalid_argument, "Hello was already said");
    if (std::find(m.versions.begin(), m.versions.end(), protocol::kVersion) == m.versions.end())
        return refuse(ErrorCode::unsupported_version,
                      "this server speaks protocol version " + std::to_string(protocol::kVersion));
    if (m.schema_version > schema_version())
        return refuse(
            ErrorCode::unsupported_version,
            "the device's data model (version " + std::to_string(m.schema_version) + ") is newer than the server's");
    if (m.device.is_nil()) return refuse(ErrorCode::invalid_argument, "the device id is missing");
    try {
        identity_ = context_.auth.authenticate(m.token, context_.wall_clock_ms() / 1000);
    } catch (const TokenRefused& e) {
        return refuse(ErrorCode::unauthenticated, e.what());
    }
    device_ = m.device;
    schema_ = static_cast<std::uint16_t>(std::max<std::uint32_t>(m.schema_version, 1));  // 0: unsaid, the first

    protocol::Welcome w;
    w.version = protocol::kVersion;
    w.user = identity_->user;
    w.roles = {std::string(to_string(identity_->role))};
    w.limits = context_.limits;
    const auto state = timed("hello", [&] { return context_.store.hello(device_, *identity_, m.cursor, m.acked_seq); });
    // A device's id is bound to the user who first pushed from it: no one
    // else may push under it, or claim its seqs.
    if (!state.device.user.empty() && state.device.user != identity_->user) {
        identity_.reset();
        return refuse(ErrorCode::permission_denied, "this device is registered to another user");
    }
    w.server_id = context_.store.server_id();
    w.server_hlc = state.server_hlc;
    w.highest_seq = state.device.highest_seq;
    w.highest_hlc = state.device.highest_hlc;
    w.pull_needed = state.pull_needed;
    w.pull_remaining = state.pull_remaining;
    return reply(w);
}

net::Reply ServerSession::push(const protocol::Push& m) {
    std::size_t changes = 0;
    for (const auto& e : m.entries) changes += e.changes.size();
    if (changes > context_.limits.max_push_changes)
        return refuse(ErrorCode::invalid_argument, "a push of " + std::to_string(changes) +
                                                       " changes is over the limit of " +
                                                       std::to_string(context_.limits.max_push_changes));
    auto outcome = timed("push", [&] { return context_.store.push(device_, *identity_, m.entries); });
    if (context_.observer)
        context_.observer->pushed(outcome.applied_changes, outcome.rejected.size(), outcome.certificates_issued);
    pushed_ += outcome.applied_changes;
    rejected_ += outcome.rejected.size();
    return reply(protocol::PushAck{outcome.acked_seq, std::move(outcome.rejected)});
}

net::Reply ServerSession::pull(const protocol::Pull& m) {
    const std::size_t max_changes = std::clamp<std::size_t>(m.max_changes, 1, context_.limits.max_pull_changes);
    // Half the frame limit for values leaves room for ids and framing.
    auto outcome = timed("pull", [&] {
        return context_.store.pull(device_, *identity_, m.include_own, m.cursor, max_changes,
                                   context_.limits.max_frame_bytes / 2);
    });
    // A device of an older data model gets only what it knows; it pulls
    // everything again once it migrates (replica/core.cpp).
    if (schema_ < schema_version())
        std::erase_if(outcome.changes, [this](const Change& c) {
            const EntityDef* e = find_entity(c.entity);
            const FieldDef* f = e ? e->field(c.field) : nullptr;
            return !f || e->since > schema_ || f->since > schema_;
        });
    std::size_t purged = 0;
    for (const auto& p : outcome.purges) purged += p.rows.size();
    if (context_.observer) context_.observer->pulled(outcome.changes.size(), purged);
    pulled_ += outcome.changes.size();
    purged_ += purged;
    protocol::PullBatch batch;
    batch.purges = std::move(outcome.purges);
    batch.changes = std::move(outcome.changes);
    batch.next_cursor = std::move(outcome.next_cursor);
    batch.has_more = outcome.has_more;
    batch.remaining = outcome.remaining;
    return reply(batch);
}

void ServerSession::on_close(std::string_view reason) {
    if (context_.observer)
        context_.observer->session_closed(unavailable_       ? "unavailable"
                                          : !refused_.empty() ? "refused"
                                          : identity_         ? "ok"
                                                              : "dropped",
                                          std::chrono::steady_clock::now() - opened_);
    if (!context_.log && !detail::log_enabled(LogLevel::info)) return;  // no one listens
    std::string counts = " pushed=" + std::to_string(pushed_) + " pulled=" + std::to_string(pulled_);
    if (rejected_) counts += " rejected=" + std::to_string(rejected_);
    if (purged_) counts += " purged=" + std::to_string(purged_);
    // The operator's log names the peer, the user and why the session
    // ended; lindra's log, which an app embedding the server may ship
    // elsewhere, only the device and the counts.
    if (context_.log) {
        std::string line = "session peer=" + peer_;
        if (identity_) line += " user=" + identity_->user + " device=" + device_.to_string().substr(0, 8);
        context_.log(line + counts + " end=\"" + (refused_.empty() ? std::string(reason) : refused_) + "\"");
    }
    if (detail::log_enabled(LogLevel::info))
        detail::log(LogLevel::info, "server",
                    "session" + (identity_ ? " device=" + device_.to_string().substr(0, 8) : std::string()) + counts +
                        (refused_.empty() ? "" : " refused"));
}

}  // namespace lindra::server
