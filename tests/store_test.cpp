// The store layer: connection settings, statements, cached statements,
// transactions, migrations and lock contention (DESIGN §4).
#include "server/store.hpp"
#include "replica/core.hpp"
#include "store/database.hpp"
#include "store/migrations.hpp"
#include "store/statement.hpp"
#include "store/transaction.hpp"
#include "support/db.hpp"
#include "support/temp_dir.hpp"

#include <lindra/error.hpp>
#include <lindra/replica.hpp>
#include <lindra/schema.hpp>

#include <sqlite3.h>
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

using lindra::Errc;
using lindra::Error;
using lindra::Id;
using lindra::Value;
using lindra::store::Database;
using lindra::store::Migration;
using lindra::store::OpenOptions;
using lindra::store::Transaction;
using lindra::test::error_of;
using lindra::test::TempDir;
using lindra::test::WriteProtect;
namespace fs = std::filesystem;

namespace {

std::int64_t query_int(Database& db, const std::string& sql) {
    auto s = db.prepare(sql);
    REQUIRE(s.step());
    return s.int64(0);
}

std::string query_text(Database& db, const std::string& sql) {
    auto s = db.prepare(sql);
    REQUIRE(s.step());
    return s.text(0);
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A plain SQLite connection without lindra's settings, to show that what a
// test observes on a lindra Database comes from those settings.
struct RawConnection {
    explicit RawConnection(const std::string& path) { REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK); }
    ~RawConnection() { sqlite3_close(db); }
    int exec(const std::string& sql) { return sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr); }
    sqlite3* db = nullptr;
};

}  // namespace

// ---- Database -------------------------------------------------------------

TEST_CASE("Database applies lindra's connection settings", "[store][database]") {
    TempDir dir;
    Database db(dir.file("a.db"));

    CHECK(query_text(db, "PRAGMA journal_mode") == "wal");
    CHECK(query_int(db, "PRAGMA foreign_keys") == 1);
    CHECK(query_int(db, "PRAGMA secure_delete") == 1);
    CHECK(query_int(db, "PRAGMA synchronous") == 1);  // NORMAL
    CHECK(query_int(db, "PRAGMA busy_timeout") == OpenOptions{}.busy_timeout_ms);
    CHECK(query_int(db, "PRAGMA trusted_schema") == 0);
    CHECK(db.path() == dir.file("a.db"));
}

TEST_CASE("OpenOptions choose the busy timeout and synchronous=FULL", "[store][database]") {
    TempDir dir;
    Database db(dir.file("a.db"), OpenOptions{1234, true});
    CHECK(query_int(db, "PRAGMA busy_timeout") == 1234);
    CHECK(query_int(db, "PRAGMA synchronous") == 2);  // FULL
}

TEST_CASE("foreign keys are enforced", "[store][database]") {
    TempDir dir;
    Database db(dir.file("a.db"));
    db.exec("CREATE TABLE p (id INTEGER PRIMARY KEY); CREATE TABLE c (p INTEGER REFERENCES p (id))");
    const auto e = error_of([&] { db.exec("INSERT INTO c VALUES (42)"); });
    CHECK(e.errc() == Errc::storage);
    CHECK(e.sqlite_code() == SQLITE_CONSTRAINT_FOREIGNKEY);
    CHECK(query_int(db, "SELECT count(*) FROM c") == 0);
}

TEST_CASE("SQLITE_DBCONFIG_DEFENSIVE forbids writing the schema table", "[store][database]") {
    TempDir dir;
    const std::string write_schema =
        "PRAGMA writable_schema=ON;"
        "UPDATE sqlite_master SET sql = 'CREATE TABLE t (y)' WHERE name = 't'";
    {
        Database db(dir.file("a.db"));
        db.exec("CREATE TABLE t (x)");
        const auto e = error_of([&] { db.exec(write_schema); });
        CHECK(e.errc() == Errc::storage);
        CHECK(query_text(db, "SELECT sql FROM sqlite_master WHERE name = 't'") == "CREATE TABLE t (x)");
    }
    // The same statement on a connection without the setting succeeds.
    RawConnection raw(dir.file("b.db"));
    REQUIRE(raw.exec("CREATE TABLE t (x)") == SQLITE_OK);
    CHECK(raw.exec(write_schema) == SQLITE_OK);
}

