// A small RAII layer over libpq, for the server's PostgreSQL backend.
//
// Only this layer calls PQ* functions (as only store/ calls sqlite3_*), and
// only store/pg*.cpp include libpq-fe.h; this header forward-declares
// libpq's two handle types.
//
// Errors are pg::Error (a lindra::Error carrying the SQLSTATE):
//   Errc::unavailable  the server cannot be reached or the connection was
//                      lost (connection_lost()); a Pool reconnects
//   Errc::busy         statement_timeout or lock_timeout fired, deadlock,
//                      serialization failure
//   Errc::read_only    a read-only transaction or server
//   Errc::storage      any other error the server reported
// retryable() says whether running the same transaction again may succeed.
//
// Parameters are sent in binary with their types named, so a statement is
// prepared with the types of the values it is first run with. Results of
// query() come back in binary; exec()'s come as text; Result reads both.
#pragma once

#include <lindra/error.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

struct pg_conn;    // libpq's PGconn
struct pg_result;  // libpq's PGresult

namespace lindra::store::pg {

// ---- errors ---------------------------------------------------------------

class Error : public lindra::Error {
  public:
    Error(Errc code, const std::string& message, std::string sqlstate = {})
        : lindra::Error(code, message), sqlstate_(std::move(sqlstate)) {}

    // The five-character SQLSTATE the server reported ("40P01"); empty when
    // the error came from the client side (connection lost, bad input).
    const std::string& sqlstate() const noexcept { return sqlstate_; }
    // Running the whole transaction again may succeed: serialization
    // failure (40001), deadlock (40P01) or unique violation (23505, a
    // concurrent insert of the same key; the retry sees the other row).
    bool retryable() const noexcept;
    // The connection is gone (or never came up): reconnect, then retry.
    bool connection_lost() const noexcept { return errc() == Errc::unavailable; }

  private:
    std::string sqlstate_;
};

// Classification of a SQLSTATE alone, as pg::Error uses it.
bool is_retryable(std::string_view sqlstate) noexcept;
// Class 08 (connection exception), 57P01 admin_shutdown, 57P02
// crash_shutdown, 57P03 cannot_connect_now, 53300 too_many_connections.
bool is_connection_error(std::string_view sqlstate) noexcept;

// ---- parameters -----------------------------------------------------------

// PostgreSQL type OIDs of the values lindra sends.
enum class Type : unsigned {
    unknown = 0,  // a null: the server infers the type
    bytea = 17,
    int8 = 20,
    int2 = 21,
    text = 25,
    int2_array = 1005,
    text_array = 1009,
    bytea_array = 1001,
    int8_array = 1016,
};

using Bytes = std::vector<std::uint8_t>;

// One parameter value, owned, in PostgreSQL's binary format. Arrays are
// one-dimensional, for `unnest($1::bytea[], $2::int8[])` bulk statements.
class Param {
  public:
    Param(std::nullptr_t) : type_(Type::unknown), null_(true) {}
    Param(std::int64_t v);
    Param(int v) : Param(static_cast<std::int64_t>(v)) {}
    Param(std::string_view text);  // text; PostgreSQL's text holds no NUL byte
    Param(const char* text) : Param(std::string_view(text)) {}
    Param(const std::string& text) : Param(std::string_view(text)) {}
    Param(std::span<const std::uint8_t> bytes);  // bytea
    Param(const Bytes& bytes) : Param(std::span<const std::uint8_t>(bytes)) {}

    static Param null() { return Param(nullptr); }
    static Param int2(std::int16_t v);
    static Param bytea(std::string_view bytes);
    static Param int8_array(std::span<const std::int64_t> values);
    static Param int2_array(std::span<const std::int16_t> values);
    static Param text_array(std::span<const std::string> values);
    static Param bytea_array(std::span<const Bytes> values);
    static Param bytea_array(std::span<const std::string> values);

    Type type() const noexcept { return type_; }
    bool is_null() const noexcept { return null_; }
    const std::string& data() const noexcept { return data_; }

