// Connection, Result, parameters, errors, Transaction and Pipeline.
#include "store/pg.hpp"

#include "core/log.hpp"

#include <libpq-fe.h>
#include <poll.h>

#include <charconv>
#include <cstring>

namespace lindra::store::pg {
namespace {

constexpr Oid kBool = 16, kBytea = 17, kInt8 = 20, kInt2 = 21, kInt4 = 23;

// libpq's messages end in a newline and may span lines ("\n\tIs the server
// running...?"): one line for lindra's messages.
std::string one_line(std::string_view s) {
    std::string out;
    bool space = false;
    for (char c : s) {
        if (c == '\n' || c == '\t' || c == '\r' || c == ' ') {
            space = !out.empty();
            continue;
        }
        if (space) out += ' ';
        space = false;
        out += c;
    }
    return out;
}

// A statement's SQL as a short name for messages.
std::string describe(std::string_view sql) {
    std::string s = one_line(sql);
    if (s.size() > 80) s = s.substr(0, 77) + "...";
    return s;
}

void put_be(std::string& out, std::uint64_t v, int bytes) {
    for (int i = bytes - 1; i >= 0; --i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}

std::uint64_t get_be(const char* p, int bytes) {
    std::uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
    return v;
}

// PostgreSQL's binary array (array_recv): ndim, has-nulls flag, element
// type, then per dimension its length and lower bound, then each element
// as a length and its bytes. An empty array has no dimension.
template <class Range, class Put>
std::string binary_array(Type element, const Range& values, Put put) {
    std::string out;
    const auto n = static_cast<std::uint64_t>(std::size(values));
    if (n > 0x7fffffff) throw Error(Errc::invalid_argument, "PostgreSQL array of more than 2^31 - 1 elements");
    put_be(out, n ? 1 : 0, 4);
    put_be(out, 0, 4);
    put_be(out, static_cast<unsigned>(element), 4);
    if (n) {
        put_be(out, n, 4);
        put_be(out, 1, 4);
    }
    std::string item;
    for (const auto& v : values) {
        item.clear();
        put(item, v);
        if (item.size() > 0x7fffffff) throw Error(Errc::invalid_argument, "PostgreSQL array element over 2 GiB");
        put_be(out, item.size(), 4);
        out += item;
    }
    return out;
}

Errc classify(std::string_view state) {
    if (is_connection_error(state)) return Errc::unavailable;
    if (state == "57014" || state == "55P03" || state == "40001" || state == "40P01") return Errc::busy;
    if (state == "25006") return Errc::read_only;
    if (state == "XX001" || state == "XX002") return Errc::corrupt;
    return Errc::storage;
}

// The typed parameter arrays libpq takes, pointing into `params`.
struct Wire {
    explicit Wire(Params params) {
        for (const Param& p : params) {
            types.push_back(static_cast<Oid>(p.type()));
            values.push_back(p.is_null() ? nullptr : p.data().data());
            lengths.push_back(static_cast<int>(p.data().size()));
            formats.push_back(1);
        }
    }
    int count() const { return static_cast<int>(types.size()); }
    std::vector<Oid> types;
    std::vector<const char*> values;
    std::vector<int> lengths;
    std::vector<int> formats;
};

// The server's notices (WARNING, NOTICE) go to lindra's log instead of
// libpq's default, stderr. Severity, SQLSTATE and the primary message only.
void on_notice(void*, const PGresult* r) {
    const char* severity = PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED);
    const bool warning = severity && (std::strcmp(severity, "WARNING") == 0 || std::strcmp(severity, "FATAL") == 0 ||
                                      std::strcmp(severity, "PANIC") == 0);
    const LogLevel level = warning ? LogLevel::warning : LogLevel::debug;
    if (!detail::log_enabled(level)) return;
    const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    const char* primary = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    detail::log(level, "postgres",
                std::string(severity ? severity : "NOTICE") + " [" + (state ? state : "") +
                    "]: " + one_line(primary ? primary : ""));
}

}  // namespace

// ---- errors ---------------------------------------------------------------

bool is_retryable(std::string_view s) noexcept { return s == "40001" || s == "40P01" || s == "23505"; }

bool is_connection_error(std::string_view s) noexcept {
    return s.starts_with("08") || s == "57P01" || s == "57P02" || s == "57P03" || s == "53300";
}

bool Error::retryable() const noexcept { return is_retryable(sqlstate_); }

// ---- parameters -----------------------------------------------------------

Param::Param(std::int64_t v) : type_(Type::int8) { put_be(data_, static_cast<std::uint64_t>(v), 8); }
Param::Param(std::string_view text) : type_(Type::text), data_(text) {}
Param::Param(std::span<const std::uint8_t> bytes)
    : type_(Type::bytea), data_(reinterpret_cast<const char*>(bytes.data()), bytes.size()) {}

Param Param::int2(std::int16_t v) {
    std::string d;
    put_be(d, static_cast<std::uint16_t>(v), 2);
    return Param(Type::int2, std::move(d));
}
Param Param::bytea(std::string_view bytes) { return Param(Type::bytea, std::string(bytes)); }

Param Param::int8_array(std::span<const std::int64_t> values) {
    return Param(Type::int8_array, binary_array(Type::int8, values, [](std::string& o, std::int64_t v) {
                     put_be(o, static_cast<std::uint64_t>(v), 8);
                 }));
}
Param Param::int2_array(std::span<const std::int16_t> values) {
    return Param(Type::int2_array, binary_array(Type::int2, values, [](std::string& o, std::int16_t v) {
                     put_be(o, static_cast<std::uint16_t>(v), 2);
                 }));
}
Param Param::text_array(std::span<const std::string> values) {
    return Param(Type::text_array,
                 binary_array(Type::text, values, [](std::string& o, const std::string& v) { o += v; }));
}
Param Param::bytea_array(std::span<const Bytes> values) {
    return Param(Type::bytea_array, binary_array(Type::bytea, values, [](std::string& o, const Bytes& v) {
                     o.append(reinterpret_cast<const char*>(v.data()), v.size());
                 }));
}
Param Param::bytea_array(std::span<const std::string> values) {
    return Param(Type::bytea_array,
                 binary_array(Type::bytea, values, [](std::string& o, const std::string& v) { o += v; }));
}

// ---- results --------------------------------------------------------------

Result& Result::operator=(Result&& o) noexcept {
    if (this != &o) {
        if (r_) PQclear(r_);
        r_ = std::exchange(o.r_, nullptr);
    }
    return *this;
}
Result::~Result() {
    if (r_) PQclear(r_);
}

int Result::rows() const noexcept { return r_ ? PQntuples(r_) : 0; }
int Result::columns() const noexcept { return r_ ? PQnfields(r_) : 0; }

int Result::column(std::string_view name) const {
    const std::string n(name);
    const int i = r_ ? PQfnumber(r_, n.c_str()) : -1;
    if (i < 0) throw Error(Errc::invalid_argument, "PostgreSQL result has no column " + n);
    return i;
}

std::int64_t Result::affected() const noexcept {
    const char* s = r_ ? PQcmdTuples(r_) : "";
    std::int64_t n = 0;
    std::from_chars(s, s + std::strlen(s), n);
    return n;
}

void Result::check(int row, int col) const {
    if (row < 0 || row >= rows() || col < 0 || col >= columns())
        throw Error(Errc::invalid_argument, "PostgreSQL result has no cell (" + std::to_string(row) + ", " +
                                                std::to_string(col) + "); it has " + std::to_string(rows()) +
                                                " rows and " + std::to_string(columns()) + " columns");
    if (PQgetisnull(r_, row, col))
        throw Error(Errc::invalid_argument,
                    std::string("PostgreSQL column ") + PQfname(r_, col) + " is null in row " + std::to_string(row));
}

bool Result::is_null(int row, int col) const {
    if (row < 0 || row >= rows() || col < 0 || col >= columns())
        throw Error(Errc::invalid_argument, "PostgreSQL result has no cell (" + std::to_string(row) + ", " +
                                                std::to_string(col) + ")");
    return PQgetisnull(r_, row, col) != 0;
}

std::int64_t Result::int64(int row, int col) const {
    check(row, col);
    const Oid type = PQftype(r_, col);
    const char* v = PQgetvalue(r_, row, col);
    const int len = PQgetlength(r_, row, col);
    if (type != kInt8 && type != kInt4 && type != kInt2)
        throw Error(Errc::invalid_argument, std::string("PostgreSQL column ") + PQfname(r_, col) +
                                                " is not an integer (type oid " + std::to_string(type) + ")");
    if (PQfformat(r_, col) == 1) {
        const std::uint64_t u = get_be(v, len);
        if (len == 8) return static_cast<std::int64_t>(u);
        if (len == 4) return static_cast<std::int32_t>(u);
        return static_cast<std::int16_t>(u);
    }
    std::int64_t n = 0;
    const auto [end, ec] = std::from_chars(v, v + len, n);
    if (ec != std::errc{} || end != v + len)
        throw Error(Errc::invalid_argument, std::string("PostgreSQL column ") + PQfname(r_, col) + ": not an integer");
    return n;
}

bool Result::boolean(int row, int col) const {
    check(row, col);
    if (PQftype(r_, col) != kBool)
        throw Error(Errc::invalid_argument, std::string("PostgreSQL column ") + PQfname(r_, col) + " is not a boolean");
    const char* v = PQgetvalue(r_, row, col);
    return PQfformat(r_, col) == 1 ? v[0] != 0 : v[0] == 't';
}

std::string Result::text(int row, int col) const {
    check(row, col);
    const Oid type = PQftype(r_, col);
    if (PQfformat(r_, col) == 1 && (type == kInt8 || type == kInt4 || type == kInt2))
        return std::to_string(int64(row, col));
    if (PQfformat(r_, col) == 1 && type == kBool) return boolean(row, col) ? "t" : "f";
    return {PQgetvalue(r_, row, col), static_cast<std::size_t>(PQgetlength(r_, row, col))};
}

std::string Result::bytea(int row, int col) const {
    check(row, col);
    const char* v = PQgetvalue(r_, row, col);
    const auto len = static_cast<std::size_t>(PQgetlength(r_, row, col));
    if (PQfformat(r_, col) == 1 || PQftype(r_, col) != kBytea) return {v, len};
    // Text format: bytea_output = hex, "\x" then two digits a byte.
    if (len < 2 || v[0] != '\\' || v[1] != 'x' || len % 2)
        throw Error(Errc::invalid_argument, std::string("PostgreSQL column ") + PQfname(r_, col) +
                                                ": bytea not in hex format (bytea_output must be hex)");
    std::string out;
    out.reserve((len - 2) / 2);
    for (std::size_t i = 2; i < len; i += 2) {
        unsigned b = 0;
        const auto [end, ec] = std::from_chars(v + i, v + i + 2, b, 16);
        if (ec != std::errc{} || end != v + i + 2)
            throw Error(Errc::invalid_argument, std::string("PostgreSQL column ") + PQfname(r_, col) + ": bad hex");
        out += static_cast<char>(b);
    }
    return out;
}

Bytes Result::bytes(int row, int col) const {
    const std::string s = bytea(row, col);
    return Bytes(s.begin(), s.end());
}

// ---- connection -----------------------------------------------------------

namespace {

// The passwords a connection string libpq could not parse may hold: a
// URI's "user:PASSWORD@", a "password=PASSWORD" keyword or URI parameter.
// libpq's parse errors quote the string, or a part of it.
std::vector<std::string> passwords_in(std::string_view conninfo) {
    std::vector<std::string> out;
    if (const auto scheme = conninfo.find("://"); scheme != std::string_view::npos) {
        const auto rest = conninfo.substr(scheme + 3);
        const auto at = rest.substr(0, rest.find('/')).rfind('@');
        if (at != std::string_view::npos) {
            const auto userinfo = rest.substr(0, at);
            if (const auto colon = userinfo.find(':'); colon != std::string_view::npos)
                out.emplace_back(userinfo.substr(colon + 1));
        }
    }
    for (auto at = conninfo.find("password"); at != std::string_view::npos; at = conninfo.find("password", at + 1)) {
        auto v = conninfo.substr(at + 8);
        while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
        if (v.empty() || v.front() != '=') continue;
        v.remove_prefix(1);
        while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
        if (!v.empty() && v.front() == '\'') v.remove_prefix(1);
        out.emplace_back(v.substr(0, v.find_first_of(" &'")));
    }
    std::erase_if(out, [](const std::string& p) { return p.empty(); });
    return out;
}

PQconninfoOption* parse_conninfo(const std::string& conninfo) {
    char* parse_error = nullptr;
    PQconninfoOption* parsed = PQconninfoParse(conninfo.c_str(), &parse_error);
    if (!parsed) {
        std::string why = parse_error ? one_line(parse_error) : "out of memory";
        if (parse_error) PQfreemem(parse_error);
        // Never the password, even in a string that did not parse.
        for (const auto& password : passwords_in(conninfo))
            for (auto at = why.find(password); at != std::string::npos; at = why.find(password, at + 4))
                why.replace(at, password.size(), "****");
        throw Error(Errc::invalid_argument, "invalid PostgreSQL connection string: " + why +
                                                "; expected postgresql://user@host:port/dbname or "
                                                "\"host=... port=... dbname=... user=...\"");
    }
    return parsed;
}

void append_quoted(std::string& out, std::string_view v) {
    out += '\'';
    for (char c : v) {
        if (c == '\'' || c == '\\') out += '\\';
        out += c;
    }
    out += '\'';
}

}  // namespace

std::string conninfo_with(const std::string& conninfo, std::string_view key, std::string_view value) {
    PQconninfoOption* parsed = parse_conninfo(conninfo);
    std::string out;
    for (const PQconninfoOption* o = parsed; o->keyword; ++o) {
        if (!o->val || o->keyword == key) continue;
        out += o->keyword;
        out += '=';
        append_quoted(out, o->val);
        out += ' ';
    }
    PQconninfoFree(parsed);
    out += key;
    out += '=';
    append_quoted(out, value);
    return out;
}

Connection::Connection(const std::string& conninfo, const ConnectOptions& options) {
    PQconninfoFree(parse_conninfo(conninfo));

    // Entries before dbname (which expands the caller's string) are
    // defaults the string may override.
    const std::string timeout = std::to_string(options.connect_timeout.count());
    const char* keys[] = {"connect_timeout", "application_name", "client_encoding", "dbname", nullptr};
    const char* values[] = {timeout.c_str(), options.application_name.c_str(), "UTF8", conninfo.c_str(), nullptr};
    conn_ = PQconnectdbParams(keys, values, 1);
    if (!conn_) throw Error(Errc::unavailable, "cannot connect to PostgreSQL: out of memory");
    PQsetNoticeReceiver(conn_, on_notice, nullptr);

    auto str = [](const char* s) { return std::string(s && *s ? s : "?"); };
    target_ = str(PQhost(conn_)) + ":" + str(PQport(conn_)) + "/" + str(PQdb(conn_)) + " as " + str(PQuser(conn_));
    if (PQstatus(conn_) != CONNECTION_OK) {
        const std::string why = one_line(PQerrorMessage(conn_));
        PQfinish(conn_);
        conn_ = nullptr;
        throw Error(Errc::unavailable, "cannot connect to PostgreSQL at " + target_ + ": " + why +
                                           " Check that the server is running and that the connection string "
                                           "(host, port, dbname, user, password) is right.");
    }
    try {
        exec("SET statement_timeout = " + std::to_string(options.statement_timeout.count()) +
             "; SET idle_in_transaction_session_timeout = " +
             std::to_string(options.idle_in_transaction_timeout.count()));
    } catch (...) {
        PQfinish(conn_);
        throw;
    }
}

Connection::~Connection() {
    if (conn_) PQfinish(conn_);
}

void Connection::fail(pg_result* r, std::string_view what) {
    std::string state, why;
    if (r) {
        if (const char* s = PQresultErrorField(r, PG_DIAG_SQLSTATE)) state = s;
        const char* primary = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
        why = one_line(primary ? primary : PQresultErrorMessage(r));
        if (const char* detail = PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL)) why += " (" + one_line(detail) + ")";
        if (why.empty()) why = std::string("unexpected result ") + PQresStatus(PQresultStatus(r));
        PQclear(r);
    }
    if (why.empty()) why = one_line(PQerrorMessage(conn_));
    const bool lost = PQstatus(conn_) != CONNECTION_OK || is_connection_error(state);
    if (lost) broken_ = true;
    std::string message = "PostgreSQL " + target_ + ": " + std::string(what) + ": " + why;
    if (!state.empty()) message += " [SQLSTATE " + state + "]";
    if (lost) message += "; the connection is lost, a new one is needed";
    throw Error(lost ? Errc::unavailable : classify(state), message, state);
}

