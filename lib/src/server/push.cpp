// A push, in one straight pass (DESIGN §6): decode (the session did),
// validate, stage (merge each change into its row once), authorize on (row
// before, row after), then commit the accepted ones with their log entries
// and the device's new highest seq. Written once, over the storage
// primitives.
#include "server/store.hpp"

#include "core/codec.hpp"
#include "replica/core.hpp"
#include "replica/hlc.hpp"
#include "server/access.hpp"
#include "server/certificates.hpp"
#include "server/grants.hpp"

#include <algorithm>
#include <map>

namespace lindra::server {
namespace {

using detail::Core;

// The store's rows with the rows this push has staged over them: every
// entry, and the access rules, see the entries before it.
class Staging final : public RowSource {
  public:
    explicit Staging(StorageTxn& txn) : txn_(txn) {}

    model::RowState load(const EntityDef& e, const Id& row) override {
        const auto it = index_.find({e.tag, row});
        return it == index_.end() ? txn_.load(e, row) : rows_[it->second].state;
    }
    std::vector<Id> referring(const EntityDef& e, std::string_view field, const Id& target) override {
        auto ids = txn_.referring(e, field, target);
        const auto& f = *e.field(field);
        for (const auto& r : rows_)
            if (r.entity == &e && r.state.fields[e.index_of(f)].value == Value{target} &&
                std::find(ids.begin(), ids.end(), r.row) == ids.end())
                ids.push_back(r.row);
        return ids;
    }
    void stage(const EntityDef& e, const Id& row, model::RowState state) {
        const auto [it, added] = index_.try_emplace({e.tag, row}, rows_.size());
        if (added)
            rows_.push_back({&e, row, std::move(state)});
        else
            rows_[it->second].state = std::move(state);
    }
    std::span<const StagedRow> rows() const { return rows_; }

