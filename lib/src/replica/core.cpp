#include "replica/core.hpp"

#include "core/codec.hpp"
#include "core/log.hpp"
#include "model/ddl.hpp"
#include "model/merge.hpp"
#include "model/validate.hpp"
#include "store/migrations.hpp"

#include <algorithm>
#include <exception>
#include <map>
#include <tuple>

namespace lindra::detail {
namespace {

using model::Clock;

// Library tables; the domain tables come from the schema table.
constexpr std::string_view kLibraryTablesV1 = R"sql(
CREATE TABLE lindra_replica (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    device_id BLOB NOT NULL CHECK (length(device_id) = 16),
    hlc INTEGER NOT NULL,        -- highest hlc issued or seen, besides the outbox's
    acked_seq INTEGER NOT NULL,  -- highest outbox seq the server acknowledged
    created_at INTEGER NOT NULL
);
CREATE TABLE lindra_outbox (
    seq INTEGER PRIMARY KEY,     -- never reused: continues above acked_seq
    entity INTEGER NOT NULL,
    row_id BLOB NOT NULL,
    hlc INTEGER NOT NULL,
    fields BLOB NOT NULL         -- (field tag, value) pairs, codec.hpp
);
)sql";

// v2: what sync keeps: the pull cursor (stored with each applied batch)
// and the server it belongs to.
constexpr std::string_view kLibraryTablesV2 = R"sql(
ALTER TABLE lindra_replica ADD COLUMN pull_cursor BLOB NOT NULL DEFAULT x'';
ALTER TABLE lindra_replica ADD COLUMN server_id BLOB;
ALTER TABLE lindra_replica ADD COLUMN pull_own INTEGER NOT NULL DEFAULT 0;  -- lost own changes: pull them back
)sql";

// v3: writes of this device the server refused, or that a purge discarded
// with their row: what the user typed, kept until the app dismisses it
// (RefusedWrite). Never synced, and never purged with a scope: the user
// wrote them on this device, and the file is this user's alone.
constexpr std::string_view kLibraryTablesV3 = R"sql(
CREATE TABLE lindra_refused_write (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: an app's old id never names a newer write
    seq INTEGER NOT NULL,        -- the outbox entry's, with its entity, row_id, hlc and fields
    entity INTEGER NOT NULL,
    row_id BLOB NOT NULL,
    hlc INTEGER NOT NULL,
    fields BLOB NOT NULL,
    code TEXT NOT NULL,          -- the refusal, as SyncRejection has it
    reason TEXT NOT NULL,
    refused_at INTEGER NOT NULL  -- ms since the epoch, by this device's wall clock
);
)sql";

void create_domain_tables(store::Database& db, std::uint16_t schema) {
    for (const auto& sql : model::domain_ddl(schema)) db.exec(sql);
}

}  // namespace

// Store versions (PRAGMA user_version). A new data-model version in the
// schema table gets a step here that calls create_domain_tables with it.
std::span<const store::Migration> replica_migrations() {
    static const std::vector<store::Migration> steps = {
        {1,
         [](store::Database& db) {
             db.exec(kLibraryTablesV1);
             create_domain_tables(db, 1);
         }},
        {2, [](store::Database& db) { db.exec(kLibraryTablesV2); }},
        {3, [](store::Database& db) { db.exec(kLibraryTablesV3); }},
    };
    return steps;
}

namespace {

constexpr std::string_view kRefusedColumns = "id, seq, entity, row_id, hlc, fields, code, reason, refused_at";

// A row of lindra_refused_write, its columns in kRefusedColumns' order.
RefusedWrite refused_write(const store::Statement& st) {
    RefusedWrite out;
    out.id = st.int64(0);
    out.seq = st.int64(1);
    const EntityDef* e = find_entity(static_cast<std::uint16_t>(st.int64(2)));
    if (!e) throw Error(Errc::corrupt, "a refused write of unknown entity tag " + std::to_string(st.int64(2)));
    out.entity = std::string(e->name);
    out.row = st.id(3);
    out.written_at = static_cast<Timestamp>(replica::hlc_ms(static_cast<std::uint64_t>(st.int64(4))));
    std::vector<Change> changes;
    codec::decode_fields(st.blob(5), {e->tag, out.row, 0, {}, 0, {}}, changes);
    for (auto& c : changes) {
        const FieldDef* f = e->field(c.field);
        if (!f) throw Error(Errc::corrupt, std::string(e->name) + ": a refused write of unknown field tag " +
                                               std::to_string(c.field));
        out.values.push_back({f->name, std::move(c.value)});
    }
    out.code = st.text(6);
    out.reason = st.text(7);
    out.refused_at = st.int64(8);
    return out;
}

}  // namespace

