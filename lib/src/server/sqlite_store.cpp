#include "server/store.hpp"

#include "core/codec.hpp"
#include "model/merge.hpp"
#include "replica/core.hpp"
#include "server/access.hpp"

#include <algorithm>
#include <set>

namespace lindra::server {
namespace {

using detail::Core;

// The server's own tables, beside the replica's (same file, same merge
// code). Positions in lindra_log are assigned by the single SQLite writer
// in commit order, so no cursor can skip a change committed later with a
// lower position; a multi-process store (PostgreSQL) must keep that promise
// another way.
constexpr std::string_view kServerTables = R"sql(
CREATE TABLE IF NOT EXISTS lindra_log (
    pos INTEGER PRIMARY KEY,
    entity INTEGER NOT NULL,
    row_id BLOB NOT NULL,
    hlc INTEGER NOT NULL,
    origin BLOB NOT NULL,
    seq INTEGER NOT NULL,        -- the origin's outbox seq: retries are checked against it
    fields BLOB NOT NULL,
    scope BLOB NOT NULL          -- who may read it (server/access.hpp)
);
CREATE INDEX IF NOT EXISTS lindra_log_origin_seq ON lindra_log (origin, seq);
CREATE INDEX IF NOT EXISTS lindra_log_scope ON lindra_log (scope, pos);
CREATE TABLE IF NOT EXISTS lindra_device (
    device_id BLOB PRIMARY KEY,
    user_id TEXT NOT NULL,
    highest_seq INTEGER NOT NULL,
    highest_hlc INTEGER NOT NULL,
    last_push_at INTEGER NOT NULL
) WITHOUT ROWID;
-- The scopes a device holds rows of, as of each cursor generation handed
-- out (cursors name their generation): a pull compares them with what its
-- user may read now, purges the lost scopes and backfills the new ones.
CREATE TABLE IF NOT EXISTS lindra_grant (
    device_id BLOB NOT NULL,
    gen INTEGER NOT NULL,
    scopes BLOB NOT NULL,        -- sorted, each length-prefixed
    backfill BLOB NOT NULL,      -- the scopes still to send from the log, up to backfill_to
    backfill_to INTEGER NOT NULL,
    PRIMARY KEY (device_id, gen)
) WITHOUT ROWID;
-- Entries refused, so a retry (its PushAck was lost) is refused again, the
-- same way, rather than judged anew: the device may have heard the first
-- answer on a connection the server no longer knows of.
CREATE TABLE IF NOT EXISTS lindra_refused (
    device_id BLOB NOT NULL,
    seq INTEGER NOT NULL,
    code INTEGER NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (device_id, seq)
) WITHOUT ROWID;
)sql";

// A pull cursor, opaque to clients: the log position the device has
// reached, and for scoped users the grant generation it holds and how far
// the backfill of newly granted scopes has got (scope index, position).
struct Cursor {
    std::int64_t pos = 0;
    std::int64_t gen = 0;
    std::int64_t backfill_scope = 0;
    std::int64_t backfill_pos = 0;
};

std::string encode_cursor(const Cursor& c) {
    codec::Writer w;
    w.varint(static_cast<std::uint64_t>(c.pos));
    if (c.gen != 0) {
        w.varint(static_cast<std::uint64_t>(c.gen));
        w.varint(static_cast<std::uint64_t>(c.backfill_scope));
        w.varint(static_cast<std::uint64_t>(c.backfill_pos));
    }
    return w.take();
}

Cursor decode_cursor(std::string_view cursor) {
    if (cursor.empty()) return {};
    try {
        codec::Reader r(codec::bytes_of(cursor));
        std::int64_t parts[4] = {};
        std::size_t n = 0;
        while (!r.done() && n < 4) {
            const auto v = r.varint();
            if (v > static_cast<std::uint64_t>(INT64_MAX)) break;
            parts[n++] = static_cast<std::int64_t>(v);
        }
        if (r.done() && (n == 1 || n == 4)) return {parts[0], parts[1], parts[2], parts[3]};
    } catch (const Error&) {
    }
    throw Error(Errc::invalid_argument, "not a cursor this server handed out");
}

using ScopeSet = std::set<std::string>;

template <class Scopes>
std::string encode_scopes(const Scopes& scopes) {
    codec::Writer w;
    for (const auto& s : scopes) {
        w.varint(s.size());
        w.bytes(codec::bytes_of(s));
    }
    return w.take();
}

std::vector<std::string> decode_scopes(std::span<const std::uint8_t> blob) {
    std::vector<std::string> out;
    codec::Reader r(blob);
    while (!r.done()) {
        const auto b = r.bytes(r.varint());
        out.emplace_back(reinterpret_cast<const char*>(b.data()), b.size());
    }
    return out;
}

struct Grant {
    ScopeSet scopes;
    std::vector<std::string> backfill;
    std::int64_t backfill_to = 0;
};

class SqliteServerStore final : public ServerStore {
public:
    SqliteServerStore(const std::string& path, const StoreOptions& options)
        : core_(path, ReplicaOptions{.wall_clock_ms = options.wall_clock_ms}, /*durable_commits=*/true),
          options_(options) {
        store::Transaction txn(core_.db);
        core_.db.exec(kServerTables);
        // A log from before scopes cannot be filtered by reader: refuse it
        // rather than hand its rows to everyone (docs/decisions.md).
        try {
            core_.db.prepare("SELECT scope FROM lindra_log LIMIT 0");
        } catch (const Error&) {
            throw Error(Errc::corrupt, path + " was written by a pre-release lindra server without access scopes;"
                                              " start the server on a new file (tablets then pull everything again)");
        }
        txn.commit();
    }

