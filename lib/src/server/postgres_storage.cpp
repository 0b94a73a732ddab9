// The server's store on PostgreSQL (DESIGN §6): many stateless
// lindra-server processes share one database. Rows of every entity live in
// one table as canonical blobs (model::RowStore::encode_row), with their
// ref fields in a side table for the access rules' lookups.
//
// - Positions never skip: the log is appended as the last statement of a
//   push, under the lock of the single head row, so positions are dense and
//   in commit order (docs/decisions.md, "Positions").
// - Idempotent across servers: a push locks its device row first, then the
//   rows it writes in key order; a retry arriving at another server waits
//   for the first one's commit and then sees it. Conflicts (deadlock,
//   serialization failure, a row created meanwhile) throw Conflict, and the
//   policy runs the push again.
// - Pulls read one REPEATABLE READ snapshot.
// - Wake-ups: a push notifies in its transaction; each server listens, and
//   polls the head too, and keeps its clock past every stamp it sees.
#include "server/storage.hpp"

#include "core/codec.hpp"
#include "core/log.hpp"
#include "replica/hlc.hpp"
#include "store/pg.hpp"

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <thread>

namespace lindra::server {
namespace {

namespace pg = store::pg;

constexpr std::int64_t kSchemaVersion = 1;

// Created at start, under an advisory lock, so servers starting together
// do not race. Ids and blobs are bytea; positions and stamps int8.
constexpr std::string_view kSchema = R"sql(
CREATE TABLE IF NOT EXISTS lindra_meta (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    schema_version int8 NOT NULL,
    server_id bytea NOT NULL
);
-- The one head row: the last position handed out, and the highest stamp
-- in the log. Locked by a push from its append to its commit.
CREATE TABLE IF NOT EXISTS lindra_head (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    pos int8 NOT NULL,
    hlc int8 NOT NULL
);
INSERT INTO lindra_head (pos, hlc) VALUES (0, 0) ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS lindra_row (
    entity int2 NOT NULL,
    id bytea NOT NULL,
    state bytea NOT NULL,         -- model::RowStore::encode_row
    PRIMARY KEY (entity, id)
);
-- Each row's ref fields that hold an id: who is in a group, which groups
-- an organization has.
CREATE TABLE IF NOT EXISTS lindra_row_ref (
    entity int2 NOT NULL,
    field int2 NOT NULL,
    ref bytea NOT NULL,
    id bytea NOT NULL,
    PRIMARY KEY (entity, field, ref, id)
);
CREATE INDEX IF NOT EXISTS lindra_row_ref_row ON lindra_row_ref (entity, id);
CREATE TABLE IF NOT EXISTS lindra_log (
    pos int8 PRIMARY KEY,
    entity int2 NOT NULL,
    row_id bytea NOT NULL,
    hlc int8 NOT NULL,
    origin bytea NOT NULL,
    seq int8 NOT NULL,
    fields bytea NOT NULL,
    scope bytea NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS lindra_log_origin_seq ON lindra_log (origin, seq);
CREATE INDEX IF NOT EXISTS lindra_log_scope ON lindra_log (scope, pos);
CREATE TABLE IF NOT EXISTS lindra_device (
    device_id bytea PRIMARY KEY,
    user_id text NOT NULL,
    highest_seq int8 NOT NULL,
    highest_hlc int8 NOT NULL,
    last_push_at int8 NOT NULL
);
CREATE TABLE IF NOT EXISTS lindra_grant (
    device_id bytea NOT NULL,
    gen int8 NOT NULL,
    scopes bytea NOT NULL,
    backfill bytea NOT NULL,
    backfill_to int8 NOT NULL,
    PRIMARY KEY (device_id, gen)
);
CREATE TABLE IF NOT EXISTS lindra_refused (
    device_id bytea NOT NULL,
    seq int8 NOT NULL,
    code int2 NOT NULL,
    reason text NOT NULL,
    PRIMARY KEY (device_id, seq)
);
)sql";

constexpr std::string_view kChannel = "lindra_log";

// Statements, prepared once per connection.
const pg::Statement kLoadRow{"lindra_load_row", "SELECT state FROM lindra_row WHERE entity = $1 AND id = $2"};
const pg::Statement kLockRows{"lindra_lock_rows",
                              "SELECT r.entity, r.id, r.state FROM lindra_row r"
                              " JOIN unnest($1::int2[], $2::bytea[]) AS k(entity, id) USING (entity, id)"
                              " ORDER BY r.entity, r.id FOR UPDATE OF r"};
const pg::Statement kReferring{"lindra_referring",
                               "SELECT id FROM lindra_row_ref WHERE entity = $1 AND field = $2 AND ref = $3"};
const pg::Statement kLockDevice{"lindra_lock_device",
                                "INSERT INTO lindra_device (device_id, user_id, highest_seq, highest_hlc, last_push_at)"
                                " VALUES ($1, '', 0, 0, 0)"
                                " ON CONFLICT (device_id) DO UPDATE SET device_id = excluded.device_id"
                                " RETURNING highest_seq"};
const pg::Statement kDevice{"lindra_device",
                            "SELECT highest_seq, highest_hlc, user_id,"
                            " EXISTS (SELECT 1 FROM lindra_refused WHERE device_id = $1)"
                            " FROM lindra_device WHERE device_id = $1"};
const pg::Statement kHead{"lindra_head", "SELECT pos, hlc FROM lindra_head"};
const pg::Statement kLogged{"lindra_logged",
                            "SELECT pos, entity, row_id, hlc, fields, scope FROM lindra_log"
                            " WHERE origin = $1 AND seq = $2"};
const pg::Statement kScanScopes{"lindra_scan_scopes",
                                "SELECT pos, entity, row_id, hlc, origin, seq, fields, scope FROM lindra_log"
                                " WHERE scope = ANY($1) AND pos > $2 AND pos <= $3 ORDER BY pos LIMIT $4"};
const pg::Statement kScan{"lindra_scan",
                          "SELECT pos, entity, row_id, hlc, origin, seq, fields, scope FROM lindra_log"
                          " WHERE pos > $1 AND pos <= $2 ORDER BY pos LIMIT $3"};
const pg::Statement kScopesOf{"lindra_scopes_of", "SELECT DISTINCT scope FROM lindra_log WHERE origin = $1"};
const pg::Statement kRowsIn{"lindra_rows_in", "SELECT DISTINCT row_id FROM lindra_log WHERE scope = $1"};
const pg::Statement kRefusal{"lindra_refusal",
                             "SELECT code, reason FROM lindra_refused WHERE device_id = $1 AND seq = $2"};
const pg::Statement kGrant{"lindra_grant",
                           "SELECT scopes, backfill, backfill_to FROM lindra_grant WHERE device_id = $1 AND gen = $2"};
const pg::Statement kGrants{"lindra_grants",
                            "SELECT gen, scopes, backfill, backfill_to FROM lindra_grant WHERE device_id = $1"};
const pg::Statement kInsertRows{"lindra_insert_rows",
                                "INSERT INTO lindra_row (entity, id, state)"
                                " SELECT * FROM unnest($1::int2[], $2::bytea[], $3::bytea[])"};
const pg::Statement kUpdateRows{"lindra_update_rows",
                                "UPDATE lindra_row r SET state = u.state"
                                " FROM unnest($1::int2[], $2::bytea[], $3::bytea[]) AS u(entity, id, state)"
                                " WHERE r.entity = u.entity AND r.id = u.id"};
const pg::Statement kDropRefs{"lindra_drop_refs",
                              "DELETE FROM lindra_row_ref r USING unnest($1::int2[], $2::bytea[]) AS u(entity, id)"
                              " WHERE r.entity = u.entity AND r.id = u.id"};
const pg::Statement kInsertRefs{"lindra_insert_refs",
                                "INSERT INTO lindra_row_ref (entity, field, ref, id)"
                                " SELECT * FROM unnest($1::int2[], $2::int2[], $3::bytea[], $4::bytea[])"};
const pg::Statement kSetDevice{"lindra_set_device",
                               "UPDATE lindra_device SET user_id = $2, highest_seq = $3, highest_hlc = $4,"
                               " last_push_at = $5 WHERE device_id = $1"};
const pg::Statement kRemember{
    "lindra_remember",
    "INSERT INTO lindra_refused (device_id, seq, code, reason)"
    " SELECT $1, * FROM unnest($2::int8[], $3::int2[], $4::text[])"
    " ON CONFLICT (device_id, seq) DO UPDATE SET code = excluded.code, reason = excluded.reason"};
const pg::Statement kTrimRefusals{"lindra_trim_refusals",
                                  "DELETE FROM lindra_refused WHERE device_id = $1 AND seq <= (SELECT seq"
                                  " FROM lindra_refused WHERE device_id = $1 ORDER BY seq DESC OFFSET $2 LIMIT 1)"};
const pg::Statement kForget{"lindra_forget", "DELETE FROM lindra_refused WHERE device_id = $1 AND seq <= $2"};
const pg::Statement kAddGrant{"lindra_add_grant",
                              "INSERT INTO lindra_grant (device_id, gen, scopes, backfill, backfill_to)"
                              " SELECT $1, coalesce(max(gen), 0) + 1, $2, $3, $4 FROM lindra_grant"
                              " WHERE device_id = $1 RETURNING gen"};
const pg::Statement kUpdateGrant{
    "lindra_update_grant", "UPDATE lindra_grant SET scopes = $3, backfill = $4 WHERE device_id = $1 AND gen = $2"};
const pg::Statement kDropGrants{"lindra_drop_grants", "DELETE FROM lindra_grant WHERE device_id = $1 AND gen < $2"};
// Positions: the head row is locked from here to the commit, so positions
// are handed out in commit order.
const pg::Statement kAppend{"lindra_append",
                            "WITH h AS (UPDATE lindra_head SET pos = pos + $1, hlc = greatest(hlc, $2) RETURNING pos)"
                            " INSERT INTO lindra_log (pos, entity, row_id, hlc, origin, seq, fields, scope)"
                            " SELECT h.pos - $1 + e.n, e.entity, e.row_id, e.hlc, e.origin, e.seq, e.fields, e.scope"
                            " FROM h, unnest($3::int2[], $4::bytea[], $5::int8[], $6::bytea[], $7::int8[],"
                            " $8::bytea[], $9::bytea[]) WITH ORDINALITY AS e(entity, row_id, hlc, origin, seq,"
                            " fields, scope, n)"};
// For a database whose commits are not durable by default: a push is
// acknowledged only after its commit is (docs/decisions.md).
const pg::Statement kDurableCommit{"lindra_durable_commit", "SELECT set_config('synchronous_commit', 'on', true)"};
const pg::Statement kNotify{"lindra_notify", "SELECT pg_notify('lindra_log', $1)"};

pg::Param id_param(const Id& id) {
    return pg::Param(std::span<const std::uint8_t>(id.bytes));
}

Id id_of(const pg::Result& r, int row, int col) {
    const auto b = r.bytea(row, col);
    if (b.size() != 16) throw Error(Errc::corrupt, "an id in the PostgreSQL store is not 16 bytes");
    Id id;
    std::copy(b.begin(), b.end(), id.bytes.begin());
    return id;
}

// PostgreSQL's word that running the transaction again will do becomes
// Conflict, which the policy retries; anything else passes as it is.
template <class F>
auto guarded(F&& f) {
    try {
        return f();
    } catch (const pg::Error& e) {
        if (e.retryable()) throw Conflict(e.what());
        throw;
    }
}

class PostgresStorage;

class PgTxn final : public StorageTxn {
  public:
    PgTxn(pg::Pool& pool, bool write, bool durable_commit, std::function<void(std::uint64_t)> on_commit)
        : lease_(pool.acquire()),
          txn_(*lease_,
               write ? pg::Transaction::Isolation::read_committed : pg::Transaction::Isolation::repeatable_read,
               !write),
          on_commit_(std::move(on_commit)) {
        if (durable_commit) later(kDurableCommit, {});
    }