const EntityDef& entity(std::string_view name) {
    const auto* e = find_entity(name);
    if (!e) throw Error(Errc::unknown_entity, "unknown entity \"" + std::string(name) + "\"");
    return *e;
}

const FieldDef& field(const EntityDef& e, std::string_view name) {
    const auto* f = e.field(name);
    if (!f)
        throw Error(Errc::unknown_field, std::string(e.name) + " has no field \"" + std::string(name) + "\"", 0,
                    std::string(e.name) + "." + std::string(name));
    return *f;
}

Core::Core(const std::string& path, const ReplicaOptions& options, bool durable_commits)
    : db(path, store::OpenOptions{options.busy_timeout_ms, durable_commits, "lindra_replica"}),
      clock(options.wall_clock_ms) {
    store::migrate(db, replica_migrations());
    store::Transaction txn(db);
    auto st = db.prepare("SELECT device_id FROM lindra_replica");
    const bool created = !st.step();
    if (!created) {
        device = st.id(0);
    } else {
        device = Id::random();
        db.prepare("INSERT INTO lindra_replica (singleton, device_id, hlc, acked_seq, created_at) VALUES (1, ?, 0, 0, ?)")
            .bind(1, device)
            .bind(2, static_cast<std::int64_t>(replica::hlc_ms(clock.tick())))
            .run();
    }
    reload_counters();
    txn.commit();
    if (created && detail::log_enabled(LogLevel::info))
        detail::log(LogLevel::info, "replica", "new replica, device " + device.to_string());
}

Core::WriteTransaction::WriteTransaction(Core& core) : core_(core), txn_(core.db) {
    core.failed_midway_ = false;
    if (core.known_version_ != core.db.data_version()) core.reload_counters();
}

Core::WriteTransaction::~WriteTransaction() {
    // A rolled-back write may have advanced next_seq_ and the clock in memory.
    if (!committed_) core_.known_version_.reset();
}

void Core::WriteTransaction::commit() {
    core_.check_writable();
    txn_.commit();
    committed_ = true;
    core_.known_version_ = core_.db.data_version();
}

void Core::reload_counters() {
    auto st = db.cached(
        "SELECT hlc, acked_seq, (SELECT max(seq) FROM lindra_outbox),"
        " (SELECT hlc FROM lindra_outbox ORDER BY seq DESC LIMIT 1) FROM lindra_replica");
    if (!st->step()) throw Error(Errc::corrupt, db.path() + " has no replica state");
    // Set, not only raised: what the file holds is the clock, and another
    // connection may have brought back a clock that ran ahead of the
    // server's (adopt_server_time).
    clock.rewind(std::max(static_cast<std::uint64_t>(st->int64(0)), static_cast<std::uint64_t>(st->int64(3))));
    next_seq_ = std::max(st->int64(1), st->int64(2)) + 1;
}

void Core::persist_clock(std::uint64_t hlc) {
    db.cached("UPDATE lindra_replica SET hlc = max(hlc, ?)")->bind(1, static_cast<std::int64_t>(hlc)).run();
}

void Core::check_writable() const {
    if (!db.in_transaction()) throw Error(Errc::storage, "lindra wrote outside a transaction; nothing was written");
    if (failed_midway_)
        throw Error(Errc::storage, "a write of this transaction failed half way; the transaction is rolled back");
}

class Core::Mutation {
  public:
    explicit Mutation(Core& core) : core_(core), exceptions_(std::uncaught_exceptions()) {}
    ~Mutation() {
        if (std::uncaught_exceptions() > exceptions_) core_.failed_midway_ = true;
    }

