#include "fleet_server.hpp"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <deque>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace lindra::bench {

ServerProcess::ServerProcess(const std::string& binary, const std::vector<std::string>& args,
                             const std::filesystem::path& dir, const std::filesystem::path& log)
    : log_(log) {
    std::vector<std::string> all{binary};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    const std::string cwd = dir.string();
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) throw std::runtime_error("cannot create " + log.string());
    const pid_t parent = ::getpid();
    pid_ = ::fork();
    if (pid_ < 0) {
        ::close(fd);
        throw std::runtime_error("cannot start " + binary);
    }
    if (pid_ == 0) {
        // Only async-signal-safe calls until exec. The server dies with the
        // bench, whatever kills the bench.
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != parent) ::_exit(126);
        ::dup2(fd, STDOUT_FILENO);
        ::dup2(fd, STDERR_FILENO);
        if (::chdir(cwd.c_str()) != 0) ::_exit(126);
        ::execve(argv[0], argv.data(), environ);
        ::_exit(127);
    }
    ::close(fd);
    running_ = true;
}

ServerProcess::~ServerProcess() {
    if (running_) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status_, 0);
    }
}

std::string ServerProcess::log_tail(int lines) const {
    std::ifstream in(log_);
    std::deque<std::string> last;
    for (std::string line; std::getline(in, line);) {
        last.push_back(line);
        if (static_cast<int>(last.size()) > lines) last.pop_front();
    }
    std::string out;
    for (const auto& l : last) out += "  | " + l + "\n";
    return out;
}

std::uint16_t ServerProcess::wait_for_port(int seconds) {
    const std::regex listening("listening on .*:([0-9]+)");
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    while (std::chrono::steady_clock::now() < deadline) {
        std::ifstream in(log_);
        for (std::string line; std::getline(in, line);) {
            std::smatch m;
            if (std::regex_search(line, m, listening)) return static_cast<std::uint16_t>(std::stoi(m[1].str()));
        }
        if (::waitpid(pid_, &status_, WNOHANG) == pid_) {
            running_ = false;
            throw std::runtime_error("lindra-server exited before listening; its log:\n" + log_tail());
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    throw std::runtime_error("lindra-server did not say where it listens within " + std::to_string(seconds) +
                             " s; its log:\n" + log_tail());
}

double ServerProcess::cpu_ms() const {
    std::ifstream in("/proc/" + std::to_string(pid_) + "/stat");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto paren = text.rfind(')');  // the command name may hold spaces
    if (paren == std::string::npos) return 0;
    std::istringstream fields(text.substr(paren + 2));
    std::string field;
    // After the name: state (3), ppid ... utime (14), stime (15).
    unsigned long long utime = 0, stime = 0;
    for (int i = 3; i <= 15 && fields >> field; ++i) {
        if (i == 14) utime = std::stoull(field);
        if (i == 15) stime = std::stoull(field);
    }
    return static_cast<double>(utime + stime) * 1000.0 / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

double ServerProcess::run_queue_wait_ms() const {
    std::error_code ec;
    double ns = 0;
    for (const auto& task : std::filesystem::directory_iterator("/proc/" + std::to_string(pid_) + "/task", ec)) {
        std::ifstream in(task.path() / "schedstat");
        double on_cpu = 0, waiting = 0;
        if (in >> on_cpu >> waiting) ns += waiting;
    }
    return ns / 1e6;
}

bool ServerProcess::busy() const {
    std::error_code ec;
    for (const auto& task : std::filesystem::directory_iterator("/proc/" + std::to_string(pid_) + "/task", ec)) {
        std::ifstream in(task.path() / "stat");
        std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        const auto paren = text.rfind(')');
        if (paren != std::string::npos && paren + 2 < text.size() && (text[paren + 2] == 'R' || text[paren + 2] == 'D'))
            return true;
    }
    return false;
}

double ServerProcess::peak_rss_mib() const {
    std::ifstream status("/proc/" + std::to_string(pid_) + "/status");
    for (std::string key; status >> key;) {
        if (key == "VmHWM:") {
            double kib = 0;
            status >> kib;
            return kib / 1024.0;
        }
        status.ignore(4096, '\n');
    }
    return 0;
}

int ServerProcess::stop(int seconds) {
    if (!running_) return WIFEXITED(status_) ? WEXITSTATUS(status_) : 128 + WTERMSIG(status_);
    ::kill(pid_, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    while (::waitpid(pid_, &status_, WNOHANG) != pid_) {
        if (std::chrono::steady_clock::now() > deadline) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, &status_, 0);
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    running_ = false;
    return WIFEXITED(status_) ? WEXITSTATUS(status_) : 128 + WTERMSIG(status_);
}

}  // namespace lindra::bench
