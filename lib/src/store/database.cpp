#include "store/database.hpp"

#include <lindra/error.hpp>

#include <sqlite3.h>

#include <string>

namespace lindra::store {

void throw_sqlite(sqlite3* db, int rc, std::string_view context) {
    const int ext = db ? sqlite3_extended_errcode(db) : rc;
    const int code = (ext & 0xFF) == (rc & 0xFF) ? ext : rc;
    Errc e = Errc::storage;
    switch (code & 0xFF) {
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
            e = Errc::busy;
            break;
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB:
            e = Errc::corrupt;
            break;
        case SQLITE_READONLY:
        case SQLITE_PERM:
            e = Errc::read_only;
            break;
        default:
            break;
    }
    std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    if (!context.empty()) msg += " (" + std::string(context.substr(0, 120)) + ")";
    throw Error(e, msg, code);
}

namespace {
// SQLite's memory statistics take a global mutex on every allocation (Debian
// builds them in); lindra never reads them, and on the sync path the
// locking cost about a tenth of the time. The setting is process-wide and
// only possible before SQLite initializes; if the app already started
// SQLite, it stays as the app has it.
void configure_sqlite_once() {
    static const bool done = [] {
        sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
        return true;
    }();
    (void)done;
}
}  // namespace

Database::Database(const std::string& path, const OpenOptions& options) : path_(path) {
    configure_sqlite_once();
    const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
    const int rc = sqlite3_open_v2(path.c_str(), &db_, flags, nullptr);
    if (rc != SQLITE_OK) {
        std::string msg = "cannot open " + path + ": " + (db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc));
        sqlite3_close_v2(db_);
        db_ = nullptr;
        throw Error(rc == SQLITE_NOTADB ? Errc::corrupt : Errc::storage, msg, rc);
    }
    try {
        sqlite3_extended_result_codes(db_, 1);
        sqlite3_db_config(db_, SQLITE_DBCONFIG_DEFENSIVE, 1, nullptr);
        sqlite3_db_config(db_, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, nullptr);
        sqlite3_busy_timeout(db_, options.busy_timeout_ms);
        // journal_mode reports the mode it got; anything but WAL (e.g. a
        // read-only medium) is an error rather than a silent downgrade.
        auto s = prepare("PRAGMA journal_mode=WAL");
        const bool wal = s.step() && (s.text(0) == "wal" || path == ":memory:");
        // A new file records the mode in a commit that runs after the row
        // came back; its I/O error shows only on the step that finishes.
        while (s.step()) {
        }
        if (!wal) throw Error(Errc::storage, "cannot switch " + path + " to WAL mode");
        exec(options.synchronous_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
        exec("PRAGMA foreign_keys=ON; PRAGMA secure_delete=ON");
    } catch (...) {
        cache_.clear();
        sqlite3_close_v2(db_);
        throw;
    }
}

Database::~Database() {
    cache_.clear();  // statements must be finalized before the connection
    sqlite3_close_v2(db_);
}

void Database::exec(std::string_view sql) {
    const std::string s(sql);
    char* err = nullptr;
    const int rc = sqlite3_exec(db_, s.c_str(), nullptr, nullptr, &err);
    sqlite3_free(err);
    if (rc != SQLITE_OK) throw_sqlite(db_, rc, sql);
}

Statement Database::prepare(std::string_view sql) {
    return Statement(db_, sql);
}

CachedStatement Database::cached(const std::string& sql) {
    auto it = cache_.find(sql);
    if (it == cache_.end()) it = cache_.emplace(sql, std::make_unique<Statement>(db_, sql)).first;
    return CachedStatement(*it->second);
}

std::int64_t Database::changes() const {
    return sqlite3_changes64(db_);
}

std::int64_t Database::user_version() {
    auto s = prepare("PRAGMA user_version");
    s.step();
    return s.int64(0);
}

void Database::set_user_version(std::int64_t v) {
    exec("PRAGMA user_version=" + std::to_string(v));
}

std::uint32_t Database::data_version() {
    unsigned int v = 0;
    const int rc = sqlite3_file_control(db_, "main", SQLITE_FCNTL_DATA_VERSION, &v);
    if (rc != SQLITE_OK) throw_sqlite(db_, rc, "data_version");
    return v;
}

void Database::checkpoint() {
    const int rc = sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    if (rc != SQLITE_OK) throw_sqlite(db_, rc, "wal_checkpoint");
}

bool Database::truncate_wal() {
    const int rc = sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr, nullptr);
    if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) return false;
    if (rc != SQLITE_OK) throw_sqlite(db_, rc, "wal_checkpoint(TRUNCATE)");
    return true;
}

bool Database::in_transaction() const {
    return sqlite3_get_autocommit(db_) == 0;
}

}  // namespace lindra::store
