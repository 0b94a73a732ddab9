// A lindra-server child process for `lindra-bench fleet`: started with its
// output in a log file, stopped with SIGTERM (SIGKILL if it hangs), killed
// with the bench if the bench dies first; and what /proc says of its CPU
// time and peak memory.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace lindra::bench {

class ServerProcess {
  public:
    // Starts `binary args...` in `dir` (its working directory), stdout and
    // stderr into `log`. Call from the thread that lives longest (the
    // child is killed when the thread that started it ends).
    ServerProcess(const std::string& binary, const std::vector<std::string>& args, const std::filesystem::path& dir,
                  const std::filesystem::path& log);
    ~ServerProcess();  // SIGKILL if still running
    ServerProcess(const ServerProcess&) = delete;
    ServerProcess& operator=(const ServerProcess&) = delete;

    // The port from its "listening on HOST:PORT" line; throws with the end of
    // its log if it exits or does not print one within `seconds`.
    std::uint16_t wait_for_port(int seconds = 20);
    pid_t pid() const noexcept { return pid_; }
    // User plus system CPU time so far, in ms (utime + stime of /proc/PID/stat).
    double cpu_ms() const;
    // How long its threads have waited for a CPU while runnable so far, in ms
    // (the second field of /proc/PID/task/TID/schedstat, summed): what other
    // processes on the machine cost it.
    double run_queue_wait_ms() const;
    // Whether any of its threads is running, waiting for a CPU or for the
    // disk right now (state R or D in /proc/PID/task/TID/stat).
    bool busy() const;
    // Peak resident memory so far, in MiB (VmHWM).
    double peak_rss_mib() const;
    // SIGTERM, then its exit status; SIGKILL after `seconds`. Idempotent.
    int stop(int seconds = 30);
    // The last `lines` lines of its log.
    std::string log_tail(int lines = 15) const;

  private:
    std::filesystem::path log_;
    pid_t pid_ = -1;
    bool running_ = false;
    int status_ = 0;
};

}  // namespace lindra::bench
