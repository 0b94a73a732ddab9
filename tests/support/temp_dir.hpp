// A temporary directory removed with everything in it when the test ends.
#pragma once

#include <filesystem>
#include <string>

namespace lindra::test {

class TempDir {
  public:
    // `memory`: on /dev/shm where there is one, for tests that create many
    // databases and need no durability (the property tests).
    explicit TempDir(bool memory = false);
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    const std::filesystem::path& path() const noexcept { return path_; }
    // A file name inside the directory.
    std::string file(const std::string& name) const { return (path_ / name).string(); }

  private:
    std::filesystem::path path_;
};

// Makes a file or directory read-only for this process while it lives,
// even as root, who ignores permission bits: write permission off, and as
// root the immutable attribute on (chattr +i) too. ok() is false where that
// is not possible (root without CAP_LINUX_IMMUTABLE, or a file system
// without the attribute); a test then says so and skips. Declare it after
// the TempDir, so it is undone before the directory is removed.
class WriteProtect {
  public:
    explicit WriteProtect(std::filesystem::path path);
    ~WriteProtect();
    WriteProtect(const WriteProtect&) = delete;
    WriteProtect& operator=(const WriteProtect&) = delete;

    bool ok() const noexcept { return ok_; }

  private:
    void set_immutable(bool on);
    std::filesystem::path path_;
    std::filesystem::perms perms_;
    bool immutable_ = false;
    bool ok_ = false;
};

}  // namespace lindra::test
