// store/pg: the libpq layer against a real PostgreSQL (LINDRA_TEST_PG), a
// fresh database per test.
#include "store/pg.hpp"
#include "support/pg_db.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <exception>
#include <future>
#include <string>
#include <thread>
#include <vector>

using namespace lindra;
using namespace lindra::store::pg;
namespace pg = lindra::store::pg;
using lindra::test::PgDatabase;
using std::chrono::milliseconds;

namespace {

template <class F>
pg::Error pg_error_of(F&& f) {
    try {
        f();
    } catch (const pg::Error& e) {
        return e;
    }
    FAIL("expected a pg::Error");
    throw std::logic_error("unreachable");
}

Bytes bytes_of(std::string_view s) { return Bytes(s.begin(), s.end()); }

// Awkward values: NUL and 0xff bytes, quotes, backslashes, braces and
// commas (array literal syntax), empty.
const std::vector<std::string> kAwkwardBytes = {std::string("\0", 1), "\xff", std::string("a\0b\xff", 4), "'\"", "\\",
                                                "\\x00", "{a,b}", "NULL", "", " "};
const std::vector<std::string> kAwkwardText = {"plain", "'quoted'", "\"dq\"", "back\\slash", "{a,\"b\"}", "NULL",
                                               "", " spaced ", "ærlig talt ✓"};

int terminate_others(Connection& admin) {
    auto r = admin.query(
        "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()");
    return static_cast<int>(r.int64(0, 0));
}

}  // namespace

TEST_CASE("connecting to a server that is not there fails clearly", "[pg]") {
    PgDatabase db;
    const std::string wrong = conninfo_with(conninfo_with(db.conninfo(), "port", "1"), "password", "sekrit");
    const auto e = pg_error_of([&] { Connection c(wrong); });
    INFO(e.what());
    CHECK(e.errc() == Errc::unavailable);
    CHECK(e.connection_lost());
    CHECK(e.storage_failure());
    const std::string m = e.what();
    CHECK(m.find(":1/" + db.name()) != std::string::npos);
    CHECK(m.find("Check that the server is running") != std::string::npos);
    CHECK(m.find("sekrit") == std::string::npos);

    for (const char* bad : {"postgresql://[::1", "host=x nosuchkey=1", "host='unterminated"}) {
        const auto b = pg_error_of([&] { Connection c(bad); });
        INFO(bad << ": " << b.what());
        CHECK(b.errc() == Errc::invalid_argument);
        CHECK(std::string(b.what()).find("invalid PostgreSQL connection string") != std::string::npos);
    }
}

TEST_CASE("a connection sets lindra's session settings", "[pg]") {
    PgDatabase db;
    Connection c(db.conninfo(), {.statement_timeout = milliseconds(1234),
                                 .idle_in_transaction_timeout = milliseconds(5678)});
    CHECK(c.ok());
    CHECK(c.alive());
    CHECK(c.backend_pid() > 0);
    CHECK(c.exec("SHOW statement_timeout").text(0, 0) == "1234ms");
    CHECK(c.exec("SHOW idle_in_transaction_session_timeout").text(0, 0) == "5678ms");
    CHECK(c.exec("SHOW application_name").text(0, 0) == "lindra-server");
    CHECK(c.exec("SHOW client_encoding").text(0, 0) == "UTF8");
    CHECK(c.target().find(db.name()) != std::string::npos);
    // The connection string's own application_name wins.
    Connection named(conninfo_with(db.conninfo(), "application_name", "other"));
    CHECK(named.exec("SHOW application_name").text(0, 0) == "other");
}