Result Connection::take(pg_result* r, std::string_view what) {
    const auto status = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) fail(r, what);
    return Result(r);
}

Result Connection::exec(std::string_view sql) {
    const std::string s(sql);
    return take(PQexec(conn_, s.c_str()), describe(sql));
}

void Connection::prepare(const std::string& name, std::string_view sql, std::span<const Type> types) {
    std::vector<Oid> oids;
    for (Type t : types) oids.push_back(static_cast<Oid>(t));
    const std::string s(sql);
    take(PQprepare(conn_, name.c_str(), s.c_str(), static_cast<int>(oids.size()), oids.empty() ? nullptr : oids.data()),
         "prepare " + name);
    prepared_.insert(name);
}

Result Connection::query(std::string_view sql, Params params) {
    const Wire w(params);
    const std::string s(sql);
    return take(PQexecParams(conn_, s.c_str(), w.count(), w.types.data(), w.values.data(), w.lengths.data(),
                             w.formats.data(), 1),
                describe(sql));
}

Result Connection::query(const Statement& statement, Params params) {
    if (!is_prepared(statement.name)) {
        const Wire w(params);
        take(PQprepare(conn_, statement.name.c_str(), statement.sql.c_str(), w.count(), w.types.data()),
             "prepare " + statement.name);
        prepared_.insert(statement.name);
    }
    return query_prepared(statement.name, params);
}