    void lock_device(const Id& device) { query(kLockDevice, {id_param(device)}); }

    model::RowState load(const EntityDef& e, const Id& row) override {
        if (const auto it = locked_.find({e.tag, row}); it != locked_.end())
            return it->second ? model::RowStore::decode_row(e, codec::bytes_of(*it->second))
                              : model::row_store(e).empty();
        const auto r = query(kLoadRow, {pg::Param::int2(static_cast<std::int16_t>(e.tag)), id_param(row)});
        if (r.rows() == 0) return model::row_store(e).empty();
        return model::RowStore::decode_row(e, codec::bytes_of(r.bytea(0, 0)));
    }

    std::vector<Id> referring(const EntityDef& e, std::string_view field, const Id& target) override {
        const auto r =
            query(kReferring, {pg::Param::int2(static_cast<std::int16_t>(e.tag)),
                               pg::Param::int2(static_cast<std::int16_t>(e.field(field)->tag)), id_param(target)});
        std::vector<Id> out;
        for (int i = 0; i < r.rows(); ++i) out.push_back(id_of(r, i, 0));
        return out;
    }

    DeviceState device(const Id& device) override {
        const auto r = query(kDevice, {id_param(device)});
        if (r.rows() == 0) return {};
        return {r.int64(0, 0), static_cast<std::uint64_t>(r.int64(0, 1)), r.text(0, 2), r.boolean(0, 3)};
    }

