// lindra's programs (lindra-syncd, lindra-tablet, lindra-server) run by a
// test as child processes, their output to a file or to a pseudo-terminal.
#pragma once

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <pty.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace lindra::test {

// Polls `done` every few milliseconds until it holds or `timeout` passes.
template <class F>
bool eventually(F&& done, std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done()) {
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
}

// `program` with `args`; its stdout and stderr go to `output` (a file, or a
// terminal's fd). Killed and reaped if the test ends first.
class ChildProcess {
  public:
    using Clock = std::chrono::steady_clock;

    ChildProcess(const std::string& program, const std::vector<std::string>& args, const std::string& output)
        : ChildProcess(program, args, open_output(output)) {
        output_path_ = output;
    }
    // Writes to `fd` (taken over and closed here).
    ChildProcess(const std::string& program, const std::vector<std::string>& args, int fd) {
        std::vector<std::string> all{program};
        all.insert(all.end(), args.begin(), args.end());
        std::vector<char*> argv;
        for (auto& a : all) argv.push_back(a.data());
        argv.push_back(nullptr);
        started_ = Clock::now();
        pid_ = ::fork();
        REQUIRE(pid_ >= 0);
        if (pid_ == 0) {
            // Only async-signal-safe calls until exec: the test has threads.
            ::dup2(fd, STDOUT_FILENO);
            ::dup2(fd, STDERR_FILENO);
            // A MockServer's listening socket must not live on in the
            // child: a stopped server would then still take connections.
            if (::close_range(3, ~0U, 0) != 0)
                for (int i = 3; i < 4096; ++i) ::close(i);
            sigset_t none;
            sigemptyset(&none);
            ::sigprocmask(SIG_SETMASK, &none, nullptr);
            ::execve(argv[0], argv.data(), environ);
            ::_exit(127);
        }
        ::close(fd);
    }
    ~ChildProcess() {
        if (pid_ > 0 && !status_) {
            ::kill(pid_, SIGKILL);
            int status = 0;
            ::waitpid(pid_, &status, 0);
        }
    }
    ChildProcess(const ChildProcess&) = delete;
    ChildProcess& operator=(const ChildProcess&) = delete;

    void signal(int signal) const { REQUIRE(::kill(pid_, signal) == 0); }
    pid_t pid() const { return pid_; }
    // What it has printed so far, when it writes to a file.
    std::string output() const {
        std::ifstream in(output_path_, std::ios::binary);
        std::ostringstream text;
        text << in.rdbuf();
        return text.str();
    }

    // Its exit status (128 + N if signal N ended it), or nullopt if it is
    // still running after `timeout`.
    std::optional<int> wait(std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
        eventually(
            [&] {
                int status = 0;
                if (::waitpid(pid_, &status, WNOHANG) != pid_) return false;
                status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
                ended_ = Clock::now();
                return true;
            },
            timeout);
        // In a sanitized build a report would otherwise pass for exit 1.
        if (status_ && !output_path_.empty()) {
            const auto out = output();
            INFO(out);
            CHECK(out.find("Sanitizer") == std::string::npos);
            CHECK(out.find("runtime error:") == std::string::npos);
        }
        return status_;
    }
    // From start to exit, once it has exited.
    Clock::duration ran() const { return ended_ - started_; }

  private:
    static int open_output(const std::string& path) {
        const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        REQUIRE(fd >= 0);
        return fd;
    }

    std::string output_path_;  // empty when writing to a terminal
    pid_t pid_ = -1;
    std::optional<int> status_;
    Clock::time_point started_, ended_;
};

// What a program printed on a pseudo-terminal, and its exit status
// (nullopt: still running at the timeout, then killed).
struct TerminalRun {
    std::string output;
    std::optional<int> status;
};

// Runs `program` with `args` on a pseudo-terminal (stdout and stderr) until
// it exits or `timeout` passes, reading its output as it comes so that it
// never blocks on a full terminal.
inline TerminalRun run_on_terminal(const std::string& program, const std::vector<std::string>& args,
                                   std::chrono::milliseconds timeout) {
    int master = -1, slave = -1;
    REQUIRE(::openpty(&master, &slave, nullptr, nullptr, nullptr) == 0);
    ::fcntl(master, F_SETFD, FD_CLOEXEC);
    ::fcntl(master, F_SETFL, O_NONBLOCK);
    ChildProcess child(program, args, slave);
    TerminalRun run;
    const auto drain = [&] {
        char buffer[4096];
        for (ssize_t n; (n = ::read(master, buffer, sizeof buffer)) > 0;)
            run.output.append(buffer, static_cast<std::size_t>(n));
    };
    const auto deadline = ChildProcess::Clock::now() + timeout;
    while (!run.status && ChildProcess::Clock::now() < deadline) {
        drain();
        run.status = child.wait(std::chrono::milliseconds(20));
    }
    drain();
    ::close(master);
    return run;
}

}  // namespace lindra::test
