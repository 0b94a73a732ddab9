// What lindra-syncd tells its operator: one log line per round, backoff and
// refused change, and on a terminal a progress bar while a round runs.
//
// Lines carry counts, codes, entities and seqs: never a token, a name, a
// reflection or any other value of the data.
#pragma once

#include "common/progress.hpp"

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
    std::mutex mutex_;  // guards out_ and the bar below
    std::ostream& out_;
    const bool terminal_;
    common::TerminalLine bar_line_;
    common::SyncBar bar_;
};

}  // namespace syncd
