// A sync round's progress as lindra's example programs show it on a
// terminal (lindra-syncd, lindra-tablet sync): the bar's line, the line
// drawn over in place, and the units they print counts, bytes and
// durations in, so that the bar and a round's summary line agree.
#pragma once

#include <lindra/sync.hpp>

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <string>
#include <string_view>

namespace common {

// The bar's line for each SyncProgress of a round, e.g.
// "pulling [#####...] 40000 changes, 27500 writes to come, 430.9 kB
// received, 76.5k changes/s, about 3 s left". One thread at a time.
class SyncBar {
  public:
    using Clock = std::chrono::steady_clock;

    // A new round; `outbox`, the writes waiting as it began, is the push's
    // whole (a larger push_remaining raises it).
    void start(std::int64_t outbox);
    // The line for `p`, with no control characters: "connecting..." first,
    // a bar while pushing or pulling, empty once the round is done.
    std::string line(const lindra::SyncProgress& p, Clock::time_point now = Clock::now());

  private:
    std::int64_t push_total_ = 0;
    // The phase shown, since when, and how much was done then: the rate
    // and the time left are of this phase alone.
    lindra::SyncPhase phase_ = lindra::SyncPhase::connecting;
    Clock::time_point phase_start_{};
    std::int64_t phase_done_ = 0;
    // The pull's first count of writes to come, and when it came.
    std::int64_t pull_left_first_ = 0;
    Clock::time_point pull_left_since_{};
};

// One line of a terminal, drawn over in place. One thread at a time.
class TerminalLine {
  public:
    explicit TerminalLine(std::ostream& out) : out_(out) {}
    // Replaces what the line shows with `text` (flushed).
    void show(const std::string& text);
    // Erases the line, if it shows something: before other output.
    void clear();

  private:
    std::ostream& out_;
    bool shown_ = false;
};

// "1 write", "3 writes": a user's writes (outbox entries) and the field
// changes they carry, in the words of docs/decisions.md.
std::string counted(std::int64_t n, std::string_view noun);

// ", 1.2k changes/s, about 12 s left": the pace of `done` items since
// `elapsed` began, and the time `remaining` more would take at it; empty
// until there is half a second to go by.
std::string pace(std::int64_t done, std::int64_t remaining, std::chrono::steady_clock::duration elapsed,
                 const char* unit);

// "250 ms", "1.5 s", "300 s".
std::string format_duration(std::chrono::milliseconds d);

// "950 B", "12.3 kB", "4.5 MB": on the bar and in a round's summary alike.
std::string format_bytes(std::uint64_t bytes);

}  // namespace common
