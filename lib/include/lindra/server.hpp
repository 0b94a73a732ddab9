// lindra::SyncServer — the central server the tablets sync with.
//
// The server is itself a lindra replica (the same merge code as the
// tablets) plus a change log that devices pull from by cursor, and the
// highest outbox seq applied per device, so a retried push is acknowledged
// and never applied twice. It runs on threads of its own: a few that move
// bytes, and a pool that does the store work, so a large push never
// stalls another tablet's handshake.
//
// Every connection is TLS unless `insecure` is set (local development).
// Identity comes only from a verified token: lindra's own (Ed25519, issued
// by issue_token) or a JWT from the organisation's OpenID Connect provider.
// Every pushed change is authorized by role and scope, and every pull
// carries only the rows its user may read (README, "Security model").
#pragma once

#include <lindra/id.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lindra {

// What a token lets its holder do (README, "Security model").
enum class Role {
    candidate,    // their own progress and reflections, in groups they belong to
    mentor,       // gatherings, attendance and confirmations of the groups they lead
    coordinator,  // catalog, people, groups and memberships of their organization
    admin,        // a trusted back-office integration: every row, except certificates
};
std::string_view to_string(Role role);
// Throws lindra::Error(invalid_argument) naming the allowed roles.
Role parse_role(std::string_view text);

// Who a token says its holder is; signed, so the server trusts it.
struct TokenClaims {
    std::string user{};  // "sub": a stable user id, shown in the server's log
    Role role = Role::candidate;
    Id person{};        // the person row this user is; nil for admin
    Id organization{};  // coordinators: the organization they manage
    std::chrono::seconds ttl{std::chrono::hours(12)};
};

// A new Ed25519 private key for signing lindra tokens, as PEM (PKCS#8).
std::string generate_token_key();
// A token for `claims`, signed with `key_pem` (from generate_token_key),
// valid from `now_s` (seconds since the epoch; 0: now) for claims.ttl.
// Throws lindra::Error(invalid_argument) for a bad key or claims.
std::string issue_token(std::string_view key_pem, const TokenClaims& claims, std::string_view issuer = "lindra",
                        std::string_view audience = "lindra", std::int64_t now_s = 0);

// An external OpenID Connect identity provider whose JWTs the server takes.
// Its keys come from one of: its JWK Set (`jwks`), which follows the
// provider's key rotation, or one static key (`public_key_pem`).
struct OidcProvider {
    std::string issuer{};    // must equal the token's "iss"
    std::string audience{};  // must be in the token's "aud"
    // The provider's JWK Set (RFC 7517): its jwks_uri, https:// (http://
    // only to a loopback address, or with jwks_allow_http), or a file. The
    // token's "kid" picks the key; an unknown kid refetches the set, at most
    // once per jwks_min_refresh across all sessions. A set is kept for its
    // Cache-Control max-age (1 minute to 1 day; 5 minutes if it names none);
    // a failed refetch keeps the last good set for up to jwks_max_stale past
    // that, and a set that does not parse never replaces a good one.
    std::string jwks{};
    std::string jwks_ca_pem{};  // CAs trusted for an https jwks; empty: the system's
    bool jwks_allow_http = false;
    std::chrono::seconds jwks_min_refresh{30};
    std::chrono::seconds jwks_max_stale{std::chrono::hours(24)};
    std::string public_key_pem{};  // or one static key: EC P-256 or RSA
    std::vector<std::string> algorithms{"ES256", "RS256"};  // the allow-list; "none" and HS* never
    std::string role_claim = "lindra_role";
    std::string person_claim = "lindra_person";
    std::string organization_claim = "lindra_org";
};

struct TokenOptions {
    std::string key_pem{};  // verifies lindra's own tokens: the signing key or its public half
    std::string issuer = "lindra";
    std::string audience = "lindra";
    std::vector<OidcProvider> oidc{};
    std::chrono::seconds leeway{60};  // clock skew allowed on exp and nbf
};

struct TlsServerOptions {
    std::string certificate_chain_pem{};  // the server's certificate, then intermediates
    std::string private_key_pem{};
};