    Id server_id() override { return core_.device; }

    std::uint64_t tick() override { return core_.clock.tick(); }

    DeviceState device(const Id& device) override {
        auto st = core_.db.cached("SELECT highest_seq, highest_hlc, user_id FROM lindra_device WHERE device_id = ?");
        st->bind(1, device);
        if (!st->step()) return {};
        return {st->int64(0), static_cast<std::uint64_t>(st->int64(1)), st->text(2)};
    }

    // A cursor past the head comes from a log this store no longer has (it
    // was restored from a backup): the device pulls everything again, which
    // merging makes harmless, rather than skip the entries that will take
    // those positions.
    bool has_changes_after(const Id& device, const Identity& who, std::string_view cursor) override {
        const Cursor c = decode_cursor(cursor);
        if (c.pos != head()) return true;
        Access access(core_.db, who);
        if (access.reads_everything()) return false;
        const auto grant = load_grant(device, c.gen);
        return !grant || grant->scopes != access.readable() ||
               c.backfill_scope < static_cast<std::int64_t>(grant->backfill.size());
    }

    PushOutcome push(const Id& device, const Identity& who, std::span<const protocol::Entry> entries) override {
        Core::WriteTransaction txn(core_);
        Access access(core_.db, who);
        const DeviceState before = this->device(device);
        PushOutcome out;
        DeviceState after = before;
        // The wall clock, not the HLC: every accepted change moves the HLC
        // forward, and the bound would move with it.
        const std::int64_t now = core_.clock.wall_ms();
        ScopeSet written;  // the scopes of the entries applied
        ScopeSet refill;   // scopes of rows the device is told to drop
        for (const auto& entry : entries) {
            if (entry.changes.empty()) continue;
            const Change& first = entry.changes.front();
            const EntityDef& e = *find_entity(first.entity);  // the decoder checked it
            if (entry.seq <= before.highest_seq) {
                // A retry: acknowledged again if it was applied, refused
                // again if it was refused, with the row as it is now; judged
                // anew if its refusal was forgotten (beyond kRefusalsKept),
                // never acknowledged unjudged.
                if (logged(device, entry)) continue;
                if (auto r = refusal_of(device, entry.seq)) {
                    out.rejected.push_back(rejected(access, e, core_.load(e, first.row), entry, r->first,
                                                    std::move(r->second), refill));
                    continue;
                }
            } else {
                after = {entry.seq, first.hlc};
            }
            const auto row = core_.load(e, first.row);
            // A row the user may not read is judged as if it did not exist,
            // so the answer cannot tell them that it does (docs/decisions.md,
            // "Refusals reveal nothing").
            const bool visible =
                !row.exists || access.reads_everything() || access.may_read(scope_of(e, first.row, row));
            std::string scope;  // the row's, once the entry is applied
            auto refusal = judge(access, e, visible ? row : model::row_store(e).empty(), entry, now, scope);
            if (!refusal && !visible)
                refusal = {protocol::ErrorCode::permission_denied, "may not write this " + std::string(e.name) + " row"};
            if (!refusal) {
                try {
                    core_.apply(entry.changes);  // throws before saving anything
                } catch (const Error& error) {
                    if (error.storage_failure()) throw;
                    refusal = {protocol::ErrorCode::invalid_argument, error.what()};
                }
            }
            if (refusal) {
                core_.db.cached("INSERT INTO lindra_refused (device_id, seq, code, reason) VALUES (?, ?, ?, ?)")
                    ->bind(1, device)
                    .bind(2, entry.seq)
                    .bind(3, static_cast<std::int64_t>(refusal->code))
                    .bind(4, refusal->reason)
                    .run();
                out.rejected.push_back(
                    rejected(access, e, row, entry, refusal->code, std::move(refusal->reason), refill));
                continue;
            }
            core_.db
                .cached(
                    "INSERT INTO lindra_log (entity, row_id, hlc, origin, seq, fields, scope)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)")
                ->bind(1, first.entity)
                .bind(2, first.row)
                .bind(3, static_cast<std::int64_t>(first.hlc))
                .bind(4, first.origin)
                .bind(5, entry.seq)
                .bind(6, codec::bytes_of(codec::encode_fields(entry.changes)))
                .bind(7, codec::bytes_of(scope))
                .run();
            out.applied_changes += entry.changes.size();
            written.insert(scope);
        }
        if (!access.reads_everything()) hold(device, written, refill);
        if (!out.rejected.empty()) {
            // A retry can only follow the last PushAcks lost with a
            // connection; beyond that, memory per device stays bounded.
            core_.db
                .cached(
                    "DELETE FROM lindra_refused WHERE device_id = ?1 AND seq <= (SELECT seq FROM lindra_refused"
                    " WHERE device_id = ?1 ORDER BY seq DESC LIMIT 1 OFFSET ?2)")
                ->bind(1, device)
                .bind(2, kRefusalsKept)
                .run();
        }
        if (after.highest_seq != before.highest_seq) {
            core_.db
                .cached(
                    "INSERT INTO lindra_device (device_id, user_id, highest_seq, highest_hlc, last_push_at)"
                    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (device_id) DO UPDATE SET user_id = excluded.user_id,"
                    " highest_seq = excluded.highest_seq, highest_hlc = excluded.highest_hlc,"
                    " last_push_at = excluded.last_push_at")
                ->bind(1, device)
                .bind(2, who.user)
                .bind(3, after.highest_seq)
                .bind(4, static_cast<std::int64_t>(after.highest_hlc))
                .bind(5, now)
                .run();
        }
        txn.commit();
        out.acked_seq = after.highest_seq;
        return out;
    }

