// The daemon's loop: one replica, one server, rounds on a schedule, soon
// after local writes, and with backoff after failures; SIGHUP rereads the
// token, SIGTERM and SIGINT stop it.
#pragma once

#include "backoff.hpp"
#include "options.hpp"
#include "reporter.hpp"

#include <lindra/replica.hpp>
#include <lindra/sync.hpp>

#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>

namespace syncd {

// What keeps the daemon from starting: an unreadable token file, a replica
// that does not open. main() prints it and exits 1.
class StartError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// --once got in sync, but the server refused some writes on the way (as
// lindra-tablet's exit status 3).
constexpr int kExitRefused = 3;

// run() on one thread (main's); on_signal() from the signal thread.
class Daemon {
  public:
    // Reads the token (and CA) file and opens the replica; throws
    // StartError or lindra::Error.
    Daemon(const Options& options, Reporter& report);
    ~Daemon();
    Daemon(const Daemon&) = delete;
    Daemon& operator=(const Daemon&) = delete;

    // Until a stop signal (0), or with --once until in sync (0, or
    // kExitRefused if writes were refused on the way) or not (1).
    int run();
    void on_signal(int signal);

  private:
    // What the token and CA files hold; read at start and on SIGHUP.
    struct Credentials {
        std::string token;  // never printed
        std::string ca_pem;
        std::vector<std::string> extra_ca_pems;
    };
    static Credentials read_credentials(const Options& options, Reporter& report);  // throws StartError
    lindra::SyncOptions sync_options();
    bool reload();  // SIGHUP: new credentials and a new client; false if the files did not read
    lindra::SyncResult round();
    std::int64_t pending();
    bool stopping();

    const Options& options_;
    Reporter& report_;
    Credentials credentials_;  // before replica_: a missing token file leaves the database alone
    lindra::Replica replica_;
    std::unique_ptr<lindra::SyncClient> client_;
    Backoff backoff_;
    bool poll_failed_ = false;  // the last outbox poll failed (logged once)
    std::int64_t refused_ = 0;  // writes refused since the start

    std::mutex mutex_;  // guards the four below
    std::condition_variable wake_;
    int stop_signal_ = 0;
    bool reload_ = false;
    std::optional<lindra::SyncResult> finished_;  // the running round's result, once it ended
};

}  // namespace syncd