  private:
    Core& core_;
    int exceptions_;
};

Id Core::new_row_id(const EntityDef& e, std::span<const Intent> intents) const {
    if (!e.derived_id) return Id::random();
    // Derived ids hash the key fields in schema order: ids every device agrees on.
    std::vector<Id> keys;
    for (const auto& f : e.fields) {
        if (!f.key) continue;
        const auto it =
            std::find_if(intents.begin(), intents.end(), [&](const Intent& i) { return i.field == f.name; });
        const Id* id = it == intents.end() ? nullptr : std::get_if<Id>(&it->value);
        if (!id) throw model::field_error(Errc::invalid_argument, e, f, "required to create a row");
        keys.push_back(*id);
    }
    return Id::derive(e.name, keys);
}

void Core::check_key_change(const EntityDef& e, const FieldDef& f, const model::FieldState& current,
                            const Value& incoming) {
    // The group and person that scope a row decide who may read it: moving
    // the row would show it to others, so they are fixed like keys.
    const bool scoping = f.name == e.group_field || f.name == e.person_field;
    if ((!f.key && !scoping) || std::holds_alternative<std::monostate>(current.value) || current.value == incoming)
        return;
    throw model::field_error(Errc::invalid_argument, e, f,
                             f.key ? "part of the row's identity, cannot change" : "decides who may see the row, cannot change");
}

void Core::check_identity(const EntityDef& e, const Id& row, const model::RowState& st) {
    if (!e.derived_id) return;
    std::vector<Id> keys;
    for (std::size_t i = 0; i < e.fields.size(); ++i) {
        if (!e.fields[i].key) continue;
        const Id* id = std::get_if<Id>(&st.fields[i].value);
        // Changes may arrive in any batching, so the other keys may come
        // later; the server refuses a push that creates a row without all
        // of them (docs/decisions.md).
        if (!id) return;
        keys.push_back(*id);
    }
    if (Id::derive(e.name, keys) != row)
        throw Error(Errc::invalid_argument,
                    std::string(e.name) + " " + row.to_string() + ": the id does not match the row's key fields");
}

