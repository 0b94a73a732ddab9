#include "core/log.hpp"

#include <atomic>
#include <mutex>
#include <shared_mutex>

namespace lindra {
namespace {

std::atomic<int> g_min{static_cast<int>(LogLevel::off)};
// Guards g_handler, and is held shared while it runs: once
// set_log_handler() returns, the handler it replaced has finished and is
// not called again, so an app may free what the handler uses.
std::shared_mutex g_mutex;
LogHandler g_handler;

}  // namespace

std::string_view to_string(LogLevel level) {
    switch (level) {
        case LogLevel::debug: return "debug";
        case LogLevel::info: return "info";
        case LogLevel::warning: return "warning";
        case LogLevel::error: return "error";
        case LogLevel::off: return "off";
    }
    return "?";
}

void set_log_handler(LogHandler handler, LogLevel min) {
    std::unique_lock lock(g_mutex);
    g_handler = std::move(handler);
    g_min = static_cast<int>(g_handler ? min : LogLevel::off);
}

namespace detail {

bool log_enabled(LogLevel level) noexcept {
    return level != LogLevel::off && static_cast<int>(level) >= g_min.load(std::memory_order_relaxed);
}

void log(LogLevel level, std::string_view domain, std::string_view message) {
    if (!log_enabled(level)) return;
    std::shared_lock lock(g_mutex);
    // A handler that throws must not break the write or round that logged.
    if (g_handler) try {
            g_handler(level, domain, message);
        } catch (...) {
        }
}

}  // namespace detail
}  // namespace lindra