TEST_CASE("secure_delete overwrites deleted content", "[store][database]") {
    const std::string marker = "lindra-secret-" + std::string(64, 'q');
    // Whether the marker is still in the file after delete + checkpoint.
    auto leaves_marker = [&](bool secure) {
        TempDir dir;
        const auto path = dir.file("a.db");
        Database db(path);
        if (!secure) db.exec("PRAGMA secure_delete=OFF");
        db.exec("CREATE TABLE t (x TEXT); INSERT INTO t VALUES ('keep me');");
        db.prepare("INSERT INTO t VALUES (?)").bind(1, marker).run();
        db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
        db.prepare("DELETE FROM t WHERE x = ?").bind(1, marker).run();
        db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
        return read_file(path).find(marker) != std::string::npos ||
               read_file(path + "-wal").find(marker) != std::string::npos;
    };
    CHECK_FALSE(leaves_marker(true));
    CHECK(leaves_marker(false));  // the check above can see a leftover
}

TEST_CASE("user_version and data_version", "[store][database]") {
    TempDir dir;
    Database a(dir.file("a.db"));
    CHECK(a.user_version() == 0);
    a.set_user_version(42);
    CHECK(a.user_version() == 42);

    Database b(dir.file("a.db"));
    CHECK(b.user_version() == 42);
    const auto b_before = b.data_version();
    const auto a_before = a.data_version();
    a.exec("CREATE TABLE t (x)");
    // A connection sees another's commit when it next starts a transaction
    // (Core reads it right after BEGIN IMMEDIATE).
    b.exec("SELECT 1 FROM sqlite_master");
    CHECK(b.data_version() != b_before);
    CHECK(a.data_version() != a_before);
}

// ---- Statement -----------------------------------------------------------

TEST_CASE("Statement binds and reads back every column type", "[store][statement]") {
    TempDir dir;
    Database db(dir.file("a.db"));
    db.exec("CREATE TABLE v (k INTEGER PRIMARY KEY, i INTEGER, t TEXT, b BLOB, n)");

    const Id id = Id::random();
    const std::string text("Åse \xF0\x9F\x98\x80 a\0b", 12);  // multi-byte and an embedded NUL
    const auto big = std::numeric_limits<std::int64_t>::min();

    SECTION("typed bind and typed columns") {
        db.prepare("INSERT INTO v VALUES (1, ?, ?, ?, ?)").bind(1, big).bind(2, text).bind(3, id).bind_null(4).run();
        auto s = db.prepare("SELECT i, t, b, n FROM v");
        REQUIRE(s.step());
        CHECK(s.column_count() == 4);
        CHECK(s.int64(0) == big);
        CHECK(s.text(1) == text);
        CHECK(s.id(2) == id);
        CHECK(s.is_null(3));
        CHECK_FALSE(s.is_null(0));
        CHECK(s.value(0) == Value{big});
        CHECK(s.value(1) == Value{text});
        CHECK(s.value(2) == Value{id});
        CHECK(s.value(3) == Value{});
        CHECK_FALSE(s.step());
    }

    SECTION("Value binds and Value columns") {
        const std::vector<Value> values = {Value{}, Value{std::int64_t{-7}}, Value{text}, Value{id}};
        for (std::size_t k = 0; k < values.size(); ++k)
            db.prepare("INSERT INTO v (k, n) VALUES (?, ?)")
                .bind(1, static_cast<std::int64_t>(k))
                .bind(2, values[k])
                .run();
        auto s = db.prepare("SELECT n FROM v ORDER BY k");
        for (const auto& expected : values) {
            REQUIRE(s.step());
            CHECK(s.value(0) == expected);
        }
        CHECK_FALSE(s.step());
    }

    SECTION("a blob that is not an id and a real are refused as values") {
        const std::uint8_t three[] = {1, 2, 3};
        db.prepare("INSERT INTO v (k, b, n) VALUES (1, ?, 1.5)").bind(1, std::span<const std::uint8_t>(three)).run();
        auto s = db.prepare("SELECT b, n FROM v");
        REQUIRE(s.step());
        const auto blob = s.blob(0);
        CHECK(std::vector<std::uint8_t>(blob.begin(), blob.end()) == std::vector<std::uint8_t>{1, 2, 3});
        CHECK(error_of([&] { (void)s.id(0); }).errc() == Errc::corrupt);
        CHECK(error_of([&] { (void)s.value(0); }).errc() == Errc::corrupt);
        CHECK(error_of([&] { (void)s.value(1); }).errc() == Errc::corrupt);
    }
}

