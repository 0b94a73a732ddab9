// The baseline for `lindra-bench sync`: what a C++ developer would hand-roll
// instead of lindra, the SQLite session extension's changesets.
//
// Device A records its inserts with a session and takes one changeset
// (untimed). Then, timed, A sends it length-prefixed over loopback TCP to a
// server thread, which applies it to its own database in one transaction and
// forwards the same bytes over a second connection to device B, which applies
// it too. The clock stops when B's transaction has committed. All three
// databases are files with the pragmas and table shape of the local-writes
// raw baseline (WAL, synchronous=NORMAL, the domain DDL without lindra's
// clock column); databases and connections exist before the clock starts.
//
// The session API is declared only with these two macros. Defined here and
// before any include, so no other header pulls in <sqlite3.h> without them.
// Debian's libsqlite3 is built with the session extension and exports it.
#define SQLITE_ENABLE_SESSION
#define SQLITE_ENABLE_PREUPDATE_HOOK
#include <sqlite3.h>

#include "changeset.hpp"

#include "model/ddl.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <exception>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <limits>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace lindra::bench {
namespace {

constexpr int kModules = 20;
constexpr std::size_t kRowsPerTxn = 1000;

using Blob = std::vector<unsigned char>;

// ---- SQLite handles and calls -----------------------------------------------

struct CloseDb {
    void operator()(sqlite3* db) const noexcept { sqlite3_close_v2(db); }
};
struct DeleteSession {
    void operator()(sqlite3_session* s) const noexcept { sqlite3session_delete(s); }
};
struct FinalizeStmt {
    void operator()(sqlite3_stmt* st) const noexcept { sqlite3_finalize(st); }
};
struct SqliteFree {
    void operator()(void* p) const noexcept { sqlite3_free(p); }
};
using Db = std::unique_ptr<sqlite3, CloseDb>;
using Session = std::unique_ptr<sqlite3_session, DeleteSession>;
using Stmt = std::unique_ptr<sqlite3_stmt, FinalizeStmt>;

// A changeset in the buffer sqlite3session_changeset allocated.
struct Changeset {
    std::unique_ptr<void, SqliteFree> data;
    int size = 0;

    std::span<const unsigned char> bytes() const {
        return {static_cast<const unsigned char*>(data.get()), static_cast<std::size_t>(size)};
    }
};

// Throws unless `rc` is `ok`, with sqlite3_errmsg. The session functions
// return a code without always setting the connection's error; then the
// message is the code's text.
void check(int rc, sqlite3* db, std::string_view what, int ok = SQLITE_OK) {
    if (rc == ok) return;
    const bool described = db && (sqlite3_errcode(db) & 0xff) == (rc & 0xff);
    const char* msg = described ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    throw std::runtime_error(std::string(what) + ": " + msg);
}

void exec(sqlite3* db, const std::string& sql) {
    check(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), db, sql);
}

Stmt prepare(sqlite3* db, const char* sql) {
    sqlite3_stmt* st = nullptr;
    check(sqlite3_prepare_v2(db, sql, -1, &st, nullptr), db, sql);
    return Stmt(st);
}

// BEGIN now; ROLLBACK on destruction unless commit() succeeded.
class Transaction {
  public:
    explicit Transaction(sqlite3* db) : db_(db) { exec(db_, "BEGIN"); }
    ~Transaction() {
        if (db_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    }
    Transaction(const Transaction&) = delete;
    Transaction& operator=(const Transaction&) = delete;

    void commit() {
        exec(db_, "COMMIT");
        db_ = nullptr;
    }

  private:
    sqlite3* db_;
};

// A fresh database file with the benchmark's pragmas and the domain tables
// (without lindra's clock column), as in the local-writes raw baseline.
Db open_db(const std::filesystem::path& path) {
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path.string() + suffix);
    sqlite3* raw = nullptr;
    const int rc = sqlite3_open(path.c_str(), &raw);
    Db db(raw);  // sqlite3_open returns a handle to close even when it fails
    check(rc, db.get(), "open " + path.string());
    exec(db.get(), "PRAGMA journal_mode=WAL");
    exec(db.get(), "PRAGMA synchronous=NORMAL");
    for (const auto& sql : model::domain_ddl(1, false)) exec(db.get(), sql);
    return db;
}

std::int64_t count_rows(sqlite3* db, const char* table) {
    const Stmt st = prepare(db, (std::string("SELECT count(*) FROM ") + table).c_str());
    check(sqlite3_step(st.get()), db, "count rows", SQLITE_ROW);
    return sqlite3_column_int64(st.get(), 0);
}