void Core::write(const EntityDef& e, const Id& row, std::span<const Intent> intents) {
    check_writable();
    if (row.is_nil()) throw Error(Errc::invalid_argument, std::string(e.name) + ": the nil id does not name a row");
    // Everything is checked before anything is touched.
    std::vector<std::pair<const FieldDef*, const Intent*>> resolved;
    resolved.reserve(intents.size());
    for (const auto& in : intents) {
        const FieldDef& f = field(e, in.field);
        auto fail = [&](const char* why) { throw model::field_error(Errc::invalid_argument, e, f, why); };
        if ((f.rule == MergeRule::counter) != (in.op == Intent::Op::add))
            fail(in.op == Intent::Op::add ? "only counters can be added to" : "a counter can only be added to");
        if (in.op == Intent::Op::advance && f.type != FieldType::progress) fail("only progress can advance");
        if (f.rule == MergeRule::tombstone && in.value != Value{std::int64_t{1}}) fail("a deleted row cannot be restored");
        for (const auto& [g, _] : resolved)
            if (g == &f) fail("given twice");
        // An advance gives a status rank; validate it as progress of attempt 0.
        model::validate(e, f, in.value);
        resolved.emplace_back(&f, &in);
    }

    model::RowState st = load(e, row);
    if (!st.exists) {
        for (const auto& f : e.fields) {
            const bool given = std::any_of(resolved.begin(), resolved.end(), [&](auto& r) { return r.first == &f; });
            if (model::required_on_create(f) && !given)
                throw model::field_error(Errc::invalid_argument, e, f, "required to create a row");
        }
    } else if (st.fields[0].value == Value{std::int64_t{1}}) {
        throw Error(Errc::not_found, std::string(e.name) + " " + row.to_string() + " was deleted");
    }

    // Whatever the row holds, this write is newer: a clock from a peer whose
    // time is ahead must not make a local edit lose silently.
    for (const auto& fs : st.fields) clock.observe(fs.clock.hlc);
    const Clock clock_now{clock.tick(), device};
    codec::Writer payload;
    bool keys_set = false;
    for (const auto& [f, in] : resolved) {
        auto& fs = st.fields[e.index_of(*f)];
        Value v = in->value;
        if (in->op == Intent::Op::advance) {
            const auto attempt = std::max<std::int64_t>(progress_attempt(std::get<std::int64_t>(fs.value)), 1);
            v = progress_value(attempt, progress_rank(std::get<std::int64_t>(v)));
        } else if (in->op == Intent::Op::add) {
            std::int64_t own = 0;
            for (const auto& [o, t] : fs.totals)
                if (o == device) own = t;
            const auto total = own + std::get<std::int64_t>(v);
            if (total > f->max)
                throw model::field_error(Errc::out_of_range, e, *f, "total would exceed " + std::to_string(f->max));
            v = total;
        }
        check_key_change(e, *f, fs, v);
        if (f->key && !std::holds_alternative<std::monostate>(fs.value)) continue;  // same identity: nothing to send
        if (model::merge_field(*f, fs, v, clock_now)) {
            payload.varint(f->tag);
            payload.value(v);
            keys_set |= f->key;
        }
    }
    if (payload.data().empty()) return;
    if (keys_set) check_identity(e, row, st);

    const Mutation mutation(*this);
    model::row_store(e).save(db, row, st);
    db.cached("INSERT INTO lindra_outbox (seq, entity, row_id, hlc, fields) VALUES (?, ?, ?, ?, ?)")
        ->bind(1, next_seq_)
        .bind(2, e.tag)
        .bind(3, row)
        .bind(4, static_cast<std::int64_t>(clock_now.hlc))
        .bind(5, codec::bytes_of(payload.data()))
        .run();
    ++next_seq_;
}

const EntityDef& Core::check(const Change& c, model::Quote quote) {
    const auto* e = find_entity(c.entity);
    if (!e) throw Error(Errc::unknown_entity, "change for unknown entity tag " + std::to_string(c.entity));
    const auto* f = e->field(c.field);
    if (!f) throw Error(Errc::unknown_field, std::string(e->name) + " has no field with tag " + std::to_string(c.field));
    model::validate(*e, *f, c.value, quote);
    if (c.row.is_nil() || c.origin.is_nil() || c.hlc == 0 || c.hlc > replica::kHlcMax)
        throw model::field_error(Errc::invalid_argument, *e, *f,
                                 "the change lacks a row id or origin, or its hlc is 0 or above 2^63");
    return *e;
}

void Core::apply(std::span<const Change> changes) {
    check_writable();
    // Validate the whole batch first: a bad change rejects all of it.
    std::map<std::pair<std::uint16_t, Id>, std::vector<const Change*>> by_row;
    std::uint64_t max_hlc = 0;
    for (const auto& c : changes) {
        check(c);
        by_row[{c.entity, c.row}].push_back(&c);
        max_hlc = std::max(max_hlc, c.hlc);
    }
    // Merge into copies first: a change that would move a row's identity
    // throws before anything is saved, so the transaction stays usable.
    std::vector<std::tuple<const EntityDef*, Id, model::RowState>> merged;
    for (const auto& [key, row_changes] : by_row) {
        const EntityDef& e = *find_entity(key.first);
        model::RowState st = load(e, key.second);
        bool changed = false, keys_set = false;
        for (const Change* c : row_changes) {
            const FieldDef& f = *e.field(c->field);
            auto& fs = st.fields[e.index_of(f)];
            check_key_change(e, f, fs, c->value);
            const bool did = model::merge_field(f, fs, c->value, Clock{c->hlc, c->origin});
            changed |= did;
            keys_set |= did && f.key;
        }
        if (!changed) continue;
        if (keys_set) check_identity(e, key.second, st);
        merged.emplace_back(&e, key.second, std::move(st));
    }
    const Mutation mutation(*this);
    for (const auto& [e, row, st] : merged) model::row_store(*e).save(db, row, st);
    // Persisted even if the in-memory clock is already there: it may be
    // ahead of the file after an earlier attempt rolled back.
    if (max_hlc) {
        clock.observe(max_hlc);
        persist_clock(max_hlc);
    }
}

