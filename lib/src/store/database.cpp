#include "store/database.hpp"

#include <lindra/error.hpp>

#include <sqlite3.h>

#include <unistd.h>

#include <cctype>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

namespace lindra::store {
namespace {

Error sqlite_error(sqlite3* db, int rc, std::string_view context) {
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
    return Error(e, msg, code);
}

}  // namespace

void throw_sqlite(sqlite3* db, int rc, std::string_view context) {
    throw sqlite_error(db, rc, context);
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

namespace fs = std::filesystem;

// What to tell someone who named `path` and meant a replica.
constexpr std::string_view kGiveAnotherPath =
    "; lindra left it unchanged. Give the path of a lindra replica, or of a new file for lindra to create";

// `path` as the path of a file: URI (RFC 3986), for SQLite's query parameters.
std::string file_uri(const std::string& path) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string uri = "file:";
    for (const unsigned char c : fs::absolute(path).string()) {
        if (std::isalnum(c) || c == '/' || c == '.' || c == '_' || c == '-' || c == '~') {
            uri += static_cast<char>(c);
        } else {
            uri += '%';
            uri += kHex[c >> 4];
            uri += kHex[c & 0xF];
        }
    }
    return uri;
}

// Refuses an existing file that is not `owner`'s, before anything writes to
// it: opening it read-write would switch it to WAL, which rewrites its
// header, and leave -wal and -shm files beside it. A new or empty file, or
// one that holds no table yet, is fine.
void check_owner(const std::string& path, const std::string& owner, int busy_timeout_ms) {
    std::error_code ec;
    if (!fs::is_regular_file(path, ec) || fs::file_size(path, ec) == 0) return;  // the open below decides
    char header[100] = {};
    std::ifstream in(path, std::ios::binary);
    if (!in) return;  // unreadable: the open below fails and says why
    in.read(header, sizeof header);
    static constexpr char kMagic[16] = "SQLite format 3";  // with its NUL
    if (in.gcount() < static_cast<std::streamsize>(sizeof kMagic) || std::memcmp(header, kMagic, sizeof kMagic) != 0)
        throw Error(Errc::not_a_replica,
                    path + " is not a SQLite database, so it is not a lindra replica" + std::string(kGiveAnotherPath));
    // Read-only, so nothing is written. A file in WAL mode (header byte 18)
    // would still get -wal and -shm files that a read-only connection
    // cannot remove; without a -wal file nobody has it open and the file
    // alone is the whole database, which `immutable` reads without them.
    const bool wal_without_log = header[18] == 2 && !fs::exists(path + "-wal", ec);
    const std::string uri = file_uri(path) + "?mode=ro" + (wal_without_log ? "&immutable=1" : "");
    sqlite3* raw_db = nullptr;
    int rc =
        sqlite3_open_v2(uri.c_str(), &raw_db,
                        SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE, nullptr);
    const std::unique_ptr<sqlite3, decltype(&sqlite3_close_v2)> db(raw_db, &sqlite3_close_v2);
    sqlite3_stmt* raw_st = nullptr;
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(db.get(), busy_timeout_ms);
        rc = sqlite3_prepare_v2(db.get(),
                                "SELECT count(*), coalesce(sum(type = 'table' AND name = ?), 0) FROM sqlite_master", -1,
                                &raw_st, nullptr);
    }
    const std::unique_ptr<sqlite3_stmt, decltype(&sqlite3_finalize)> st(raw_st, &sqlite3_finalize);
    if (rc == SQLITE_OK) rc = sqlite3_bind_text(st.get(), 1, owner.c_str(), -1, SQLITE_TRANSIENT);
    if (rc == SQLITE_OK) rc = sqlite3_step(st.get());
    if (rc != SQLITE_ROW) throw sqlite_error(db.get(), rc, {});
    const bool empty = sqlite3_column_int64(st.get(), 0) == 0;
    const bool owned = sqlite3_column_int64(st.get(), 1) > 0;
    if (!empty && !owned)
        throw Error(Errc::not_a_replica, path + " is a SQLite database of another program: it holds tables, but no" +
                                             " lindra replica" + std::string(kGiveAnotherPath));
}

