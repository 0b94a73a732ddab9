#include "store/wipe.hpp"

#include <lindra/error.hpp>

#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace lindra::store {

namespace {

[[noreturn]] void fail(const std::string& what, const std::string& path, int err) {
    throw Error(Errc::storage, "cannot " + what + " " + path + ": " + std::strerror(err) +
                                   "; check the file's permissions and sign out again");
}

// Closes the descriptor whatever happens.
class File {
  public:
    explicit File(int fd) noexcept : fd_(fd) {}
    ~File() {
        if (fd_ >= 0) ::close(fd_);
    }
    File(const File&) = delete;
    File& operator=(const File&) = delete;
    int get() const noexcept { return fd_; }

  private:
    int fd_;
};

// Zeros over the whole file, synced; false if there is no such file.
bool overwrite(const std::string& path) {
    File f(::open(path.c_str(), O_WRONLY | O_NOFOLLOW | O_CLOEXEC));
    if (f.get() < 0) {
        if (errno == ENOENT) return false;
        fail("open", path, errno);
    }
    struct stat st {};
    if (::fstat(f.get(), &st) != 0) fail("inspect", path, errno);
    if (!S_ISREG(st.st_mode)) fail("overwrite", path, EINVAL);
    static const std::array<char, 64 * 1024> zeros{};
    for (off_t at = 0; at < st.st_size;) {
        const auto n = static_cast<std::size_t>(std::min<off_t>(st.st_size - at, zeros.size()));
        const ssize_t written = ::pwrite(f.get(), zeros.data(), n, at);
        if (written < 0) {
            if (errno == EINTR) continue;
            fail("overwrite", path, errno);
        }
        at += written;
    }
    if (::fsync(f.get()) != 0) fail("sync", path, errno);
    return true;
}

// Refuses, before anything is touched, a file that is not a plain file of
// one name: a link would have lindra overwrite what it points to, and
// another name for the file would keep its data after this one goes.
void check_plain(const std::string& path) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) {
        if (errno == ENOENT) return;
        fail("inspect", path, errno);
    }
    if (S_ISLNK(st.st_mode) || !S_ISREG(st.st_mode)) fail("overwrite", path, ELOOP);
    if (st.st_nlink > 1)
        throw Error(Errc::storage,
                    "cannot overwrite " + path +
                        ": the file has another name (a hard link); remove that name and sign out again");
}

}  // namespace

std::vector<std::string> wipe_database_files(const std::string& path) {
    constexpr const char* suffixes[] = {"-wal", "-shm", "-journal", ""};
    for (const char* suffix : suffixes) check_plain(path + suffix);
    std::vector<std::string> removed;
    for (const char* suffix : suffixes) {
        const std::string file = path + suffix;
        if (!overwrite(file)) continue;
        if (::unlink(file.c_str()) != 0) fail("remove", file, errno);
        removed.push_back(file);
    }
    if (!removed.empty()) {
        auto dir = std::filesystem::path(path).parent_path();
        if (dir.empty()) dir = ".";
        File d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (d.get() < 0 || ::fsync(d.get()) != 0) fail("sync the directory", dir.string(), errno);
    }
    return removed;
}

}  // namespace lindra::store