// ---- Device A: the writes under a session, then the changeset ---------------

void bind_id(sqlite3_stmt* st, int col, const Id& id) {
    check(sqlite3_bind_blob(st, col, id.bytes.data(), static_cast<int>(id.bytes.size()), SQLITE_STATIC),
          sqlite3_db_handle(st), "bind id");
}

void bind_int(sqlite3_stmt* st, int col, std::int64_t v) {
    check(sqlite3_bind_int64(st, col, v), sqlite3_db_handle(st), "bind integer");
}

// The rows as raw INSERTs, kRowsPerTxn per transaction.
void insert_rows(sqlite3* db, const std::vector<ProgressRow>& rows) {
    const Stmt ins =
        prepare(db,
                "INSERT INTO module_progress (id, deleted, person_id, module_id, group_id, attempt, status,"
                " best_score, time_spent_s, first_completed_at) VALUES (?, 0, ?, ?, ?, ?, ?, ?, ?, ?)");
    sqlite3_stmt* st = ins.get();
    for (std::size_t begin = 0; begin < rows.size(); begin += kRowsPerTxn) {
        Transaction txn(db);
        for (std::size_t i = begin; i < std::min(rows.size(), begin + kRowsPerTxn); ++i) {
            const ProgressRow& r = rows[i];
            bind_id(st, 1, r.id);
            bind_id(st, 2, r.person);
            bind_id(st, 3, r.module);
            bind_id(st, 4, r.group);
            bind_int(st, 5, r.attempt);
            check(sqlite3_bind_text(st, 6, r.status.data(), static_cast<int>(r.status.size()), SQLITE_STATIC), db,
                  "bind status");
            bind_int(st, 7, r.best_score);
            bind_int(st, 8, r.time_spent_s);
            bind_int(st, 9, r.first_completed_at);
            check(sqlite3_step(st), db, "insert module_progress", SQLITE_DONE);
            check(sqlite3_reset(st), db, "reset insert");
        }
        txn.commit();
    }
}

// Device A's database at `path` with `rows` inserted while a session watches
// module_progress; returns the session's changeset.
Changeset record_changeset(const std::filesystem::path& path, const std::vector<ProgressRow>& rows) {
    const Db db = open_db(path);
    sqlite3_session* raw = nullptr;
    check(sqlite3session_create(db.get(), "main", &raw), db.get(), "sqlite3session_create");
    const Session session(raw);  // declared after db: deleted before the connection closes
    check(sqlite3session_attach(session.get(), "module_progress"), db.get(), "sqlite3session_attach");

    insert_rows(db.get(), rows);

    Changeset cs;
    void* data = nullptr;
    const int rc = sqlite3session_changeset(session.get(), &cs.size, &data);
    cs.data.reset(data);
    check(rc, db.get(), "sqlite3session_changeset");
    return cs;
}

// ---- Applying a changeset ---------------------------------------------------

const char* conflict_name(int type) {
    switch (type) {
        case SQLITE_CHANGESET_DATA:
            return "DATA";
        case SQLITE_CHANGESET_NOTFOUND:
            return "NOTFOUND";
        case SQLITE_CHANGESET_CONFLICT:
            return "CONFLICT";
        case SQLITE_CHANGESET_CONSTRAINT:
            return "CONSTRAINT";
        case SQLITE_CHANGESET_FOREIGN_KEY:
            return "FOREIGN_KEY";
        default:
            return "unknown";
    }
}

// The databases start empty, so any conflict is a bug: note it and abort.
// (Throwing through SQLite's C frames is not an option.)
int abort_on_conflict(void* ctx, int type, sqlite3_changeset_iter*) {
    *static_cast<int*>(ctx) = type;
    return SQLITE_CHANGESET_ABORT;
}

// Applies `changeset` to `db` in one transaction.
void apply_changeset(sqlite3* db, std::span<const unsigned char> changeset) {
    Transaction txn(db);
    int conflict = 0;
    // sqlite3changeset_apply only reads the buffer; its parameter is not const.
    void* data = const_cast<unsigned char*>(changeset.data());
    const int rc =
        sqlite3changeset_apply(db, static_cast<int>(changeset.size()), data, nullptr, abort_on_conflict, &conflict);
    if (conflict != 0)
        throw std::runtime_error(std::string("sqlite3changeset_apply: ") + conflict_name(conflict) +
                                 " conflict on a database that started empty");
    check(rc, db, "sqlite3changeset_apply");
    txn.commit();
}

