#include "support/temp_dir.hpp"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdlib>
#include <stdexcept>
#include <system_error>

namespace lindra::test {

TempDir::TempDir(bool memory) {
    std::error_code ec;
    const bool shm = memory && std::filesystem::is_directory("/dev/shm", ec);
    const auto base = shm ? std::filesystem::path("/dev/shm") : std::filesystem::temp_directory_path();
    std::string tmpl = (base / "lindra-test-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
}

TempDir::~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

WriteProtect::WriteProtect(std::filesystem::path path)
    : path_(std::move(path)), perms_(std::filesystem::status(path_).permissions()) {
    using std::filesystem::perms;
    std::filesystem::permissions(path_, perms_ & ~(perms::owner_write | perms::group_write | perms::others_write));
    if (::access(path_.c_str(), W_OK) == 0) set_immutable(true);
    ok_ = ::access(path_.c_str(), W_OK) != 0;
}

WriteProtect::~WriteProtect() {
    if (immutable_) set_immutable(false);
    std::error_code ec;
    std::filesystem::permissions(path_, perms_, ec);
}

void WriteProtect::set_immutable(bool on) {
    const int fd = ::open(path_.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return;
    int flags = 0;  // the kernel reads and writes an int, whatever the macro says
    if (::ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0) {
        flags = on ? flags | FS_IMMUTABLE_FL : flags & ~FS_IMMUTABLE_FL;
        if (::ioctl(fd, FS_IOC_SETFLAGS, &flags) == 0) immutable_ = on;
    }
    ::close(fd);
}

}  // namespace lindra::test