    void forget_refusals(const Id& device, std::int64_t seq) override {
        core_.db.cached("DELETE FROM lindra_refused WHERE device_id = ? AND seq <= ?")->bind(1, device).bind(2, seq).run();
    }

    PullOutcome pull(const Id& device, const Identity& who, bool include_own, std::string_view cursor,
                     std::size_t max_changes, std::size_t max_bytes) override {
        // One transaction: the batch, the head and the grant see one state.
        Core::WriteTransaction txn(core_);
        Access access(core_.db, who);
        const std::int64_t max_pos = head();
        Cursor c = decode_cursor(cursor);
        if (c.pos > max_pos) c = {};  // see has_changes_after
        PullOutcome out;
        Batch batch{out, max_changes, max_bytes, device, include_own};

        const ScopeSet* readable = nullptr;
        Grant grant;
        if (!access.reads_everything()) {
            readable = &access.readable();
            grant = regrant(device, *readable, c, out.purges);
            // Rows of newly granted scopes from before the cursor, scope by
            // scope (the device's own included: a purge took them too).
            while (c.backfill_scope < static_cast<std::int64_t>(grant.backfill.size()) && !batch.full()) {
                auto st = core_.db.cached(
                    "SELECT pos, entity, row_id, hlc, origin, fields FROM lindra_log"
                    " WHERE scope = ? AND pos > ? AND pos <= ? ORDER BY pos");
                st->bind(1, codec::bytes_of(grant.backfill[static_cast<std::size_t>(c.backfill_scope)]))
                    .bind(2, c.backfill_pos)
                    .bind(3, grant.backfill_to);
                bool exhausted = true;
                while (st->step()) {
                    if (batch.full() || !batch.add(*st)) {
                        exhausted = false;
                        break;
                    }
                    c.backfill_pos = st->int64(0);
                }
                if (!exhausted) break;
                ++c.backfill_scope;
                c.backfill_pos = 0;
            }
        }
        const bool backfilling = c.backfill_scope < static_cast<std::int64_t>(grant.backfill.size());
        if (!backfilling) {
            auto st = core_.db.cached(
                "SELECT pos, entity, row_id, hlc, origin, fields, scope FROM lindra_log WHERE pos > ? ORDER BY pos");
            st->bind(1, c.pos);
            // Entries skipped (the device's own, scopes it may not read)
            // count against the batch too, so one pull never scans the whole
            // log while others wait.
            std::size_t scanned = 0;
            while (!batch.full() && scanned++ < 4 * max_changes && st->step()) {
                const auto scope = st->blob(6);
                const bool visible = !readable || readable->contains(std::string(
                                                      reinterpret_cast<const char*>(scope.data()), scope.size()));
                const bool own = !include_own && st->id(4) == device;
                if (visible && !own && !batch.add(*st)) break;
                c.pos = st->int64(0);
            }
        }
        out.has_more = backfilling || c.pos < max_pos;
        out.remaining = static_cast<std::uint64_t>(max_pos - c.pos);
        out.next_cursor = encode_cursor(c);
        txn.commit();
        return out;
    }

private:
    struct Refusal {
        protocol::ErrorCode code;
        std::string reason;
    };

