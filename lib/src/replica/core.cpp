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
        // Data model 2: certificates carry their signed credential; issuer
        // keys and the revocation list. The server left those out of what it
        // sent a device of model 1, so the device pulls everything again.
        {4,
         [](store::Database& db) {
             create_domain_tables(db, 2);
             db.exec("UPDATE lindra_replica SET pull_cursor = x''");
         }},
        // Data model 3: coordinators' revocations of certificates.
        {5,
         [](store::Database& db) {
             create_domain_tables(db, 3);
             db.exec("UPDATE lindra_replica SET pull_cursor = x''");
         }},
    };
    return steps;
}


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
        bool changed = false;
        auto st = merge_checked(e, key.second, load(e, key.second), row_changes, changed);
        if (changed) merged.emplace_back(&e, key.second, std::move(st));
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

model::RowState Core::merge_checked(const EntityDef& e, const Id& row, model::RowState st,
                                    std::span<const Change* const> changes, bool& changed) {
    bool keys_set = false;
    changed = false;
    for (const Change* c : changes) {
        const FieldDef& f = *e.field(c->field);
        auto& fs = st.fields[e.index_of(f)];
        check_key_change(e, f, fs, c->value);
        const bool did = model::merge_field(f, fs, c->value, model::Clock{c->hlc, c->origin});
        changed |= did;
        keys_set |= did && f.key;
    }
    if (keys_set) check_identity(e, row, st);
    st.exists = true;
    return st;
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

}  // namespace lindra::detail
