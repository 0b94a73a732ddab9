// The server's store on one SQLite file (the embedded default, one
// process): the replica's tables for the rows, beside the server's own.
// One writer connection, behind a mutex; pulls read on connections of
// their own, each on a WAL snapshot, in parallel with the writer.
#include "server/storage.hpp"

#include "core/codec.hpp"
#include "replica/core.hpp"
#include "replica/rows.hpp"

#include <bit>
#include <mutex>

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

std::string text_of(std::span<const std::uint8_t> blob) {
    return {reinterpret_cast<const char*>(blob.data()), blob.size()};
}

// Reads and writes of one transaction on one connection.
class SqliteTxn : public StorageTxn {
  public:
    explicit SqliteTxn(store::Database& db) : db_(db), rows_(db) {}

    // The rows as a tablet's rules read them: the same tables.
    model::RowState load(const EntityDef& e, const Id& row) override { return rows_.load(e, row); }
    std::vector<Id> referring(const EntityDef& e, std::string_view field, const Id& target) override {
        return rows_.referring(e, field, target);
    }

    DeviceState device(const Id& device) override {
        auto st = db_.cached(
            "SELECT highest_seq, highest_hlc, user_id,"
            " EXISTS (SELECT 1 FROM lindra_refused WHERE device_id = ?1) FROM lindra_device WHERE device_id = ?1");
        st->bind(1, device);
        if (!st->step()) return {};
        return {st->int64(0), static_cast<std::uint64_t>(st->int64(1)), st->text(2), st->int64(3) != 0};
    }

    std::int64_t head() override {
        auto st = db_.cached("SELECT coalesce(max(pos), 0) FROM lindra_log");
        st->step();
        return st->int64(0);
    }

    std::optional<LogEntry> logged(const Id& origin, std::int64_t seq) override {
        auto st =
            db_.cached("SELECT pos, entity, row_id, hlc, fields, scope FROM lindra_log WHERE origin = ? AND seq = ?");
        st->bind(1, origin).bind(2, seq);
        if (!st->step()) return std::nullopt;
        return LogEntry{st->int64(0),
                        static_cast<std::uint16_t>(st->int64(1)),
                        st->id(2),
                        static_cast<std::uint64_t>(st->int64(3)),
                        origin,
                        seq,
                        text_of(st->blob(4)),
                        text_of(st->blob(5))};
    }

    void scan(std::int64_t after, std::int64_t upto, const std::vector<std::string>* scopes, std::size_t limit,
              const std::function<bool(const LogEntry&)>& each) override {
        if (scopes && scopes->empty()) return;
        if (scopes && scopes->size() > kMaxScanScopes)
            throw Error(Errc::invalid_argument,
                        "a log scan takes at most " + std::to_string(kMaxScanScopes) + " scopes");
        // Placeholders for the scopes in powers of two, the last repeated,
        // so a few cached statements serve every count.
        std::size_t slots = 0;
        std::string sql = "SELECT pos, entity, row_id, hlc, origin, seq, fields, scope FROM lindra_log";
        if (scopes) {
            slots = std::bit_ceil(scopes->size());
            sql += " INDEXED BY lindra_log_scope WHERE scope IN (?";
            for (std::size_t i = 1; i < slots; ++i) sql += ",?";
            sql += ") AND";
        } else {
            sql += " WHERE";
        }
        sql += " pos > ? AND pos <= ? ORDER BY pos LIMIT ?";
        auto st = db_.cached(sql);
        int i = 1;
        for (std::size_t k = 0; k < slots; ++k)
            st->bind(i++, codec::bytes_of((*scopes)[std::min(k, scopes->size() - 1)]));
        st->bind(i, after)
            .bind(i + 1, upto)
            .bind(i + 2, static_cast<std::int64_t>(std::min<std::size_t>(limit, INT64_MAX)));
        LogEntry entry;
        while (st->step()) {
            entry.pos = st->int64(0);
            entry.entity = static_cast<std::uint16_t>(st->int64(1));
            entry.row = st->id(2);
            entry.hlc = static_cast<std::uint64_t>(st->int64(3));
            entry.origin = st->id(4);
            entry.seq = st->int64(5);
            entry.fields = text_of(st->blob(6));
            entry.scope = text_of(st->blob(7));
            if (!each(entry)) return;
        }
    }