Result Connection::query_prepared(const std::string& name, Params params) {
    const Wire w(params);
    return take(
        PQexecPrepared(conn_, name.c_str(), w.count(), w.values.data(), w.lengths.data(), w.formats.data(), 1),
        name);
}

bool Connection::ok() const noexcept { return conn_ && !broken_ && PQstatus(conn_) == CONNECTION_OK; }

bool Connection::alive() noexcept {
    // An idle session gets nothing from the server but notices and
    // notifications; a termination notice comes with the socket's close.
    // Two rounds: the notice, then the end of the stream.
    for (int round = 0; round < 2 && ok(); ++round) {
        pollfd p{PQsocket(conn_), POLLIN, 0};
        if (::poll(&p, 1, 0) <= 0) break;
        if (!PQconsumeInput(conn_)) broken_ = true;
    }
    return ok();
}

bool Connection::in_transaction() const noexcept {
    return conn_ && PQtransactionStatus(conn_) != PQTRANS_IDLE;
}

int Connection::backend_pid() const noexcept { return conn_ ? PQbackendPID(conn_) : 0; }

// ---- transaction ----------------------------------------------------------

Transaction::Transaction(Connection& conn, Isolation isolation, bool read_only) : conn_(conn) {
    std::string sql = "BEGIN ISOLATION LEVEL ";
    sql += isolation == Isolation::serializable      ? "SERIALIZABLE"
           : isolation == Isolation::repeatable_read ? "REPEATABLE READ"
                                                     : "READ COMMITTED";
    if (read_only) sql += " READ ONLY";
    conn_.exec(sql);
}

