// What lindra-syncd tells its operator: one log line per round, backoff and
// refused change, and on a terminal a progress bar while a round runs.
//
// Lines carry counts, codes, entities and seqs: never a token, a name, a
// reflection or any other value of the data.
#pragma once

#include <lindra/sync.hpp>

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <mutex>
#include <string>

namespace syncd {

// Safe from any thread: the sync's thread draws the bar, the main thread
// logs the rest.
class Reporter {
  public:
    // `terminal`: `out` is a terminal, so a round also draws a bar.
    Reporter(std::ostream& out, bool terminal);

    // "lindra-syncd: " + text, on a line of its own.
    void line(const std::string& text);

    void round_started(std::int64_t outbox);
    // SyncOptions::on_progress, on the sync's thread.
    void progress(const lindra::SyncProgress& p);
    // The round's line, then one line per refused change.
    void round_ended(const lindra::SyncResult& r, std::chrono::steady_clock::duration took);

  private:
    void clear_bar();  // with mutex_ held

    std::mutex mutex_;  // guards out_ and the two below
    std::ostream& out_;
    const bool terminal_;
    bool bar_shown_ = false;
    std::int64_t push_total_ = 0;  // the outbox as the round began
    // The phase the bar shows, since when, and how much was done then: the
    // rate and the time left are of this phase alone.
    lindra::SyncPhase phase_ = lindra::SyncPhase::connecting;
    std::chrono::steady_clock::time_point phase_start_{};
    std::int64_t phase_done_ = 0;
    // The pull's first count of writes to come, and when it came.
    std::int64_t pull_left_first_ = 0;
    std::chrono::steady_clock::time_point pull_left_since_{};
};

// ", 1.2k changes/s, about 12 s left": the pace of `done` items since
// `elapsed` began, and the time `remaining` more would take at it; empty
// until there is half a second to go by.
std::string pace(std::int64_t done, std::int64_t remaining, std::chrono::steady_clock::duration elapsed,
                 const char* unit);

// "250 ms", "1.5 s", "300 s".
std::string format_duration(std::chrono::milliseconds d);

// "950 B", "12.3 kB", "4.5 MB": on the bar and in the round's line alike.
std::string format_bytes(std::uint64_t bytes);

}  // namespace syncd
