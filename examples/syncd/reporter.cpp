#include "reporter.hpp"

#include <algorithm>
#include <ostream>

namespace syncd {

using common::counted;
using common::format_bytes;
using common::format_duration;

namespace {

// The message is lindra's own for these outcomes: it is about the network,
// the token's validity or the local file. A server's message about pushed
// data may quote that data, so other outcomes show only the server's code.
bool message_is_safe(lindra::SyncOutcome outcome) {
    using lindra::SyncOutcome;
    return outcome == SyncOutcome::offline || outcome == SyncOutcome::tls_failed ||
           outcome == SyncOutcome::auth_failed || outcome == SyncOutcome::local_error;
}

}  // namespace

Reporter::Reporter(std::ostream& out, bool terminal) : out_(out), terminal_(terminal), bar_line_(out) {}

void Reporter::line(const std::string& text) {
    std::lock_guard lock(mutex_);
    bar_line_.clear();
    out_ << "lindra-syncd: " << text << std::endl;
}

void Reporter::round_started(std::int64_t outbox) {
    std::lock_guard lock(mutex_);
    bar_.start(outbox);
    if (terminal_) bar_line_.show("connecting...");
}

void Reporter::progress(const lindra::SyncProgress& p) {
    if (!terminal_) return;
    std::lock_guard lock(mutex_);
    if (const auto text = bar_.line(p); !text.empty()) bar_line_.show(text);
}

void Reporter::round_ended(const lindra::SyncResult& r, std::chrono::steady_clock::duration took) {
    std::string text = "round " + std::string(lindra::to_string(r.outcome));
    if (!r.error_code.empty()) text += " (" + r.error_code + ")";
    text += ": pushed " + counted(r.writes_pushed, "write") + " (" + counted(r.changes_pushed, "change") + "; " +
            std::to_string(r.rejected.size()) + " refused), pulled " + counted(r.changes_pulled, "change");
    if (r.rows_purged > 0) {
        // How many groups the user left, never which: names stay out of the log.
        const auto groups = std::count_if(r.purged.begin(), r.purged.end(),
                                          [](const lindra::PurgedScope& p) { return p.kind == lindra::ScopeKind::group; });
        text += ", purged " + counted(r.rows_purged, "row") + (groups > 0 ? " (left " + counted(groups, "group") + ")" : "");
    }
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
