// The primitives each backend of the server's store implements (DESIGN §6,
// "Policy above, storage below"; LiteCore's KeyStore is the model): rows,
// the log, device state, grants and refusals. No rule lives here. Which
// change is accepted, what a pull carries and when a grant changes are
// decided once, for every backend, in push.cpp, pull.cpp and grants.cpp.
#pragma once

#include "model/row.hpp"
#include "model/row_source.hpp"
#include "protocol/messages.hpp"

#include <lindra/error.hpp>
#include <lindra/schema.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

namespace lindra::server {

struct DeviceState {
    std::int64_t highest_seq = 0;   // the highest outbox seq applied from the device
    std::uint64_t highest_hlc = 0;  // the hlc of that entry
    std::string user{};             // who pushed from it; empty if nobody yet
    bool has_refusals = false;      // refusals of its entries are remembered
};

// One log entry: an outbox entry of a device, accepted. Its changes all
// touch one row.
struct LogEntry {
    std::int64_t pos = 0;
    std::uint16_t entity = 0;
    Id row{};
    std::uint64_t hlc = 0;
    Id origin{};
    std::int64_t seq = 0;  // the origin's outbox seq: retries are checked against it
    std::string fields{};  // codec::encode_fields of its changes
    std::string scope{};   // who may read it (access.hpp)
};

// The scopes a device holds rows of, as of one cursor generation (pull.cpp,
// grants.cpp).
struct Grant {
    std::set<std::string> scopes{};
    std::vector<std::string> backfill{};  // the scopes still to send from the log, up to backfill_to
    std::int64_t backfill_to = 0;
};

// The blob form of a grant's scope lists, as backends store them.
std::string encode_scopes(std::span<const std::string> scopes);
std::string encode_scopes(const std::set<std::string>& scopes);
std::vector<std::string> decode_scopes(std::span<const std::uint8_t> blob);

struct Refusal {
    protocol::ErrorCode code = protocol::ErrorCode::permission_denied;
    std::string reason{};
};

struct StagedRow {
    const EntityDef* entity = nullptr;
    Id row{};
    model::RowState state{};
};

using RowSource = model::RowSource;

// A backend found the transaction in conflict with another (a deadlock, a
// serialization failure, a unique key taken meanwhile): nothing of it was
// kept, and running it again from the start will do. The policy retries a
// bounded number of times.
class Conflict : public Error {
  public:
    explicit Conflict(const std::string& message) : Error(Errc::busy, message) {}
};

// One transaction. Destroying it without commit() rolls back and never
// throws. Thread-safety: one thread at a time.
class StorageTxn : public RowSource {
  public:
    // ---- reads
    virtual DeviceState device(const Id& device) = 0;
    // The position of the last log entry; every position up to it is
    // committed and visible to this transaction (positions never skip).
    virtual std::int64_t head() = 0;
    // The entry the log holds for the device's outbox `seq`, if any.
    virtual std::optional<LogEntry> logged(const Id& origin, std::int64_t seq) = 0;
    // Entries with after < pos <= upto in position order, at most `limit`
    // of them, until `each` returns false. Only those of `scopes` if given
    // (at most kMaxScanScopes of them): a backend reads them through its
    // (scope, pos) index, so a pull costs what it carries, not what the
    // whole fleet wrote since.
    static constexpr std::size_t kMaxScanScopes = 256;
    virtual void scan(std::int64_t after, std::int64_t upto, const std::vector<std::string>* scopes, std::size_t limit,
                      const std::function<bool(const LogEntry&)>& each) = 0;
    // The scopes of the entries `origin` pushed, each once.
    virtual std::vector<std::string> scopes_written_by(const Id& origin) = 0;
    // The ids of the rows the log holds in `scope`, each once.
    virtual std::vector<Id> rows_in_scope(const std::string& scope) = 0;
    virtual std::optional<Refusal> refusal(const Id& device, std::int64_t seq) = 0;
    virtual std::optional<Grant> grant(const Id& device, std::int64_t gen) = 0;
    virtual std::vector<std::pair<std::int64_t, Grant>> grants(const Id& device) = 0;