Value Core::get(const EntityDef& e, const Id& row, std::string_view name) {
    const FieldDef& f = field(e, name);
    if (f.type == FieldType::progress) {
        const auto st = load(e, row);
        return st.exists ? st.fields[e.index_of(f)].value : Value{};
    }
    auto st = db.cached("SELECT " + std::string(f.name) + " FROM " + std::string(e.name) + " WHERE id = ?");
    st->bind(1, row);
    return st->step() ? st->value(0) : Value{};
}

PullState Core::pull_state() {
    auto st = db.cached("SELECT pull_cursor, pull_own, acked_seq FROM lindra_replica");
    if (!st->step()) throw Error(Errc::corrupt, db.path() + " has no replica state");
    const auto b = st->blob(0);
    return {{reinterpret_cast<const char*>(b.data()), b.size()}, st->int64(1) != 0, st->int64(2)};
}

void Core::apply_pulled(std::span<const Change> changes, std::string_view next_cursor, bool complete) {
    apply(changes);
    // Once a pull has reached the head, the device has its own changes back.
    db.cached("UPDATE lindra_replica SET pull_cursor = ?, pull_own = pull_own AND NOT ?")
        ->bind(1, codec::bytes_of(next_cursor))
        .bind(2, std::int64_t{complete})
        .run();
}

void Core::adopt_server(const Id& server_id) {
    check_writable();
    bool same = false;
    {
        auto st = db.cached("SELECT server_id FROM lindra_replica");
        st->step();
        same = !st->is_null(0) && st->id(0) == server_id;
    }
    if (same) return;
    // Another server (or the first one): its cursor positions mean nothing
    // here, so pull everything; merging what is already here is a no-op.
    db.cached("UPDATE lindra_replica SET server_id = ?, pull_cursor = x''")->bind(1, server_id).run();
}

void Core::skip_ahead(std::int64_t server_highest, std::uint64_t server_highest_hlc) {
    check_writable();
    std::int64_t acked = 0;
    {
        auto st = db.cached("SELECT acked_seq FROM lindra_replica");
        st->step();
        acked = st->int64(0);
    }
    if (server_highest <= acked) return;
    // Our entry with the server's highest seq: the same change (a lost
    // PushAck: the retry is acknowledged) or another one (this file lost
    // commits or was restored from a backup, and reused seqs).
    std::optional<std::uint64_t> local_hlc;
    {
        auto st = db.cached("SELECT hlc FROM lindra_outbox WHERE seq = ?");
        st->bind(1, server_highest);
        if (st->step()) local_hlc = static_cast<std::uint64_t>(st->int64(0));
    }
    const bool behind = next_seq_ - 1 < server_highest;
    if (local_hlc == server_highest_hlc && !behind) return;
    if (!local_hlc && !behind) return;  // acknowledged and trimmed here already
    // Move every pending entry above the server's seq. Re-sending a change
    // the server already has is harmless (merging is idempotent); taking a
    // new change for a duplicate would lose it. Two steps: the primary key
    // must stay unique during the update.
    const Mutation mutation(*this);
    db.cached("UPDATE lindra_outbox SET seq = -(seq + ?)")->bind(1, server_highest).run();
    db.cached("UPDATE lindra_outbox SET seq = -seq")->run();
    db.cached("UPDATE lindra_replica SET acked_seq = ?, pull_own = 1")->bind(1, server_highest).run();
    reload_counters();
}