    std::int64_t head() override { return query(kHead, {}).int64(0, 0); }

    std::optional<LogEntry> logged(const Id& origin, std::int64_t seq) override {
        const auto r = query(kLogged, {id_param(origin), seq});
        if (r.rows() == 0) return std::nullopt;
        return LogEntry{r.int64(0, 0),  static_cast<std::uint16_t>(r.int64(0, 1)),
                        id_of(r, 0, 2), static_cast<std::uint64_t>(r.int64(0, 3)),
                        origin,         seq,
                        r.bytea(0, 4),  r.bytea(0, 5)};
    }

    void scan(std::int64_t after, std::int64_t upto, const std::vector<std::string>* scopes, std::size_t limit,
              const std::function<bool(const LogEntry&)>& each) override {
        const auto n = static_cast<std::int64_t>(std::min<std::size_t>(limit, INT64_MAX));
        const auto r = scopes ? query(kScanScopes, {pg::Param::bytea_array(*scopes), after, upto, n})
                              : query(kScan, {after, upto, n});
        LogEntry entry;
        for (int i = 0; i < r.rows(); ++i) {
            entry.pos = r.int64(i, 0);
            entry.entity = static_cast<std::uint16_t>(r.int64(i, 1));
            entry.row = id_of(r, i, 2);
            entry.hlc = static_cast<std::uint64_t>(r.int64(i, 3));
            entry.origin = id_of(r, i, 4);
            entry.seq = r.int64(i, 5);
            entry.fields = r.bytea(i, 6);
            entry.scope = r.bytea(i, 7);
            if (!each(entry)) return;
        }
    }

