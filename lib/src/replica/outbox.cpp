// Core's sync side: the outbox and what the server's answers do to it
// (acknowledge, revert, purge, the refused writes kept), and the device's
// seqs and clock at Welcome (skip_ahead, restamp).
#include "replica/core.hpp"

#include "core/codec.hpp"
#include "model/merge.hpp"

#include <algorithm>

namespace lindra::detail {

namespace {

using model::Clock;

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

std::vector<Change> Core::field_changes(const EntityDef& e, const Id& row, const model::RowState& st,
                                        std::span<const std::uint16_t> tags) {
    std::vector<Change> out;
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