// The server as the issuer of course certificates (README, "Course
// completion and certificates").
struct IssuerOptions {
    // Ed25519 private keys in PEM (generate_issuer_key), oldest first: the
    // last signs new certificates; all are published to tablets, so those
    // signed with an older one still verify. None: the server issues no
    // certificates.
    std::vector<std::string> keys_pem{};
    // Open Badges' issuer.id, a URI (say the course provider's https URL);
    // empty: a urn:uuid derived from the first key.
    std::string id{};
    std::string name = "lindra";
};

// A new Ed25519 issuer key, PEM.
std::string generate_issuer_key();

// What a running server reports as it goes, for an operator's metrics
// (lindra-server maps it to Prometheus: README, "Operating the server"), so
// that the library itself needs no metrics library. It never carries a
// user, device, person or address. Called from the server's threads,
// several at once: an implementation must be thread-safe and quick, and
// must not throw.
class ServerObserver {
public:
    virtual ~ServerObserver() = default;
    // A connection became a session (before TLS and its Hello).
    virtual void session_opened() {}
    // A session ended, `length` after it opened: a tablet's round. `outcome`
    // is "ok" (welcomed, closed without an error), "refused" (an Error
    // frame), "unavailable" (the store was: the device retries) or
    // "dropped" (timed out, cut off, TLS failed, or never said Hello).
    virtual void session_closed(std::string_view /*outcome*/, std::chrono::nanoseconds /*length*/) {}
    // An Error frame was sent; `code` as in the protocol: "unauthenticated", ...
    virtual void refused(std::string_view /*code*/) {}
    // A call of the store, "hello", "push" or "pull", took `took`.
    virtual void store_call(std::string_view /*operation*/, std::chrono::nanoseconds /*took*/) {}
    // A push applied `applied` changes and refused `rejected` writes
    // (PushAck.rejected), and issued `certificates`.
    virtual void pushed(std::size_t /*applied*/, std::size_t /*rejected*/, std::size_t /*certificates*/) {}
    // A pull sent `changes`, and purges of `purged_rows` rows.
    virtual void pulled(std::size_t /*changes*/, std::size_t /*purged_rows*/) {}
    // Frame bodies received and sent.
    virtual void bytes(std::size_t /*received*/, std::size_t /*sent*/) {}
    // Connections the limits turned away, by `reason`: "address_cap",
    // "connection_cap", "shed_before_hello", "no_hello_in_time". Told as
    // each happens, on one of the server's I/O threads: only count here
    // (the server's log gathers them into a line a minute).
    virtual void turned_away(std::string_view /*reason*/, std::uint64_t /*count*/) {}
};

// The admin listener: HTTP on its own port, for an operator's probes and
// scrapes. GET /healthz answers 200 while the process runs; /readyz 200
// while the store answers and 503 while it does not (a PostgreSQL server
// down or unreachable); /metrics the text `metrics` returns. No
// authentication: keep it on loopback or a private network.
struct AdminOptions {
    std::string host = "127.0.0.1";
    std::optional<std::uint16_t> port{};  // none: no admin listener; 0: any free port
    // The body of /metrics, Prometheus' text format (version 0.0.4); empty:
    // no /metrics. Called on the admin listener's thread.
    std::function<std::string()> metrics{};
};

