// An open SQLite database, owned, with lindra's connection settings.
//
// Thread-safety: one thread at a time; the owner serialises access.
#pragma once

#include "store/statement.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

namespace lindra::store {

class Database;

// A cached statement in use: reset and unbound when the guard goes out of
// scope, so the next user finds it clean whatever happened in between.
class CachedStatement {
  public:
    explicit CachedStatement(Statement& s) noexcept : s_(&s) {}
    ~CachedStatement() { s_->reset(); }
    CachedStatement(const CachedStatement&) = delete;
    CachedStatement& operator=(const CachedStatement&) = delete;
    Statement* operator->() const noexcept { return s_; }
    Statement& operator*() const noexcept { return *s_; }

  private:
    Statement* s_;
};

struct OpenOptions {
    int busy_timeout_ms = 5000;
    // Durability of a commit: lindra sets it explicitly because Debian's
    // SQLite defaults to FULL in WAL mode. NORMAL: a commit survives an app
    // crash; on power loss the last commits may vanish, never half of one.
    bool synchronous_full = false;
    // The table that marks a file as its owner's (lindra_replica). If set,
    // an existing file that is not a SQLite database, or that holds tables
    // but not this one, is refused with Errc::not_a_replica before anything
    // writes to it, and left byte for byte as it was.
    std::string owner_table{};
};

class Database {
  public:
    // Opens or creates the file and applies lindra's settings: WAL,
    // foreign_keys, busy timeout, secure_delete, SQLITE_DBCONFIG_DEFENSIVE,
    // trusted_schema off and the chosen synchronous level. A failure names
    // the file and, where the file system explains it (a read-only file or
    // directory, a missing directory, a directory given as the file), says
    // so and what to do.
    explicit Database(const std::string& path, const OpenOptions& options = {});
    ~Database();
    Database(const Database&) = delete;
    Database& operator=(const Database&) = delete;

    void exec(std::string_view sql);
    Statement prepare(std::string_view sql);
    // A statement prepared once per Database and reused.
    CachedStatement cached(const std::string& sql);

    std::int64_t changes() const;
    std::int64_t user_version();
    void set_user_version(std::int64_t v);
    bool in_transaction() const;
    // Writes the WAL back into the database file and syncs both: every
    // commit so far survives a power cut.
    // Copies the WAL into the database and empties the WAL file, so bytes
    // deleted with secure_delete leave no copy behind in it. False if
    // another connection's reader kept it from finishing (try later).
    bool truncate_wal();
    void checkpoint();
    // Closing this connection leaves the WAL file in place, its frames
    // unchanged, instead of unlinking it: for a caller that overwrites the
    // files before removing them (wipe_database_files), so the WAL's bytes
    // are not left in freed blocks.
    void keep_wal_on_close();
    // Changes when any connection commits to the file, this one included.
    // Another connection's commit shows once this one starts a transaction
    // (lindra reads it right after BEGIN IMMEDIATE).
    std::uint32_t data_version();
    const std::string& path() const noexcept { return path_; }

  private:
    friend class Statement;
    void open(const OpenOptions& options);
    void close() noexcept;
    sqlite3* db_ = nullptr;
    std::string path_;
    std::unordered_map<std::string, std::unique_ptr<Statement>> cache_;
};

// Throws the lindra::Error for SQLite result code `rc` on `db`.
[[noreturn]] void throw_sqlite(sqlite3* db, int rc, std::string_view context);

}  // namespace lindra::store