    std::vector<std::string> scopes_written_by(const Id& origin) override {
        auto st = db_.cached("SELECT DISTINCT scope FROM lindra_log WHERE origin = ?");
        st->bind(1, origin);
        std::vector<std::string> out;
        while (st->step()) out.push_back(text_of(st->blob(0)));
        return out;
    }

    std::vector<Id> rows_in_scope(const std::string& scope) override {
        auto st = db_.cached("SELECT DISTINCT row_id FROM lindra_log WHERE scope = ?");
        st->bind(1, codec::bytes_of(scope));
        std::vector<Id> out;
        while (st->step()) out.push_back(st->id(0));
        return out;
    }

    std::optional<Refusal> refusal(const Id& device, std::int64_t seq) override {
        auto st = db_.cached("SELECT code, reason FROM lindra_refused WHERE device_id = ? AND seq = ?");
        st->bind(1, device).bind(2, seq);
        if (!st->step()) return std::nullopt;
        return Refusal{static_cast<protocol::ErrorCode>(st->int64(0)), st->text(1)};
    }

    std::optional<Grant> grant(const Id& device, std::int64_t gen) override {
        auto st = db_.cached("SELECT scopes, backfill, backfill_to FROM lindra_grant WHERE device_id = ? AND gen = ?");
        st->bind(1, device).bind(2, gen);
        if (!st->step()) return std::nullopt;
        const auto scopes = decode_scopes(st->blob(0));
        return Grant{{scopes.begin(), scopes.end()}, decode_scopes(st->blob(1)), st->int64(2)};
    }

    std::vector<std::pair<std::int64_t, Grant>> grants(const Id& device) override {
        auto st = db_.cached("SELECT gen, scopes, backfill, backfill_to FROM lindra_grant WHERE device_id = ?");
        st->bind(1, device);
        std::vector<std::pair<std::int64_t, Grant>> out;
        while (st->step()) {
            const auto scopes = decode_scopes(st->blob(1));
            out.emplace_back(st->int64(0),
                             Grant{{scopes.begin(), scopes.end()}, decode_scopes(st->blob(2)), st->int64(3)});
        }
        return out;
    }

    // The one writer holds the file's write lock already.
    void lock_rows(std::span<const std::pair<std::uint16_t, Id>>) override {}

    void save_rows(std::span<const StagedRow> rows) override {
        for (const auto& r : rows) model::row_store(*r.entity).save(db_, r.row, r.state);
    }

    void set_device(const Id& device, const DeviceState& state, std::int64_t now_ms) override {
        db_.cached(
               "INSERT INTO lindra_device (device_id, user_id, highest_seq, highest_hlc, last_push_at)"
               " VALUES (?, ?, ?, ?, ?) ON CONFLICT (device_id) DO UPDATE SET user_id = excluded.user_id,"
               " highest_seq = excluded.highest_seq, highest_hlc = excluded.highest_hlc,"
               " last_push_at = excluded.last_push_at")
            ->bind(1, device)
            .bind(2, state.user)
            .bind(3, state.highest_seq)
            .bind(4, static_cast<std::int64_t>(state.highest_hlc))
            .bind(5, now_ms)
            .run();
    }

