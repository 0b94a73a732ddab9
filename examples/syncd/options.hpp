// lindra-syncd's command line: what the operator asked for, checked before
// anything is opened or written.
#pragma once

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace syncd {

// Wrong use of the command line. main() prints it with a hint and exits 2.
class UsageError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

struct Options {
    bool help = false;
    std::string db;
    bool create = false;  // make the replica if `db` does not exist
    std::string server;        // the server's URL, as parse_server_url reads it
    std::string server_given;  // as given, for SyncOptions::url
    std::string token_file;
    std::optional<std::string> ca_file;
    std::vector<std::string> extra_ca_files;
    std::optional<std::string> proxy;  // unset: the environment's
    std::vector<std::string> pins;
    bool insecure = false;
    bool once = false;
    std::chrono::milliseconds interval{std::chrono::seconds(300)};
    std::chrono::milliseconds max_backoff{std::chrono::seconds(300)};
    std::chrono::milliseconds timeout{std::chrono::seconds(120)};  // --once only
    // Tuning, mostly for tests.
    std::chrono::milliseconds min_backoff{1'000};
    std::chrono::milliseconds poll{1'000};
    std::uint32_t push_batch = 0;  // 0: the library's default
    std::uint32_t pull_batch = 0;  // 0: the library's default
};

// Parses argv without the program name; throws UsageError naming the
// offending argument (never echoing a value that could be a token).
Options parse_options(std::span<char* const> args);

void print_usage(std::ostream& out);

}  // namespace syncd