    std::vector<std::string> scopes_written_by(const Id& origin) override {
        const auto r = query(kScopesOf, {id_param(origin)});
        std::vector<std::string> out;
        for (int i = 0; i < r.rows(); ++i) out.push_back(r.bytea(i, 0));
        return out;
    }

    std::vector<Id> rows_in_scope(const std::string& scope) override {
        const auto r = query(kRowsIn, {pg::Param::bytea(scope)});
        std::vector<Id> out;
        for (int i = 0; i < r.rows(); ++i) out.push_back(id_of(r, i, 0));
        return out;
    }

    std::optional<Refusal> refusal(const Id& device, std::int64_t seq) override {
        const auto r = query(kRefusal, {id_param(device), seq});
        if (r.rows() == 0) return std::nullopt;
        return Refusal{static_cast<protocol::ErrorCode>(r.int64(0, 0)), r.text(0, 1)};
    }

    std::optional<Grant> grant(const Id& device, std::int64_t gen) override {
        const auto r = query(kGrant, {id_param(device), gen});
        if (r.rows() == 0) return std::nullopt;
        return grant_of(r, 0, 0);
    }

    std::vector<std::pair<std::int64_t, Grant>> grants(const Id& device) override {
        const auto r = query(kGrants, {id_param(device)});
        std::vector<std::pair<std::int64_t, Grant>> out;
        for (int i = 0; i < r.rows(); ++i) out.emplace_back(r.int64(i, 0), grant_of(r, i, 1));
        return out;
    }

    void lock_rows(std::span<const std::pair<std::uint16_t, Id>> keys) override {
        if (keys.empty()) return;
        std::vector<std::int16_t> entities;
        std::vector<pg::Bytes> ids;
        for (const auto& [entity, id] : keys) {
            entities.push_back(static_cast<std::int16_t>(entity));
            ids.emplace_back(id.bytes.begin(), id.bytes.end());
            locked_[{entity, id}] = std::nullopt;  // absent unless found
        }
        const auto r = query(kLockRows, {pg::Param::int2_array(entities), pg::Param::bytea_array(ids)});
        for (int i = 0; i < r.rows(); ++i)
            locked_[{static_cast<std::uint16_t>(r.int64(i, 0)), id_of(r, i, 1)}] = r.bytea(i, 2);
    }