    void remember_refusals(const Id& device, std::span<const std::pair<std::int64_t, Refusal>> refused,
                           std::int64_t keep) override {
        for (const auto& [seq, r] : refused)
            db_.cached("INSERT OR REPLACE INTO lindra_refused (device_id, seq, code, reason) VALUES (?, ?, ?, ?)")
                ->bind(1, device)
                .bind(2, seq)
                .bind(3, static_cast<std::int64_t>(r.code))
                .bind(4, r.reason)
                .run();
        db_.cached(
               "DELETE FROM lindra_refused WHERE device_id = ?1 AND seq <= (SELECT seq FROM lindra_refused"
               " WHERE device_id = ?1 ORDER BY seq DESC LIMIT 1 OFFSET ?2)")
            ->bind(1, device)
            .bind(2, keep)
            .run();
    }

    void forget_refusals(const Id& device, std::int64_t up_to_seq) override {
        db_.cached("DELETE FROM lindra_refused WHERE device_id = ? AND seq <= ?")
            ->bind(1, device)
            .bind(2, up_to_seq)
            .run();
    }

    std::int64_t add_grant(const Id& device, const Grant& grant) override {
        std::int64_t gen = 1;
        {
            auto st = db_.cached("SELECT coalesce(max(gen), 0) + 1 FROM lindra_grant WHERE device_id = ?");
            st->bind(1, device);
            st->step();
            gen = st->int64(0);
        }
        db_.cached("INSERT INTO lindra_grant (device_id, gen, scopes, backfill, backfill_to) VALUES (?, ?, ?, ?, ?)")
            ->bind(1, device)
            .bind(2, gen)
            .bind(3, codec::bytes_of(encode_scopes(grant.scopes)))
            .bind(4, codec::bytes_of(encode_scopes(grant.backfill)))
            .bind(5, grant.backfill_to)
            .run();
        return gen;
    }

    void update_grant(const Id& device, std::int64_t gen, const Grant& grant) override {
        db_.cached("UPDATE lindra_grant SET scopes = ?, backfill = ? WHERE device_id = ? AND gen = ?")
            ->bind(1, codec::bytes_of(encode_scopes(grant.scopes)))
            .bind(2, codec::bytes_of(encode_scopes(grant.backfill)))
            .bind(3, device)
            .bind(4, gen)
            .run();
    }

    void drop_grants_before(const Id& device, std::int64_t gen) override {
        db_.cached("DELETE FROM lindra_grant WHERE device_id = ? AND gen < ?")->bind(1, device).bind(2, gen).run();
    }

    void append_log(std::span<const LogEntry> entries) override {
        // The single writer assigns positions in commit order.
        std::uint64_t max_hlc = 0;
        for (const auto& entry : entries) {
            auto st = db_.cached(
                "INSERT INTO lindra_log (entity, row_id, hlc, origin, seq, fields, scope)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)");
            st->bind(1, entry.entity)
                .bind(2, entry.row)
                .bind(3, static_cast<std::int64_t>(entry.hlc))
                .bind(4, entry.origin)
                .bind(5, entry.seq)
                .bind(6, codec::bytes_of(entry.fields))
                .bind(7, codec::bytes_of(entry.scope));
            st->run();
            max_hlc = std::max(max_hlc, entry.hlc);
        }
        if (max_hlc) {
            db_.cached("UPDATE lindra_replica SET hlc = max(hlc, ?)")
                ->bind(1, static_cast<std::int64_t>(max_hlc))
                .run();
            observed_ = max_hlc;
        }
    }

    std::uint64_t observed() const { return observed_; }

  protected:
    store::Database& db_;
    detail::Rows rows_;
    std::uint64_t observed_ = 0;
};

class SqliteStorage final : public Storage {
  public:
    SqliteStorage(const std::string& path, const StoreOptions& options)
        : core_(path, ReplicaOptions{.wall_clock_ms = options.wall_clock_ms}, /*durable_commits=*/true),
          clock_(core_.clock) {
        store::Transaction txn(core_.db);
        core_.db.exec(kServerTables);
        // A log from before scopes cannot be filtered by reader: refuse it
        // rather than hand its rows to everyone (docs/decisions.md).
        try {
            core_.db.prepare("SELECT scope FROM lindra_log LIMIT 0");
        } catch (const Error&) {
            throw Error(Errc::corrupt, path +
                                           " was written by a pre-release lindra server without access scopes;"
                                           " start the server on a new file (tablets then pull everything again)");
        }
        txn.commit();
        // The replica's clock as the file holds it; from here on the
        // storage's own, which Welcome reads while a push writes.
        { Core::WriteTransaction load(core_); }
        clock_.observe(core_.clock.last());
        server_id_ = core_.device;
    }

