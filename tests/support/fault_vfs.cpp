#include "support/fault_vfs.hpp"

#include <sqlite3.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <vector>

namespace lindra::test {

namespace {

// What the operating system holds of one path: with power_loss, the
// contents not yet synced to the disk. Shared by every handle on the path.
struct Inode {
    std::optional<std::vector<unsigned char>> cache;  // the whole file, while it has unsynced changes
};

// SQLite allocates szOsFile bytes per open file and runs no constructor:
// plain fields only, and the wrapped file right behind them.
struct File {
    sqlite3_file base;
    FaultVfs::Impl* vfs;
    Inode* inode;  // null: a temporary file, neither counted nor buffered
    const char* name;
};

sqlite3_file* real_of(sqlite3_file* f) {
    return reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(f) + sizeof(File));
}
File& file_of(sqlite3_file* f) {
    return *reinterpret_cast<File*>(f);
}

}  // namespace

struct FaultVfs::Impl {
    Mode mode;
    std::int64_t at;
    std::int64_t calls = 0;
    std::int64_t syncs = 0;
    bool triggered = false;
    bool crashed = false;
    std::string trigger_point;
    int open_files = 0;
    std::map<std::string, Inode> inodes;
    sqlite3_vfs* real = nullptr;
    sqlite3_vfs vfs{};

    bool buffered() const { return mode == Mode::power_loss; }

    // Counts a write or sync; false if it must fail (now or because of a
    // crash before).
    bool admit(const char* what, const File& f, sqlite3_int64 offset, int amount) {
        if (crashed) return false;
        if (++calls != at) return true;
        triggered = true;
        const char* slash = std::strrchr(f.name, '/');
        trigger_point = std::string(what) + " of " + (slash ? slash + 1 : f.name);
        if (amount >= 0) trigger_point += " at " + std::to_string(offset) + ", " + std::to_string(amount) + " bytes";
        if (mode == Mode::fail) return false;
        crashed = true;
        // After a power cut, what only the OS cache held is gone (app_crash
        // caches nothing).
        for (auto& [_, inode] : inodes) inode.cache.reset();
        return false;
    }
};

