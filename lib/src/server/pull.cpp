// A pull (DESIGN §6): on one read snapshot, in parallel with the writer,
// the backfill of scopes gained, then the log after the cursor in the
// scopes its user may read. Written once, over the storage primitives.
#include "server/store.hpp"

#include "core/codec.hpp"
#include "server/access.hpp"
#include "server/grants.hpp"

namespace lindra::server {
namespace {

// Fills one PullBatch with whole log entries, within its limits.
struct Batch {
    PullOutcome& out;
    std::size_t max_changes, max_bytes;
    std::size_t bytes = 0;

    bool full() const { return out.changes.size() >= max_changes || bytes >= max_bytes; }
    // Adds `entry`; false if it would not fit and the batch is not empty.
    bool add(const LogEntry& entry) {
        const Change prototype{entry.entity, entry.row, 0, {}, entry.hlc, entry.origin};
        const auto before = out.changes.size();
        codec::decode_fields(codec::bytes_of(entry.fields), prototype, out.changes);
        if (out.changes.size() > max_changes && before > 0) {  // whole entries, within the limit
            out.changes.resize(before);
            bytes = max_bytes;
            return false;
        }
        bytes += entry.fields.size() + 40;  // ids, hlc and framing of the group
        return true;
    }
};

}  // namespace

// A cursor past the head comes from a log this store no longer has (it was
// restored from a backup): the device pulls everything again, which merging
// makes harmless, rather than skip the entries that will take those
// positions.
bool ServerStore::has_changes_after(const Id& device, const Identity& who, std::string_view cursor) {
    return has_changes_after(*storage_->read(), device, who, cursor);
}

bool ServerStore::has_changes_after(StorageTxn& txn, const Id& device, const Identity& who, std::string_view cursor) {
    const Cursor c = decode_cursor(cursor);
    if (c.pos != txn.head()) return true;
    Access access(txn, who);
    if (access.reads_everything()) return false;
    std::optional<Grant> grant = c.gen ? txn.grant(device, c.gen) : std::nullopt;
    return !grant || grant->scopes != access.readable() ||
           c.backfill_scope < static_cast<std::int64_t>(grant->backfill.size());
}

ServerStore::Hello ServerStore::hello(const Id& device, const Identity& who, std::string_view cursor,
                                      std::int64_t acked_seq) {
    Hello out;
    {
        auto txn = storage_->read();
        out.device = txn->device(device);
        if (!out.device.user.empty() && out.device.user != who.user) return out;
        out.pull_needed = has_changes_after(*txn, device, who, cursor);
        // The log's head less the cursor, as PullBatch.remaining: a total
        // for the client's bar before the first page.
        const std::int64_t head = txn->head(), pos = decode_cursor(cursor).pos;
        if (out.pull_needed && pos <= head) out.pull_remaining = static_cast<std::uint64_t>(head - pos);
    }
    out.server_hlc = storage_->tick();
    if (acked_seq > 0 && out.device.has_refusals) forget_refusals(device, acked_seq);
    return out;
}

PullOutcome ServerStore::pull(const Id& device, const Identity& who, bool include_own, std::string_view cursor,
                              std::size_t max_changes, std::size_t max_bytes) {
    Cursor c = decode_cursor(cursor);
    PullOutcome out;
    Regrant regranted;
    {
        // One snapshot: the batch, the head and the grant see one state.
        auto txn = storage_->read();
        Access access(*txn, who);
        const std::int64_t max_pos = txn->head();
        if (c.pos > max_pos) c = {};  // see has_changes_after
        Batch batch{out, max_changes, max_bytes};

        const ScopeSet* readable = nullptr;
        if (!access.reads_everything()) {
            readable = &access.readable();
            regranted = regrant(*txn, device, *readable, c, out.purges);
            const Grant& grant = regranted.grant;
            // Rows of newly granted scopes from before the cursor, scope by
            // scope (the device's own included: a purge took them too).
            while (c.backfill_scope < static_cast<std::int64_t>(grant.backfill.size()) && !batch.full()) {
                const std::size_t limit = max_changes + 1;
                std::size_t seen = 0;
                bool exhausted = true;
                const std::vector<std::string> scope{grant.backfill[static_cast<std::size_t>(c.backfill_scope)]};
                txn->scan(c.backfill_pos, grant.backfill_to, &scope, limit, [&](const LogEntry& entry) {
                    if (batch.full() || !batch.add(entry)) {
                        exhausted = false;
                        return false;
                    }
                    c.backfill_pos = entry.pos;
                    ++seen;
                    return true;
                });
                if (!exhausted || seen == limit) continue;  // the scope has more, if the batch has room
                ++c.backfill_scope;
                c.backfill_pos = 0;
            }
        }
        const bool backfilling = c.backfill_scope < static_cast<std::int64_t>(regranted.grant.backfill.size());
        if (!backfilling) {
            // Through the scope index when the device reads few scopes and
            // the fleet wrote more than that since its cursor; else the log
            // in order, skipping what it may not read. Entries skipped (the
            // device's own, other scopes) count against the batch too, so
            // one pull never scans the whole log while others wait.
            std::optional<std::vector<std::string>> scopes;
            if (readable && readable->size() <= StorageTxn::kMaxScanScopes &&
                max_pos - c.pos > static_cast<std::int64_t>(readable->size()))
                scopes.emplace(readable->begin(), readable->end());
            const std::size_t limit = 4 * max_changes;
            std::size_t seen = 0;
            bool stopped = false;
            txn->scan(c.pos, max_pos, scopes ? &*scopes : nullptr, limit, [&](const LogEntry& entry) {
                ++seen;
                const bool visible = !readable || readable->contains(entry.scope);
                const bool own = !include_own && entry.origin == device;
                if (batch.full() || (visible && !own && !batch.add(entry))) {
                    stopped = true;
                    return false;
                }
                c.pos = entry.pos;
                return true;
            });
            if (!stopped && seen < limit) c.pos = max_pos;  // nothing more up to the head
        }
        out.has_more = backfilling || c.pos < max_pos;
        out.remaining = static_cast<std::uint64_t>(max_pos - c.pos);
    }
    if (regranted.is_new || regranted.drop_before) {
        // The snapshot is done with; the grant is written under the
        // device's lock, which numbers its generations.
        retrying([&] {
            auto txn = storage_->write(device);
            store_grant(*txn, device, regranted, c);
            txn->commit();
        });
    }
    out.next_cursor = encode_cursor(c);
    return out;
}

}  // namespace lindra::server