  private:
    Param(Type type, std::string data) : type_(type), data_(std::move(data)) {}
    Type type_;
    bool null_ = false;
    std::string data_;
};

using Params = std::span<const Param>;

// ---- results --------------------------------------------------------------

// A result set, owned. Row and column indexes are checked: a wrong one, a
// null read as a value, or a value of another type throws
// Errc::invalid_argument. Reading is safe from any thread; it is immutable.
class Result {
  public:
    Result() = default;
    explicit Result(pg_result* r) noexcept : r_(r) {}
    Result(Result&& o) noexcept : r_(std::exchange(o.r_, nullptr)) {}
    Result& operator=(Result&& o) noexcept;
    ~Result();
    Result(const Result&) = delete;
    Result& operator=(const Result&) = delete;

    int rows() const noexcept;
    int columns() const noexcept;
    // The column's index by name; throws if there is none.
    int column(std::string_view name) const;
    // Rows an INSERT, UPDATE or DELETE touched (PQcmdTuples), 0 otherwise.
    std::int64_t affected() const noexcept;

    bool is_null(int row, int col) const;
    // int2, int4 or int8 columns.
    std::int64_t int64(int row, int col) const;
    bool boolean(int row, int col) const;
    // The value's bytes as the server sent them: text as is, bytea decoded.
    std::string text(int row, int col) const;
    Bytes bytes(int row, int col) const;
    // bytea as a std::string of raw bytes.
    std::string bytea(int row, int col) const;

    pg_result* native() const noexcept { return r_; }