TEST_CASE("SQL errors are lindra::Error with SQLite's extended code", "[store][statement]") {
    TempDir dir;
    Database db(dir.file("a.db"));
    db.exec("CREATE TABLE u (x TEXT UNIQUE NOT NULL)");
    db.prepare("INSERT INTO u VALUES ('a')").run();

    SECTION("UNIQUE violation") {
        auto s = db.prepare("INSERT INTO u VALUES (?)");
        const auto e = error_of([&] { s.bind(1, "a").run(); });
        CHECK(e.errc() == Errc::storage);
        CHECK(e.sqlite_code() == SQLITE_CONSTRAINT_UNIQUE);
        CHECK(e.sqlite_code() == 2067);
        CHECK(e.code().category() == lindra::error_category());
        CHECK(std::string(e.what()).find("UNIQUE") != std::string::npos);
        CHECK(e.field().empty());
    }
    SECTION("NOT NULL violation") {
        const auto e = error_of([&] { db.prepare("INSERT INTO u VALUES (NULL)").run(); });
        CHECK(e.errc() == Errc::storage);
        CHECK(e.sqlite_code() == SQLITE_CONSTRAINT_NOTNULL);
    }
    SECTION("syntax error at prepare names the statement") {
        const auto e = error_of([&] { db.prepare("SELEKT 1"); });
        CHECK(e.errc() == Errc::storage);
        CHECK(e.sqlite_code() == SQLITE_ERROR);
        CHECK(std::string(e.what()).find("SELEKT") != std::string::npos);
    }
    SECTION("bind index out of range") {
        auto s = db.prepare("SELECT ?");
        const auto e = error_of([&] { s.bind(2, std::int64_t{1}); });
        CHECK(e.errc() == Errc::storage);
        CHECK(e.sqlite_code() == SQLITE_RANGE);
    }
    // The failed statements left nothing behind.
    CHECK(query_int(db, "SELECT count(*) FROM u") == 1);
}

TEST_CASE("Errc is an error_code enum with messages and conditions", "[store][error]") {
    const auto& cat = lindra::error_category();
    CHECK(std::string(cat.name()) == "lindra");

    const Errc all[] = {Errc::ok,         Errc::invalid_argument, Errc::unknown_entity, Errc::unknown_field,
                        Errc::wrong_type, Errc::bad_enum_value,   Errc::out_of_range,   Errc::too_long,
                        Errc::not_found,  Errc::ambiguous,        Errc::storage,        Errc::busy,
                        Errc::corrupt,    Errc::schema_too_new,   Errc::read_only,      Errc::not_a_replica,
                        Errc::unavailable};
    std::set<std::string> messages;
    for (const auto e : all) {
        const std::error_code ec = e;
        CHECK(&ec.category() == &cat);
        const auto m = ec.message();
        INFO("Errc " << static_cast<int>(e) << ": " << m);
        CHECK_FALSE(m.empty());
        CHECK(m != cat.message(9999));  // the fallback for unknown codes
        messages.insert(m);
    }
    CHECK(messages.size() == std::size(all));  // every code has its own message

    const Error err(Errc::busy, "file.db is locked", SQLITE_BUSY);
    CHECK(err.errc() == Errc::busy);
    CHECK(err.sqlite_code() == SQLITE_BUSY);
    CHECK(std::string(err.what()).find("file.db is locked") != std::string::npos);
    CHECK(err.code() == Errc::busy);

    CHECK(std::error_code(Errc::busy) == std::errc::device_or_resource_busy);
    CHECK(std::error_code(Errc::too_long) == std::errc::invalid_argument);
    CHECK(std::error_code(Errc::unknown_field) == std::errc::invalid_argument);
    CHECK(std::error_code(Errc::out_of_range) == std::errc::result_out_of_range);
    CHECK(std::error_code(Errc::read_only) == std::errc::read_only_file_system);
    CHECK(std::error_code(Errc::storage) != std::errc::invalid_argument);
}

