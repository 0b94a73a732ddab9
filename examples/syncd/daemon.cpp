#include "daemon.hpp"

#include "signals.hpp"

#include <lindra/error.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>

namespace syncd {

namespace {

using Clock = std::chrono::steady_clock;
using common::format_duration;
using std::chrono::milliseconds;

// A small file read whole; errors name the file and the reason, never its
// contents.
std::string read_file(const std::string& what, const std::string& path, std::size_t max_bytes) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw StartError("cannot read the " + what + " " + path + ": " + std::strerror(errno));
    std::string text;
    char buffer[4096];
    for (;;) {
        const ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            const int e = errno;
            ::close(fd);
            throw StartError("cannot read the " + what + " " + path + ": " + std::strerror(e));
        }
        if (n == 0) break;
        text.append(buffer, static_cast<std::size_t>(n));
        if (text.size() > max_bytes) {
            ::close(fd);
            throw StartError("the " + what + " " + path + " is larger than " + std::to_string(max_bytes) + " bytes");
        }
    }
    ::close(fd);
    return text;
}

std::string read_token(const std::string& path) {
    std::string text = read_file("token file", path, 64 * 1024);
    const auto space = [](unsigned char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
    while (!text.empty() && space(static_cast<unsigned char>(text.back()))) text.pop_back();
    const auto first =
        std::find_if_not(text.begin(), text.end(), [&](char c) { return space(static_cast<unsigned char>(c)); });
    text.erase(text.begin(), first);
    if (text.empty()) throw StartError("the token file " + path + " is empty");
    if (std::any_of(text.begin(), text.end(), [](char c) { return static_cast<unsigned char>(c) <= ' ' || c == 0x7f; }))
        throw StartError("the token file " + path + " must hold the token alone, on one line");
    return text;
}

lindra::Replica open_replica(const Options& o) {
    std::error_code ec;
    if (!o.create && !std::filesystem::exists(o.db, ec))
        throw StartError("the replica " + o.db + " does not exist (--create makes a new one)");
    return lindra::Replica(o.db);
}

// "3 writes wait", for the offline and backoff lines: what a failure holds
// back.
std::string waiting(std::int64_t writes) {
    return std::to_string(writes) + (writes == 1 ? " write waits" : " writes wait") + " for the server";
}

std::string explain(lindra::SyncOutcome outcome) {
    switch (outcome) {
        case lindra::SyncOutcome::auth_failed:
            return "the server refused the token";
        case lindra::SyncOutcome::tls_failed:
            return "the server's certificate or key did not verify";
        case lindra::SyncOutcome::protocol_error:
            return "the server sent something this client cannot read";
        case lindra::SyncOutcome::local_error:
            return "the replica failed";
        default:
            return "the last round ended " + std::string(lindra::to_string(outcome));
    }
}

}  // namespace

Daemon::Daemon(const Options& options, Reporter& report)
    : options_(options),
      report_(report),
      credentials_(read_credentials(options, report)),
      replica_(open_replica(options)),
      backoff_(options.min_backoff, options.max_backoff) {
    client_ = std::make_unique<lindra::SyncClient>(replica_, sync_options());
}

Daemon::~Daemon() = default;

Daemon::Credentials Daemon::read_credentials(const Options& o, Reporter& report) {
    Credentials c{read_token(o.token_file), o.ca_file ? read_file("CA file", *o.ca_file, 1 << 20) : std::string(), {}};
    if (o.ca_file && c.ca_pem.find("-----BEGIN CERTIFICATE-----") == std::string::npos)
        throw StartError("the CA file " + *o.ca_file + " holds no PEM certificate");
    for (const auto& file : o.extra_ca_files) {
        c.extra_ca_pems.push_back(read_file("CA file", file, 1 << 20));
        if (c.extra_ca_pems.back().find("-----BEGIN CERTIFICATE-----") == std::string::npos)
            throw StartError("the CA file " + file + " holds no PEM certificate");
    }
    struct stat st {};
    if (::stat(o.token_file.c_str(), &st) == 0 && (st.st_mode & S_IROTH))
        report.line("warning: every user of this machine may read the token file " + o.token_file + " (chmod o-r)");
    return c;
}