    // Why `entry` may not be applied to its row, whose state as `who` may
    // know it is `seen`; or nothing, with the scope the row will be in.
    // Every check runs before anything merges, authorizes or stores it: the
    // values first, then the clock, then the row after the entry (merged
    // once), its identity, and the access rules on (seen, after).
    std::optional<Refusal> judge(Access& access, const EntityDef& e, const model::RowState& seen,
                                 const protocol::Entry& entry, std::int64_t now, std::string& scope) {
        const Change& first = entry.changes.front();
        try {
            for (const auto& c : entry.changes) Core::check(c, model::Quote::none);
        } catch (const Error& error) {
            return Refusal{protocol::ErrorCode::invalid_argument, error.what()};
        }
        const auto ahead_ms = static_cast<std::int64_t>(replica::hlc_ms(first.hlc)) - now;
        if (ahead_ms > options_.max_clock_ahead.count())
            return Refusal{protocol::ErrorCode::invalid_argument,
                           "stamped " + std::to_string(ahead_ms / 1000) +
                               " s ahead of the server's clock; check the device's date and time"};
        const auto after = model::merged(e, seen, entry.changes);
        try {
            Core::check_identity(e, first.row, after);
        } catch (const Error& error) {
            return Refusal{protocol::ErrorCode::invalid_argument, error.what()};
        }
        if (auto why = access.refusal(e, first.row, seen, after, entry.changes))
            return Refusal{protocol::ErrorCode::permission_denied, std::move(*why)};
        scope = scope_of(e, first.row, after);
        if (scope.empty())
            return Refusal{protocol::ErrorCode::invalid_argument,
                           std::string(e.name) + " without the group or person it belongs to"};
        // A row comes into being with its identity.
        for (std::size_t i = 0; i < e.fields.size(); ++i)
            if (e.fields[i].key && std::holds_alternative<std::monostate>(after.fields[i].value))
                return Refusal{protocol::ErrorCode::invalid_argument,
                               std::string(e.name) + " without its " + std::string(e.fields[i].name)};
        return std::nullopt;
    }

