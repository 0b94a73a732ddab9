// Signals without handlers: SIGTERM, SIGINT and SIGHUP are blocked in every
// thread and taken by one thread of their own with sigwait(), which passes
// them on as plain function calls. Nothing runs in signal context.
#pragma once

#include <atomic>
#include <functional>
#include <thread>

namespace syncd {

// Blocks SIGTERM, SIGINT and SIGHUP in the calling thread, and ignores
// SIGPIPE. Call it first in main(), before any thread starts, so that every
// thread inherits the mask (a library's threads included).
void block_signals();

// Takes the signals block_signals() blocked, on a thread of its own, and
// calls `on_signal` there with each (keep it short). One thread at a time.
class SignalThread {
  public:
    explicit SignalThread(std::function<void(int)> on_signal);
    ~SignalThread();  // stops the thread and joins it
    SignalThread(const SignalThread&) = delete;
    SignalThread& operator=(const SignalThread&) = delete;

  private:
    std::function<void(int)> on_signal_;
    std::atomic<bool> closing_{false};
    std::thread thread_;
};

// "SIGTERM", "SIGINT", "SIGHUP".
const char* signal_name(int signal);

}  // namespace syncd
