// lindra::SyncClient — one sync round with the server: hello, push the
// outbox until acknowledged, pull until the server has nothing more.
//
// Every pushed batch leaves the outbox only once the server acknowledged
// it; every pulled batch is applied together with its cursor in one
// transaction. A round cut off anywhere resumes where it stopped, and
// nothing is applied twice.
//
// Runs on the library's own thread, or on an io_context the app already
// runs (`boost::asio::io_context` is only forward-declared here).
#pragma once

#include <lindra/replica.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace boost::asio {
class io_context;
}

namespace lindra {

enum class SyncPhase { connecting, pushing, pulling, done };
std::string_view to_string(SyncPhase phase);

// The counts speak of writes and changes (docs/decisions.md, "Writes and
// changes"): a write is one thing the user did on this device, one outbox
// entry (a typed call, or one Replica::batch); it carries one or more
// changes, each one field of one row. Pushes count both; pulls bring
// changes, as the server's log holds them.
//
// How far a round has got: what is done, and what is left where it is
// known. The device knows its outbox; the server says how much of its log
// a pull has still to go through (an upper bound: entries of scopes this
// user may not read count too). Bytes to come are not known in advance.
struct SyncProgress {
    SyncPhase phase = SyncPhase::connecting;
    std::int64_t changes_pushed = 0;  // acknowledged by the server: the changes of writes_pushed
    std::int64_t changes_pulled = 0;  // applied here
    std::uint64_t bytes_sent = 0;
    std::uint64_t bytes_received = 0;
    std::uint64_t push_remaining = 0;  // local writes not yet acknowledged (outbox entries), in any phase
    // Server log entries (writes) still to pull: from Welcome on, then as
    // each page says (an upper bound; 0 from a server that does not say).
    std::uint64_t pull_remaining = 0;
    std::int64_t writes_pushed = 0;    // local writes (outbox entries) acknowledged by the server
};

// A pushed change the server refused, or a local one discarded with a row
// this user may no longer see. It has left the outbox and been rolled back
// here: the row's fields are the server's again, or the row is gone if the
// server has none this user may see (`row_removed`). What the user wrote is
// not lost: `values` holds it, and Replica::refused_writes() keeps it under
// `refused_id` until the app dismisses it.
struct SyncRejection {
    std::int64_t seq = 0;
    std::string code{};    // "permission_denied" or "invalid_argument"
    std::string reason{};  // which rule refused it
    std::string entity{};
    Id row{};
    std::vector<std::string> fields{};
    bool row_removed = false;
    // The fields and values of the refused write, as RefusedWrite::values.
    // Empty, and `refused_id` 0, if this device no longer held the write.
    std::vector<FieldValue> values{};
    std::int64_t refused_id = 0;  // its RefusedWrite::id
};

// Where a SyncClient is, for an app's sync indicator.
enum class SyncState {
    idle,        // no round running; the last one succeeded, or none ran yet
    connecting,
    pushing,
    pulling,
    offline,     // the last round found no server, or lost it: retry later
    error,       // the last round failed otherwise (see error_code, message)
};
std::string_view to_string(SyncState state);

struct SyncStatus {
    SyncState state = SyncState::idle;
    std::string error_code{};  // offline or error: the server's error code, if it sent one
    std::string message{};     // offline or error: why the last round ended
    std::optional<std::chrono::system_clock::time_point> last_synced{};  // the last round that succeeded
    std::int64_t pending = 0;  // local writes (outbox entries) waiting for the server, as of the last change of state
};

struct TlsClientOptions {
    std::string ca_pem{};       // the CAs to trust, PEM; empty: the system's
    // More CAs to trust beside those (PEM each), e.g. a TLS-inspecting
    // proxy's, which re-signs every server's certificate with its own CA.
    std::vector<std::string> extra_ca_pems{};
    std::string server_name{};  // the name the certificate must carry; empty: SyncOptions::host
    // "sha256/BASE64" digests of the server's public key (SPKI). If any are
    // given, the server's key must match one of them: list the current key
    // and a backup, so a key rotation does not lock tablets out.
    std::vector<std::string> pins{};
};

// Where the server is and how to speak to it (README, "Sync over wss://
// and through proxies").
struct ServerUrl {
    std::string host{};
    std::uint16_t port = 0;
    bool websocket = false;  // frames as WebSocket messages (wss://, ws://), else raw frames
    bool tls = true;         // false: ws:// or tcp://, which need SyncOptions::insecure
    std::string path{};      // a WebSocket's: where it upgrades
};
// Reads "wss://host[:port][/path]" (port 443, path /lindra unless given),
// "tls://host:port" or "host:port" (raw frames over TLS, lindra's own
// port), and for development without TLS "ws://host[:port][/path]" and
// "tcp://host:port". IPv6 addresses go in brackets. Throws
// Error(invalid_argument) saying what is wrong (an unknown scheme, a bad
// or missing port, a missing host).
ServerUrl parse_server_url(std::string_view url);
std::string to_string(const ServerUrl& url);

struct SyncOptions {
    // The server's URL (parse_server_url); if set, host and port are not used.
    std::string url{};
    std::string host = "127.0.0.1";
    std::uint16_t port = 0;
    std::string token{};
    TlsClientOptions tls{};
    // Plain TCP, for local development and tests only: the token and
    // personal data cross the network in the clear.
    bool insecure = false;
    // An HTTP proxy to go through with CONNECT:
    // "http://[user:password@]host[:port]" (port 1080 unless given, as in
    // curl). Unset: the https_proxy (or HTTPS_PROXY) environment variable,
    // unless no_proxy (or NO_PROXY) names the server (curl's rules); "":
    // no proxy, whatever the environment says.
    std::optional<std::string> proxy{};
    std::string app = "lindra";  // "name/version", shows in the server's log
    std::chrono::milliseconds connect_timeout{10'000};
    std::chrono::milliseconds io_timeout{30'000};  // for each frame
    std::uint32_t push_batch_changes = 50'000;     // at most; the server may ask for fewer
    std::uint32_t pull_batch_changes = 50'000;
    std::size_t max_frame_bytes = std::size_t{4} << 20;
    // Called on the sync's thread after each batch; keep it short.
    std::function<void(const SyncProgress&)> on_progress{};
    // Called on the sync's thread for each refused change, once it has been
    // rolled back and its values kept: the place to tell the user their
    // edit did not count, and show them what they wrote.
    std::function<void(const SyncRejection&)> on_rejected{};
    // Called on the sync's thread whenever SyncClient::status() changes.
    std::function<void(const SyncStatus&)> on_status{};
};

enum class SyncOutcome {
    ok,
    offline,         // no connection, or it broke: try again later
    auth_failed,     // the server refused the token
    tls_failed,      // the server's certificate or key did not verify: never retry blindly
    server_error,    // the server answered with an Error (see error_code, message)
    protocol_error,  // the server sent something this client cannot read
    cancelled,
    local_error,     // the replica failed (e.g. the disk is full)
    timed_out,       // wait_until_synced: not in sync when the time was up
};
std::string_view to_string(SyncOutcome outcome);

// Rows a round deleted because this user may no longer see them, by the
// scope they belonged to, so that an app can say what went and why.
struct PurgedScope {
    // group: a group this user is no longer in (withdrawn, or the group
    // left their organization), with its gatherings, attendance and
    // memberships. person: a person this user no longer shares a group with.
    // person_in_group: a person's progress and certificates in a group;
    // personal: their reflections there. None from an older server.
    std::optional<ScopeKind> kind{};
    Id group{};  // nil for person
    Id person{};  // nil for group
    // As this device held them just before the purge; empty if it did not
    // hold the row (or the server was older).
    std::string group_name{};
    std::string person_name{};
    std::int64_t rows = 0;  // rows the server named; they count in rows_purged
};

struct SyncResult {
    SyncOutcome outcome = SyncOutcome::ok;
    std::string message{};
    std::string error_code{};  // the server's error code, if it sent one
    std::uint32_t retry_after_ms = 0;
    // Acknowledged by the server, the refused ones (`rejected`) included:
    // writes_pushed local writes (outbox entries) carrying changes_pushed
    // field changes.
    std::int64_t writes_pushed = 0;
    std::int64_t changes_pushed = 0;
    std::int64_t changes_pulled = 0;
    // Rows deleted because this user may no longer see them (withdrawn
    // from a group, moved to another): the sum of `purged`, which says of
    // which groups and people.
    std::int64_t rows_purged = 0;
    std::vector<PurgedScope> purged{};
    std::uint64_t bytes_sent = 0;
    std::uint64_t bytes_received = 0;
    // The TLS handshake resumed this client's session of an earlier round
    // with the server (no certificate sent or checked again; README,
    // Performance). False for a client's first round, a restarted server,
    // or another server behind the same address.
    bool tls_resumed = false;
    // This device's writes refused in this round, whatever its outcome
    // (a round may refuse writes and then lose the connection): rolled
    // back, and kept in Replica::refused_writes() until dismissed.
    std::vector<SyncRejection> rejected{};

    // The round ended well (nothing to retry), refused writes or not.
    bool ok() const noexcept { return outcome == SyncOutcome::ok; }
    // The round ended well and the server took every write: the user has
    // nothing to look at.
    bool clean() const noexcept { return ok() && rejected.empty(); }
};

// Thread-safety: sync(), sync_async() and cancel() from any thread; one
// round runs at a time (a second one gets local_error). The Replica must
// outlive the SyncClient; the app may keep writing to it during a sync.
class SyncClient {
public:
    // Syncs on a thread of the client's own.
    SyncClient(Replica& replica, SyncOptions options);
    // Syncs on `io`, which the app runs; sync() must then not be called
    // from that io_context's threads.
    SyncClient(Replica& replica, SyncOptions options, boost::asio::io_context& io);
    ~SyncClient();  // cancels a running round and waits for it
    SyncClient(const SyncClient&) = delete;
    SyncClient& operator=(const SyncClient&) = delete;

    // One round; blocks until it ends.
    SyncResult sync();
    // One round; `done` runs on the sync's thread once it has ended (a next
    // round may start from `done`; do not destroy the client there).
    void sync_async(std::function<void(SyncResult)> done);
    // Ends a running round soon with SyncOutcome::cancelled; what was
    // acknowledged or applied stays. No-op if none runs.
    void cancel();

    // Where the client is now; from any thread.
    SyncStatus status() const;
    // Runs rounds until the outbox is empty and the last pull reached the
    // server's head (ok), a round fails in a way waiting cannot mend (auth,
    // TLS, protocol or local errors: that round's result), or `timeout`
    // passes (timed_out, with the last round's message). Between failed
    // rounds it waits, doubling up to 2 s, or as long as the server asked.
    // Blocks like sync().
    SyncResult wait_until_synced(std::chrono::milliseconds timeout);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// ---- shared tablets (README, "Shared tablets") ------------------------------
//
// A tablet shared by shifts keeps one replica file per user, each with its
// own device id, and deletes a user's file when they sign out.

// The replica file of `user` (the user id the server's tokens carry) in
// the app's data `directory`: "<directory>/user-<UUID>.lindra", the UUID
// derived from the user id by SHA-256, so the same user always finds the
// same file and the directory does not show user ids in clear (someone who
// can guess a user id can still tell whether that user has a file). Open
// it with Replica; whether the user has a file is
// std::filesystem::exists(user_replica_path(...)). Throws
// Error(invalid_argument) if `user` is empty.
std::string user_replica_path(const std::string& directory, std::string_view user);

enum class SignOutStatus {
    signed_out,  // everything reached the server; the files are deleted
    kept,        // something would have been lost: nothing deleted, see SignOutResult
    forced,      // deleted although something was lost (SignOutResult says what)
};
std::string_view to_string(SignOutStatus status);

struct SignOutResult {
    SignOutStatus status = SignOutStatus::kept;
    SyncResult sync{};  // the round that pushed what was pending
    // What did not reach the server, counted after the round: local writes
    // still waiting in the outbox, and refused writes kept on this device
    // (Replica::refused_writes(), not dismissed). Both lost once deleted.
    std::int64_t pending_writes = 0;
    std::int64_t refused_writes = 0;
    std::vector<std::string> deleted_files{};  // the paths overwritten and removed
    // kept: the replica, still open, to go on with (or dismiss the refused
    // writes and sign out again, or sign out with `force`).
    std::optional<Replica> replica{};

    bool deleted() const noexcept { return status != SignOutStatus::kept; }
};

// Signs the replica's user out of this device: one sync round with
// `options` (the user's token) to push what is pending, then, if the round
// succeeded, the outbox is empty and no refused write is kept, closes the
// replica and deletes its file and its -wal, -shm and -journal siblings:
// each overwritten with zeros and synced before it is unlinked, then the
// directory synced. Otherwise (offline, a refused token, a write the server
// refused) nothing is deleted and the result says what would be lost and
// hands the replica back; with `force` the files are deleted anyway
// (status forced) once the app has asked the user.
//
// Takes the replica: no SyncClient may still use it, and no other Replica
// or process may have the file open. The overwrite is best effort on flash
// storage, whose controller may keep the old blocks: only an encrypted
// disk keeps them unreadable (docs/decisions.md). Throws Error if the
// replica fails, or Error(storage) naming the file if a deletion fails
// (the replica is closed by then; the files not reached yet are left).
// From any thread; blocks like SyncClient::sync().
SignOutResult sign_out(Replica&& replica, const SyncOptions& options, bool force = false);

}  // namespace lindra
