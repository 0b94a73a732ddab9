// How long lindra-syncd waits after failed rounds: exponential, with jitter,
// capped, and never shorter than what the server asked for.
#pragma once

#include <chrono>
#include <cstdint>
#include <random>

namespace syncd {

// One thread at a time.
class Backoff {
  public:
    Backoff(std::chrono::milliseconds min, std::chrono::milliseconds max);

    // The wait after one more failure in a row: min * 2^(failures - 1),
    // capped at max, times a random factor in [0.75, 1] so that many devices
    // cut off together do not come back together; each wait is 1.5 to 2
    // times the one before until the cap is near. At least `floor` (the
    // server's retry_after), even above the cap.
    std::chrono::milliseconds next(std::chrono::milliseconds floor = {});
    // A round succeeded (or the operator said try again): start over.
    void reset() noexcept { failures_ = 0; }
    int failures() const noexcept { return failures_; }

  private:
    std::chrono::milliseconds min_, max_;
    int failures_ = 0;
    std::mt19937_64 random_;
};

}  // namespace syncd