    // ---- writes (a write transaction only)
    // Locks the rows of `keys` (entity tag, row id; sorted, so two pushes
    // never wait on each other in a cycle) that exist, before a push reads
    // them; they may be read ahead. A row absent now that another
    // transaction creates first makes save_rows throw Conflict.
    virtual void lock_rows(std::span<const std::pair<std::uint16_t, Id>> keys) = 0;
    virtual void save_rows(std::span<const StagedRow> rows) = 0;
    virtual void set_device(const Id& device, const DeviceState& state, std::int64_t now_ms) = 0;
    // Remembers the refusals, then forgets all but the device's latest `keep`.
    virtual void remember_refusals(const Id& device, std::span<const std::pair<std::int64_t, Refusal>> refused,
                                   std::int64_t keep) = 0;
    virtual void forget_refusals(const Id& device, std::int64_t up_to_seq) = 0;
    // A new generation of the device's grant, numbered after its latest.
    virtual std::int64_t add_grant(const Id& device, const Grant& grant) = 0;
    virtual void update_grant(const Id& device, std::int64_t gen, const Grant& grant) = 0;
    virtual void drop_grants_before(const Id& device, std::int64_t gen) = 0;
    // Appends the entries at the next positions, in order, and moves the
    // server's clock past their stamps. The last write of a push: positions
    // are taken in commit order (docs/decisions.md, "Positions"). `pos` of
    // the entries is not set.
    virtual void append_log(std::span<const LogEntry> entries) = 0;
    virtual void commit() = 0;
};

// Thread-safety: safe from any thread; each transaction from one at a time.
class Storage {
  public:
    virtual ~Storage() = default;
    // Shared by every server process on this store; cursors are valid
    // across them, and a restored store gets a new one.
    virtual Id server_id() = 0;
    // Gives the store a new server id, after it was restored from a
    // backup: every device then starts its pull over, as the positions it
    // was past are handed out again. Only while no server runs on it.
    virtual void renew_server_id() = 0;
    // A fresh server time for Welcome: past every stamp in the log.
    virtual std::uint64_t tick() = 0;
    // Wall-clock milliseconds (the clock bound; tests set it).
    virtual std::int64_t wall_ms() = 0;
    // A write transaction for a push or a grant change by `device`: the
    // device's row is locked first, so two servers never run one device's
    // pushes at once.
    virtual std::unique_ptr<StorageTxn> write(const Id& device) = 0;
    // A read-only transaction on one snapshot, in parallel with the writer.
    virtual std::unique_ptr<StorageTxn> read() = 0;
};

class Issuer;

struct StoreOptions {
    std::chrono::milliseconds max_clock_ahead{std::chrono::hours(24)};
    // Issues course certificates with it (certificates.hpp); null: none.
    std::shared_ptr<const Issuer> issuer{};
    std::function<std::int64_t()> wall_clock_ms{};
    std::size_t pool_size = 0;  // PostgreSQL connections; 0: twice the cores, plus two
    // PostgreSQL session settings (ServerOptions::db_statement_timeout).
    std::chrono::milliseconds statement_timeout{30'000};
    std::chrono::milliseconds idle_in_transaction_timeout{60'000};
};

std::unique_ptr<Storage> open_sqlite_storage(const std::string& path, const StoreOptions& options);
// `conninfo`: a libpq URI or keyword string. Throws lindra::Error
// (Errc::unavailable) naming the target if the database cannot be reached.
std::unique_ptr<Storage> open_postgres_storage(const std::string& conninfo, const StoreOptions& options);
// Whether `db` names a PostgreSQL database rather than a file.
bool is_postgres(std::string_view db);

}  // namespace lindra::server