// ---- CachedStatement ------------------------------------------------------

TEST_CASE("CachedStatement is reset and unbound when its guard ends", "[store][statement]") {
    TempDir dir;
    Database db(dir.file("a.db"));
    db.exec("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1), (2), (3)");
    const std::string sql = "SELECT x FROM t WHERE x >= ? ORDER BY x";

    const lindra::store::Statement* first = nullptr;
    SECTION("after a normal scope") {
        auto s = db.cached(sql);
        first = &*s;
        s->bind(1, 2);
        REQUIRE(s->step());
        CHECK(s->int64(0) == 2);
    }
    SECTION("after an exception in the middle of stepping") {
        try {
            auto s = db.cached(sql);
            first = &*s;
            s->bind(1, 2);
            REQUIRE(s->step());
            throw std::runtime_error("interrupted");
        } catch (const std::runtime_error&) {
        }
    }
    {
        auto s = db.cached(sql);
        CHECK(&*s == first);  // the same prepared statement, reused
        // Unbound: `x >= NULL` matches nothing. Not reset would give 3, not
        // unbound would give 2.
        CHECK_FALSE(s->step());
    }
    {
        auto s = db.cached(sql);
        s->bind(1, 1);
        REQUIRE(s->step());
        CHECK(s->int64(0) == 1);
        // SQLite refuses to drop a table that a running statement reads...
        CHECK(error_of([&] { db.exec("DROP TABLE t"); }).sqlite_code() == SQLITE_LOCKED);
    }
    // ...so this shows the guard left no statement running.
    CHECK_NOTHROW(db.exec("DROP TABLE t"));
}

// ---- Transaction ----------------------------------------------------------

TEST_CASE("Transaction commits or rolls back", "[store][transaction]") {
    TempDir dir;
    const auto path = dir.file("a.db");
    Database db(path);
    db.exec("CREATE TABLE t (x INTEGER)");
    auto count = [&] { return query_int(db, "SELECT count(*) FROM t"); };

    SECTION("commit persists, for other connections and after reopening") {
        {
            Transaction txn(db);
            CHECK(db.in_transaction());
            db.exec("INSERT INTO t VALUES (1)");
            txn.commit();
        }
        CHECK_FALSE(db.in_transaction());
        Database other(path);
        CHECK(query_int(other, "SELECT count(*) FROM t") == 1);
    }
    SECTION("the destructor rolls back when commit() is not reached") {
        {
            Transaction txn(db);
            db.exec("INSERT INTO t VALUES (1)");
            CHECK(count() == 1);
        }
        CHECK_FALSE(db.in_transaction());
        CHECK(count() == 0);
    }
    SECTION("an exception propagating through the transaction rolls it back") {
        CHECK_THROWS_AS(
            [&] {
                Transaction txn(db);
                db.exec("INSERT INTO t VALUES (1)");
                throw std::runtime_error("app failure");
            }(),
            std::runtime_error);
        CHECK_FALSE(db.in_transaction());
        CHECK(count() == 0);
    }
    SECTION("a failing SQL statement inside rolls back everything before it") {
        db.exec("CREATE UNIQUE INDEX t_x ON t (x)");
        const auto e = error_of([&] {
            Transaction txn(db);
            db.exec("INSERT INTO t VALUES (1)");
            db.exec("INSERT INTO t VALUES (1)");
            txn.commit();
        });
        CHECK(e.sqlite_code() == SQLITE_CONSTRAINT_UNIQUE);
        CHECK_FALSE(db.in_transaction());
        CHECK(count() == 0);
    }
    SECTION("a failed commit is rolled back by the destructor") {
        db.exec(
            "CREATE TABLE p (id INTEGER PRIMARY KEY);"
            "CREATE TABLE c (p INTEGER REFERENCES p (id) DEFERRABLE INITIALLY DEFERRED)");
        {
            Transaction txn(db);
            db.exec("INSERT INTO t VALUES (1); INSERT INTO c VALUES (42)");
            const auto e = error_of([&] { txn.commit(); });
            CHECK(e.sqlite_code() == SQLITE_CONSTRAINT_FOREIGNKEY);
            CHECK(db.in_transaction());
        }
        CHECK_FALSE(db.in_transaction());
        CHECK(count() == 0);
        CHECK(query_int(db, "SELECT count(*) FROM c") == 0);
    }
    SECTION("a nested transaction throws and leaves the outer one intact") {
        {
            Transaction outer(db);
            db.exec("INSERT INTO t VALUES (1)");
            const auto e = error_of([&] { Transaction inner(db); });
            CHECK(e.errc() == Errc::storage);
            CHECK(db.in_transaction());
            outer.commit();
        }
        CHECK(count() == 1);
    }
    SECTION("commit twice throws") {
        Transaction txn(db);
        txn.commit();
        CHECK(error_of([&] { txn.commit(); }).errc() == Errc::storage);
        CHECK_FALSE(db.in_transaction());
    }
}

