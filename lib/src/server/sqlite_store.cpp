#include "server/store.hpp"

#include "core/codec.hpp"
#include "replica/core.hpp"

#include <algorithm>

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
    fields BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS lindra_log_origin_seq ON lindra_log (origin, seq);
CREATE TABLE IF NOT EXISTS lindra_device (
    device_id BLOB PRIMARY KEY,
    user_id TEXT NOT NULL,
    highest_seq INTEGER NOT NULL,
    highest_hlc INTEGER NOT NULL,
    last_push_at INTEGER NOT NULL
) WITHOUT ROWID;
)sql";

// Cursors are log positions as varints; opaque to clients.
std::string encode_cursor(std::int64_t pos) {
    codec::Writer w;
    w.varint(static_cast<std::uint64_t>(pos));
    return w.take();
}

std::int64_t decode_cursor(std::string_view cursor) {
    if (cursor.empty()) return 0;
    try {
        codec::Reader r(codec::bytes_of(cursor));
        const auto pos = r.varint();
        if (r.done() && pos <= static_cast<std::uint64_t>(INT64_MAX)) return static_cast<std::int64_t>(pos);
    } catch (const Error&) {
    }
    throw Error(Errc::invalid_argument, "not a cursor this server handed out");
}

class SqliteServerStore final : public ServerStore {
public:
    SqliteServerStore(const std::string& path, const StoreOptions& options)
        : core_(path, ReplicaOptions{.wall_clock_ms = options.wall_clock_ms}, /*durable_commits=*/true),
          options_(options) {
        store::Transaction txn(core_.db);
        core_.db.exec(kServerTables);
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
    bool has_changes_after(std::string_view cursor) override { return decode_cursor(cursor) != head(); }

    PushOutcome push(const Id& device, const std::string& user, std::span<const protocol::Entry> entries) override {
        Core::WriteTransaction txn(core_);
        const DeviceState before = this->device(device);
        PushOutcome out;
        out.acked_seq = before.highest_seq;
        DeviceState after = before;
        // The wall clock, not the HLC: every accepted change moves the HLC
        // forward, and the bound would move with it.
        const std::int64_t now = core_.clock.wall_ms();
        std::vector<Change> accepted;
        std::vector<const protocol::Entry*> logged;
        for (const auto& entry : entries) {
            if (entry.changes.empty()) continue;
            if (entry.seq <= before.highest_seq) {  // a retry, if the log holds this very change
                check_retry(device, entry);
                continue;
            }
            after = {entry.seq, entry.changes.front().hlc};
            const auto ahead_ms = static_cast<std::int64_t>(replica::hlc_ms(entry.changes.front().hlc)) - now;
            if (ahead_ms > options_.max_clock_ahead.count()) {
                out.rejected.push_back({entry.seq, protocol::ErrorCode::invalid_argument,
                                        "stamped " + std::to_string(ahead_ms / 1000) +
                                            " s ahead of the server's clock; check the device's date and time"});
                continue;
            }
            accepted.insert(accepted.end(), entry.changes.begin(), entry.changes.end());
            logged.push_back(&entry);
        }
        core_.apply(accepted);  // validates all of it first; throws and rolls back on bad input
        for (const auto* entry : logged) {
            const Change& first = entry->changes.front();
            core_.db
                .cached("INSERT INTO lindra_log (entity, row_id, hlc, origin, seq, fields) VALUES (?, ?, ?, ?, ?, ?)")
                ->bind(1, first.entity)
                .bind(2, first.row)
                .bind(3, static_cast<std::int64_t>(first.hlc))
                .bind(4, first.origin)
                .bind(5, entry->seq)
                .bind(6, codec::bytes_of(codec::encode_fields(entry->changes)))
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
                .bind(2, user)
                .bind(3, after.highest_seq)
                .bind(4, static_cast<std::int64_t>(after.highest_hlc))
                .bind(5, now)
                .run();
        }
        txn.commit();
        out.acked_seq = after.highest_seq;
        out.applied_changes = accepted.size();
        return out;
    }

    PullOutcome pull(const Id& device, bool include_own, std::string_view cursor, std::size_t max_changes,
                     std::size_t max_bytes) override {
        PullOutcome out;
        std::size_t bytes_so_far = 0;
        // One read transaction: the batch and the head see one snapshot.
        store::Transaction snapshot(core_.db, store::Transaction::Mode::read);
        const std::int64_t max_pos = head();
        std::int64_t from = decode_cursor(cursor);
        if (from > max_pos) from = 0;  // see has_changes_after
        std::int64_t last = from;
        {
            auto st = core_.db.cached(
                "SELECT pos, entity, row_id, hlc, origin, fields FROM lindra_log WHERE pos > ? ORDER BY pos");
            st->bind(1, from);
            // Skipping the device's own entries counts against the batch too,
            // so one pull never scans the whole log while others wait.
            std::size_t scanned = 0;
            while (out.changes.size() < max_changes && bytes_so_far < max_bytes && scanned++ < 4 * max_changes &&
                   st->step()) {
                const std::int64_t pos = st->int64(0);
                if (!include_own && st->id(4) == device) {  // the device has its own changes
                    last = pos;
                    continue;
                }
                const Change prototype{static_cast<std::uint16_t>(st->int64(1)), st->id(2), 0, {},
                                       static_cast<std::uint64_t>(st->int64(3)), st->id(4)};
                const auto fields = st->blob(5);
                const auto before = out.changes.size();
                codec::decode_fields(fields, prototype, out.changes);
                if (out.changes.size() > max_changes && before > 0) {  // whole entries, within the limit
                    out.changes.resize(before);
                    break;
                }
                last = pos;
                bytes_so_far += fields.size() + 40;  // ids, hlc and framing of the group
            }
        }
        out.has_more = last < max_pos;
        out.remaining = static_cast<std::uint64_t>(max_pos - last);
        out.next_cursor = encode_cursor(last);
        return out;
    }

private:
    // An entry the server already has a seq for must be that very change:
    // same row, hlc and values (copies of one file share their clock, so the
    // hlc alone can match). Entries refused earlier (clock ahead) are not in
    // the log; their retry is acknowledged again.
    void check_retry(const Id& device, const protocol::Entry& entry) {
        auto st = core_.db.cached("SELECT entity, row_id, hlc, fields FROM lindra_log WHERE origin = ? AND seq = ?");
        st->bind(1, device).bind(2, entry.seq);
        if (!st->step()) return;
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