TEST_CASE("scalar parameters round-trip", "[pg]") {
    PgDatabase db;
    Connection c(db.conninfo());
    const Statement echo{"echo_int8", "SELECT $1"};
    for (std::int64_t v : {std::int64_t{0}, std::int64_t{-1}, std::int64_t{42}, INT64_MIN, INT64_MAX}) {
        CHECK(c.query("SELECT $1", {v}).int64(0, 0) == v);
        CHECK(c.query(echo, {v}).int64(0, 0) == v);
        CHECK(c.query("SELECT $1::text", {v}).text(0, 0) == std::to_string(v));
        CHECK(c.query("SELECT $1", {v}).text(0, 0) == std::to_string(v));
    }
    CHECK(c.query("SELECT $1", {Param::int2(-32768)}).int64(0, 0) == -32768);
    CHECK(c.query("SELECT $1::int4", {7}).int64(0, 0) == 7);

    for (const auto& t : kAwkwardText) {
        INFO(t);
        CHECK(c.query("SELECT $1", {t}).text(0, 0) == t);
        CHECK(c.query("SELECT length($1)", {t}).int64(0, 0) > -1);
    }
    for (const auto& b : kAwkwardBytes) {
        INFO("bytes of size " << b.size());
        CHECK(c.query("SELECT $1", {Param::bytea(b)}).bytea(0, 0) == b);
        CHECK(c.query("SELECT $1", {bytes_of(b)}).bytes(0, 0) == bytes_of(b));
        CHECK(c.query("SELECT length($1)", {Param::bytea(b)}).int64(0, 0) == static_cast<std::int64_t>(b.size()));
    }
    // Text-format results (the simple protocol) decode too.
    auto r = c.exec("SELECT '\\x00ff27'::bytea, 123::int8, NULL::text, true, 'x'::text");
    CHECK(r.bytea(0, 0) == std::string("\0\xff'", 3));
    CHECK(r.int64(0, 1) == 123);
    CHECK(r.is_null(0, 2));
    CHECK(r.boolean(0, 3));
    CHECK(r.text(0, 4) == "x");

    auto n = c.query("SELECT $1::int8 IS NULL, $2::bytea, $3::text", {nullptr, Param::null(), nullptr});
    CHECK(n.boolean(0, 0));
    CHECK(n.is_null(0, 1));
    CHECK(n.is_null(0, 2));
    CHECK(pg_error_of([&] { n.int64(0, 1); }).errc() == Errc::invalid_argument);  // null read as a value
    CHECK(pg_error_of([&] { n.int64(1, 0); }).errc() == Errc::invalid_argument);  // no such row
    CHECK(pg_error_of([&] { n.int64(0, 0); }).errc() == Errc::invalid_argument);  // a boolean
    CHECK(n.column("bytea") == 1);
}

TEST_CASE("array parameters feed unnest", "[pg]") {
    PgDatabase db;
    Connection c(db.conninfo());
    c.exec("CREATE TABLE t (id bytea PRIMARY KEY, n int8 NOT NULL, k int2 NOT NULL, s text NOT NULL)");

    std::vector<std::string> ids = kAwkwardBytes;
    std::vector<std::int64_t> ns;
    std::vector<std::int16_t> ks;
    std::vector<std::string> ss;
    for (std::size_t i = 0; i < ids.size(); ++i) {
        ns.push_back(i % 2 ? INT64_MIN + static_cast<std::int64_t>(i) : INT64_MAX - static_cast<std::int64_t>(i));
        ks.push_back(static_cast<std::int16_t>(i % 2 ? -32768 + i : 32767 - i));
        ss.push_back(kAwkwardText[i % kAwkwardText.size()]);
    }
    const Statement insert{"insert_t",
                           "INSERT INTO t SELECT * FROM unnest($1::bytea[], $2::int8[], $3::int2[], $4::text[])"};
    auto r = c.query(insert, {Param::bytea_array(ids), Param::int8_array(ns), Param::int2_array(ks),
                              Param::text_array(ss)});
    CHECK(r.affected() == static_cast<std::int64_t>(ids.size()));

    auto rows = c.query("SELECT id, n, k, s FROM t ORDER BY n");
    REQUIRE(rows.rows() == static_cast<int>(ids.size()));
    for (std::size_t i = 0; i < ids.size(); ++i) {
        auto found = c.query("SELECT n, k, s FROM t WHERE id = $1", {Param::bytea(ids[i])});
        INFO("row " << i);
        REQUIRE(found.rows() == 1);
        CHECK(found.int64(0, 0) == ns[i]);
        CHECK(found.int64(0, 1) == ks[i]);
        CHECK(found.text(0, 2) == ss[i]);
    }
    // The same bytes as vectors, and the element order kept.
    std::vector<Bytes> vs;
    for (const auto& s : ids) vs.push_back(bytes_of(s));
    auto ordered = c.query("SELECT x FROM unnest($1::bytea[]) WITH ORDINALITY AS u(x, i) ORDER BY i",
                           {Param::bytea_array(vs)});
    REQUIRE(ordered.rows() == static_cast<int>(vs.size()));
    for (int i = 0; i < ordered.rows(); ++i) CHECK(ordered.bytes(i, 0) == vs[static_cast<std::size_t>(i)]);

    // Empty arrays insert nothing.
    auto none = c.query(insert, {Param::bytea_array(std::vector<std::string>{}), Param::int8_array({}),
                                 Param::int2_array({}), Param::text_array({})});
    CHECK(none.affected() == 0);
    CHECK(c.query("SELECT cardinality($1::int8[])", {Param::int8_array({})}).int64(0, 0) == 0);
}