TEST_CASE("a write lock held elsewhere makes Transaction fail with busy", "[store][transaction][busy]") {
    using Clock = std::chrono::steady_clock;
    TempDir dir;
    const auto path = dir.file("a.db");
    Database holder(path);
    holder.exec("CREATE TABLE t (x INTEGER)");
    Database waiter(path, OpenOptions{50});

    {
        Transaction lock(holder);
        holder.exec("INSERT INTO t VALUES (1)");

        const auto start = Clock::now();
        const auto e = error_of([&] { Transaction txn(waiter); });
        const auto waited = Clock::now() - start;
        CHECK(e.errc() == Errc::busy);
        CHECK((e.sqlite_code() & 0xFF) == SQLITE_BUSY);
        CHECK(waited >= std::chrono::milliseconds(20));  // it did wait for the timeout
        CHECK(waited < std::chrono::seconds(2));         // and not much longer
        CHECK_FALSE(waiter.in_transaction());
        lock.commit();
    }
    // Once the lock is gone the waiter writes normally.
    Transaction txn(waiter);
    waiter.exec("INSERT INTO t VALUES (2)");
    txn.commit();
    CHECK(query_int(holder, "SELECT count(*) FROM t") == 2);
}

// ---- migrations -----------------------------------------------------------

namespace {

// Test migrations that count how often each step ran.
struct Steps {
    int runs[4] = {0, 0, 0, 0};
    bool fail_v2 = false;

    std::vector<Migration> upto(std::int64_t last) {
        std::vector<Migration> all = {
            {1,
             [this](Database& db) {
                 ++runs[1];
                 CHECK(db.in_transaction());
                 db.exec("CREATE TABLE a (x TEXT); INSERT INTO a VALUES ('from v1')");
             }},
            {2,
             [this](Database& db) {
                 ++runs[2];
                 db.exec("CREATE TABLE b (y TEXT); INSERT INTO a VALUES ('from v2')");
                 if (fail_v2) throw std::runtime_error("step 2 failed");
             }},
            {3,
             [this](Database& db) {
                 ++runs[3];
                 db.exec("CREATE TABLE c (z TEXT)");
             }},
        };
        all.resize(static_cast<std::size_t>(last));
        return all;
    }
};

std::int64_t table_count(Database& db) {
    return query_int(db, "SELECT count(*) FROM sqlite_master WHERE type = 'table'");
}

}  // namespace

TEST_CASE("migrate runs every step on a fresh file", "[store][migrations]") {
    TempDir dir;
    Database db(dir.file("a.db"));
    Steps steps;
    lindra::store::migrate(db, steps.upto(3));
    CHECK(db.user_version() == 3);
    CHECK(steps.runs[1] == 1);
    CHECK(steps.runs[2] == 1);
    CHECK(steps.runs[3] == 1);
    CHECK(table_count(db) == 3);
    CHECK_FALSE(db.in_transaction());

    // Up to date: nothing runs again.
    lindra::store::migrate(db, steps.upto(3));
    CHECK(steps.runs[1] + steps.runs[2] + steps.runs[3] == 3);
}