std::uint64_t Core::adopt_server_time(std::uint64_t server_hlc, std::int64_t server_highest) {
    check_writable();
    server_hlc = std::min(server_hlc, replica::kHlcMax);
    // The file's clock may be ahead of the server's time by the stamps of
    // entries this device pushed in a round the server never applied (a
    // few ticks): those stamps stay taken, so an entry the server may yet
    // receive is never pushed again with another. More than that is a clock
    // that ran ahead (an older lindra stored the clock of writes the server
    // refused), and it comes back.
    constexpr std::uint64_t kSentSlack = replica::hlc_make(1'000, 0);
    std::uint64_t stored = 0;
    {
        auto st = db.cached("SELECT hlc FROM lindra_replica");
        st->step();
        stored = static_cast<std::uint64_t>(st->int64(0));
    }
    const std::uint64_t ceiling = stored > server_hlc && stored - server_hlc <= kSentSlack ? stored : server_hlc;
    const Mutation mutation(*this);
    db.cached("UPDATE lindra_replica SET hlc = ?")->bind(1, static_cast<std::int64_t>(ceiling)).run();
    return restamp(ceiling, server_highest);
}

std::uint64_t Core::restamp(std::uint64_t ceiling, std::int64_t after_seq) {
    check_writable();
    ceiling = std::min(ceiling, replica::kHlcMax);
    std::vector<OutboxEntry> ahead;
    {
        // Stamps grow with seqs, so this is the entries stamped above the
        // ceiling; taking all after the first keeps their order in any case.
        auto st = db.cached(
            "SELECT seq, entity, row_id, hlc, fields FROM lindra_outbox WHERE seq >="
            " (SELECT min(seq) FROM lindra_outbox WHERE seq > ? AND hlc > ?) ORDER BY seq");
        st->bind(1, after_seq).bind(2, static_cast<std::int64_t>(ceiling));
        while (st->step()) {
            OutboxEntry& e = ahead.emplace_back(OutboxEntry{st->int64(0), {}});
            codec::decode_fields(st->blob(4),
                                 {static_cast<std::uint16_t>(st->int64(1)), st->id(2), 0, {},
                                  static_cast<std::uint64_t>(st->int64(3)), device},
                                 e.changes);
        }
    }
    if (!ahead.empty() && replica::kHlcMax - ceiling < ahead.size())
        throw Error(Errc::invalid_argument, "the server's clock is too far ahead to stamp this device's changes after it");
    const Mutation mutation(*this);
    std::uint64_t stamp = ceiling;
    for (const auto& entry : ahead) {
        ++stamp;
        db.cached("UPDATE lindra_outbox SET hlc = ? WHERE seq = ?")
            ->bind(1, static_cast<std::int64_t>(stamp))
            .bind(2, entry.seq)
            .run();
        if (entry.changes.empty()) continue;
        const Change& first = entry.changes.front();
        const EntityDef* e = find_entity(first.entity);
        if (!e) continue;
        // A field whose clock is still this entry's took its value from
        // it: the value stays, stamped as the server will have it.
        model::RowState st = load(*e, first.row);
        bool changed = false;
        for (const auto& c : entry.changes) {
            const FieldDef* f = e->field(c.field);
            if (!f) continue;
            auto& fs = st.fields[e->index_of(*f)];
            if (fs.clock != Clock{c.hlc, device}) continue;
            fs.clock.hlc = stamp;
            changed = true;
        }
        if (changed) model::row_store(*e).save(db, first.row, st);
    }
    persist_clock(stamp);
    clock.rewind(stamp);
    return stamp;
}

std::vector<Change> Core::field_changes(const EntityDef& e, const Id& row, std::span<const std::uint16_t> tags) {
    std::vector<Change> out;
    const model::RowState st = load(e, row);
    if (!st.exists) return out;
    for (const auto tag : tags) {
        const FieldDef* f = e.field(tag);
        if (!f) continue;
        const auto& fs = st.fields[e.index_of(*f)];
        if (fs.clock.hlc == 0) continue;
        if (f->rule != MergeRule::counter) {
            out.push_back({e.tag, row, f->tag, fs.value, fs.clock.hlc, fs.clock.origin});
            continue;
        }
        // A counter is its origins' totals. The field's clock comes back as
        // the highest of their clocks, so the other origins' totals go one
        // tick below it.
        for (const auto& [origin, total] : fs.totals)
            out.push_back({e.tag, row, f->tag, total, origin == fs.clock.origin ? fs.clock.hlc : fs.clock.hlc - 1, origin});
    }
    return out;
}

void Core::revert(const EntityDef& e, const Id& row, std::int64_t seq, std::span<const std::uint16_t> tags,
                  std::span<const Change> server_state, bool drop_row) {
    check_writable();
    if (drop_row) {
        auto later = db.cached("SELECT 1 FROM lindra_outbox WHERE row_id = ? AND seq > ? LIMIT 1");
        later->bind(1, row).bind(2, seq);
        if (!later->step()) {
            // Its earlier entries are in the acknowledged push: accepted,
            // or refused and kept already (keep_refused).
            erase(row);
            db.cached("DELETE FROM lindra_outbox WHERE row_id = ? AND seq <= ?")->bind(1, row).bind(2, seq).run();
            return;
        }
        server_state = {};
    }
    for (const auto& c : server_state) {
        const FieldDef* f = e.field(c.field);
        if (c.entity != e.tag || c.row != row || !f || std::find(tags.begin(), tags.end(), c.field) == tags.end())
            throw Error(Errc::invalid_argument, std::string(e.name) + ": a reverted value for another row or field");
        model::validate(e, *f, c.value);
    }
    model::RowState st = load(e, row);
    if (!st.exists) return;  // gone already (purged)
    const model::RowState fresh = model::row_store(e).empty();
    for (const auto tag : tags) {
        const FieldDef* f = e.field(tag);
        if (!f) continue;
        // A key's value never changes, but its clock must become the
        // server's too, so both hold the same row.
        const bool known = std::any_of(server_state.begin(), server_state.end(),
                                       [&](const Change& c) { return c.field == tag; });
        auto& fs = st.fields[e.index_of(*f)];
        if (f->key && !known) {
            // The row stays for later writes, with its identity, but not as
            // written by the refused change: whoever the server takes the
            // keys from sets their clock.
            if (drop_row) fs.clock = {};
            continue;
        }
        fs = fresh.fields[e.index_of(*f)];
        for (const auto& c : server_state)
            if (c.field == tag) model::merge_field(*f, fs, c.value, Clock{c.hlc, c.origin});
    }
    // Later writes to the row are still to be judged: the row keeps them
    // on top of the server's state, as the server will if it takes them.
    auto later = db.cached("SELECT seq, hlc, fields FROM lindra_outbox WHERE row_id = ? AND seq > ? ORDER BY seq");
    later->bind(1, row).bind(2, seq);
    std::vector<Change> pending;
    while (later->step())
        codec::decode_fields(later->blob(2), {e.tag, row, 0, {}, static_cast<std::uint64_t>(later->int64(1)), device},
                             pending);
    for (const auto& c : pending)
        if (std::find(tags.begin(), tags.end(), c.field) != tags.end())
            model::merge_field(*e.field(c.field), st.fields[e.index_of(*e.field(c.field))], c.value,
                               Clock{c.hlc, c.origin});
    const Mutation mutation(*this);
    model::row_store(e).save(db, row, st);
}

void Core::erase(const Id& row) {
    const Mutation mutation(*this);
    for (const auto& e : entities())
        db.cached("DELETE FROM " + std::string(e.name) + " WHERE id = ?")->bind(1, row).run();
}

std::vector<RefusedWrite> Core::purge(std::span<const Id> rows) {
    check_writable();
    const Mutation mutation(*this);
    std::vector<RefusedWrite> kept;
    for (const auto& row : rows) {
        erase(row);
        auto st = db.cached("INSERT INTO lindra_refused_write (seq, entity, row_id, hlc, fields, code, reason, refused_at)"
                            " SELECT seq, entity, row_id, hlc, fields, 'permission_denied', ?, ? FROM lindra_outbox"
                            " WHERE row_id = ? ORDER BY seq RETURNING " + std::string(kRefusedColumns));
        st->bind(1, "this user may no longer see the row; the write was discarded with it")
            .bind(2, clock.wall_ms())
            .bind(3, row);
        while (st->step()) kept.push_back(refused_write(*st));
        db.cached("DELETE FROM lindra_outbox WHERE row_id = ?")->bind(1, row).run();
    }
    return kept;
}

std::optional<RefusedWrite> Core::keep_refused(std::int64_t seq, std::string_view code, std::string_view reason) {
    check_writable();
    const Mutation mutation(*this);
    std::optional<RefusedWrite> kept;
    {
        auto st = db.cached("INSERT INTO lindra_refused_write (seq, entity, row_id, hlc, fields, code, reason, refused_at)"
                            " SELECT seq, entity, row_id, hlc, fields, ?, ?, ? FROM lindra_outbox WHERE seq = ?"
                            " RETURNING " + std::string(kRefusedColumns));
        st->bind(1, code).bind(2, reason).bind(3, clock.wall_ms()).bind(4, seq);
        if (st->step()) kept = refused_write(*st);
    }
    db.cached("DELETE FROM lindra_outbox WHERE seq = ?")->bind(1, seq).run();
    return kept;
}

std::vector<RefusedWrite> Core::refused_writes() {
    std::vector<RefusedWrite> out;
    auto st = db.cached("SELECT " + std::string(kRefusedColumns) + " FROM lindra_refused_write ORDER BY id");
    while (st->step()) out.push_back(refused_write(*st));
    return out;
}

std::int64_t Core::dismiss_refused(std::optional<std::int64_t> id) {
    check_writable();
    const Mutation mutation(*this);
    if (!id) {
        db.cached("DELETE FROM lindra_refused_write")->run();
    } else {
        db.cached("DELETE FROM lindra_refused_write WHERE id = ?")->bind(1, *id).run();
    }
    return db.changes();
}

void Core::make_durable() { db.checkpoint(); }

std::int64_t Core::outbox_size() {
    auto st = db.cached("SELECT count(*) FROM lindra_outbox");
    st->step();
    return st->int64(0);
}

std::vector<OutboxEntry> Core::outbox(std::size_t max_entries, std::size_t max_changes, std::int64_t after_seq,
                                      std::size_t max_bytes) {
    std::vector<OutboxEntry> out;
    std::size_t changes = 0, bytes = 0;
    auto st = db.cached("SELECT seq, entity, row_id, hlc, fields FROM lindra_outbox WHERE seq > ? ORDER BY seq LIMIT ?");
    st->bind(1, after_seq);
    st->bind(2, static_cast<std::int64_t>(std::min<std::size_t>(max_entries, INT64_MAX)));
    while (st->step()) {
        OutboxEntry entry{st->int64(0), {}};
        const Change prototype{static_cast<std::uint16_t>(st->int64(1)), st->id(2), 0, {},
                               static_cast<std::uint64_t>(st->int64(3)), device};
        const auto fields = st->blob(4);
        codec::decode_fields(fields, prototype, entry.changes);
        // Whole entries within the limits; only a lone first entry may exceed them.
        const std::size_t entry_bytes = fields.size() + 40;  // ids, hlc and framing on the wire
        if (!out.empty() && (changes + entry.changes.size() > max_changes || bytes + entry_bytes > max_bytes)) break;
        changes += entry.changes.size();
        bytes += entry_bytes;
        out.push_back(std::move(entry));
    }
    return out;
}

void Core::acknowledge(std::int64_t seq) {
    check_writable();
    if (seq >= next_seq_)
        throw Error(Errc::invalid_argument, "seq " + std::to_string(seq) + " was never issued by this replica");
    // The outbox holds the latest local stamps; keep those the server now
    // has in the replica state before the entries go, so the clock survives
    // a restart. Not the clock itself: a stamp not pushed yet may still be
    // ahead of the server's time, and the file's clock must not be.
    db.cached("UPDATE lindra_replica SET hlc = max(hlc, coalesce((SELECT max(hlc) FROM lindra_outbox WHERE seq <= ?), 0))")
        ->bind(1, seq)
        .run();
    db.cached("UPDATE lindra_replica SET acked_seq = max(acked_seq, ?)")->bind(1, seq).run();
    db.cached("DELETE FROM lindra_outbox WHERE seq <= ?")->bind(1, seq).run();
}

}  // namespace lindra::detail