    // Fills one PullBatch with whole log entries, within its limits.
    struct Batch {
        PullOutcome& out;
        std::size_t max_changes, max_bytes;
        const Id& device;
        bool include_own;
        std::size_t bytes = 0;

        bool full() const { return out.changes.size() >= max_changes || bytes >= max_bytes; }
        // Adds the entry `st` is on (pos, entity, row_id, hlc, origin,
        // fields); false if it would not fit and the batch is not empty.
        bool add(const store::Statement& st) {
            const Change prototype{static_cast<std::uint16_t>(st.int64(1)), st.id(2), 0, {},
                                   static_cast<std::uint64_t>(st.int64(3)), st.id(4)};
            const auto fields = st.blob(5);
            const auto before = out.changes.size();
            codec::decode_fields(fields, prototype, out.changes);
            if (out.changes.size() > max_changes && before > 0) {  // whole entries, within the limit
                out.changes.resize(before);
                bytes = max_bytes;
                return false;
            }
            bytes += fields.size() + 40;  // ids, hlc and framing of the group
            return true;
        }
    };

    // A refused entry, with the server's state of the fields it set if the
    // user may read the row, or word to drop it.
    protocol::Rejected rejected(Access& access, const EntityDef& e, const model::RowState& row,
                                const protocol::Entry& entry, protocol::ErrorCode code, std::string reason,
                                ScopeSet& refill) {
        const Id& id = entry.changes.front().row;
        protocol::Rejected r{entry.seq, code, std::move(reason), e.tag, id};
        for (const auto& c : entry.changes)
            if (std::find(r.fields.begin(), r.fields.end(), c.field) == r.fields.end()) r.fields.push_back(c.field);
        const std::string scope = row.exists ? scope_of(e, id, row) : std::string();
        const bool visible = row.exists && (access.reads_everything() || access.may_read(scope));
        if (visible)
            r.current = core_.field_changes(e, id, r.fields);
        else
            r.drop_row = true;
        // The device drops a row the server has: should its user see the
        // scope again before it is purged, the scope is backfilled anew.
        if (row.exists && !visible) refill.insert(scope);
        return r;
    }