lindra::SyncOptions Daemon::sync_options() {
    lindra::SyncOptions s;
    s.url = options_.server_given;
    s.token = credentials_.token;
    s.insecure = options_.insecure;
    s.tls.ca_pem = credentials_.ca_pem;
    s.tls.extra_ca_pems = credentials_.extra_ca_pems;
    s.proxy = options_.proxy;
    s.tls.pins = options_.pins;
    s.app = "lindra-syncd";
    if (options_.push_batch > 0) s.push_batch_changes = options_.push_batch;
    if (options_.pull_batch > 0) s.pull_batch_changes = options_.pull_batch;
    s.on_progress = [this](const lindra::SyncProgress& p) { report_.progress(p); };
    return s;
}

void Daemon::on_signal(int signal) {
    std::lock_guard lock(mutex_);
    if (signal == SIGHUP) {
        reload_ = true;
    } else if (stop_signal_ == 0) {
        stop_signal_ = signal;
    } else {
        // The first one is being handled; a second means "now". Whatever
        // SQLite had not committed is rolled back on the next open.
        report_.line(std::string(signal_name(signal)) + " again: exiting without waiting for the round");
        std::_Exit(1);
    }
    wake_.notify_all();
}

bool Daemon::stopping() {
    std::lock_guard lock(mutex_);
    return stop_signal_ != 0;
}

bool Daemon::reload() {
    try {
        credentials_ = read_credentials(options_, report_);
    } catch (const StartError& e) {
        report_.line("SIGHUP: " + std::string(e.what()) + "; keeping the token read before");
        return false;
    }
    // A client keeps its options: a new token takes a new client. No round
    // runs here, so the old one has nothing to cancel.
    client_ = std::make_unique<lindra::SyncClient>(replica_, sync_options());
    report_.line("SIGHUP: reread the token file; syncing now");
    return true;
}

std::int64_t Daemon::pending() {
    try {
        const auto n = replica_.outbox_size();
        poll_failed_ = false;
        return n;
    } catch (const std::exception& e) {
        if (!poll_failed_) report_.line("cannot read the outbox: " + std::string(e.what()));
        poll_failed_ = true;
        return 0;
    }
}

lindra::SyncResult Daemon::round() {
    report_.round_started(pending());
    const auto start = Clock::now();
    {
        std::lock_guard lock(mutex_);
        finished_.reset();
    }
    client_->sync_async([this](lindra::SyncResult r) {
        std::lock_guard lock(mutex_);
        finished_ = std::move(r);
        wake_.notify_all();
    });
    std::unique_lock lock(mutex_);
    bool cancelled = false;
    for (;;) {
        wake_.wait(lock, [&] { return finished_.has_value() || (stop_signal_ != 0 && !cancelled); });
        if (finished_) break;
        // What the server acknowledged has left the outbox and what was
        // pulled is applied; the rest waits for the next start.
        cancelled = true;
        const int signal = stop_signal_;
        lock.unlock();
        report_.line(std::string(signal_name(signal)) + ": cancelling the running round");
        client_->cancel();
        lock.lock();
    }
    lindra::SyncResult r = std::move(*finished_);
    finished_.reset();
    lock.unlock();
    report_.round_ended(r, Clock::now() - start);
    // Not a failure: the round needs no retry, the user has writes to look at.
    if (!r.rejected.empty()) {
        refused_ += static_cast<std::int64_t>(r.rejected.size());
        report_.line("writes refused: " + std::to_string(r.rejected.size()) +
                     ", rolled back; what they set stays in the replica until the app dismisses it"
                     " (lindra-tablet --db " + options_.db + " refused)");
    }
    return r;
}

