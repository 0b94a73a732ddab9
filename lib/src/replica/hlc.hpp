// Hybrid logical clock (DESIGN §3): 48 bits of wall-clock milliseconds and a
// 16-bit logical counter in one uint64, so plain integer order is causal
// order; ties between devices are broken by the origin id (model::Clock).
//
// Thread-safety: one thread at a time (its Core's mutex).
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>

namespace lindra::replica {

constexpr std::uint64_t hlc_make(std::uint64_t ms, std::uint16_t counter) noexcept {
    return (ms << 16) | counter;
}
constexpr std::uint64_t hlc_ms(std::uint64_t h) noexcept {
    return h >> 16;
}
constexpr std::uint16_t hlc_counter(std::uint64_t h) noexcept {
    return static_cast<std::uint16_t>(h & 0xFFFF);
}

// The largest hlc a replica accepts: clocks are stored in SQLite's signed
// 64-bit integers, and a clock at the ceiling could not tick.
constexpr std::uint64_t kHlcMax = (std::uint64_t{1} << 63) - (std::uint64_t{1} << 16);

class HybridClock {
  public:
    explicit HybridClock(std::function<std::int64_t()> wall_ms);

    // A new time, greater than every time issued or observed, and not behind
    // the wall clock. When the counter runs out it borrows the next
    // millisecond; times observed stay below kHlcMax, so it never wraps.
    std::uint64_t tick();
    // Another replica's time (at most kHlcMax) was seen: never issue one behind it.
    void observe(std::uint64_t remote) noexcept;
    // Sets the clock to `to` (at most kHlcMax), backwards too: the clock as
    // the file holds it, or the server's time when this device's clock ran
    // ahead of it (Core::adopt_server_time).
    void rewind(std::uint64_t to) noexcept { last_ = std::min(to, kHlcMax); }
    std::uint64_t last() const noexcept { return last_; }
    // A time for data (completion times): the wall clock, but never behind
    // the clock's own time, so a tablet whose clock fell back to 1970 does
    // not record a completion that wins "earliest" forever.
    std::int64_t now_ms() const;
    // The wall clock alone, for bounds that the HLC must not move (the
    // server's limit on how far ahead a change may be stamped).
    std::int64_t wall_ms() const { return wall_ms_(); }

  private:
    std::function<std::int64_t()> wall_ms_;
    std::uint64_t last_ = 0;
};

}  // namespace lindra::replica