struct ServerOptions {
    std::string db_path{};
    IssuerOptions issuer{};
    std::string host = "127.0.0.1";
    std::uint16_t port = 0;  // 0: any free port, see SyncServer::port()
    TokenOptions tokens{};
    TlsServerOptions tls{};
    // Plain TCP, for local development and tests only: tokens and personal
    // data cross the network in the clear.
    bool insecure = false;
    std::size_t max_frame_bytes = std::size_t{4} << 20;
    // Per message. Larger batches are fewer transactions on both sides (a
    // batch of random-key rows rewrites most of a table's leaf pages);
    // pushes and pulls also stay within half a frame of values.
    std::uint32_t max_push_changes = 50'000;
    std::uint32_t max_pull_changes = 50'000;
    // Limits that keep one client from crowding out the rest (README,
    // "Connection limits"). A frame has io_timeout from its first byte plus
    // a second for every min_frame_rate bytes that have arrived, so its
    // bytes must keep coming at that rate; a reply must leave within
    // io_timeout plus its size at that rate.
    std::chrono::milliseconds io_timeout{30'000};
    std::size_t min_frame_rate = 16 * 1024;          // bytes per second
    std::chrono::milliseconds idle_timeout{60'000};  // between frames
    // From connecting to a welcomed Hello, the TLS handshake included.
    std::chrono::milliseconds hello_timeout{10'000};
    // Connections at once. Over the cap a new connection closes the oldest
    // one that has not said Hello yet, or is closed itself if every one has.
    std::size_t max_connections = 512;
    // Connections at once from one IPv4 address or IPv6 /64, refused beyond
    // it. The tablets of a care home or a hospital behind one NAT share one
    // address: raise it for large sites.
    std::size_t max_connections_per_address = 32;
    // Threads that move bytes (TLS, framing, timeouts), and threads that
    // handle the messages (the store work): 0 is one per core, at most 256
    // each. A session's messages are handled one at a time, in order.
    std::size_t io_threads = 0;
    std::size_t worker_threads = 0;
    // A pushed change stamped further ahead of the server's clock than this
    // is refused and reported in the PushAck, so a client whose clock runs
    // days ahead cannot win every conflict. A last resort: lindra's clients
    // restamp such changes at Welcome, after the server's time, and never
    // push one.
    std::chrono::milliseconds max_clock_ahead{std::chrono::hours(24)};
    std::function<std::int64_t()> wall_clock_ms{};
    // A PostgreSQL store (db_path a connection string) only. A statement of
    // the store's running longer than db_statement_timeout is cancelled (a
    // lock held elsewhere, say): nothing of its push or pull is applied and
    // the device is told to try again (ErrorMessage.retry_after_ms). A
    // session of the store's left idle inside a transaction longer than
    // db_idle_in_transaction_timeout is ended by PostgreSQL, so its locks
    // (the device's, the log head's) are never held for ever.
    std::chrono::milliseconds db_statement_timeout{30'000};
    std::chrono::milliseconds db_idle_in_transaction_timeout{60'000};
    // One line per session (peer, user, device, what moved, how it ended),
    // and a line with the counts of connections the limits above turned
    // away (at once, then at most one a minute), with the last address over
    // its cap; never a token or personal data. Called from the server's
    // worker threads, one call at a time; a slow log holds back store work,
    // never the network.
    std::function<void(std::string_view)> log{};
    // Told what the server does, for metrics; may be null.
    std::shared_ptr<ServerObserver> observer{};
    AdminOptions admin{};
};

// Thread-safety: construct, port(), admin_port() and stop() from one thread;
// reload() from any.
class SyncServer {
public:
    // Opens (creating if needed) the store and starts listening; throws
    // lindra::Error if either fails.
    explicit SyncServer(ServerOptions options);
    ~SyncServer();  // stop()
    SyncServer(const SyncServer&) = delete;
    SyncServer& operator=(const SyncServer&) = delete;

    std::uint16_t port() const noexcept;
    // The admin listener's port; 0 when there is none.
    std::uint16_t admin_port() const noexcept;
    // Takes a new TLS certificate and key, token keys and issuer keys (an
    // operator's SIGHUP) without closing a connection: new connections and
    // Hellos use them, sessions already welcomed go on. All are checked
    // first: if one is bad this throws lindra::Error saying which, and the
    // server goes on with the ones it had. TLS is ignored if the server is
    // insecure. New issuer keys are published to tablets before they sign.
    // Safe from any thread but the server's own callbacks.
    void reload(const TlsServerOptions& tls, const TokenOptions& tokens, const IssuerOptions& issuer);
    // Closes every connection and waits for the sessions to end. Idempotent.
    void stop();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// After the server's store was restored from a backup, and before any
// server runs on it: gives the store a new server id. Every tablet then
// starts its pull over at its next round (merging what it holds is
// harmless), rather than go on from a cursor whose positions the restored
// log hands out again to other writes. `db` as ServerOptions::db_path.
// Throws lindra::Error if the store cannot be opened.
Id renew_server_id(const std::string& db);

}  // namespace lindra
