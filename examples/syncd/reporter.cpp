#include "reporter.hpp"

#include <algorithm>
#include <cstdio>
#include <ostream>

namespace syncd {

namespace {

// "1 write", "3 writes": a user's writes (outbox entries) and the field
// changes they carry, in the words of docs/decisions.md.
std::string counted(std::int64_t n, const char* noun) {
    return std::to_string(n) + " " + noun + (n == 1 ? "" : "s");
}

std::string bar(double fraction) {
    constexpr int width = 24;
    const int full = static_cast<int>(std::clamp(fraction, 0.0, 1.0) * width + 0.5);
    return "[" + std::string(static_cast<std::size_t>(full), '#') +
           std::string(static_cast<std::size_t>(width - full), '.') + "]";
}

// The message is lindra's own for these outcomes: it is about the network,
// the token's validity or the local file. A server's message about pushed
// data may quote that data, so other outcomes show only the server's code.
bool message_is_safe(lindra::SyncOutcome outcome) {
    using lindra::SyncOutcome;
    return outcome == SyncOutcome::offline || outcome == SyncOutcome::tls_failed ||
           outcome == SyncOutcome::auth_failed || outcome == SyncOutcome::local_error;
}

}  // namespace

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
    if (remaining > 0) {
        const auto left = std::chrono::milliseconds(static_cast<std::int64_t>(static_cast<double>(remaining) / rate * 1e3));
        out += ", about " + format_duration(left < std::chrono::seconds(1) ? left : std::chrono::duration_cast<std::chrono::seconds>(left)) + " left";
    }
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

Reporter::Reporter(std::ostream& out, bool terminal) : out_(out), terminal_(terminal) {}

void Reporter::clear_bar() {
    if (bar_shown_) out_ << "\r\033[K";
    bar_shown_ = false;
}

void Reporter::line(const std::string& text) {
    std::lock_guard lock(mutex_);
    clear_bar();
    out_ << "lindra-syncd: " << text << std::endl;
}

void Reporter::round_started(std::int64_t outbox) {
    std::lock_guard lock(mutex_);
    push_total_ = outbox;
    phase_ = lindra::SyncPhase::connecting;
    if (!terminal_) return;
    clear_bar();
    out_ << "connecting..." << std::flush;
    bar_shown_ = true;
}

void Reporter::progress(const lindra::SyncProgress& p) {
    if (!terminal_) return;
    std::lock_guard lock(mutex_);
    const auto now = std::chrono::steady_clock::now();
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
    std::string text;
    if (p.phase == lindra::SyncPhase::pushing) {
        // Writes the server has acknowledged, of those waiting at the start
        // (more may have been written since).
        const auto left = static_cast<std::int64_t>(p.push_remaining);
        const auto total = std::max(push_total_, left);
        text = "pushing " + bar(total > 0 ? static_cast<double>(total - left) / static_cast<double>(total) : 1.0) +
               " " + counted(p.writes_pushed, "write") + " (" + counted(p.changes_pushed, "change") + ") pushed, " +
               counted(left, "write") + " to go, " + format_bytes(p.bytes_sent) + " sent" +
               pace(since, left, now - phase_start_, "writes");
    } else if (p.phase == lindra::SyncPhase::pulling) {
        // The server counts what is left in writes (its log's entries, an
        // upper bound); the changes they carry come as they come. So the
        // bar and the time left go by writes, from the first count on.
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
            eta = ", about " +
                  format_duration(std::chrono::seconds(static_cast<std::int64_t>(static_cast<double>(left) / per_second + 0.5))) +
                  " left";
        }
        text = "pulling " + bar(fraction) + " " + counted(p.changes_pulled, "change") + ", " +
               counted(left, "write") + " to come, " + format_bytes(p.bytes_received) + " received" +
               pace(since, 0, now - phase_start_, "changes") + eta;
    } else {
        return;
    }
    out_ << "\r\033[K" << text << std::flush;
    bar_shown_ = true;
}

void Reporter::round_ended(const lindra::SyncResult& r, std::chrono::steady_clock::duration took) {
    std::string text = "round " + std::string(lindra::to_string(r.outcome));
    if (!r.error_code.empty()) text += " (" + r.error_code + ")";
    text += ": pushed " + counted(r.writes_pushed, "write") + " (" + counted(r.changes_pushed, "change") + "; " +
            std::to_string(r.rejected.size()) + " refused), pulled " + counted(r.changes_pulled, "change");
    if (r.rows_purged > 0) text += ", purged " + std::to_string(r.rows_purged) + " rows";
    text += ", " + format_bytes(r.bytes_sent) + " sent, " + format_bytes(r.bytes_received) + " received, " +
            format_duration(std::chrono::duration_cast<std::chrono::milliseconds>(took));
    if (!r.ok() && !r.message.empty() && message_is_safe(r.outcome)) text += ": " + r.message;
    line(text);
    // The rule that refused a change may quote the change; entity, code
    // and seq say which write it was.
    for (const auto& j : r.rejected)
        line("refused by the server: entity " + j.entity + ", code " + j.code + ", seq " + std::to_string(j.seq) +
             (j.row_removed ? ", row removed" : ", server's value restored"));
}

}  // namespace syncd