    void save_rows(std::span<const StagedRow> rows) override {
        if (rows.empty()) return;
        struct Batch {
            std::vector<std::int16_t> entities;
            std::vector<pg::Bytes> ids;
            std::vector<std::string> states;
        } inserts, updates;
        std::vector<std::int16_t> ref_entities, ref_fields;
        std::vector<pg::Bytes> refs, ref_rows;
        for (const auto& r : rows) {
            const EntityDef& e = *r.entity;
            const auto it = locked_.find({e.tag, r.row});
            // A row no lock found is new: inserted, so a concurrent insert
            // of the same row fails one of the two (Conflict), never merges
            // over it unseen.
            Batch& b = it != locked_.end() && it->second ? updates : inserts;
            b.entities.push_back(static_cast<std::int16_t>(e.tag));
            b.ids.emplace_back(r.row.bytes.begin(), r.row.bytes.end());
            b.states.push_back(model::RowStore::encode_row(e, r.state));
            for (std::size_t i = 0; i < e.fields.size(); ++i) {
                const Id* ref = std::get_if<Id>(&r.state.fields[i].value);
                if (e.fields[i].type != FieldType::ref || !ref) continue;
                ref_entities.push_back(static_cast<std::int16_t>(e.tag));
                ref_fields.push_back(static_cast<std::int16_t>(e.fields[i].tag));
                refs.emplace_back(ref->bytes.begin(), ref->bytes.end());
                ref_rows.emplace_back(r.row.bytes.begin(), r.row.bytes.end());
            }
        }
        auto send = [&](const pg::Statement& st, const Batch& b) {
            if (b.ids.empty()) return;
            later(st,
                  {pg::Param::int2_array(b.entities), pg::Param::bytea_array(b.ids), pg::Param::bytea_array(b.states)});
        };
        send(kInsertRows, inserts);
        send(kUpdateRows, updates);
        if (!updates.ids.empty())
            later(kDropRefs, {pg::Param::int2_array(updates.entities), pg::Param::bytea_array(updates.ids)});
        if (!refs.empty())
            later(kInsertRefs, {pg::Param::int2_array(ref_entities), pg::Param::int2_array(ref_fields),
                                pg::Param::bytea_array(refs), pg::Param::bytea_array(ref_rows)});
    }

    void set_device(const Id& device, const DeviceState& state, std::int64_t now_ms) override {
        later(kSetDevice,
              {id_param(device), state.user, state.highest_seq, static_cast<std::int64_t>(state.highest_hlc), now_ms});
    }

    void remember_refusals(const Id& device, std::span<const std::pair<std::int64_t, Refusal>> refused,
                           std::int64_t keep) override {
        std::vector<std::int64_t> seqs;
        std::vector<std::int16_t> codes;
        std::vector<std::string> reasons;
        for (const auto& [seq, r] : refused) {
            seqs.push_back(seq);
            codes.push_back(static_cast<std::int16_t>(r.code));
            reasons.push_back(r.reason);
        }
        later(kRemember, {id_param(device), pg::Param::int8_array(seqs), pg::Param::int2_array(codes),
                          pg::Param::text_array(reasons)});
        later(kTrimRefusals, {id_param(device), keep});
    }

    void forget_refusals(const Id& device, std::int64_t up_to_seq) override {
        later(kForget, {id_param(device), up_to_seq});
    }

    std::int64_t add_grant(const Id& device, const Grant& grant) override {
        return query(kAddGrant, {id_param(device), pg::Param::bytea(encode_scopes(grant.scopes)),
                                 pg::Param::bytea(encode_scopes(grant.backfill)), grant.backfill_to})
            .int64(0, 0);
    }

    void update_grant(const Id& device, std::int64_t gen, const Grant& grant) override {
        later(kUpdateGrant, {id_param(device), gen, pg::Param::bytea(encode_scopes(grant.scopes)),
                             pg::Param::bytea(encode_scopes(grant.backfill))});
    }

    void drop_grants_before(const Id& device, std::int64_t gen) override {
        later(kDropGrants, {id_param(device), gen});
    }