  private:
    void check(int row, int col) const;
    pg_result* r_ = nullptr;
};

// ---- connection -----------------------------------------------------------

// `conninfo` (a URI or keyword string) as a keyword string with `key` set
// to `value`, e.g. another dbname. Throws Errc::invalid_argument if
// conninfo is malformed.
std::string conninfo_with(const std::string& conninfo, std::string_view key, std::string_view value);

struct ConnectOptions {
    // Every statement is cancelled after this long (57014, Errc::busy).
    std::chrono::milliseconds statement_timeout{30'000};
    // A session idle inside a transaction this long is ended by the server.
    std::chrono::milliseconds idle_in_transaction_timeout{60'000};
    // Giving up on an unreachable server; the connection string's own
    // connect_timeout wins.
    std::chrono::seconds connect_timeout{10};
    // Shown in pg_stat_activity; the connection string's own wins.
    std::string application_name = "lindra-server";
};

// A statement prepared once per connection, on first use, under a name
// unique in the program, with the types of the values of that first use.
// A null has no type (the server infers one): where a first use may pass
// null, cast the parameter in the SQL ($1::int8). Declare statements as
// constants beside their SQL.
struct Statement {
    std::string name;
    std::string sql;
};

// One session with the server, owned. Thread-safety: one thread at a time
// (libpq's rule for a PGconn); a Pool hands each to one user at a time.
class Connection {
  public:
    // Connects with a libpq URI ("postgresql://user@host:port/db") or
    // keyword string ("host=... port=... dbname=..."), then sets the
    // session's timeouts. Throws Errc::invalid_argument for a malformed
    // string and Errc::unavailable if the server cannot be reached or
    // refuses; the message names host, port, database and user (never the
    // password) and says what to check.
    explicit Connection(const std::string& conninfo, const ConnectOptions& options = {});
    ~Connection();
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    // Runs one or more SQL commands without parameters (simple protocol);
    // returns the last command's result.
    Result exec(std::string_view sql);
    // Prepares `sql` as `name`; with no types the server infers them, and
    // each value sent must then be of exactly the inferred type.
    void prepare(const std::string& name, std::string_view sql, std::span<const Type> types = {});
    // Runs one statement with parameters (unnamed, typed by the values).
    Result query(std::string_view sql, Params params = {});
    Result query(std::string_view sql, std::initializer_list<Param> params) {
        return query(sql, Params(params.begin(), params.size()));
    }
    // Runs a prepared statement, preparing it on this connection first if
    // this is its first use here.
    Result query(const Statement& statement, Params params = {});
    Result query(const Statement& statement, std::initializer_list<Param> params) {
        return query(statement, Params(params.begin(), params.size()));
    }
    // Runs a statement prepare() made.
    Result query_prepared(const std::string& name, Params params = {});

    // The connection is up as far as this process knows, and not broken by
    // a failed rollback. alive() also reads what the server has sent (a
    // termination notice) without waiting, so a connection the server
    // closed while idle is seen as lost.
    bool ok() const noexcept;
    bool alive() noexcept;
    // Inside a transaction block (BEGIN without COMMIT or ROLLBACK yet).
    bool in_transaction() const noexcept;
    // Marks the connection unusable: a Pool drops it instead of reusing it.
    void discard() noexcept { broken_ = true; }
    // "host:port/dbname as user", for messages; never holds the password.
    const std::string& target() const noexcept { return target_; }
    // The server process serving this session (pg_backend_pid()).
    int backend_pid() const noexcept;

    pg_conn* native() const noexcept { return conn_; }

  private:
    friend class Pipeline;
    friend class Listener;
    // Throws the pg::Error for a failed result (or a null one) of `what`.
    [[noreturn]] void fail(pg_result* r, std::string_view what);
    // Takes a result of a synchronous call and checks it.
    Result take(pg_result* r, std::string_view what);
    bool is_prepared(const std::string& name) const { return prepared_.count(name) != 0; }

    pg_conn* conn_ = nullptr;
    std::string target_;
    bool broken_ = false;
    std::unordered_set<std::string> prepared_;
};

// A transaction block: BEGIN in the constructor, commit() commits, the
// destructor rolls back if commit() was not reached and never throws (a
// failed rollback discards the connection). One thread at a time.
class Transaction {
  public:
    enum class Isolation { read_committed, repeatable_read, serializable };
    explicit Transaction(Connection& conn, Isolation isolation = Isolation::read_committed, bool read_only = false);
    ~Transaction();
    Transaction(const Transaction&) = delete;
    Transaction& operator=(const Transaction&) = delete;

    void commit();

  private:
    Connection& conn_;
    bool done_ = false;
};

// Pipeline mode: statements are sent without waiting for each result, and
// sync() sends one Sync and reads every result. Without an enclosing
// Transaction, the statements between two syncs run as one implicit
// transaction: if one fails the server skips the rest (their results are
// PGRES_PIPELINE_ABORTED) and rolls all of them back, and sync() throws the
// first error. While a Pipeline lives its connection takes no other calls.
// One thread at a time.
class Pipeline {
  public:
    explicit Pipeline(Connection& conn);
    // Reads and drops whatever sync() did not (never throws; a connection
    // left in an unknown state is discarded) and leaves pipeline mode.
    ~Pipeline();
    Pipeline(const Pipeline&) = delete;
    Pipeline& operator=(const Pipeline&) = delete;

    // Queues a prepared statement (prepared first if new on this connection).
    void send(const Statement& statement, Params params = {});
    void send(const Statement& statement, std::initializer_list<Param> params) {
        send(statement, Params(params.begin(), params.size()));
    }
    // Queues an unnamed statement.
    void send(std::string_view sql, Params params = {});
    void send(std::string_view sql, std::initializer_list<Param> params) {
        send(sql, Params(params.begin(), params.size()));
    }
    // Sends a Sync and returns one Result per send(), in order. Throws the
    // first failure, after reading the rest of the pipeline, so the
    // connection is ready for more.
    std::vector<Result> sync();
    std::size_t pending() const noexcept { return queue_.size(); }

  private:
    struct Entry {
        std::string what;     // statement name or SQL, for messages
        std::string prepare;  // non-empty: a Prepare of this name, no user result
    };
    void drain() noexcept;
    Connection& conn_;
    std::vector<Entry> queue_;
};

// ---- pool -----------------------------------------------------------------

struct PoolOptions {
    std::size_t size = 8;
    // How long acquire() waits for a free connection by default.
    std::chrono::milliseconds acquire_timeout{5'000};
    ConnectOptions connect{};
};

// Up to `size` connections to one server, shared by threads. Connections
// are made lazily, when acquire() finds none idle; one found lost (the
// server closed it, or its user saw it fail) is dropped and replaced on a
// later acquire(). Safe from any thread; a Lease is one thread's at a time.
// The Pool must outlive its leases.
class Pool {
  public:
    class Lease {
      public:
        Lease(Lease&& o) noexcept : pool_(std::exchange(o.pool_, nullptr)), conn_(std::move(o.conn_)) {}
        Lease& operator=(Lease&&) = delete;
        Lease(const Lease&) = delete;
        // Returns the connection to the pool, or drops it if it was lost,
        // discarded, or left inside a transaction or pipeline.
        ~Lease();
        Connection& operator*() const noexcept { return *conn_; }
        Connection* operator->() const noexcept { return conn_.get(); }

      private:
        friend class Pool;
        Lease(Pool* pool, std::unique_ptr<Connection> conn) : pool_(pool), conn_(std::move(conn)) {}
        Pool* pool_;
        std::unique_ptr<Connection> conn_;
    };

    explicit Pool(std::string conninfo, PoolOptions options = {});
    ~Pool();
    Pool(const Pool&) = delete;
    Pool& operator=(const Pool&) = delete;

    // A connection for the caller alone. Throws Errc::busy if all are in
    // use for the whole timeout, Errc::unavailable if a new connection is
    // needed and the server cannot be reached.
    Lease acquire();
    Lease acquire(std::chrono::milliseconds timeout);

    std::size_t size() const noexcept { return options_.size; }
    // Connections open now, idle or leased (for tests and metrics).
    std::size_t open() const;

  private:
    void release(std::unique_ptr<Connection> conn) noexcept;
    const std::string conninfo_;
    const PoolOptions options_;
    mutable std::mutex mutex_;
    std::condition_variable freed_;
    std::vector<std::unique_ptr<Connection>> idle_;  // guarded by mutex_
    std::size_t leased_ = 0;                         // guarded by mutex_; connecting ones too
};

// ---- notifications --------------------------------------------------------

struct Notification {
    std::string channel;
    std::string payload;
    int sender_pid = 0;
};

// One connection that LISTENs on a channel, for wake-ups. A lost
// connection is made again on the next wait(); notifications sent while it
// was down are lost, which wait() reports as Wake::resync so the caller
// rereads what it watches. One thread at a time, except interrupt().
class Listener {
  public:
    enum class Wake {
        notified,  // notifications() holds at least one
        timeout,   // nothing arrived in time
        resync,    // (re)connected, or could not: notifications may be missed
        interrupted,
    };
    // Does not connect: the first wait() does, and returns Wake::resync.
    Listener(std::string conninfo, std::string channel, ConnectOptions options = {});
    ~Listener();
    Listener(const Listener&) = delete;
    Listener& operator=(const Listener&) = delete;

    // Waits up to `timeout` for a notification on the channel.
    Wake wait(std::chrono::milliseconds timeout);
    // What the last wait() that returned Wake::notified received.
    const std::vector<Notification>& notifications() const noexcept { return received_; }
    // Makes a wait() in another thread (or the next one) return
    // Wake::interrupted at once. Safe from any thread.
    void interrupt() noexcept;
    // The last connection failure, for logs; empty once connected.
    const std::string& last_error() const noexcept { return last_error_; }

  private:
    bool collect();
    bool connect();
    const std::string conninfo_;
    const std::string channel_;
    const ConnectOptions options_;
    std::unique_ptr<Connection> conn_;
    std::vector<Notification> received_;
    std::string last_error_;
    int wake_fds_[2] = {-1, -1};  // a pipe: interrupt() writes, wait() polls
};

}  // namespace lindra::store::pg