namespace {

FaultVfs::Impl& impl_of(sqlite3_vfs* vfs) {
    return *static_cast<FaultVfs::Impl*>(vfs->pAppData);
}

// Loads the file into its inode's cache before its first unsynced change.
int cache_of(File& f, std::vector<unsigned char>*& out) {
    auto& cache = f.inode->cache;
    if (!cache) {
        sqlite3_file* real = real_of(&f.base);
        sqlite3_int64 size = 0;
        if (const int rc = real->pMethods->xFileSize(real, &size); rc != SQLITE_OK) return rc;
        std::vector<unsigned char> bytes(static_cast<std::size_t>(size));
        if (size > 0) {
            const int rc = real->pMethods->xRead(real, bytes.data(), static_cast<int>(size), 0);
            if (rc != SQLITE_OK) return rc;
        }
        cache = std::move(bytes);
    }
    out = &*cache;
    return SQLITE_OK;
}

// The file's cached contents go to the disk, and the disk syncs.
int flush(File& f, int flags) {
    sqlite3_file* real = real_of(&f.base);
    if (auto& cache = f.inode->cache) {
        const auto size = static_cast<sqlite3_int64>(cache->size());
        if (const int rc = real->pMethods->xTruncate(real, size); rc != SQLITE_OK) return rc;
        // At most 64 KiB a write: SQLite's unix VFS writes at most 128 KiB
        // at once (seekAndWrite masks the count) and calls a longer one a
        // full disk.
        constexpr sqlite3_int64 chunk = 1 << 16;
        for (sqlite3_int64 off = 0; off < size; off += chunk) {
            const int n = static_cast<int>(std::min(chunk, size - off));
            if (const int rc = real->pMethods->xWrite(real, cache->data() + off, n, off); rc != SQLITE_OK) return rc;
        }
        cache.reset();
    }
    return real->pMethods->xSync(real, flags);
}

int x_close(sqlite3_file* f) {
    File& file = file_of(f);
    sqlite3_file* real = real_of(f);
    --file.vfs->open_files;
    sqlite3_free(const_cast<char*>(file.name));
    return real->pMethods->xClose(real);
}

int x_read(sqlite3_file* f, void* buf, int amount, sqlite3_int64 offset) {
    File& file = file_of(f);
    if (file.vfs->crashed) return SQLITE_IOERR_READ;
    if (file.inode && file.inode->cache) {
        const auto& cache = *file.inode->cache;
        const auto size = static_cast<sqlite3_int64>(cache.size());
        const auto n = std::clamp<sqlite3_int64>(size - offset, 0, amount);
        std::memcpy(buf, cache.data() + std::min(offset, size), static_cast<std::size_t>(n));
        if (n == amount) return SQLITE_OK;
        std::memset(static_cast<char*>(buf) + n, 0, static_cast<std::size_t>(amount - n));
        return SQLITE_IOERR_SHORT_READ;
    }
    sqlite3_file* real = real_of(f);
    return real->pMethods->xRead(real, buf, amount, offset);
}

int x_write(sqlite3_file* f, const void* buf, int amount, sqlite3_int64 offset) {
    File& file = file_of(f);
    sqlite3_file* real = real_of(f);
    if (!file.inode) return real->pMethods->xWrite(real, buf, amount, offset);
    if (!file.vfs->admit("xWrite", file, offset, amount)) return SQLITE_IOERR_WRITE;
    if (!file.vfs->buffered()) return real->pMethods->xWrite(real, buf, amount, offset);
    std::vector<unsigned char>* cache = nullptr;
    if (const int rc = cache_of(file, cache); rc != SQLITE_OK) return rc;
    const auto end = static_cast<std::size_t>(offset) + static_cast<std::size_t>(amount);
    if (cache->size() < end) cache->resize(end);  // a hole reads as zeros
    std::memcpy(cache->data() + offset, buf, static_cast<std::size_t>(amount));
    return SQLITE_OK;
}

int x_truncate(sqlite3_file* f, sqlite3_int64 size) {
    File& file = file_of(f);
    sqlite3_file* real = real_of(f);
    if (file.vfs->crashed) return SQLITE_IOERR_TRUNCATE;
    if (!file.inode || !file.vfs->buffered()) return real->pMethods->xTruncate(real, size);
    std::vector<unsigned char>* cache = nullptr;
    if (const int rc = cache_of(file, cache); rc != SQLITE_OK) return rc;
    cache->resize(static_cast<std::size_t>(size));
    return SQLITE_OK;
}

int x_sync(sqlite3_file* f, int flags) {
    File& file = file_of(f);
    sqlite3_file* real = real_of(f);
    if (!file.inode) return real->pMethods->xSync(real, flags);
    if (!file.vfs->admit("xSync", file, 0, -1)) return SQLITE_IOERR_FSYNC;
    const int rc = flush(file, flags);
    if (rc == SQLITE_OK) ++file.vfs->syncs;
    return rc;
}

int x_file_size(sqlite3_file* f, sqlite3_int64* size) {
    File& file = file_of(f);
    if (file.vfs->crashed) return SQLITE_IOERR_FSTAT;
    if (file.inode && file.inode->cache) {
        *size = static_cast<sqlite3_int64>(file.inode->cache->size());
        return SQLITE_OK;
    }
    sqlite3_file* real = real_of(f);
    return real->pMethods->xFileSize(real, size);
}

int x_lock(sqlite3_file* f, int level) {
    if (file_of(f).vfs->crashed) return SQLITE_IOERR_LOCK;
    sqlite3_file* real = real_of(f);
    return real->pMethods->xLock(real, level);
}

// Unlocking, unmapping and closing go through even after a crash: the
// operating system releases a dead process's locks.
int x_unlock(sqlite3_file* f, int level) {
    sqlite3_file* real = real_of(f);
    return real->pMethods->xUnlock(real, level);
}

int x_check_reserved_lock(sqlite3_file* f, int* out) {
    if (file_of(f).vfs->crashed) return SQLITE_IOERR_CHECKRESERVEDLOCK;
    sqlite3_file* real = real_of(f);
    return real->pMethods->xCheckReservedLock(real, out);
}

int x_file_control(sqlite3_file* f, int op, void* arg) {
    File& file = file_of(f);
    if (file.vfs->crashed) return SQLITE_IOERR;
    // A size hint may grow the file behind the cache's back; it is only a hint.
    if (op == SQLITE_FCNTL_SIZE_HINT && file.inode && file.vfs->buffered()) return SQLITE_OK;
    sqlite3_file* real = real_of(f);
    return real->pMethods->xFileControl(real, op, arg);
}

int x_sector_size(sqlite3_file* f) {
    sqlite3_file* real = real_of(f);
    return real->pMethods->xSectorSize(real);
}

int x_device_characteristics(sqlite3_file* f) {
    sqlite3_file* real = real_of(f);
    return real->pMethods->xDeviceCharacteristics(real);
}

int x_shm_map(sqlite3_file* f, int page, int page_size, int extend, void volatile** out) {
    if (file_of(f).vfs->crashed) return SQLITE_IOERR_SHMMAP;
    sqlite3_file* real = real_of(f);
    return real->pMethods->xShmMap(real, page, page_size, extend, out);
}

int x_shm_lock(sqlite3_file* f, int offset, int n, int flags) {
    if (file_of(f).vfs->crashed && (flags & SQLITE_SHM_LOCK)) return SQLITE_IOERR_SHMLOCK;
    sqlite3_file* real = real_of(f);
    return real->pMethods->xShmLock(real, offset, n, flags);
}

void x_shm_barrier(sqlite3_file* f) {
    sqlite3_file* real = real_of(f);
    real->pMethods->xShmBarrier(real);
}

int x_shm_unmap(sqlite3_file* f, int delete_flag) {
    sqlite3_file* real = real_of(f);
    // A crashed process deletes nothing.
    return real->pMethods->xShmUnmap(real, file_of(f).vfs->crashed ? 0 : delete_flag);
}

// Version 2: no xFetch, so SQLite never reads around the cache through a
// memory map.
const sqlite3_io_methods kMethods = {
    2,
    x_close,
    x_read,
    x_write,
    x_truncate,
    x_sync,
    x_file_size,
    x_lock,
    x_unlock,
    x_check_reserved_lock,
    x_file_control,
    x_sector_size,
    x_device_characteristics,
    x_shm_map,
    x_shm_lock,
    x_shm_barrier,
    x_shm_unmap,
    nullptr,
    nullptr,
};

constexpr int kDurableFiles =
    SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_MAIN_JOURNAL | SQLITE_OPEN_WAL | SQLITE_OPEN_SUPER_JOURNAL;

int x_open(sqlite3_vfs* vfs, sqlite3_filename name, sqlite3_file* f, int flags, int* out_flags) {
    auto& impl = impl_of(vfs);
    f->pMethods = nullptr;
    if (impl.crashed) return SQLITE_CANTOPEN;
    sqlite3_file* real = real_of(f);
    const int rc = impl.real->xOpen(impl.real, name, real, flags, out_flags);
    if (rc != SQLITE_OK) {
        if (real->pMethods) real->pMethods->xClose(real);
        return rc;
    }
    File& file = file_of(f);
    file.base.pMethods = &kMethods;
    file.vfs = &impl;
    file.inode = name && (flags & kDurableFiles) ? &impl.inodes[name] : nullptr;
    file.name = sqlite3_mprintf("%s", name ? name : "(temporary)");
    ++impl.open_files;
    return SQLITE_OK;
}

int x_delete(sqlite3_vfs* vfs, const char* name, int sync_dir) {
    auto& impl = impl_of(vfs);
    if (impl.crashed) return SQLITE_IOERR_DELETE;
    if (auto it = impl.inodes.find(name); it != impl.inodes.end()) it->second.cache.reset();
    return impl.real->xDelete(impl.real, name, sync_dir);
}

int x_access(sqlite3_vfs* vfs, const char* name, int flags, int* out) {
    auto& impl = impl_of(vfs);
    if (impl.crashed) return SQLITE_IOERR_ACCESS;
    return impl.real->xAccess(impl.real, name, flags, out);
}

int x_full_pathname(sqlite3_vfs* vfs, const char* name, int n, char* out) {
    auto* real = impl_of(vfs).real;
    return real->xFullPathname(real, name, n, out);
}

void* x_dl_open(sqlite3_vfs* vfs, const char* name) {
    auto* real = impl_of(vfs).real;
    return real->xDlOpen(real, name);
}
void x_dl_error(sqlite3_vfs* vfs, int n, char* out) {
    auto* real = impl_of(vfs).real;
    real->xDlError(real, n, out);
}
void (*x_dl_sym(sqlite3_vfs* vfs, void* handle, const char* symbol))(void) {
    auto* real = impl_of(vfs).real;
    return real->xDlSym(real, handle, symbol);
}
void x_dl_close(sqlite3_vfs* vfs, void* handle) {
    auto* real = impl_of(vfs).real;
    real->xDlClose(real, handle);
}
int x_randomness(sqlite3_vfs* vfs, int n, char* out) {
    auto* real = impl_of(vfs).real;
    return real->xRandomness(real, n, out);
}
int x_sleep(sqlite3_vfs* vfs, int us) {
    auto* real = impl_of(vfs).real;
    return real->xSleep(real, us);
}
int x_current_time(sqlite3_vfs* vfs, double* out) {
    auto* real = impl_of(vfs).real;
    return real->xCurrentTime(real, out);
}
int x_get_last_error(sqlite3_vfs* vfs, int n, char* out) {
    auto* real = impl_of(vfs).real;
    return real->xGetLastError ? real->xGetLastError(real, n, out) : 0;
}
int x_current_time_int64(sqlite3_vfs* vfs, sqlite3_int64* out) {
    auto* real = impl_of(vfs).real;
    return real->xCurrentTimeInt64(real, out);
}

// Without a crash, what the OS cache held is still there for the next
// reader, as it would be in the file.
void write_back(const std::string& path, const std::vector<unsigned char>& bytes) {
    const int fd = ::open(path.c_str(), O_WRONLY);
    if (fd < 0) return;  // deleted since
    std::size_t done = 0;
    while (done < bytes.size()) {
        const auto n = ::pwrite(fd, bytes.data() + done, bytes.size() - done, static_cast<off_t>(done));
        if (n <= 0) break;
        done += static_cast<std::size_t>(n);
    }
    if (done != bytes.size() || ::ftruncate(fd, static_cast<off_t>(bytes.size())) != 0) {
        std::fprintf(stderr, "FaultVfs: cannot write back %s\n", path.c_str());
        std::abort();
    }
    ::close(fd);
}

}  // namespace

