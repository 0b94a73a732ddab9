#include "core/log.hpp"

#include <atomic>
#include <memory>
#include <mutex>

namespace lindra {
namespace {

std::atomic<int> g_min{static_cast<int>(LogLevel::off)};
std::mutex g_mutex;  // guards g_handler
std::shared_ptr<const LogHandler> g_handler;

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
    std::lock_guard lock(g_mutex);
    g_handler = handler ? std::make_shared<const LogHandler>(std::move(handler)) : nullptr;
    g_min = static_cast<int>(g_handler ? min : LogLevel::off);
}

namespace detail {

bool log_enabled(LogLevel level) noexcept {
    return level != LogLevel::off && static_cast<int>(level) >= g_min.load(std::memory_order_relaxed);
}

void log(LogLevel level, std::string_view domain, std::string_view message) {
    if (!log_enabled(level)) return;
    std::shared_ptr<const LogHandler> handler;
    {
        std::lock_guard lock(g_mutex);
        handler = g_handler;
    }
    // A handler that throws must not break the write or round that logged.
    if (handler) try {
            (*handler)(level, domain, message);
        } catch (...) {
        }
}

}  // namespace detail
}  // namespace lindra