    Id server_id() override {
        std::lock_guard lock(clock_mutex_);
        return server_id_;
    }

    // The server's id is its replica's device id.
    void renew_server_id() override {
        const Id id = Id::random();
        {
            std::lock_guard lock(writer_mutex_);
            store::Transaction txn(core_.db);
            core_.db.cached("UPDATE lindra_replica SET device_id = ?")->bind(1, id).run();
            txn.commit();
            core_.device = id;
        }
        std::lock_guard lock(clock_mutex_);
        server_id_ = id;
    }

    std::uint64_t tick() override {
        std::lock_guard lock(clock_mutex_);
        return clock_.tick();
    }

    std::int64_t wall_ms() override { return clock_.wall_ms(); }

    std::unique_ptr<StorageTxn> write(const Id&) override { return std::make_unique<Writer>(*this); }

    std::unique_ptr<StorageTxn> read() override { return std::make_unique<Reader>(*this); }

  private:
    // The one writer: the write lock of the file for the transaction's life.
    class Writer final : public SqliteTxn {
      public:
        explicit Writer(SqliteStorage& s) : SqliteTxn(s.core_.db), s_(s), lock_(s.writer_mutex_), txn_(s.core_.db) {}
        void commit() override {
            txn_.commit();
            if (observed()) {
                std::lock_guard lock(s_.clock_mutex_);
                s_.clock_.observe(observed());
            }
        }

      private:
        SqliteStorage& s_;
        std::unique_lock<std::mutex> lock_;
        store::Transaction txn_;
    };

    // A reader: a connection of its own from the pool, on one snapshot.
    class Reader final : public SqliteTxn {
      public:
        explicit Reader(SqliteStorage& s) : Reader(s, s.take_reader()) {}
        ~Reader() override {
            txn_.reset();
            s_.give_back(std::move(db_owned_));
        }
        void commit() override { txn_->commit(); }

      private:
        Reader(SqliteStorage& s, std::unique_ptr<store::Database> db)
            : SqliteTxn(*db),
              s_(s),
              db_owned_(std::move(db)),
              txn_(std::in_place, *db_owned_, store::Transaction::Mode::read) {}
        SqliteStorage& s_;
        std::unique_ptr<store::Database> db_owned_;
        std::optional<store::Transaction> txn_;
    };

    std::unique_ptr<store::Database> take_reader() {
        {
            std::lock_guard lock(readers_mutex_);
            if (!readers_.empty()) {
                auto db = std::move(readers_.back());
                readers_.pop_back();
                return db;
            }
        }
        return std::make_unique<store::Database>(core_.db.path());
    }

    void give_back(std::unique_ptr<store::Database> db) noexcept {
        try {
            std::lock_guard lock(readers_mutex_);
            readers_.push_back(std::move(db));
        } catch (...) {  // out of memory: the connection closes
        }
    }

    Core core_;  // the writer's connection; guarded by writer_mutex_
    std::mutex writer_mutex_;
    std::mutex clock_mutex_;
    replica::HybridClock clock_;  // guarded by clock_mutex_
    Id server_id_;                // guarded by clock_mutex_
    std::mutex readers_mutex_;
    std::vector<std::unique_ptr<store::Database>> readers_;  // idle reader connections; guarded by readers_mutex_
};

}  // namespace

std::unique_ptr<Storage> open_sqlite_storage(const std::string& path, const StoreOptions& options) {
    return std::make_unique<SqliteStorage>(path, options);
}

}  // namespace lindra::server