    void append_log(std::span<const LogEntry> entries) override {
        if (entries.empty()) return;
        std::vector<std::int16_t> entities;
        std::vector<pg::Bytes> rows, origins;
        std::vector<std::int64_t> hlcs, seqs;
        std::vector<std::string> fields, scopes;
        std::uint64_t max_hlc = 0;
        for (const auto& e : entries) {
            entities.push_back(static_cast<std::int16_t>(e.entity));
            rows.emplace_back(e.row.bytes.begin(), e.row.bytes.end());
            hlcs.push_back(static_cast<std::int64_t>(e.hlc));
            origins.emplace_back(e.origin.bytes.begin(), e.origin.bytes.end());
            seqs.push_back(e.seq);
            fields.push_back(e.fields);
            scopes.push_back(e.scope);
            max_hlc = std::max(max_hlc, e.hlc);
        }
        later(kAppend, {static_cast<std::int64_t>(entries.size()), static_cast<std::int64_t>(max_hlc),
                        pg::Param::int2_array(entities), pg::Param::bytea_array(rows), pg::Param::int8_array(hlcs),
                        pg::Param::bytea_array(origins), pg::Param::int8_array(seqs), pg::Param::bytea_array(fields),
                        pg::Param::bytea_array(scopes)});
        later(kNotify, {std::to_string(max_hlc)});
        observed_ = std::max(observed_, max_hlc);
    }

    void commit() override {
        guarded([&] {
            flush();
            txn_.commit();
        });
        if (observed_ && on_commit_) on_commit_(observed_);
    }

  private:
    // Reads wait for the writes queued before them.
    pg::Result query(const pg::Statement& st, std::initializer_list<pg::Param> params) {
        return guarded([&] {
            flush();
            return lease_->query(st, params);
        });
    }
    // Writes are queued and sent together, pipelined, before the next read
    // or the commit: one round trip for the tail of a push.
    void later(const pg::Statement& st, std::initializer_list<pg::Param> params) {
        pending_.push_back({&st, std::vector<pg::Param>(params)});
    }
    void flush() {
        if (pending_.empty()) return;
        auto pending = std::move(pending_);
        pending_.clear();
        pg::Pipeline pipeline(*lease_);
        for (const auto& [st, params] : pending) pipeline.send(*st, params);
        pipeline.sync();
    }

    static Grant grant_of(const pg::Result& r, int row, int col) {
        const auto scopes = decode_scopes(codec::bytes_of(r.bytea(row, col)));
        return Grant{{scopes.begin(), scopes.end()},
                     decode_scopes(codec::bytes_of(r.bytea(row, col + 1))),
                     r.int64(row, col + 2)};
    }

    pg::Pool::Lease lease_;
    pg::Transaction txn_;
    std::function<void(std::uint64_t)> on_commit_;
    std::map<std::pair<std::uint16_t, Id>, std::optional<std::string>> locked_;  // state blobs of locked rows
    std::vector<std::pair<const pg::Statement*, std::vector<pg::Param>>> pending_;
    std::uint64_t observed_ = 0;
};

class PostgresStorage final : public Storage {
  public:
    PostgresStorage(const std::string& conninfo, const StoreOptions& options)
        : conninfo_(conninfo),
          pool_(conninfo, pool_options(options)),
          clock_(options.wall_clock_ms ? options.wall_clock_ms : [] {
              return std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                  .count();
          }),
          listener_(conninfo, std::string(kChannel), connect_options(options)) {
        set_up();
        watcher_ = std::thread([this] { watch(); });
    }

    ~PostgresStorage() override {
        stopping_ = true;
        listener_.interrupt();
        watcher_.join();
    }

    Id server_id() override {
        std::lock_guard lock(clock_mutex_);
        return server_id_;
    }

    void renew_server_id() override {
        const Id id = Id::random();
        auto conn = pool_.acquire();
        conn->query("UPDATE lindra_meta SET server_id = $1", {id_param(id)});
        std::lock_guard lock(clock_mutex_);
        server_id_ = id;
    }

    std::uint64_t tick() override {
        std::lock_guard lock(clock_mutex_);
        return clock_.tick();
    }

    std::int64_t wall_ms() override { return clock_.wall_ms(); }

