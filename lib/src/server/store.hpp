// The server's store (DESIGN §6): its rules, written once (push.cpp,
// pull.cpp, grants.cpp), over the primitives of a backend (storage.hpp:
// SQLite, PostgreSQL).
#pragma once

#include "protocol/messages.hpp"
#include "server/auth.hpp"
#include "server/storage.hpp"

#include <lindra/replica.hpp>

#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>

namespace lindra::server {

struct PushOutcome {
    std::int64_t acked_seq = 0;
    std::vector<protocol::Rejected> rejected{};
    std::size_t applied_changes = 0;
    std::size_t certificates_issued = 0;
};

struct PullOutcome {
    std::vector<protocol::Purge> purges{};  // applied before the changes
    std::vector<Change> changes{};
    std::string next_cursor{};
    bool has_more = false;
    std::uint64_t remaining = 0;  // log entries after this batch
};

// Thread-safety: safe from any thread; pulls run in parallel with the one
// writer.
class ServerStore {
public:
    ServerStore(std::unique_ptr<Storage> storage, StoreOptions options);

    Id server_id() { return storage_->server_id(); }
    // A fresh server time for Welcome; clients never fall behind it.
    std::uint64_t tick() { return storage_->tick(); }
    DeviceState device(const Id& device);
    // Whether a pull from `cursor` has anything for `who`: entries after it,
    // or scopes gained or lost since.
    bool has_changes_after(const Id& device, const Identity& who, std::string_view cursor);
    // What a Welcome tells `device` of `who`, read on one snapshot. Unless
    // the device is another user's (then only `device` is set), the
    // refusals of its entries up to `acked_seq` are forgotten
    // (forget_refusals).
    struct Hello {
        DeviceState device;
        std::uint64_t server_hlc = 0;
        bool pull_needed = false;
        std::uint64_t pull_remaining = 0;  // log entries after the cursor (an upper bound), as a pull counts them
    };
    Hello hello(const Id& device, const Identity& who, std::string_view cursor, std::int64_t acked_seq);
    // Applies the entries above the device's highest applied seq, each in
    // turn, with the replica's merge code, logs them and records the new
    // highest seq, all in one transaction. An entry `who` may not write
    // (Access), with invalid values, or stamped too far ahead of the
    // server's clock is rejected with what the device needs to put the row
    // back; the others are applied. An entry at or below the highest seq is
    // a retry: acknowledged, not applied, if the log holds the same change
    // under that seq; refused again, for the same reason, if it was refused
    // (the PushAck saying so was lost). Throws lindra::Error (nothing
    // applied) if a retried seq holds another change (two devices share one
    // id: a copied database file).
    PushOutcome push(const Id& device, const Identity& who, std::span<const protocol::Entry> entries);
    // The device holds the answers to its entries up to `seq` (Hello): their
    // refusals need not be remembered any longer. Besides, at most
    // kRefusalsKept per device are kept, the latest.
    void forget_refusals(const Id& device, std::int64_t seq);
    static constexpr std::int64_t kRefusalsKept = 1000;
    // Log entries after `cursor` in the scopes `who` may read, whole
    // entries, until `max_changes` or about `max_bytes` of values are
    // reached (at least one entry). Scopes gained since the cursor are
    // backfilled from the log first; rows of scopes lost come as purges.
    // The device's own entries are skipped unless `include_own`. Throws
    // lindra::Error(invalid_argument) for a cursor it never handed out.
    PullOutcome pull(const Id& device, const Identity& who, bool include_own, std::string_view cursor,
                     std::size_t max_changes, std::size_t max_bytes);

    Storage& storage() noexcept { return *storage_; }
    // Whether the store answers a read now (the admin listener's /readyz).
    bool reachable() noexcept;
    // Issues certificates with `issuer` from now on (null: none), after
    // publishing its keys not yet published. Throws lindra::Error if the
    // store cannot be written; the issuer is then unchanged.
    void set_issuer(std::shared_ptr<const Issuer> issuer);

private:
    // Runs `attempt`, a whole transaction, again while it conflicts with
    // another server's, a bounded number of times: each attempt locks the
    // device first, so a retry sees what won.
    template <class F>
    static auto retrying(F&& attempt) {
        for (int n = 1;; ++n) {
            try {
                return attempt();
            } catch (const Conflict&) {
                if (n == 5) throw;
            }
        }
    }
    bool has_changes_after(StorageTxn& txn, const Id& device, const Identity& who, std::string_view cursor);
    PushOutcome push_once(const Id& device, const Identity& who, std::span<const protocol::Entry> entries);

    // The options now: a copy per push, so set_issuer() does not change a
    // push under way.
    StoreOptions options() const;
    void publish(const Issuer& issuer);

    std::unique_ptr<Storage> storage_;
    mutable std::mutex options_mutex_;
    StoreOptions options_;  // guarded by options_mutex_
};

// A path opens (or creates) a SQLite store; "postgresql://..." or a libpq
// keyword string ("host=... dbname=...") a PostgreSQL one.
std::unique_ptr<ServerStore> open_store(const std::string& db, const StoreOptions& options);
std::unique_ptr<ServerStore> open_sqlite_store(const std::string& path, const StoreOptions& options);

}  // namespace lindra::server