  private:
    StorageTxn& txn_;
    std::map<std::pair<std::uint16_t, Id>, std::size_t> index_;
    std::vector<StagedRow> rows_;
};

// Why `entry` may not be applied to its row, whose state as `who` may know
// it is `seen`; or nothing, with the row after the entry (merged once) and
// the scope it will be in. Every check runs before anything is authorized
// or stored: the values first, then the clock, then the merge with its
// identity checks, then the access rules on (seen, after).
std::optional<Refusal> judge(Access& access, const EntityDef& e, const model::RowState& seen,
                             const protocol::Entry& entry, std::int64_t now, const StoreOptions& options,
                             model::RowState& after, bool& changed, std::string& scope) {
    const Change& first = entry.changes.front();
    std::vector<const Change*> changes;
    try {
        for (const auto& c : entry.changes) {
            Core::check(c, model::Quote::none);
            if (c.field == e.fields.front().tag && c.value == Value{std::int64_t{1}}) model::check_deletable(e);
            changes.push_back(&c);
        }
    } catch (const Error& error) {
        return Refusal{protocol::ErrorCode::invalid_argument, error.what()};
    }
    // A revocation is carried out by the issuer (certify): a server without
    // one would log it and never mark the certificate, which would go on
    // verifying as valid everywhere.
    if (!options.issuer && e.name == "revocation")
        return Refusal{protocol::ErrorCode::invalid_argument,
                       "this server issues no certificates (it has no issuer key), so it cannot revoke one;"
                       " ask the server's operator"};
    const auto ahead_ms = static_cast<std::int64_t>(replica::hlc_ms(first.hlc)) - now;
    if (ahead_ms > options.max_clock_ahead.count())
        return Refusal{protocol::ErrorCode::invalid_argument,
                       "stamped " + std::to_string(ahead_ms / 1000) +
                           " s ahead of the server's clock; check the device's date and time"};
    try {
        after = Core::merge_checked(e, first.row, seen, changes, changed);
    } catch (const Error& error) {
        if (error.storage_failure()) throw;
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

// A refused entry, with the server's state of the fields it set if the
// user may read the row, or word to drop it.
protocol::Rejected rejected(Access& access, const EntityDef& e, const model::RowState& row,
                            const protocol::Entry& entry, Refusal refusal, ScopeSet& refill) {
    const Id& id = entry.changes.front().row;
    protocol::Rejected r{entry.seq, refusal.code, std::move(refusal.reason), e.tag, id};
    for (const auto& c : entry.changes)
        if (std::find(r.fields.begin(), r.fields.end(), c.field) == r.fields.end()) r.fields.push_back(c.field);
    const std::string scope = row.exists ? scope_of(e, id, row) : std::string();
    const bool visible = row.exists && access.may_read(scope);
    if (visible)
        r.current = Core::field_changes(e, id, row, r.fields);
    else
        r.drop_row = true;
    // The device drops a row the server has: should its user see the scope
    // again before it is purged, the scope is backfilled anew.
    if (row.exists && !visible) refill.insert(scope);
    return r;
}

// Whether `logged` is `entry`, a retried seq of the device: the same row,
// hlc and values (copies of one file share their clock, so the hlc alone
// can match). Throws if it is another change.
void check_same(const LogEntry& logged, const protocol::Entry& entry) {
    const Change& first = entry.changes.front();
    if (logged.entity == first.entity && logged.row == first.row && logged.hlc == first.hlc &&
        logged.fields == codec::encode_fields(entry.changes))
        return;
    throw Error(Errc::invalid_argument, "seq " + std::to_string(entry.seq) +
                                            " from this device already holds another change: two devices share one id"
                                            " (was this database file copied from another tablet?)");
}

void stage(Staging& rows, ServerWrites& server, std::vector<LogEntry>& log) {
    for (auto& w : server.writes()) {
        rows.stage(*w.row.entity, w.row.row, std::move(w.row.state));
        log.push_back(std::move(w.entry));
    }
}

}  // namespace

ServerStore::ServerStore(std::unique_ptr<Storage> storage, StoreOptions options)
    : storage_(std::move(storage)), options_(std::move(options)) {
    if (options_.issuer) publish(*options_.issuer);
}

void ServerStore::set_issuer(std::shared_ptr<const Issuer> issuer) {
    if (issuer) publish(*issuer);
    std::lock_guard lock(options_mutex_);
    options_.issuer = std::move(issuer);
}

StoreOptions ServerStore::options() const {
    std::lock_guard lock(options_mutex_);
    return options_;
}

bool ServerStore::reachable() noexcept {
    try {
        storage_->read()->head();
        return true;
    } catch (...) {
        return false;
    }
}

void ServerStore::publish(const Issuer& issuer) {
    // The issuer's public keys and its status list, for every tablet.
    retrying([&] {
        const Id server = storage_->server_id();
        auto txn = storage_->write(server);
        Staging rows(*txn);
        ServerWrites writes(rows, server, [this] { return storage_->tick(); });
        publish_issuer(*txn, rows, issuer, storage_->wall_ms(), writes);
        if (writes.writes().empty()) return;
        std::vector<LogEntry> log;
        stage(rows, writes, log);
        txn->save_rows(rows.rows());
        txn->append_log(log);
        txn->commit();
    });
}

DeviceState ServerStore::device(const Id& device) {
    return storage_->read()->device(device);
}

void ServerStore::forget_refusals(const Id& device, std::int64_t seq) {
    if (!storage_->read()->device(device).has_refusals) return;  // the common case: no write at all
    auto txn = storage_->write(device);
    txn->forget_refusals(device, seq);
    txn->commit();
}

PushOutcome ServerStore::push(const Id& device, const Identity& who, std::span<const protocol::Entry> entries) {
    return retrying([&] { return push_once(device, who, entries); });
}

PushOutcome ServerStore::push_once(const Id& device, const Identity& who, std::span<const protocol::Entry> entries) {
    const StoreOptions opts = options();
    auto txn = storage_->write(device);
    Staging rows(*txn);
    Access access(rows, who);
    {
        std::vector<std::pair<std::uint16_t, Id>> keys;
        for (const auto& entry : entries)
            if (!entry.changes.empty()) keys.emplace_back(entry.changes.front().entity, entry.changes.front().row);
        std::sort(keys.begin(), keys.end());
        keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
        txn->lock_rows(keys);
    }
    const DeviceState before = txn->device(device);
    PushOutcome out;
    DeviceState after = before;
    after.user = who.user;
    // The wall clock, not the HLC: every accepted change moves the HLC
    // forward, and the bound would move with it.
    const std::int64_t now = storage_->wall_ms();
    std::vector<LogEntry> log;
    std::vector<std::pair<std::int64_t, Refusal>> refused;
    ScopeSet written;  // the scopes of the entries applied
    ScopeSet refill;   // scopes of rows the device is told to drop
    for (const auto& entry : entries) {
        if (entry.changes.empty()) continue;
        const Change& first = entry.changes.front();
        const EntityDef& e = *find_entity(first.entity);  // the decoder checked it
        if (entry.seq <= before.highest_seq) {
            // A retry: acknowledged again if it was applied, refused again
            // if it was refused, with the row as it is now; judged anew if
            // its refusal was forgotten (beyond kRefusalsKept), never
            // acknowledged unjudged.
            if (const auto logged = txn->logged(device, entry.seq)) {
                check_same(*logged, entry);
                continue;
            }
            if (auto r = txn->refusal(device, entry.seq)) {
                out.rejected.push_back(rejected(access, e, rows.load(e, first.row), entry, std::move(*r), refill));
                continue;
            }
        } else {
            after.highest_seq = entry.seq;
            after.highest_hlc = first.hlc;
        }
        const auto row = rows.load(e, first.row);
        // A row the user may not read is judged as if it did not exist, so
        // the answer cannot tell them that it does (docs/decisions.md,
        // "Refusals reveal nothing").
        const bool visible = !row.exists || access.may_read(scope_of(e, first.row, row));
        model::RowState merged;
        bool changed = false;
        std::string scope;
        auto refusal =
            judge(access, e, visible ? row : model::row_store(e).empty(), entry, now, opts, merged, changed, scope);
        if (!refusal && !visible)
            refusal = {protocol::ErrorCode::permission_denied, "may not write this " + std::string(e.name) + " row"};
        if (refusal) {
            refused.emplace_back(entry.seq, *refusal);
            out.rejected.push_back(rejected(access, e, row, entry, std::move(*refusal), refill));
            continue;
        }
        if (changed) rows.stage(e, first.row, std::move(merged));
        log.push_back({0, first.entity, first.row, first.hlc, first.origin, entry.seq,
                       codec::encode_fields(entry.changes), std::move(scope)});
        out.applied_changes += entry.changes.size();
        written.insert(log.back().scope);
    }
    if (opts.issuer && !log.empty()) {
        // The certificates these entries complete, in this transaction.
        ServerWrites server(rows, storage_->server_id(), [this] { return storage_->tick(); });
        out.certificates_issued = certify(*txn, rows, rows.rows(), *opts.issuer, now, server);
        stage(rows, server, log);
    }
    txn->save_rows(rows.rows());
    if (!access.reads_everything()) hold(*txn, device, written, refill);
    // A retry can only follow the last PushAcks lost with a connection;
    // beyond that, memory per device stays bounded.
    if (!refused.empty()) txn->remember_refusals(device, refused, kRefusalsKept);
    if (after.highest_seq != before.highest_seq) txn->set_device(device, after, now);
    txn->append_log(log);  // last: positions in commit order
    txn->commit();
    out.acked_seq = after.highest_seq;
    return out;
}

std::unique_ptr<ServerStore> open_sqlite_store(const std::string& path, const StoreOptions& options) {
    return std::make_unique<ServerStore>(open_sqlite_storage(path, options), options);
}

std::unique_ptr<ServerStore> open_store(const std::string& db, const StoreOptions& options) {
    if (is_postgres(db)) return std::make_unique<ServerStore>(open_postgres_storage(db, options), options);
    return open_sqlite_store(db, options);
}

}  // namespace lindra::server
