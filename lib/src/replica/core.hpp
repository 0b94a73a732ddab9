// The engine behind lindra::Replica: the local write path, apply_remote and
// the outbox, all driven by the schema table and one merge function.
//
// Thread-safety: callers hold `mutex` for every use.
#pragma once

#include "model/row.hpp"
#include "model/validate.hpp"
#include "replica/hlc.hpp"
#include "store/database.hpp"
#include "store/migrations.hpp"
#include "store/transaction.hpp"

#include <lindra/replica.hpp>

#include <exception>
#include <mutex>
#include <optional>
#include <span>
#include <string_view>

namespace lindra::detail {

// One field of a local write. Relative ops are resolved against the row's
// merged state inside the write, so a typed write reads the row only once.
struct Intent {
    enum class Op {
        set,      // set the field to `value`
        add,      // counter: add `value` (a delta >= 0) to this device's total
        advance,  // progress: status rank `value` within the current attempt
    };
    std::string_view field;
    Value value;
    Op op = Op::set;
};

struct PullState {
    std::string cursor{};
    bool include_own = false;  // this device lost changes of its own: pull them back too
    std::int64_t acked_seq = 0;  // the highest seq the server's answer was applied for
};

class Core {
  public:
    // `durable_commits`: synchronous=FULL, for the server, which acknowledges
    // pushes and so must not lose a commit to a power cut.
    Core(const std::string& path, const ReplicaOptions& options, bool durable_commits = false);

    // A write transaction. Reloads the outbox seq and the clock from the file
    // once the write lock is held, so several connections to one file never
    // issue the same seq or hlc.
    class WriteTransaction {
      public:
        explicit WriteTransaction(Core& core);
        ~WriteTransaction();
        void commit();

      private:
        Core& core_;
        store::Transaction txn_;
        bool committed_ = false;
    };

    // Validates every intent, then merges them into the row as one change
    // set at a fresh hlc and appends it to the outbox. Needs an open
    // WriteTransaction. A no-op write (e.g. starting a completed module)
    // writes nothing.
    void write(const EntityDef& e, const Id& row, std::span<const Intent> intents);
    // The id a new row of `e` gets: derived from its key fields or random.
    Id new_row_id(const EntityDef& e, std::span<const Intent> intents) const;
    // Throws lindra::Error (naming the field, never quoting the value) if
    // `c` is not a valid change: entity and field in the schema, a valid
    // value, a row id, an origin and an hlc in range. Nothing may merge,
    // authorize or store a change from a peer before this.
    static const EntityDef& check(const Change& c, model::Quote quote = model::Quote::value);
    // Rows identified by other rows: the row's id must be the one its key
    // fields derive, once they are all set.
    static void check_identity(const EntityDef& e, const Id& row, const model::RowState& st);
    // `st`, the state of `row` of `e`, with `changes` (all to that row,
    // each check()ed) merged in, each by its field's rule. Throws
    // lindra::Error if one would move the row's identity, or the group or
    // person that scope it. `changed`: whether any field took its change.
    // The one merge of client and server.
    static model::RowState merge_checked(const EntityDef& e, const Id& row, model::RowState st,
                                         std::span<const Change* const> changes, bool& changed);
    // Checks every change, then merges them. Needs an open WriteTransaction.
    void apply(std::span<const Change> changes);

    model::RowState load(const EntityDef& e, const Id& row) { return model::row_store(e).load(db, row); }
    // A field's merged value; "no value" if the row is missing.
    Value get(const EntityDef& e, const Id& row, std::string_view field);

