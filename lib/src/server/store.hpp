// Where the server keeps its state (DESIGN §6), behind one interface: the
// SQLite implementation now; PostgreSQL (many stateless server processes on
// one database) later.
#pragma once

#include "protocol/messages.hpp"
#include "server/auth.hpp"

#include <lindra/replica.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace lindra::server {

struct DeviceState {
    std::int64_t highest_seq = 0;   // the highest outbox seq applied from the device
    std::uint64_t highest_hlc = 0;  // the hlc of that entry
    std::string user{};             // who pushed from it; empty if nobody yet
};

struct PushOutcome {
    std::int64_t acked_seq = 0;
    std::vector<protocol::Rejected> rejected{};
    std::size_t applied_changes = 0;
};

struct PullOutcome {
    std::vector<protocol::Purge> purges{};  // applied before the changes
    std::vector<Change> changes{};
    std::string next_cursor{};
    bool has_more = false;
    std::uint64_t remaining = 0;  // log entries after this batch
};

struct StoreOptions {
    std::chrono::milliseconds max_clock_ahead{std::chrono::hours(24)};
    std::function<std::int64_t()> wall_clock_ms{};
};

// Thread-safety: one thread at a time (SyncServer serialises sessions' calls).
class ServerStore {
public:
    virtual ~ServerStore() = default;

    virtual Id server_id() = 0;
    // A fresh server time for Welcome; clients never fall behind it.
    virtual std::uint64_t tick() = 0;
    virtual DeviceState device(const Id& device) = 0;
    // Whether a pull from `cursor` has anything for `who`: entries after it,
    // or scopes gained or lost since.
    virtual bool has_changes_after(const Id& device, const Identity& who, std::string_view cursor) = 0;
    // Applies the entries above the device's highest applied seq, each in
    // turn, with the replica's merge code, logs them and records the new
    // highest seq, all in one transaction. An entry `who` may not write
    // (Access), with invalid values, or stamped too far ahead of the
    // server's clock is rejected with what the device needs to put the row
    // back; the others are applied. An entry at or below the highest seq is
    // a retry: acknowledged, not applied, if the log holds the same change
    // under that seq; refused again, for the same reason, if it was refused
    // (the PushAck saying so was lost). Throws lindra::Error (nothing applied) if a retried
    // seq holds another change (two devices share one id: a copied
    // database file).
    virtual PushOutcome push(const Id& device, const Identity& who, std::span<const protocol::Entry> entries) = 0;
    // The device holds the answers to its entries up to `seq` (Hello): their
    // refusals need not be remembered any longer. Besides, at most
    // kRefusalsKept per device are kept, the latest.
    virtual void forget_refusals(const Id& device, std::int64_t seq) = 0;
    static constexpr std::int64_t kRefusalsKept = 1000;
    // Log entries after `cursor` in the scopes `who` may read, whole
    // entries, until `max_changes` or about `max_bytes` of values are
    // reached (at least one entry). Scopes gained since the cursor are
    // backfilled from the log first; rows of scopes lost come as purges.
    // The device's own entries are skipped unless `include_own`. Throws
    // lindra::Error(invalid_argument) for a cursor it never handed out.
    virtual PullOutcome pull(const Id& device, const Identity& who, bool include_own, std::string_view cursor,
                             std::size_t max_changes, std::size_t max_bytes) = 0;
};

std::unique_ptr<ServerStore> open_sqlite_store(const std::string& path, const StoreOptions& options);

}  // namespace lindra::server