// ---- Loopback TCP -----------------------------------------------------------

[[noreturn]] void fail_errno(const char* what) {
    throw std::system_error(errno, std::generic_category(), what);
}

// An owned socket descriptor.
class Socket {
  public:
    explicit Socket(int fd) noexcept : fd_(fd) {}
    Socket(Socket&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    Socket& operator=(Socket&&) = delete;
    ~Socket() {
        if (fd_ >= 0) ::close(fd_);
    }

    int fd() const noexcept { return fd_; }

  private:
    int fd_;
};

Socket tcp_socket() {
    Socket s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (s.fd() < 0) fail_errno("socket");
    return s;
}

// Both ends send a small length prefix and then the body: without
// TCP_NODELAY, Nagle plus delayed ACKs can hold the body's tail back ~40 ms.
void set_nodelay(const Socket& s) {
    const int on = 1;
    if (::setsockopt(s.fd(), IPPROTO_TCP, TCP_NODELAY, &on, sizeof on) != 0) fail_errno("setsockopt TCP_NODELAY");
}

struct Connection {
    Socket client, server;
};

// A TCP connection over 127.0.0.1: a listener on a port the kernel picks, a
// client connecting to it (the backlog completes the handshake, so one
// thread can do both), and the accepted end.
Connection connect_loopback() {
    const Socket listener = tcp_socket();
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    auto* sa = reinterpret_cast<sockaddr*>(&addr);
    socklen_t len = sizeof addr;
    if (::bind(listener.fd(), sa, sizeof addr) != 0) fail_errno("bind 127.0.0.1");
    if (::getsockname(listener.fd(), sa, &len) != 0) fail_errno("getsockname");
    if (::listen(listener.fd(), 1) != 0) fail_errno("listen");

    Socket client = tcp_socket();
    if (::connect(client.fd(), sa, sizeof addr) != 0) fail_errno("connect 127.0.0.1");
    int fd;
    do fd = ::accept4(listener.fd(), nullptr, nullptr, SOCK_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) fail_errno("accept");
    Socket server(fd);
    set_nodelay(client);
    set_nodelay(server);
    return {std::move(client), std::move(server)};
}

void send_all(const Socket& s, const unsigned char* p, std::size_t n) {
    while (n > 0) {
        const ssize_t k = ::send(s.fd(), p, n, MSG_NOSIGNAL);  // a closed peer is an error, not SIGPIPE
        if (k < 0) {
            if (errno == EINTR) continue;
            fail_errno("send");
        }
        p += k;
        n -= static_cast<std::size_t>(k);
    }
}

void recv_all(const Socket& s, unsigned char* p, std::size_t n) {
    while (n > 0) {
        const ssize_t k = ::recv(s.fd(), p, n, 0);
        if (k == 0) throw std::runtime_error("recv: connection closed by the peer");
        if (k < 0) {
            if (errno == EINTR) continue;
            fail_errno("recv");
        }
        p += k;
        n -= static_cast<std::size_t>(k);
    }
}

constexpr std::size_t kPrefixBytes = 8;

// A blob on the wire: its length as 8 bytes big-endian, then the bytes.
void send_blob(const Socket& s, std::span<const unsigned char> blob) {
    unsigned char prefix[kPrefixBytes];
    for (std::size_t i = 0; i < kPrefixBytes; ++i)
        prefix[i] = static_cast<unsigned char>(static_cast<std::uint64_t>(blob.size()) >> (8 * (7 - i)));
    send_all(s, prefix, kPrefixBytes);
    send_all(s, blob.data(), blob.size());
}

Blob recv_blob(const Socket& s) {
    unsigned char prefix[kPrefixBytes];
    recv_all(s, prefix, kPrefixBytes);
    std::uint64_t size = 0;
    for (unsigned char b : prefix) size = (size << 8) | b;
    // sqlite3changeset_apply takes an int size.
    if (size > static_cast<std::uint64_t>(std::numeric_limits<int>::max()))
        throw std::runtime_error("recv: blob of " + std::to_string(size) + " bytes is too large for a changeset");
    Blob blob(static_cast<std::size_t>(size));
    recv_all(s, blob.data(), blob.size());
    return blob;
}

// ---- The parts --------------------------------------------------------------

using Clock = std::chrono::steady_clock;

// The server: receives A's changeset, applies it, forwards the same bytes to B.
// The sockets are parameters by value so they close when the part returns or
// fails, and a peer waiting on one sees the connection end instead of hanging.
void serve(sqlite3* db, Socket from_a, Socket to_b) {
    const Blob blob = recv_blob(from_a);
    apply_changeset(db, blob);
    send_blob(to_b, blob);
}

// Device B: receives the changeset and applies it; `committed` is when.
void receive(sqlite3* db, Socket from_server, Clock::time_point& committed) {
    apply_changeset(db, recv_blob(from_server));
    committed = Clock::now();
}

// Device A: sends its changeset; `started` is when it began.
void send_changeset(const Changeset& changeset, Socket to_server, Clock::time_point& started) {
    started = Clock::now();
    send_blob(to_server, changeset.bytes());
}

// `part` wrapped to store what it throws in `error` instead of terminating.
template <class... Args>
auto guarded(std::exception_ptr& error, void (*part)(Args...)) {
    return [&error, part](Args... args) {
        try {
            part(std::forward<Args>(args)...);
        } catch (...) {
            error = std::current_exception();
        }
    };
}

// One failure usually breaks the other parts' connections too, so report
// every part that failed rather than guess which came first.
void throw_failures(std::initializer_list<std::pair<const char*, std::exception_ptr>> parts) {
    std::string msg;
    for (const auto& [who, error] : parts) {
        if (!error) continue;
        msg += msg.empty() ? "" : "; ";
        msg += who;
        msg += ": ";
        try {
            std::rethrow_exception(error);
        } catch (const std::exception& e) {
            msg += e.what();
        } catch (...) {
            msg += "unknown exception";
        }
    }
    if (!msg.empty()) throw std::runtime_error("changeset sync failed: " + msg);
}

// A deterministic id: the n-th of its kind.
Id numbered(std::string_view kind, int n) {
    Id seed;
    for (std::size_t i = 0; i < 4; ++i) seed.bytes[15 - i] = static_cast<std::uint8_t>(n >> (8 * i));
    return Id::derive(kind, {seed});
}

}  // namespace