int Daemon::run() {
    const auto& o = options_;
    report_.line(
        std::string(o.once ? "syncing " : "started: syncing ") + o.db + " (device " + replica_.device_id().to_string() +
        ") with " + o.server + (o.insecure ? " over plain TCP" : " over TLS") +
        (o.once ? std::string(", once") : ", every " + format_duration(o.interval) + " and soon after local writes"));
    if (o.insecure) report_.line("warning: --insecure: the token and personal data cross the network in the clear");

    enum class Mode { normal, backing_off, holding } mode = Mode::normal;
    const auto deadline = Clock::now() + o.timeout;  // --once
    auto next_round = Clock::now();
    auto next_poll = Clock::now() + o.poll;
    const auto stopped = [&](int signal) {
        if (o.once) {
            report_.line(std::string(signal_name(signal)) + ": stopped before in sync");
            return 1;
        }
        report_.line(std::string(signal_name(signal)) + ": stopped");
        return 0;
    };

    std::unique_lock lock(mutex_);
    for (;;) {
        const auto wake_at = o.once || mode != Mode::normal ? next_round : std::min(next_round, next_poll);
        wake_.wait_until(lock, wake_at, [&] { return stop_signal_ != 0 || reload_; });
        if (stop_signal_ != 0) return stopped(stop_signal_);
        bool due = false;
        if (reload_) {
            reload_ = false;
            lock.unlock();
            if (reload()) {
                backoff_.reset();
                mode = Mode::normal;
                due = true;
            }
            lock.lock();
        }
        auto now = Clock::now();
        if (now >= next_round) due = true;
        if (!o.once && now >= next_poll) {
            next_poll = now + o.poll;
            // A local app wrote: its changes go now, not at the next
            // interval. Not while backing off: the server is not there.
            if (mode == Mode::normal && !due) {
                lock.unlock();
                due = pending() > 0;
                lock.lock();
            }
        }
        if (!due) continue;

        lock.unlock();
        const lindra::SyncResult r = round();
        now = Clock::now();
        const bool stop = stopping();
        if (r.ok()) {
            backoff_.reset();
            mode = Mode::normal;
            next_round = now + o.interval;
            if (o.once) {
                if (pending() == 0) {
                    report_.line("in sync" + (refused_ > 0 ? ", with " + std::to_string(refused_) +
                                                                  " writes refused on the way"
                                                            : std::string()));
                    return refused_ > 0 ? kExitRefused : 0;
                }
                next_round = now;  // written to during the round: again
                if (now >= deadline) {
                    report_.line("not in sync within --timeout " + format_duration(o.timeout) +
                                 ": local writes kept coming");
                    return 1;
                }
            }
            // Writes made during the round are found by the next poll.
        } else if (!stop) {
            const milliseconds retry_after(r.retry_after_ms);
            switch (r.outcome) {
                case lindra::SyncOutcome::auth_failed:
                case lindra::SyncOutcome::tls_failed:
                case lindra::SyncOutcome::protocol_error: {
                    if (o.once) {
                        report_.line("not in sync: " + explain(r.outcome));
                        return 1;
                    }
                    // Retrying will not mend it: wait for the operator,
                    // and ask again only after the longest backoff.
                    const auto wait = std::max(o.max_backoff, retry_after);
                    mode = Mode::holding;
                    next_round = now + wait;
                    report_.line(explain(r.outcome) + "; " + waiting(pending()) + "; next try in " +
                                 format_duration(wait) + " or on SIGHUP (which rereads the token and CA files)");
                    break;
                }
                case lindra::SyncOutcome::local_error:
                    if (o.once) {
                        report_.line("not in sync: " + explain(r.outcome));
                        return 1;
                    }
                    [[fallthrough]];
                default: {
                    const auto wait = backoff_.next(retry_after);
                    if (o.once && now + wait >= deadline) {
                        report_.line("not in sync within --timeout " + format_duration(o.timeout) + ": " +
                                     explain(r.outcome) + "; " + waiting(pending()));
                        return 1;
                    }
                    mode = Mode::backing_off;
                    next_round = now + wait;
                    report_.line("backoff: " + waiting(pending()) + "; next try in " + format_duration(wait) +
                                 " (failure " +
                                 std::to_string(backoff_.failures()) + " in a row" +
                                 (retry_after.count() > 0 ? ", the server asked for " + format_duration(retry_after)
                                                          : std::string()) +
                                 ")");
                    break;
                }
            }
        }
        lock.lock();
    }
}

}  // namespace syncd