TEST_CASE("migrate on an old file runs only the new steps", "[store][migrations]") {
    TempDir dir;
    const auto path = dir.file("a.db");
    Steps steps;
    {
        Database db(path);
        lindra::store::migrate(db, steps.upto(1));
        CHECK(db.user_version() == 1);
        db.exec("INSERT INTO a VALUES ('user data')");
    }
    Database db(path);
    lindra::store::migrate(db, steps.upto(2));
    CHECK(db.user_version() == 2);
    CHECK(steps.runs[1] == 1);
    CHECK(steps.runs[2] == 1);
    CHECK(query_int(db, "SELECT count(*) FROM a WHERE x = 'user data'") == 1);
    CHECK(query_int(db, "SELECT count(*) FROM a") == 3);
}

TEST_CASE("a failing migration step rolls back only itself", "[store][migrations]") {
    TempDir dir;
    const auto path = dir.file("a.db");
    Steps steps;
    steps.fail_v2 = true;
    {
        Database db(path);
        CHECK_THROWS_WITH(lindra::store::migrate(db, steps.upto(3)), "step 2 failed");
        CHECK_FALSE(db.in_transaction());
        CHECK(db.user_version() == 1);
        CHECK(steps.runs[3] == 0);  // nothing after the failed step
    }
    Database db(path);
    CHECK(db.user_version() == 1);
    CHECK(query_int(db, "SELECT count(*) FROM sqlite_master WHERE name = 'a'") == 1);
    CHECK(query_int(db, "SELECT count(*) FROM sqlite_master WHERE name = 'b'") == 0);
    CHECK(query_int(db, "SELECT count(*) FROM a") == 1);  // v2's insert is gone

    // Fixed, the next open continues from v1.
    steps.fail_v2 = false;
    lindra::store::migrate(db, steps.upto(3));
    CHECK(db.user_version() == 3);
    CHECK(steps.runs[1] == 1);
    CHECK(steps.runs[2] == 2);
    CHECK(steps.runs[3] == 1);
}

TEST_CASE("a file newer than the last step is refused and left unchanged", "[store][migrations]") {
    TempDir dir;
    const auto path = dir.file("a.db");
    Steps steps;
    {
        Database db(path);
        db.exec("CREATE TABLE future (x)");
        db.set_user_version(7);
    }
    Database db(path);
    const auto e = error_of([&] { lindra::store::migrate(db, steps.upto(3)); });
    CHECK(e.errc() == Errc::schema_too_new);
    CHECK(std::string(e.what()).find('7') != std::string::npos);
    CHECK(db.user_version() == 7);
    CHECK(table_count(db) == 1);
    CHECK(steps.runs[1] + steps.runs[2] + steps.runs[3] == 0);
}

TEST_CASE("a Replica keeps its device id and refuses a newer file", "[store][migrations]") {
    TempDir dir;
    const auto path = dir.file("r.db");
    Id device;
    {
        lindra::Replica r(path);
        device = r.device_id();
        CHECK_FALSE(device.is_nil());
        r.register_organization("Org", lindra::OrganizationKind::municipality);
    }
    {
        lindra::Replica r(path);
        CHECK(r.device_id() == device);
        CHECK(r.outbox_size() == 1);
    }
    const auto store_version = lindra::detail::replica_migrations().back().version;
    {
        Database db(path);
        CHECK(db.user_version() == store_version);
        db.set_user_version(store_version + 1);
    }
    const auto e = error_of([&] { lindra::Replica r(path); });
    CHECK(e.errc() == Errc::schema_too_new);
    Database db(path);
    CHECK(db.user_version() == store_version + 1);
    CHECK(query_int(db, "SELECT count(*) FROM organization") == 1);
}

// ---- what lindra refuses to open ---------------------------------------------

namespace {

// Every file in `dir` with its bytes.
std::map<std::string, std::string> files_in(const fs::path& dir) {
    std::map<std::string, std::string> out;
    for (const auto& f : fs::directory_iterator(dir))
        out[f.path().filename().string()] = f.is_regular_file() ? read_file(f.path().string()) : "(not a file)";
    return out;
}

// A database of another program: a table with a row, in `journal_mode`.
void make_foreign_db(const std::string& path, const std::string& journal_mode) {
    RawConnection c(path);
    REQUIRE(c.exec("PRAGMA journal_mode=" + journal_mode +
                   "; CREATE TABLE notes (x); INSERT INTO notes VALUES ('private')") == SQLITE_OK);
}

}  // namespace