    // ---- sync (the client; each needs an open WriteTransaction but the reads)
    PullState pull_state();
    // Merges a pulled batch and stores the cursor after it, together;
    // `complete`: the batch reached the server's head.
    void apply_pulled(std::span<const Change> changes, std::string_view next_cursor, bool complete);
    // Welcome: a new server id resets the pull cursor.
    void adopt_server(const Id& server_id);
    // Welcome: the server holds seqs up to `server_highest` from this device
    // (the entry at that seq has `server_highest_hlc`). If this file does not
    // know them (restored from a backup, commits lost to a power cut), move
    // the pending entries above, so no new change is taken for a duplicate;
    // the lost ones come back with the pull.
    void skip_ahead(std::int64_t server_highest, std::uint64_t server_highest_hlc);
    // Welcome, after skip_ahead: the server's time. The clock comes back to
    // it (in memory and in the file) if it ran ahead, and the entries after
    // `server_highest`, which the server has never seen, are restamped if
    // they are stamped later (restamp()). Returns the round's ceiling: no
    // entry this device pushes in the round is stamped above it.
    std::uint64_t adopt_server_time(std::uint64_t server_hlc, std::int64_t server_highest);
    // From the first entry after `after_seq` stamped above `ceiling` on,
    // each entry takes the next stamp above `ceiling`, in seq order, and so
    // do the row clocks it set that no later change replaced (a device
    // whose clock ran ahead). Returns the highest stamp now issued, at least
    // `ceiling`; the clock comes back to it.
    std::uint64_t restamp(std::uint64_t ceiling, std::int64_t after_seq);
    // The row's current state of the fields `tags` as changes (a counter as
    // one change per origin): what the server sends back for a refused
    // change. Fields never written are left out.
    static std::vector<Change> field_changes(const EntityDef& e, const Id& row, const model::RowState& st,
                                             std::span<const std::uint16_t> tags);
    // The server refused change `seq` of this device: the fields `tags` of
    // the row become exactly `server_state` (the others keep theirs). With
    // `drop_row` the server has no such row this user may see: the row goes,
    // unless later writes to it are still to be judged by the server (they
    // keep it, the refused fields back to never written).
    void revert(const EntityDef& e, const Id& row, std::int64_t seq, std::span<const std::uint16_t> tags,
                std::span<const Change> server_state, bool drop_row);
    // Deletes the rows (any entity) and their clocks: this user may no
    // longer see them. secure_delete overwrites the bytes. Their outbox
    // entries move to the refused writes, so what the user typed stays;
    // returns them, for the app to hear of.
    std::vector<RefusedWrite> purge(std::span<const Id> rows);
    // The server refused outbox entry `seq`: it moves to the refused writes
    // with the server's code and reason. nullopt if the outbox has no such
    // entry (nothing of the user's is left to keep).
    std::optional<RefusedWrite> keep_refused(std::int64_t seq, std::string_view code, std::string_view reason);
    std::vector<RefusedWrite> refused_writes();
    // Forgets refused write `id`, or all of them; returns how many went.
    std::int64_t dismiss_refused(std::optional<std::int64_t> id);
    // Makes every committed write durable (a FULL sync point) before pushing.
    void make_durable();

    std::int64_t outbox_size();
    // The oldest entries after `after_seq`, at most `max_entries` of them
    // holding at most `max_changes` changes and about `max_bytes` of values
    // (a lone first entry may hold more).
    std::vector<OutboxEntry> outbox(std::size_t max_entries, std::size_t max_changes = SIZE_MAX,
                                    std::int64_t after_seq = 0, std::size_t max_bytes = SIZE_MAX);
    void acknowledge(std::int64_t seq);

    store::Database db;
    std::recursive_mutex mutex;
    Id device;
    replica::HybridClock clock;

  private:
    // A key field, or the group or person that scope a row, once set,
    // never changes: checked on local writes and remote changes alike, so
    // no peer can move a row to another person or group.
    static void check_key_change(const EntityDef& e, const FieldDef& f, const model::FieldState& current,
                                 const Value& incoming);
    // Rolls the transaction back at its end when a write failed after it
    // had changed something (e.g. the row was saved, then the outbox insert
    // hit a full disk), even if the app caught the error.
    class Mutation {
      public:
        explicit Mutation(Core& core) : core_(core), exceptions_(std::uncaught_exceptions()) {}
        ~Mutation() {
            if (std::uncaught_exceptions() > exceptions_) core_.failed_midway_ = true;
        }

      private:
        Core& core_;
        int exceptions_;
    };
    // Deletes the row from every domain table, with its clocks.
    void erase(const Id& row);
    void reload_counters();
    void persist_clock(std::uint64_t hlc);
    void check_writable() const;
    bool failed_midway_ = false;
    std::int64_t next_seq_ = 1;
    // The file's data version after our last commit; a different one means
    // another connection wrote and next_seq_ and the clock must be reloaded.
    std::optional<std::uint32_t> known_version_;
};

// The store's migrations, oldest first (for tests of old files).
std::span<const store::Migration> replica_migrations();

// The schema entry for `name`, which lindra's own code knows exists.
const EntityDef& entity(std::string_view name);
const FieldDef& field(const EntityDef& e, std::string_view name);

}  // namespace lindra::detail