TEST_CASE("server errors carry their SQLSTATE and class", "[pg]") {
    PgDatabase db;
    Connection c(db.conninfo());
    c.exec("CREATE TABLE u (k int8 PRIMARY KEY)");
    c.query("INSERT INTO u VALUES ($1)", {1});
    auto dup = pg_error_of([&] { c.query("INSERT INTO u VALUES ($1)", {1}); });
    INFO(dup.what());
    CHECK(dup.sqlstate() == "23505");
    CHECK(dup.retryable());
    CHECK_FALSE(dup.connection_lost());
    CHECK(dup.errc() == Errc::storage);
    CHECK(std::string(dup.what()).find("INSERT INTO u") != std::string::npos);

    auto syntax = pg_error_of([&] { c.exec("SELEC 1"); });
    CHECK(syntax.sqlstate() == "42601");
    CHECK_FALSE(syntax.retryable());

    auto ro = pg_error_of([&] {
        Transaction t(c, Transaction::Isolation::read_committed, true);
        c.exec("INSERT INTO u VALUES (2)");
    });
    CHECK(ro.sqlstate() == "25006");
    CHECK(ro.errc() == Errc::read_only);
    CHECK(c.query("SELECT 1").int64(0, 0) == 1);  // the connection is fine

    CHECK(is_retryable("40001"));
    CHECK(is_retryable("40P01"));
    CHECK_FALSE(is_retryable("23503"));
    CHECK(is_connection_error("08006"));
    CHECK(is_connection_error("57P01"));
    CHECK(is_connection_error("57P03"));
    CHECK_FALSE(is_connection_error("57014"));
}

TEST_CASE("a real deadlock is reported as retryable", "[pg]") {
    PgDatabase db;
    Connection a(db.conninfo()), b(db.conninfo());
    a.exec("CREATE TABLE d (k int8 PRIMARY KEY, v int8); INSERT INTO d VALUES (1, 0), (2, 0)");
    Transaction ta(a);
    Transaction tb(b);
    a.exec("UPDATE d SET v = 1 WHERE k = 1");
    b.exec("UPDATE d SET v = 2 WHERE k = 2");
    // a waits for b's row 2 while b waits for a's row 1: the server's
    // deadlock check (after deadlock_timeout, 1 s) cancels one of them.
    // The victim rolls back at once, so the other one's wait ends.
    auto in_a = std::async(std::launch::async, [&]() -> std::exception_ptr {
        try {
            a.exec("UPDATE d SET v = 1 WHERE k = 2");
        } catch (...) {
            a.exec("ROLLBACK");
            return std::current_exception();
        }
        return nullptr;
    });
    std::exception_ptr in_b;
    try {
        b.exec("UPDATE d SET v = 2 WHERE k = 1");
    } catch (...) {
        b.exec("ROLLBACK");
        in_b = std::current_exception();
    }
    std::exception_ptr failed = in_b;
    if (!in_b) {
        tb.commit();  // b won: a's wait ends once b is done
        failed = in_a.get();
    } else {
        in_a.get();
        ta.commit();
    }
    REQUIRE(failed);
    try {
        std::rethrow_exception(failed);
    } catch (const pg::Error& e) {
        INFO(e.what());
        CHECK(e.sqlstate() == "40P01");
        CHECK(e.retryable());
        CHECK(e.errc() == Errc::busy);
    }
}

