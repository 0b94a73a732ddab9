#include "common/progress.hpp"

#include <algorithm>
#include <cstdio>
#include <ostream>

namespace common {

namespace {

std::string bar(double fraction) {
    constexpr int width = 24;
    const int full = static_cast<int>(std::clamp(fraction, 0.0, 1.0) * width + 0.5);
    return "[" + std::string(static_cast<std::size_t>(full), '#') +
           std::string(static_cast<std::size_t>(width - full), '.') + "]";
}

// ", about 12 s left": whole seconds, or milliseconds under one.
std::string time_left(double seconds) {
    const auto ms = std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1e3 + 0.5));
    return ", about " +
           format_duration(ms < std::chrono::seconds(1) ? ms : std::chrono::round<std::chrono::seconds>(ms)) + " left";
}

}  // namespace

void SyncBar::start(std::int64_t outbox) {
    *this = SyncBar{};
    push_total_ = outbox;
}

std::string SyncBar::line(const lindra::SyncProgress& p, Clock::time_point now) {
    const auto done_in = [&](lindra::SyncPhase phase) {
        return phase == lindra::SyncPhase::pushing ? p.writes_pushed : p.changes_pulled;
    };
    if (p.phase != phase_) {
        phase_ = p.phase;
        pull_left_first_ = 0;
        phase_start_ = now;
        phase_done_ = done_in(p.phase);
    }
    const auto since = done_in(p.phase) - phase_done_;
    if (p.phase == lindra::SyncPhase::connecting) {
        push_total_ = std::max(push_total_, static_cast<std::int64_t>(p.push_remaining));
        return "connecting...";
    }
    if (p.phase == lindra::SyncPhase::pushing) {
        // Writes the server has acknowledged, of those waiting at the start
        // (more may have been written since).
        const auto left = static_cast<std::int64_t>(p.push_remaining);
        const auto total = std::max(push_total_, left);
        return "pushing " + bar(total > 0 ? static_cast<double>(total - left) / static_cast<double>(total) : 1.0) +
               " " + counted(p.writes_pushed, "write") + " (" + counted(p.changes_pushed, "change") + ") pushed, " +
               counted(left, "write") + " to go, " + format_bytes(p.bytes_sent) + " sent" +
               pace(since, left, now - phase_start_, "writes");
    }
    if (p.phase != lindra::SyncPhase::pulling) return {};
    // The server counts what is left in writes (its log's entries, an upper
    // bound); the changes they carry come as they come. So the bar and the
    // time left go by writes, from the first count on.
    const auto left = static_cast<std::int64_t>(p.pull_remaining);
    if (left > pull_left_first_) {
        pull_left_first_ = left;
        pull_left_since_ = now;
    }
    const double fraction =
        pull_left_first_ > 0 ? 1.0 - static_cast<double>(left) / static_cast<double>(pull_left_first_) : 1.0;
    std::string eta;
    const double seconds = std::chrono::duration<double>(now - pull_left_since_).count();
    if (pull_left_first_ > left && left > 0 && seconds >= 0.5) {
        const double per_second = static_cast<double>(pull_left_first_ - left) / seconds;
        eta = time_left(static_cast<double>(left) / per_second);
    }
    return "pulling " + bar(fraction) + " " + counted(p.changes_pulled, "change") + ", " + counted(left, "write") +
           " to come, " + format_bytes(p.bytes_received) + " received" + pace(since, 0, now - phase_start_, "changes") +
           eta;
}

void TerminalLine::show(const std::string& text) {
    out_ << "\r\033[K" << text << std::flush;
    shown_ = true;
}

void TerminalLine::clear() {
    if (shown_) out_ << "\r\033[K" << std::flush;
    shown_ = false;
}

std::string counted(std::int64_t n, std::string_view noun) {
    return std::to_string(n) + " " + std::string(noun) + (n == 1 ? "" : "s");
}

std::string format_bytes(std::uint64_t bytes) {
    char text[32];
    if (bytes < 10'000)
        std::snprintf(text, sizeof text, "%llu B", static_cast<unsigned long long>(bytes));
    else if (bytes < 10'000'000)
        std::snprintf(text, sizeof text, "%.1f kB", static_cast<double>(bytes) / 1e3);
    else
        std::snprintf(text, sizeof text, "%.1f MB", static_cast<double>(bytes) / 1e6);
    return text;
}

std::string pace(std::int64_t done, std::int64_t remaining, std::chrono::steady_clock::duration elapsed,
                 const char* unit) {
    const double seconds = std::chrono::duration<double>(elapsed).count();
    if (seconds < 0.5 || done <= 0) return {};
    const double rate = static_cast<double>(done) / seconds;
    char text[64];
    if (rate < 10'000)
        std::snprintf(text, sizeof text, ", %.0f %s/s", rate, unit);
    else
        std::snprintf(text, sizeof text, ", %.1fk %s/s", rate / 1e3, unit);
    std::string out = text;
    if (remaining > 0) out += time_left(static_cast<double>(remaining) / rate);
    return out;
}

std::string format_duration(std::chrono::milliseconds d) {
    char text[32];
    const auto ms = static_cast<long long>(d.count());
    if (ms < 1000)
        std::snprintf(text, sizeof text, "%lld ms", ms);
    else if (ms % 1000 == 0)
        std::snprintf(text, sizeof text, "%lld s", ms / 1000);
    else
        std::snprintf(text, sizeof text, "%.1f s", static_cast<double>(ms) / 1e3);
    return text;
}

}  // namespace common
