#include "client/session.hpp"

#include "core/log.hpp"
#include "protocol/frame.hpp"

#include <algorithm>

namespace lindra::client {

using protocol::ErrorCode;

SyncSession::SyncSession(detail::Core& core, const SyncOptions& options) : core_(core), options_(options) {}

std::vector<std::string> SyncSession::first_frames() {
    protocol::Hello h;
    h.versions = {protocol::kVersion};
    h.device = core_.device;
    h.token = options_.token;
    h.schema_version = schema_version();
    h.app = options_.app;
    {
        std::lock_guard lock(core_.mutex);
        auto state = core_.pull_state();
        h.cursor = std::move(state.cursor);
        h.acked_seq = state.acked_seq;
        include_own_ = state.include_own;
    }
    progress(SyncPhase::connecting);
    return std::move(send(h).frames);
}

net::Reply SyncSession::send(const protocol::ClientMessage& m) {
    std::string body = protocol::encode(m);
    result_.bytes_sent += protocol::framed_size(body.size());
    return {{std::move(body)}, false};
}

void SyncSession::progress(SyncPhase phase) {
    const bool debug = detail::log_enabled(LogLevel::debug);
    if (!options_.on_progress && !debug) return;
    std::uint64_t push_remaining = 0;
    try {
        std::lock_guard lock(core_.mutex);
        push_remaining = static_cast<std::uint64_t>(core_.outbox_size());
    } catch (const std::exception&) {
        // A failing replica ends the round; its progress says 0 left.
    }
    const SyncProgress p{phase,          result_.changes_pushed, result_.changes_pulled, result_.bytes_sent,
                         result_.bytes_received, push_remaining,         pull_remaining_, result_.writes_pushed};
    if (debug)
        detail::log(LogLevel::debug, "sync",
                    std::string(to_string(phase)) + ": pushed " + std::to_string(p.writes_pushed) + " writes (" +
                        std::to_string(p.changes_pushed) + " changes; " +
                        std::to_string(p.push_remaining) + " writes left), pulled " +
                        std::to_string(p.changes_pulled) + " (" + std::to_string(p.pull_remaining) +
                        " log entries left), " + std::to_string(p.bytes_sent) + " B sent, " +
                        std::to_string(p.bytes_received) + " B received");
    if (options_.on_progress) options_.on_progress(p);
}

net::Reply SyncSession::finish(SyncOutcome outcome, std::string message) {
    state_ = State::done;
    finished_ = true;
    result_.outcome = outcome;
    result_.message = std::move(message);
    progress(SyncPhase::done);
    return {{}, true};
}

net::Reply SyncSession::on_frame(std::span<const std::uint8_t> body) {
    result_.bytes_received += protocol::framed_size(body.size());
    try {
        // The server sends whole entries, never more than asked for unless
        // one entry alone is bigger. A PushAck carries, for each refused
        // entry, the server's state of its fields: a counter as one change
        // per device that added to it, so allow a generous multiple.
        constexpr std::size_t kOriginsPerCounter = 16;
        const std::size_t budget =
            protocol::max_changes_per_entry() +
            (state_ == State::pushing && !in_flight_.empty()
                 ? kOriginsPerCounter * static_cast<std::size_t>(in_flight_.front().changes)
                 : pull_limit_);
        auto message = protocol::decode_server(body, budget);
        if (const auto* e = std::get_if<protocol::ErrorMessage>(&message)) {
            result_.error_code = std::string(protocol::to_string(e->code));
            result_.retry_after_ms = e->retry_after_ms;
            return finish(e->code == ErrorCode::unauthenticated ? SyncOutcome::auth_failed : SyncOutcome::server_error,
                          e->message);
        }
        if (std::holds_alternative<protocol::Pong>(message)) return {};
        if (auto* m = std::get_if<protocol::Welcome>(&message); m && state_ == State::hello) return welcome(*m);
        if (auto* m = std::get_if<protocol::PushAck>(&message); m && state_ == State::pushing) return push_ack(*m);
        if (auto* m = std::get_if<protocol::PullBatch>(&message); m && state_ == State::pulling) return pull_batch(*m);
        return finish(SyncOutcome::protocol_error, "the server sent a message out of turn");
    } catch (const protocol::ProtocolError& e) {
        return finish(SyncOutcome::protocol_error, e.what());
    } catch (const Error& e) {
        // The replica refused what the server sent, or could not store it.
        return finish(e.storage_failure() ? SyncOutcome::local_error : SyncOutcome::protocol_error, e.what());
    } catch (const std::exception& e) {
        return finish(SyncOutcome::local_error, e.what());
    }
}

net::Reply SyncSession::on_bad_frame(const protocol::ProtocolError& error) {
    return finish(SyncOutcome::protocol_error, error.what());
}

void SyncSession::on_close(std::string_view) {}

net::Reply SyncSession::welcome(const protocol::Welcome& m) {
    if (m.version != protocol::kVersion)
        return finish(SyncOutcome::protocol_error, "the server chose protocol version " + std::to_string(m.version));
    bool pending = false;
    {
        std::lock_guard lock(core_.mutex);
        detail::Core::WriteTransaction txn(core_);
        core_.adopt_server(m.server_id);
        core_.skip_ahead(m.highest_seq, m.highest_hlc);
        // The server's time: what this device wrote with a clock ahead of it
        // is stamped after it instead, before anything is pushed, so the
        // server never refuses a change for this device's clock.
        ceiling_ = core_.adopt_server_time(m.server_hlc, m.highest_seq);
        txn.commit();
        include_own_ = include_own_ || core_.pull_state().include_own;
        pending = core_.outbox_size() > 0;
        // What is pushed must survive a power cut here: the server will
        // remember these seqs (DESIGN §9).
        if (pending) core_.make_durable();
    }
    push_limit_ = std::max<std::uint32_t>(1, std::min(options_.push_batch_changes, m.limits.max_push_changes));
    // Half a frame of values leaves room for ids and framing.
    push_bytes_ = std::min<std::size_t>(options_.max_frame_bytes, m.limits.max_frame_bytes) / 2;
    pull_limit_ = std::max<std::uint32_t>(1, std::min(options_.pull_batch_changes, m.limits.max_pull_changes));
    pull_needed_ = m.pull_needed || include_own_;
    pull_remaining_ = pull_needed_ ? m.pull_remaining : 0;  // the bar's total from the start
    return next();
}

net::Reply SyncSession::next() {
    net::Reply reply;
    while (in_flight_.size() < kPushWindow) {
        std::vector<OutboxEntry> entries;
        {
            std::lock_guard lock(core_.mutex);
            const std::int64_t after = in_flight_.empty() ? 0 : in_flight_.back().last_seq;
            entries = core_.outbox(SIZE_MAX, push_limit_, after, push_bytes_);
            // Written during the round by a clock still ahead: stamped after
            // what this round pushed, as at Welcome.
            if (std::any_of(entries.begin(), entries.end(), [&](const OutboxEntry& e) {
                    return !e.changes.empty() && e.changes.front().hlc > ceiling_;
                })) {
                detail::Core::WriteTransaction txn(core_);
                ceiling_ = core_.restamp(ceiling_, after);
                entries = core_.outbox(SIZE_MAX, push_limit_, after, push_bytes_);
                txn.commit();
            }
        }
        if (entries.empty()) break;
        protocol::Push push;
        InFlight sent;
        for (auto& e : entries) {
            sent.changes += static_cast<std::int64_t>(e.changes.size());
            push.entries.push_back({e.seq, std::move(e.changes)});
        }
        sent.writes = static_cast<std::int64_t>(push.entries.size());
        sent.last_seq = push.entries.back().seq;
        in_flight_.push_back(sent);
        auto frame = send(push);
        reply.frames.push_back(std::move(frame.frames.front()));
    }
    if (!in_flight_.empty()) {
        state_ = State::pushing;
        progress(SyncPhase::pushing);
        return reply;
    }
    // Others may have pushed while this device did; and the cursor should
    // move past what this device just pushed.
    if (pull_needed_ || result_.changes_pushed > 0) {
        std::lock_guard lock(core_.mutex);
        return pull(core_.pull_state().cursor);
    }
    return finish(SyncOutcome::ok, "nothing to do");
}

net::Reply SyncSession::push_ack(const protocol::PushAck& m) {
    const InFlight acked = in_flight_.front();
    if (m.acked_seq < acked.last_seq)
        return finish(SyncOutcome::protocol_error, "the server acknowledged seq " + std::to_string(m.acked_seq) +
                                                       ", not the " + std::to_string(acked.last_seq) + " pushed");
    // A refusal moves its entry out of the outbox: it must be one this
    // PushAck answers, never a write the server has not judged yet.
    for (const auto& r : m.rejected)
        if (r.seq > acked.last_seq)
            return finish(SyncOutcome::protocol_error, "the server refused seq " + std::to_string(r.seq) +
                                                           ", beyond the push it acknowledged");
    in_flight_.pop_front();
    std::vector<SyncRejection> rejected;
    {
        std::lock_guard lock(core_.mutex);
        detail::Core::WriteTransaction txn(core_);
        // What the user wrote in each refused entry is kept first, before a
        // rollback can take the row and its entries. Then the refused
        // changes go back to the server's state, with their
        // acknowledgement: one transaction, so none is lost or half undone.
        for (const auto& r : m.rejected) {
            const EntityDef& e = *find_entity(r.entity);  // the decoder checked it
            SyncRejection& out = rejected.emplace_back();
            out = {r.seq, std::string(protocol::to_string(r.code)), r.reason, std::string(e.name), r.row, {}, false};
            for (const auto tag : r.fields) out.fields.emplace_back(e.field(tag)->name);
            if (auto kept = core_.keep_refused(r.seq, out.code, out.reason)) {
                out.values = std::move(kept->values);
                out.refused_id = kept->id;
            }
        }
        for (std::size_t i = 0; i < m.rejected.size(); ++i) {
            const auto& r = m.rejected[i];
            const EntityDef& e = *find_entity(r.entity);
            core_.revert(e, r.row, r.seq, r.fields, r.current, r.drop_row);
            rejected[i].row_removed = r.drop_row && !core_.load(e, r.row).exists;
        }
        core_.acknowledge(acked.last_seq);
        txn.commit();
    }
    result_.writes_pushed += acked.writes;
    result_.changes_pushed += acked.changes;
    report(rejected);
    // The window's last ack: a progress bar sees the push finish before
    // the pull (or more pushes) begins.
    if (in_flight_.empty()) progress(SyncPhase::pushing);
    return next();
}

void SyncSession::report(std::vector<SyncRejection>& rejected) {
    for (auto& r : rejected) {
        // The reason stays out of the log: a validation message can quote
        // the value refused.
        if (detail::log_enabled(LogLevel::warning))
            detail::log(LogLevel::warning, "sync",
                        "the server refused write " + std::to_string(r.seq) + " to " + r.entity + " " +
                            r.row.to_string() + " (" + r.code + (r.row_removed ? ", row removed" : "") + ")");
        if (options_.on_rejected) options_.on_rejected(r);
        result_.rejected.push_back(std::move(r));
    }
}

net::Reply SyncSession::pull(std::string cursor) {
    state_ = State::pulling;
    progress(SyncPhase::pulling);
    return send(protocol::Pull{std::move(cursor), pull_limit_, include_own_});
}

// The human name of `row` of `entity` on this device, or "".
std::string SyncSession::label_of(std::string_view entity, const Id& row) {
    if (row.is_nil()) return {};
    const EntityDef& e = *find_entity(entity);
    const Value label = core_.get(e, row, e.label_field);
    const auto* name = std::get_if<std::string>(&label);
    return name ? *name : std::string();
}

net::Reply SyncSession::pull_batch(protocol::PullBatch& m) {
    std::int64_t purged = 0;
    std::vector<SyncRejection> dropped;  // own changes to purged rows
    std::vector<PurgedScope> told;       // the scopes, for the result once committed
    {
        std::lock_guard lock(core_.mutex);
        detail::Core::WriteTransaction txn(core_);
        // Named before any goes (a person's row may go with the first
        // scope), so the app can say what left.
        for (const auto& p : m.purges)
            told.push_back({.kind = p.kind,
                            .group = p.group,
                            .person = p.person,
                            .group_name = label_of("mentor_group", p.group),
                            .person_name = label_of("person", p.person),
                            .rows = std::ssize(p.rows)});
        for (const auto& p : m.purges) {
            for (auto& k : core_.purge(p.rows)) {
                SyncRejection& out = dropped.emplace_back();
                out = {k.seq, std::move(k.code), std::move(k.reason), std::move(k.entity), k.row, {}, true};
                for (const auto& v : k.values) out.fields.emplace_back(v.field);
                out.values = std::move(k.values);
                out.refused_id = k.id;
            }
            purged += std::ssize(p.rows);
        }
        core_.apply_pulled(m.changes, m.next_cursor, !m.has_more);
        txn.commit();
        // The purged rows' old pages must not linger in the WAL either; if
        // another connection is reading, the next purge or sync retries.
        if (purged > 0) core_.db.truncate_wal();
    }
    result_.rows_purged += purged;
    result_.purged.insert(result_.purged.end(), std::make_move_iterator(told.begin()),
                          std::make_move_iterator(told.end()));
    report(dropped);
    result_.changes_pulled += static_cast<std::int64_t>(m.changes.size());
    pull_remaining_ = m.remaining;
    progress(SyncPhase::pulling);
    if (m.has_more) return pull(std::move(m.next_cursor));
    return finish(SyncOutcome::ok, "synced");
}

SyncResult SyncSession::result(const net::ClientOutcome& outcome) const {
    SyncResult r = result_;
    if (!finished_ || outcome.end == net::ClientEnd::cancelled) {
        switch (outcome.end) {
            case net::ClientEnd::connect_failed:
                r.outcome = SyncOutcome::offline;
                r.message = "cannot reach " + options_.host + ":" + std::to_string(options_.port) + ": " + outcome.message;
                break;
            case net::ClientEnd::tls_failed:
                r.outcome = SyncOutcome::tls_failed;
                r.message = "TLS with " + options_.host + ":" + std::to_string(options_.port) + " failed: " + outcome.message;
                break;
            case net::ClientEnd::broken:
                r.outcome = SyncOutcome::offline;
                r.message = "the connection broke: " + outcome.message;
                break;
            case net::ClientEnd::cancelled:
                if (!finished_ || r.outcome != SyncOutcome::ok) {
                    r.outcome = SyncOutcome::cancelled;
                    r.message = "cancelled";
                }
                break;
            case net::ClientEnd::done: break;
        }
    }
    r.bytes_sent = std::max(r.bytes_sent, outcome.counters.bytes_sent);
    r.bytes_received = std::max(r.bytes_received, outcome.counters.bytes_received);
    r.tls_resumed = outcome.tls_resumed;
    return r;
}

}  // namespace lindra::client