Transaction::~Transaction() {
    if (done_ || !conn_.ok()) return;
    PGresult* r = PQexec(conn_.native(), "ROLLBACK");
    if (!r || PQresultStatus(r) != PGRES_COMMAND_OK) conn_.discard();
    if (r) PQclear(r);
}

void Transaction::commit() {
    done_ = true;  // whatever happens, the block is over (or the connection lost)
    Result r = conn_.exec("COMMIT");
    // COMMIT of a block in which a statement failed rolls back and says so
    // only in its tag.
    if (std::strcmp(PQcmdStatus(r.native()), "ROLLBACK") == 0)
        throw Error(Errc::storage, "PostgreSQL " + conn_.target() +
                                       ": COMMIT rolled back: a statement of the transaction had failed");
}

// ---- pipeline -------------------------------------------------------------

Pipeline::Pipeline(Connection& conn) : conn_(conn) {
    if (PQenterPipelineMode(conn_.native()) != 1) conn_.fail(nullptr, "enter pipeline mode");
}

Pipeline::~Pipeline() {
    if (!queue_.empty()) drain();
    if (conn_.native() && PQexitPipelineMode(conn_.native()) != 1) conn_.discard();
}

void Pipeline::send(const Statement& statement, Params params) {
    const Wire w(params);
    PGconn* c = conn_.native();
    bool queued = conn_.is_prepared(statement.name);
    for (const Entry& e : queue_) queued = queued || e.prepare == statement.name;
    if (!queued) {
        if (!PQsendPrepare(c, statement.name.c_str(), statement.sql.c_str(), w.count(), w.types.data()))
            conn_.fail(nullptr, "prepare " + statement.name);
        queue_.push_back({"prepare " + statement.name, statement.name});
    }
    if (!PQsendQueryPrepared(c, statement.name.c_str(), w.count(), w.values.data(), w.lengths.data(),
                             w.formats.data(), 1))
        conn_.fail(nullptr, statement.name);
    queue_.push_back({statement.name, {}});
}