// The cause in the file system of a failure to open `path`, said so that
// someone can act on it; else `e` with the file named.
Error explain_open_failure(const std::string& path, const Error& e) {
    const fs::path file(path);
    const fs::path dir = file.has_parent_path() ? file.parent_path() : fs::path(".");
    std::error_code ec;
    const bool exists = fs::exists(file, ec);
    const int code = e.sqlite_code();
    if (fs::is_directory(file, ec))
        return Error(
            Errc::storage,
            path + " is a directory; give the path of the database file, e.g. " + (file / "lindra.db").string(), code);
    if (!exists && !fs::is_directory(dir, ec))
        return Error(Errc::storage,
                     "cannot create " + path + ": the directory " + dir.string() +
                         " does not exist; create it, or give a path in an existing directory",
                     code);
    // access() asks the kernel, so read-only mounts, immutable files and
    // ACLs count, and root's privileges too.
    if (exists && ::access(path.c_str(), W_OK) != 0)
        return Error(Errc::read_only,
                     path +
                         " is read-only, and lindra writes to a replica even to open it; make the file writable,"
                         " or copy it to a place where you may write",
                     code);
    if (::access(dir.c_str(), W_OK) != 0) {
        if (!exists)
            return Error(Errc::read_only,
                         "cannot create " + path + ": the directory " + dir.string() +
                             " is read-only; make it writable, or give a path in a writable directory",
                         code);
        const std::string name = file.filename().string();
        return Error(Errc::read_only,
                     "cannot open " + path + ": the directory " + dir.string() + " is read-only, and SQLite's" +
                         " write-ahead log needs to create " + name + "-wal and " + name +
                         "-shm beside the database; make the directory writable, or move the file to one that is",
                     code);
    }
    return Error(e.errc(), "cannot open " + path + ": " + e.what(), code, e.field());
}

}  // namespace

Database::Database(const std::string& path, const OpenOptions& options) : path_(path) {
    configure_sqlite_once();
    const bool on_disk = !path.empty() && path != ":memory:";
    try {
        if (on_disk && !options.owner_table.empty()) check_owner(path, options.owner_table, options.busy_timeout_ms);
        open(options);
    } catch (const Error& e) {
        close();
        // A file that is not the owner's was refused before anything was tried.
        if (on_disk && e.errc() != Errc::not_a_replica) throw explain_open_failure(path, e);
        throw;
    } catch (...) {
        close();
        throw;
    }
}

void Database::open(const OpenOptions& options) {
    const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
    const int rc = sqlite3_open_v2(path_.c_str(), &db_, flags, nullptr);
    if (rc != SQLITE_OK) throw_sqlite(db_, rc, {});
    // SQLite opens a file it may not write read-only, without a word; a
    // replica is written on every open (the clock, migrations).
    if (sqlite3_db_readonly(db_, "main") == 1) throw Error(Errc::read_only, "the file is read-only", SQLITE_READONLY);
    sqlite3_extended_result_codes(db_, 1);
    sqlite3_db_config(db_, SQLITE_DBCONFIG_DEFENSIVE, 1, nullptr);
    sqlite3_db_config(db_, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, nullptr);
    sqlite3_busy_timeout(db_, options.busy_timeout_ms);
    // journal_mode reports the mode it got; anything but WAL (e.g. a
    // read-only medium) is an error rather than a silent downgrade.
    auto s = prepare("PRAGMA journal_mode=WAL");
    const bool wal = s.step() && (s.text(0) == "wal" || path_ == ":memory:");
    // A new file records the mode in a commit that runs after the row
    // came back; its I/O error shows only on the step that finishes.
    while (s.step()) {
    }
    if (!wal) throw Error(Errc::storage, "cannot switch to WAL mode");
    exec(options.synchronous_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
    exec("PRAGMA foreign_keys=ON; PRAGMA secure_delete=ON");
}

Database::~Database() {
    close();
}

void Database::close() noexcept {
    cache_.clear();  // statements must be finalized before the connection
    sqlite3_close_v2(db_);
    db_ = nullptr;
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

void Database::keep_wal_on_close() {
    int on = 1;
    const int rc = sqlite3_file_control(db_, "main", SQLITE_FCNTL_PERSIST_WAL, &on);
    if (rc != SQLITE_OK) throw_sqlite(db_, rc, "persist_wal");
    exec("PRAGMA journal_size_limit=-1");  // else the close truncates the WAL rather than keep it
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
