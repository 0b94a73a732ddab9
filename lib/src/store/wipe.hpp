// Removing a closed SQLite database from the file system so its bytes do not
// stay behind in the files' freed blocks (shared tablets: signing out).
//
// Thread-safety: any thread; no SQLite connection may have the file open.
#pragma once

#include <string>
#include <vector>

namespace lindra::store {

// Overwrites the database at `path` and its -wal, -shm and -journal
// siblings with zeros, syncs each to disk, unlinks it, and syncs the
// directory. Files that do not exist are skipped. Returns the paths it
// removed. A symbolic link is refused rather than followed, and any failure
// throws Error(Errc::storage) naming the file and the system's reason; the
// files not reached yet are left as they were.
//
// Best effort below the file system: on flash storage and copy-on-write or
// journaling file systems the old blocks may survive the overwrite; only
// an encrypted disk keeps them unreadable.
std::vector<std::string> wipe_database_files(const std::string& path);

}  // namespace lindra::store