TEST_CASE("statement_timeout cancels a slow statement", "[pg]") {
    PgDatabase db;
    Connection c(db.conninfo(), {.statement_timeout = milliseconds(200)});
    const auto start = std::chrono::steady_clock::now();
    auto e = pg_error_of([&] { c.query("SELECT pg_sleep(5)"); });
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(3));
    INFO(e.what());
    CHECK(e.sqlstate() == "57014");
    CHECK(e.errc() == Errc::busy);
    CHECK_FALSE(e.retryable());
    CHECK(c.query("SELECT 2").int64(0, 0) == 2);
}

TEST_CASE("a transaction commits, or rolls back when left", "[pg]") {
    PgDatabase db;
    Connection c(db.conninfo());
    c.exec("CREATE TABLE t (k int8)");
    {
        Transaction t(c);
        c.query("INSERT INTO t VALUES ($1)", {1});
        CHECK(c.in_transaction());
        t.commit();
    }
    CHECK_FALSE(c.in_transaction());
    {
        Transaction t(c, Transaction::Isolation::serializable);
        c.query("INSERT INTO t VALUES ($1)", {2});
    }
    CHECK_FALSE(c.in_transaction());
    CHECK(c.query("SELECT count(*) FROM t").int64(0, 0) == 1);

    // A failed statement dooms the block: commit() says so.
    {
        Transaction t(c, Transaction::Isolation::repeatable_read);
        c.query("INSERT INTO t VALUES ($1)", {3});
        CHECK_THROWS(c.exec("SELECT nosuchcolumn FROM t"));
        const auto e = pg_error_of([&] { t.commit(); });
        CHECK(std::string(e.what()).find("rolled back") != std::string::npos);
    }
    CHECK(c.query("SELECT count(*) FROM t").int64(0, 0) == 1);
    CHECK(c.ok());
}

TEST_CASE("a pipeline runs statements and syncs once", "[pg]") {
    PgDatabase db;
    Connection c(db.conninfo());
    c.exec("CREATE TABLE t (k int8 PRIMARY KEY, v text)");
    const Statement insert{"pipe_insert", "INSERT INTO t VALUES ($1, $2)"};
    const Statement count{"pipe_count", "SELECT count(*) FROM t"};
    {
        Pipeline p(c);
        p.send(insert, {1, "one"});
        p.send(insert, {2, "two"});
        p.send("INSERT INTO t SELECT * FROM unnest($1::int8[], $2::text[])",
               {Param::int8_array(std::vector<std::int64_t>{3, 4}), Param::text_array(std::vector<std::string>{"3", "4"})});
        p.send(count);
        auto results = p.sync();
        REQUIRE(results.size() == 4);
        CHECK(results[0].affected() == 1);
        CHECK(results[2].affected() == 2);
        CHECK(results[3].int64(0, 0) == 4);
        CHECK(p.pending() == 0);
        // A second round on the same pipeline, statements already prepared.
        p.send(insert, {5, "five"});
        p.send(count);
        auto again = p.sync();
        REQUIRE(again.size() == 2);
        CHECK(again[1].int64(0, 0) == 5);
    }
    CHECK(c.query(count).int64(0, 0) == 5);  // out of pipeline mode, prepared statements kept
}