    std::unique_ptr<StorageTxn> write(const Id& device) override {
        return guarded([&] {
            auto txn =
                std::make_unique<PgTxn>(pool_, true, force_durable_, [this](std::uint64_t hlc) { observe(hlc); });
            txn->lock_device(device);
            return txn;
        });
    }

    std::unique_ptr<StorageTxn> read() override {
        return guarded([&] { return std::make_unique<PgTxn>(pool_, false, false, nullptr); });
    }

  private:
    static pg::PoolOptions pool_options(const StoreOptions& options) {
        pg::PoolOptions o;
        o.size = options.pool_size ? options.pool_size : 2 * std::max(1u, std::thread::hardware_concurrency()) + 2;
        o.connect = connect_options(options);
        return o;
    }
    static pg::ConnectOptions connect_options(const StoreOptions& options) {
        pg::ConnectOptions o;
        o.statement_timeout = options.statement_timeout;
        o.idle_in_transaction_timeout = options.idle_in_transaction_timeout;
        return o;
    }

    // The schema, created or checked at start, under an advisory lock so
    // servers starting together take turns.
    void set_up() {
        auto conn = pool_.acquire();
        pg::Transaction txn(*conn);
        conn->exec("SELECT pg_advisory_xact_lock(7405392)");  // "lindra" on a phone keypad, more or less
        const bool fresh = conn->exec("SELECT to_regclass('lindra_meta') IS NULL").boolean(0, 0);
        if (!fresh) {
            const auto r = conn->exec("SELECT schema_version, server_id FROM lindra_meta");
            if (r.rows() != 1) throw Error(Errc::corrupt, "PostgreSQL " + conn->target() + ": lindra_meta has no row");
            const auto version = r.int64(0, 0);
            if (version > kSchemaVersion)
                throw Error(Errc::schema_too_new,
                            "PostgreSQL " + conn->target() + " holds a lindra store of schema version " +
                                std::to_string(version) + ", newer than this lindra-server knows (" +
                                std::to_string(kSchemaVersion) + "): run the newer lindra-server");
            server_id_ = id_of(r, 0, 1);
        }
        conn->exec(kSchema);  // every statement IF NOT EXISTS: migrations add theirs here
        if (fresh) {
            server_id_ = Id::random();
            conn->query("INSERT INTO lindra_meta (schema_version, server_id) VALUES ($1, $2)",
                        {kSchemaVersion, id_param(server_id_)});
        }
        observe(static_cast<std::uint64_t>(conn->query(kHead, {}).int64(0, 1)));
        // A PostgreSQL crash must not take back a commit lindra has
        // acknowledged: with synchronous_commit off, pushes turn it on for
        // themselves (a stronger setting, say remote_apply, is kept).
        force_durable_ = conn->exec("SHOW synchronous_commit").text(0, 0) == "off";
        if (force_durable_)
            detail::log(LogLevel::warning, "server",
                        "PostgreSQL runs with synchronous_commit off; lindra's pushes turn it on for themselves");
        txn.commit();
    }

    void observe(std::uint64_t hlc) {
        std::lock_guard lock(clock_mutex_);
        clock_.observe(hlc);
    }

    // Other servers' pushes move this one's clock past their stamps: woken
    // by their notifications, and every second or two without, since a
    // notification is lost with a dropped connection.
    void watch() {
        while (!stopping_) {
            if (listener_.wait(std::chrono::milliseconds(1500)) == pg::Listener::Wake::interrupted) continue;
            try {
                auto conn = pool_.acquire();
                observe(static_cast<std::uint64_t>(conn->query(kHead, {}).int64(0, 1)));
            } catch (const Error& e) {
                detail::log(LogLevel::warning, "server", std::string("PostgreSQL head poll failed: ") + e.what());
            }
        }
    }

    const std::string conninfo_;
    pg::Pool pool_;
    Id server_id_;                // guarded by clock_mutex_ once set_up() is done
    bool force_durable_ = false;  // set by set_up()
    std::mutex clock_mutex_;
    replica::HybridClock clock_;  // guarded by clock_mutex_
    pg::Listener listener_;
    std::atomic<bool> stopping_ = false;
    std::thread watcher_;
};

}  // namespace

std::unique_ptr<Storage> open_postgres_storage(const std::string& conninfo, const StoreOptions& options) {
    return std::make_unique<PostgresStorage>(conninfo, options);
}

}  // namespace lindra::server