void Pipeline::send(std::string_view sql, Params params) {
    const Wire w(params);
    const std::string s(sql);
    if (!PQsendQueryParams(conn_.native(), s.c_str(), w.count(), w.types.data(), w.values.data(), w.lengths.data(),
                           w.formats.data(), 1))
        conn_.fail(nullptr, describe(sql));
    queue_.push_back({describe(sql), {}});
}

std::vector<Result> Pipeline::sync() {
    PGconn* c = conn_.native();
    std::vector<Entry> queue = std::exchange(queue_, {});
    if (PQpipelineSync(c) != 1) conn_.fail(nullptr, "pipeline sync");

    std::vector<Result> results;
    PGresult* first_error = nullptr;
    std::string first_what;
    for (const Entry& e : queue) {
        // Each statement's results end with a null; a lost connection gives
        // an error and then nulls, and ends the reading here too.
        if (PQstatus(c) != CONNECTION_OK) break;
        Result kept;
        bool ok = false;
        while (PGresult* r = PQgetResult(c)) {
            const auto status = PQresultStatus(r);
            if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) {
                ok = true;
                kept = Result(r);
            } else if (status == PGRES_FATAL_ERROR && !first_error) {
                first_error = r;
                first_what = e.what;
            } else {
                PQclear(r);  // PGRES_PIPELINE_ABORTED: skipped after the error
            }
        }
        if (!e.prepare.empty()) {
            if (ok) conn_.prepared_.insert(e.prepare);
        } else {
            results.push_back(std::move(kept));
        }
    }
    PGresult* end = PQstatus(c) == CONNECTION_OK ? PQgetResult(c) : nullptr;
    const bool synced = end && PQresultStatus(end) == PGRES_PIPELINE_SYNC;
    if (end) PQclear(end);
    if (first_error) conn_.fail(first_error, first_what);
    if (!synced) {
        conn_.discard();
        conn_.fail(nullptr, "pipeline sync");
    }
    return results;
}

void Pipeline::drain() noexcept {
    PGconn* c = conn_.native();
    if (!conn_.ok() || PQpipelineSync(c) != 1) {
        conn_.discard();
        return;
    }
    for (std::size_t i = 0; i < queue_.size() && PQstatus(c) == CONNECTION_OK; ++i)
        while (PGresult* r = PQgetResult(c)) PQclear(r);
    queue_.clear();
    PGresult* end = PQstatus(c) == CONNECTION_OK ? PQgetResult(c) : nullptr;
    if (!end || PQresultStatus(end) != PGRES_PIPELINE_SYNC) conn_.discard();
    if (end) PQclear(end);
}

}  // namespace lindra::store::pg