TEST_CASE("a file that is not a SQLite database is refused and left as it was", "[store][open]") {
    TempDir dir;
    const auto path = dir.file("garbage.db");
    std::string garbage;
    while (garbage.size() < 8192) garbage += "this is not an SQLite database. ";
    std::ofstream(path, std::ios::binary) << garbage;
    const auto before = files_in(dir.path());

    // A bare Database has no owner to look for: SQLite's own verdict.
    const auto raw = error_of([&] { Database db(path); });
    CHECK(raw.errc() == Errc::corrupt);
    CHECK(raw.sqlite_code() == SQLITE_NOTADB);
    CHECK_THAT(raw.what(), Catch::Contains(path));

    const auto e = error_of([&] { lindra::Replica r(path); });
    CHECK(e.errc() == Errc::not_a_replica);
    CHECK_FALSE(e.storage_failure());
    CHECK_THAT(e.what(), Catch::Contains(path) && Catch::Contains("not a SQLite database"));
    CHECK(files_in(dir.path()) == before);  // no -wal, -shm or -journal beside it either
}

TEST_CASE("another program's database is refused and left byte for byte", "[store][open]") {
    TempDir dir;
    const auto path = dir.file("other.sqlite");
    const std::string mode = GENERATE("delete", "wal");
    make_foreign_db(path, mode);
    const auto before = files_in(dir.path());
    REQUIRE(before.size() == 1);  // in WAL mode too: the last close removed -wal and -shm
    INFO("journal_mode=" << mode);

    const auto e = error_of([&] { lindra::Replica r(path); });
    CHECK(e.errc() == Errc::not_a_replica);
    CHECK(std::error_code(e.errc()).message() == "file is not a lindra replica");
    CHECK_THAT(e.what(),
               Catch::Contains(path) && Catch::Contains("another program") && Catch::Contains("left it unchanged"));
    CHECK(files_in(dir.path()) == before);

    // The server's store opens through the same replica core.
    CHECK(error_of([&] { lindra::server::open_sqlite_store(path, {}); }).errc() == Errc::not_a_replica);
    CHECK(files_in(dir.path()) == before);
}

TEST_CASE("another program's database in use is refused, its files left as they were", "[store][open]") {
    TempDir dir;
    const auto path = dir.file("other.sqlite");
    make_foreign_db(path, "wal");
    RawConnection app(path);  // the program still has it open: -wal and -shm exist
    REQUIRE(app.exec("INSERT INTO notes VALUES ('in the log')") == SQLITE_OK);
    REQUIRE(fs::exists(path + "-wal"));
    const auto db = read_file(path), wal = read_file(path + "-wal");

    CHECK(error_of([&] { lindra::Replica r(path); }).errc() == Errc::not_a_replica);
    CHECK(read_file(path) == db);
    CHECK(read_file(path + "-wal") == wal);
    CHECK(fs::exists(path + "-shm"));
}

TEST_CASE("a new file, an empty file and a database without tables become replicas", "[store][open]") {
    TempDir dir;
    const auto empty = dir.file("empty.db"), no_tables = dir.file("no-tables.db");
    std::ofstream(empty, std::ios::binary).flush();
    {
        RawConnection c(no_tables);
        REQUIRE(c.exec("CREATE TABLE t (x); DROP TABLE t") == SQLITE_OK);
    }
    REQUIRE(fs::file_size(no_tables) > 0);
    for (const auto& path : {dir.file("new.db"), empty, no_tables}) {
        INFO(path);
        Id device;
        {
            lindra::Replica r(path);
            device = r.device_id();
        }
        CHECK_FALSE(device.is_nil());
        CHECK(lindra::Replica(path).device_id() == device);
    }
}