TEST_CASE("an error aborts the rest of the pipeline and rolls it back", "[pg]") {
    PgDatabase db;
    Connection c(db.conninfo());
    c.exec("CREATE TABLE t (k int8 PRIMARY KEY)");
    const Statement insert{"abort_insert", "INSERT INTO t VALUES ($1)"};
    const Statement late{"abort_late", "SELECT count(*) FROM t"};
    {
        Pipeline p(c);
        p.send(insert, {1});
        p.send(insert, {1});  // unique violation
        p.send(insert, {2});  // aborted
        p.send(late);         // its Prepare is aborted too
        const auto e = pg_error_of([&] { p.sync(); });
        INFO(e.what());
        CHECK(e.sqlstate() == "23505");
        CHECK(e.retryable());
        CHECK(std::string(e.what()).find("abort_insert") != std::string::npos);
        // The connection goes on: the pipeline is ready for more.
        p.send(insert, {7});
        auto ok = p.sync();
        CHECK(ok.size() == 1);
    }
    CHECK(c.query("SELECT array_agg(k)::text FROM t").text(0, 0) == "{7}");  // 1 and 2 rolled back
    CHECK(c.query(late).int64(0, 0) == 1);  // prepared now, not believed prepared before
    {
        Pipeline p(c);  // left without sync: the destructor drains it
        p.send(insert, {8});
    }
    CHECK(c.ok());
    CHECK(c.query("SELECT 1").int64(0, 0) == 1);
}

TEST_CASE("a pipeline on a lost connection fails as lost, without hanging", "[pg]") {
    PgDatabase db;
    Connection admin(db.conninfo());
    Connection c(db.conninfo());
    const Statement one{"lost_one", "SELECT $1"};
    c.query(one, {1});
    CHECK(terminate_others(admin) == 1);
    const auto e = pg_error_of([&] {
        Pipeline p(c);
        p.send(one, {2});
        p.send("SELECT 3");
        p.sync();
    });
    INFO(e.what());
    CHECK(e.connection_lost());
    CHECK_FALSE(c.ok());
}

TEST_CASE("the pool hands out connections and replaces lost ones", "[pg]") {
    PgDatabase db;
    Connection admin(db.conninfo());
    Pool pool(db.conninfo(), {.size = 2, .acquire_timeout = milliseconds(200)});
    CHECK(pool.open() == 0);  // lazy
    int first_pid = 0;
    {
        auto lease = pool.acquire();
        first_pid = lease->backend_pid();
        CHECK(lease->query("SELECT 1").int64(0, 0) == 1);
    }
    CHECK(pool.open() == 1);
    {
        auto lease = pool.acquire();
        CHECK(lease->backend_pid() == first_pid);  // reused
    }

    SECTION("a connection the server closed while idle is replaced on acquire") {
        CHECK(terminate_others(admin) == 1);
        auto lease = pool.acquire();
        CHECK(lease->backend_pid() != first_pid);
        CHECK(lease->query("SELECT 1").int64(0, 0) == 1);
    }
    SECTION("a connection lost in use fails its user, then is replaced") {
        auto lease = pool.acquire();
        CHECK(terminate_others(admin) == 1);
        const auto e = pg_error_of([&] { lease->query("SELECT 1"); });
        INFO(e.what());
        CHECK(e.connection_lost());
        CHECK_FALSE(lease->ok());
        { auto gone = std::move(lease); }
        CHECK(pool.open() == 0);
        auto next = pool.acquire();
        CHECK(next->query("SELECT 3").int64(0, 0) == 3);
    }
    SECTION("all in use: acquire times out") {
        auto a = pool.acquire();
        auto b = pool.acquire();
        const auto start = std::chrono::steady_clock::now();
        const auto e = pg_error_of([&] { pool.acquire(milliseconds(100)); });
        CHECK(e.errc() == Errc::busy);
        CHECK(std::chrono::steady_clock::now() - start >= milliseconds(100));
        // A lease returned from another thread wakes a waiter.
        std::thread t([moved = std::move(b)]() mutable {
            std::this_thread::sleep_for(milliseconds(50));
            auto drop = std::move(moved);
        });
        auto c = pool.acquire(milliseconds(5000));
        t.join();
        CHECK(c->ok());
    }
    SECTION("a lease left inside a transaction is not reused") {
        {
            auto lease = pool.acquire();
            lease->exec("BEGIN");
        }
        CHECK(pool.open() == 0);
    }
}