// Finished module progress: attempt 1, completed, score 80, 5 to 65
// minutes spent, distinct completion times.
std::vector<ProgressRow> make_progress_rows(int count) {
    const Id group = numbered("bench.group", 0);
    std::vector<Id> modules;
    for (int m = 0; m < kModules; ++m) modules.push_back(numbered("bench.module", m));
    std::vector<ProgressRow> rows;
    rows.reserve(static_cast<std::size_t>(std::max(count, 0)));
    Id person;
    for (int i = 0; i < count; ++i) {
        if (i % kModules == 0) person = numbered("bench.person", i / kModules);
        const Id& module = modules[static_cast<std::size_t>(i % kModules)];
        rows.push_back({Id::derive("module_progress", {person, module, group}), person, module, group, 1, 80,
                        300 + (i * 7) % 3600, 1'700'000'000'000 + i, "completed"});
    }
    return rows;
}

ChangesetResult run_changeset(const std::vector<ProgressRow>& rows, const std::filesystem::path& dir) {
    // Untimed: A's writes and changeset, the receiving databases, the connections.
    const Changeset changeset = record_changeset(dir / "changeset-a.db", rows);
    const Db server_db = open_db(dir / "changeset-server.db");
    const Db b_db = open_db(dir / "changeset-b.db");
    Connection a_to_server = connect_loopback();
    Connection server_to_b = connect_loopback();

    Clock::time_point start, end;
    std::exception_ptr server_error, b_error, a_error;
    {
        // jthread joins when the block ends; A's part runs on this thread.
        const std::jthread server(guarded(server_error, serve), server_db.get(), std::move(a_to_server.server),
                                  std::move(server_to_b.client));
        const std::jthread device_b(guarded(b_error, receive), b_db.get(), std::move(server_to_b.server),
                                    std::ref(end));
        guarded(a_error, send_changeset)(changeset, std::move(a_to_server.client), start);
    }
    throw_failures({{"server", server_error}, {"device B", b_error}, {"device A", a_error}});

    const auto arrived = count_rows(b_db.get(), "module_progress");
    if (arrived != static_cast<std::int64_t>(rows.size()))
        throw std::runtime_error("changeset sync: device B holds " + std::to_string(arrived) +
                                 " module_progress rows, expected " + std::to_string(rows.size()));

    ChangesetResult result;
    result.seconds = std::chrono::duration<double>(end - start).count();
    result.changeset_bytes = kPrefixBytes + changeset.bytes().size();
    result.bytes_per_row =
        rows.empty() ? 0 : static_cast<double>(result.changeset_bytes) / static_cast<double>(rows.size());
    return result;
}

}  // namespace lindra::bench