TEST_CASE("a replica opens alone, beside another connection, and after a tool set it to rollback mode",
          "[store][open]") {
    TempDir dir;
    const auto path = dir.file("r.db");
    std::optional<lindra::Replica> first(std::in_place, path);
    first->register_organization("Org", lindra::OrganizationKind::municipality);
    const auto device = first->device_id();
    CHECK(lindra::Replica(path).device_id() == device);  // -wal is there: a plain read-only look
    first.reset();
    CHECK_FALSE(fs::exists(path + "-wal"));
    CHECK(lindra::Replica(path).device_id() == device);  // WAL without a log: read as immutable
    {
        RawConnection tool(path);
        REQUIRE(tool.exec("PRAGMA journal_mode=DELETE") == SQLITE_OK);
    }
    lindra::Replica again(path);
    CHECK(again.device_id() == device);
    CHECK(again.outbox_size() == 1);
}

TEST_CASE("a replica in a read-only directory: the error names the directory and why", "[store][open]") {
    TempDir dir;
    const auto sub = dir.path() / "ro";
    fs::create_directory(sub);
    const auto path = (sub / "r.db").string();
    { lindra::Replica r(path); }
    const auto before = files_in(sub);
    WriteProtect read_only(sub);
    if (!read_only.ok()) {
        WARN("skipped: this process cannot make a directory read-only for itself (root without CAP_LINUX_IMMUTABLE?)");
        return;
    }
    auto e = error_of([&] { lindra::Replica r(path); });
    CHECK(e.errc() == Errc::read_only);
    CHECK_THAT(e.what(), Catch::Contains("cannot open " + path) &&
                             Catch::Contains("the directory " + sub.string() + " is read-only") &&
                             Catch::Contains("r.db-wal"));
    CHECK(files_in(sub) == before);

    const auto fresh = (sub / "new.db").string();
    e = error_of([&] { lindra::Replica r(fresh); });
    CHECK(e.errc() == Errc::read_only);
    CHECK_THAT(e.what(), Catch::Contains("cannot create " + fresh) && Catch::Contains("is read-only"));
    CHECK(files_in(sub) == before);
}

TEST_CASE("a read-only replica file: the error names the file and why", "[store][open]") {
    TempDir dir;
    const auto path = dir.file("r.db");
    { lindra::Replica r(path); }
    const auto before = files_in(dir.path());
    WriteProtect read_only(path);
    if (!read_only.ok()) {
        WARN("skipped: this process cannot make a file read-only for itself (root without CAP_LINUX_IMMUTABLE?)");
        return;
    }
    const auto e = error_of([&] { lindra::Replica r(path); });
    CHECK(e.errc() == Errc::read_only);
    CHECK(e.storage_failure());
    CHECK_THAT(e.what(), Catch::Contains(path + " is read-only") && Catch::Contains("writable"));
    CHECK(files_in(dir.path()) == before);
}

TEST_CASE("a missing directory, or a directory given as the file: the error says which", "[store][open]") {
    TempDir dir;
    const auto nowhere = dir.file("nowhere");
    auto e = error_of([&] { lindra::Replica r(nowhere + "/r.db"); });
    CHECK(e.errc() == Errc::storage);
    CHECK_THAT(e.what(), Catch::Contains("cannot create " + nowhere + "/r.db") &&
                             Catch::Contains("the directory " + nowhere + " does not exist"));
    CHECK_FALSE(fs::exists(nowhere));

    e = error_of([&] { lindra::Replica r(dir.path().string()); });
    CHECK(e.errc() == Errc::storage);
    CHECK_THAT(e.what(), Catch::Contains(dir.path().string() + " is a directory"));
    CHECK(files_in(dir.path()).empty());
}

TEST_CASE("a server's store is PostgreSQL only for a libpq URI or keyword string", "[open]") {
    using lindra::server::is_postgres;
    CHECK(is_postgres("postgresql://lindra@db:5432/lindra"));
    CHECK(is_postgres("postgres://db/lindra"));
    CHECK(is_postgres("host=db port=5432 dbname=lindra"));
    CHECK(is_postgres("dbname=lindra"));
    CHECK_FALSE(is_postgres("server.db"));
    CHECK_FALSE(is_postgres("/srv/a=b/server.db"));
    CHECK_FALSE(is_postgres("./x=y.db"));
    CHECK_FALSE(is_postgres(""));
}