TEST_CASE("a pool says clearly when the server is down", "[pg]") {
    PgDatabase db;
    Pool pool(conninfo_with(db.conninfo(), "port", "1"), {.size = 1});
    for (int i = 0; i < 2; ++i) {  // the slot is freed after a failure
        const auto e = pg_error_of([&] { pool.acquire(milliseconds(100)); });
        INFO(e.what());
        CHECK(e.errc() == Errc::unavailable);
        CHECK(std::string(e.what()).find("cannot connect to PostgreSQL") != std::string::npos);
    }
    CHECK(pool.open() == 0);
}

TEST_CASE("a listener wakes on NOTIFY, times out, and reconnects", "[pg]") {
    PgDatabase db;
    Connection sender(db.conninfo());
    Listener listener(db.conninfo(), "lindra wake");
    CHECK(listener.wait(milliseconds(1000)) == Listener::Wake::resync);  // connects
    CHECK(listener.last_error().empty());

    auto start = std::chrono::steady_clock::now();
    CHECK(listener.wait(milliseconds(150)) == Listener::Wake::timeout);
    CHECK(std::chrono::steady_clock::now() - start >= milliseconds(150));

    sender.query("SELECT pg_notify($1, $2)", {"lindra wake", "head 7"});
    sender.query("SELECT pg_notify($1, $2)", {"another channel", "not for us"});
    REQUIRE(listener.wait(milliseconds(5000)) == Listener::Wake::notified);
    REQUIRE(listener.notifications().size() == 1);
    CHECK(listener.notifications()[0].channel == "lindra wake");
    CHECK(listener.notifications()[0].payload == "head 7");
    CHECK(listener.notifications()[0].sender_pid == sender.backend_pid());

    // A notification inside a transaction arrives at commit.
    {
        Transaction t(sender);
        sender.query("SELECT pg_notify($1, $2)", {"lindra wake", "in tx"});
        CHECK(listener.wait(milliseconds(200)) == Listener::Wake::timeout);
        t.commit();
    }
    REQUIRE(listener.wait(milliseconds(5000)) == Listener::Wake::notified);
    CHECK(listener.notifications().back().payload == "in tx");

    // interrupt() from another thread ends a wait at once.
    start = std::chrono::steady_clock::now();
    std::thread t([&] {
        std::this_thread::sleep_for(milliseconds(50));
        listener.interrupt();
    });
    CHECK(listener.wait(milliseconds(10000)) == Listener::Wake::interrupted);
    t.join();
    CHECK(std::chrono::steady_clock::now() - start < milliseconds(5000));

    // The server ends the listening session: the next wait says resync, the
    // one after is connected again and hears notifications.
    CHECK(terminate_others(sender) == 1);
    CHECK(listener.wait(milliseconds(5000)) == Listener::Wake::resync);
    CHECK(listener.wait(milliseconds(5000)) == Listener::Wake::resync);  // reconnected
    sender.query("SELECT pg_notify($1, $2)", {"lindra wake", "after"});
    REQUIRE(listener.wait(milliseconds(5000)) == Listener::Wake::notified);
    CHECK(listener.notifications()[0].payload == "after");
}

TEST_CASE("a listener on a server that is down waits and says resync", "[pg]") {
    PgDatabase db;
    Listener listener(conninfo_with(db.conninfo(), "port", "1"), "x");
    const auto start = std::chrono::steady_clock::now();
    CHECK(listener.wait(milliseconds(200)) == Listener::Wake::resync);
    CHECK(std::chrono::steady_clock::now() - start >= milliseconds(200));
    CHECK(listener.last_error().find("cannot connect") != std::string::npos);
}