    // The device's grant for this pull: the one its cursor names, or, if
    // what `who` may read changed since, a new generation with the lost
    // scopes' rows in `purges` and the new scopes queued for backfill.
    Grant regrant(const Id& device, const ScopeSet& readable, Cursor& c, std::vector<protocol::Purge>& purges) {
        std::optional<Grant> held = c.gen ? load_grant(device, c.gen) : std::nullopt;
        if (c.gen && !held) c = {};  // a generation this store never handed out (restored): start over
        if (held) {
            // The device holds this generation now; older ones are done with.
            core_.db.cached("DELETE FROM lindra_grant WHERE device_id = ? AND gen < ?")->bind(1, device).bind(2, c.gen).run();
            if (held->scopes == readable) return *held;
        }
        // Backfill up to the head, not the cursor: the stream skips the
        // device's own entries, and those of a scope purged from it may lie
        // ahead of the cursor (the rest of the overlap arrives twice, which
        // merging makes harmless).
        Grant next{readable, {}, head()};
        std::vector<std::string> own;  // readable scopes the device wrote in, without a grant
        if (!held) {
            // No generation to compare with (a first pull, or a cursor this
            // store never handed out). The device may hold rows it wrote in
            // scopes it has lost since: purged. It may also have dropped
            // rows it wrote that the server has (a refusal said to): the
            // scopes it wrote in are backfilled, its own entries included,
            // which the stream skips.
            auto st = core_.db.cached("SELECT DISTINCT scope FROM lindra_log WHERE origin = ?");
            st->bind(1, device);
            std::vector<std::string> lost;
            while (st->step()) {
                const auto b = st->blob(0);
                std::string scope(reinterpret_cast<const char*>(b.data()), b.size());
                (readable.contains(scope) ? own : lost).push_back(std::move(scope));
            }
            for (auto& scope : lost) purge_scope(std::move(scope), purges);
        }
        if (held) {
            for (const auto& scope : held->scopes)
                if (!readable.contains(scope)) purge_scope(scope, purges);
            // Still to backfill: what the last generation had not finished,
            // and every scope gained.
            for (std::size_t i = static_cast<std::size_t>(c.backfill_scope); i < held->backfill.size(); ++i)
                if (readable.contains(held->backfill[i])) next.backfill.push_back(held->backfill[i]);
            for (const auto& scope : readable)
                if (!held->scopes.contains(scope)) next.backfill.push_back(scope);
        }
        // Backfilled even at position 0: the stream skips the device's own
        // entries, and a purge may have taken some of them.
        next.backfill.insert(next.backfill.end(), own.begin(), own.end());
        std::int64_t gen = 1;
        {
            auto st = core_.db.cached("SELECT coalesce(max(gen), 0) + 1 FROM lindra_grant WHERE device_id = ?");
            st->bind(1, device);
            st->step();
            gen = st->int64(0);
        }
        core_.db
            .cached(
                "INSERT INTO lindra_grant (device_id, gen, scopes, backfill, backfill_to) VALUES (?, ?, ?, ?, ?)")
            ->bind(1, device)
            .bind(2, gen)
            .bind(3, codec::bytes_of(encode_scopes(next.scopes)))
            .bind(4, codec::bytes_of(encode_scopes(next.backfill)))
            .bind(5, next.backfill_to)
            .run();
        c.gen = gen;
        c.backfill_scope = 0;
        c.backfill_pos = 0;
        return next;
    }

    // Every row of a scope lost, for the device to delete.
    void purge_scope(std::string scope, std::vector<protocol::Purge>& purges) {
        protocol::Purge& p = purges.emplace_back();
        auto st = core_.db.cached("SELECT DISTINCT row_id FROM lindra_log WHERE scope = ?");
        st->bind(1, codec::bytes_of(scope));
        while (st->step()) p.rows.push_back(st->id(0));
        p.scope = std::move(scope);
    }

