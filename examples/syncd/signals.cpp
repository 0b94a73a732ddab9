#include "signals.hpp"

#include <pthread.h>

#include <csignal>
#include <system_error>

namespace syncd {

namespace {

sigset_t handled() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    return set;
}

}  // namespace

void block_signals() {
    const sigset_t set = handled();
    if (const int e = pthread_sigmask(SIG_BLOCK, &set, nullptr); e != 0)
        throw std::system_error(e, std::generic_category(), "pthread_sigmask");
    // A server that hangs up mid-write is an error code, not a dead process.
    std::signal(SIGPIPE, SIG_IGN);
}

SignalThread::SignalThread(std::function<void(int)> on_signal) : on_signal_(std::move(on_signal)) {
    thread_ = std::thread([this] {
        const sigset_t set = handled();
        for (;;) {
            int signal = 0;
            if (sigwait(&set, &signal) != 0) continue;
            if (closing_.load()) return;
            on_signal_(signal);
        }
    });
}

SignalThread::~SignalThread() {
    closing_.store(true);
    // The thread sleeps in sigwait(): a signal sent to it alone wakes it
    // without touching the rest of the process.
    pthread_kill(thread_.native_handle(), SIGHUP);
    thread_.join();
}

const char* signal_name(int signal) {
    switch (signal) {
        case SIGTERM:
            return "SIGTERM";
        case SIGINT:
            return "SIGINT";
        case SIGHUP:
            return "SIGHUP";
        default:
            return "a signal";
    }
}

}  // namespace syncd
