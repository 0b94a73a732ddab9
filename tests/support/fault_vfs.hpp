// A SQLite VFS for crash-safety tests: wraps the default VFS, counts the
// xWrite and xSync calls on the files that must survive a crash (database,
// WAL, rollback journal) and, at the Nth of them, fails that call or cuts
// the process off as a crash or a power loss would.
//
// Not counted: the WAL index (-shm), which SQLite changes through a memory
// map, never xWrite, and rebuilds from the WAL on the first open after a
// crash; and temporary files, which nothing reads after a crash.
//
// Creating and deleting files takes effect at once in every mode: the model
// loses data written to files, not directory entries.
//
// Installed as SQLite's default VFS for the object's lifetime, so lindra
// opens its files through it unchanged; the previous default comes back on
// destruction. Every connection opened through it must be closed by then.
//
// Thread-safety: one thread at a time, and one FaultVfs at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace lindra::test {

class FaultVfs {
  public:
    enum class Mode {
        count,  // counts, changes nothing
        // The Nth call returns SQLITE_IOERR_WRITE or SQLITE_IOERR_FSYNC and
        // does nothing; later calls succeed (a transient disk error).
        fail,
        // The process stops at the Nth call: every earlier write reached the
        // operating system and survives; the Nth and every later call fail.
        app_crash,
        // Writes wait in memory (the OS cache) until an xSync of their file
        // flushes them. At the Nth call every write not yet synced vanishes
        // and every later call fails, as on a power cut. Reads, file sizes
        // and truncation see the waiting writes. A file closed with writes
        // waiting keeps them in memory; if no crash comes, they reach the
        // file when the FaultVfs goes away.
        power_loss,
    };

    // `at`: the 1-based number of the call to fail; 0 never fails.
    explicit FaultVfs(Mode mode = Mode::count, std::int64_t at = 0);
    ~FaultVfs();
    FaultVfs(const FaultVfs&) = delete;
    FaultVfs& operator=(const FaultVfs&) = delete;

    // xWrite and xSync calls so far on counted files.
    std::int64_t calls() const noexcept;
    // xSync calls on counted files that completed.
    std::int64_t syncs() const noexcept;
    bool triggered() const noexcept;
    // The call that failed, e.g. "xWrite of t.db-wal at 4152, 4120 bytes".
    const std::string& trigger_point() const noexcept;

    struct Impl;

  private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace lindra::test