    // The device now holds rows of `written` (it pushed them) that its
    // grants may lack, if it has not pulled since gaining those scopes: each
    // grant takes them, to backfill while they stay readable and to purge
    // once they are lost. Scopes in `refill` lost a row on the device that
    // the server has: backfilled again while readable, purged once not, by
    // the grants that already hold them only. A refusal never adds a scope
    // to a grant: the purge that followed would tell the device what the
    // scope holds (docs/decisions.md, "Refusals reveal nothing").
    void hold(const Id& device, const ScopeSet& written, const ScopeSet& refill) {
        if (written.empty() && refill.empty()) return;
        auto st = core_.db.cached("SELECT gen, scopes, backfill FROM lindra_grant WHERE device_id = ?");
        st->bind(1, device);
        std::vector<std::tuple<std::int64_t, ScopeSet, std::vector<std::string>>> grown;
        while (st->step()) {
            const auto held = decode_scopes(st->blob(1));
            ScopeSet scopes(held.begin(), held.end());
            auto backfill = decode_scopes(st->blob(2));
            const auto before = backfill.size();
            // A scope written that the grant did not list is held from now
            // on (purged if unreadable at the next pull); a refilled one is
            // backfilled again if listed.
            for (const auto& scope : refill)
                if (scopes.contains(scope)) backfill.push_back(scope);
            for (const auto& scope : written)
                if (scopes.insert(scope).second) backfill.push_back(scope);
            if (backfill.size() != before) grown.emplace_back(st->int64(0), std::move(scopes), std::move(backfill));
        }
        for (const auto& [gen, scopes, backfill] : grown)
            core_.db.cached("UPDATE lindra_grant SET scopes = ?, backfill = ? WHERE device_id = ? AND gen = ?")
                ->bind(1, codec::bytes_of(encode_scopes(scopes)))
                .bind(2, codec::bytes_of(encode_scopes(backfill)))
                .bind(3, device)
                .bind(4, gen)
                .run();
    }

    std::optional<Grant> load_grant(const Id& device, std::int64_t gen) {
        auto st = core_.db.cached(
            "SELECT scopes, backfill, backfill_to FROM lindra_grant WHERE device_id = ? AND gen = ?");
        st->bind(1, device).bind(2, gen);
        if (!st->step()) return std::nullopt;
        const auto scopes = decode_scopes(st->blob(0));
        return Grant{{scopes.begin(), scopes.end()}, decode_scopes(st->blob(1)), st->int64(2)};
    }

    // How the device's entry `seq` was refused, if it was.
    std::optional<std::pair<protocol::ErrorCode, std::string>> refusal_of(const Id& device, std::int64_t seq) {
        auto st = core_.db.cached("SELECT code, reason FROM lindra_refused WHERE device_id = ? AND seq = ?");
        st->bind(1, device).bind(2, seq);
        if (!st->step()) return std::nullopt;
        return std::pair{static_cast<protocol::ErrorCode>(st->int64(0)), st->text(1)};
    }

    // Whether the log holds `entry`, a retried seq of the device (entries
    // refused earlier are not in it). An entry the log has a seq for must be
    // that very change: same row, hlc and values (copies of one file share
    // their clock, so the hlc alone can match); otherwise this throws.
    bool logged(const Id& device, const protocol::Entry& entry) {
        auto st = core_.db.cached("SELECT entity, row_id, hlc, fields FROM lindra_log WHERE origin = ? AND seq = ?");
        st->bind(1, device).bind(2, entry.seq);
        if (!st->step()) return false;
        const Change& first = entry.changes.front();
        const auto fields = st->blob(3);
        const bool same = st->int64(0) == first.entity && st->id(1) == first.row &&
                          static_cast<std::uint64_t>(st->int64(2)) == first.hlc &&
                          std::ranges::equal(fields, codec::bytes_of(codec::encode_fields(entry.changes)));
        if (!same)
            throw Error(Errc::invalid_argument,
                        "seq " + std::to_string(entry.seq) +
                            " from this device already holds another change: two devices share one id"
                            " (was this database file copied from another tablet?)");
        return true;
    }

    std::int64_t head() {
        auto st = core_.db.cached("SELECT coalesce(max(pos), 0) FROM lindra_log");
        st->step();
        return st->int64(0);
    }

    Core core_;
    StoreOptions options_;
};

}  // namespace

std::unique_ptr<ServerStore> open_sqlite_store(const std::string& path, const StoreOptions& options) {
    return std::make_unique<SqliteServerStore>(path, options);
}

}  // namespace lindra::server