FaultVfs::FaultVfs(Mode mode, std::int64_t at) : impl_(std::make_unique<Impl>()) {
    impl_->mode = mode;
    impl_->at = mode == Mode::count ? 0 : at;
    impl_->real = sqlite3_vfs_find(nullptr);
    sqlite3_vfs& v = impl_->vfs;
    v.iVersion = 3;
    v.szOsFile = static_cast<int>(sizeof(File)) + impl_->real->szOsFile;
    v.mxPathname = impl_->real->mxPathname;
    v.zName = "lindra-fault";
    v.pAppData = impl_.get();
    v.xOpen = x_open;
    v.xDelete = x_delete;
    v.xAccess = x_access;
    v.xFullPathname = x_full_pathname;
    v.xDlOpen = x_dl_open;
    v.xDlError = x_dl_error;
    v.xDlSym = x_dl_sym;
    v.xDlClose = x_dl_close;
    v.xRandomness = x_randomness;
    v.xSleep = x_sleep;
    v.xCurrentTime = x_current_time;
    v.xGetLastError = x_get_last_error;
    v.xCurrentTimeInt64 = x_current_time_int64;
    if (sqlite3_vfs_register(&v, 1) != SQLITE_OK) {
        std::fprintf(stderr, "FaultVfs: cannot register\n");
        std::abort();
    }
}

FaultVfs::~FaultVfs() {
    // A connection still open would call into freed memory.
    if (impl_->open_files != 0) {
        std::fprintf(stderr, "FaultVfs: %d files still open\n", impl_->open_files);
        std::abort();
    }
    if (!impl_->crashed)
        for (const auto& [path, inode] : impl_->inodes)
            if (inode.cache) write_back(path, *inode.cache);
    sqlite3_vfs_register(impl_->real, 1);
    sqlite3_vfs_unregister(&impl_->vfs);
}

std::int64_t FaultVfs::calls() const noexcept {
    return impl_->calls;
}
std::int64_t FaultVfs::syncs() const noexcept {
    return impl_->syncs;
}
bool FaultVfs::triggered() const noexcept {
    return impl_->triggered;
}
const std::string& FaultVfs::trigger_point() const noexcept {
    return impl_->trigger_point;
}

}  // namespace lindra::test
