#include "replica/hlc.hpp"

#include <algorithm>
#include <chrono>

namespace lindra::replica {

HybridClock::HybridClock(std::function<std::int64_t()> wall_ms) : wall_ms_(std::move(wall_ms)) {
    if (!wall_ms_) {
        wall_ms_ = [] {
            using namespace std::chrono;
            return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
        };
    }
}

std::uint64_t HybridClock::tick() {
    constexpr std::int64_t kMaxMs = (std::int64_t{1} << 48) - 1;
    const auto wall = static_cast<std::uint64_t>(std::clamp<std::int64_t>(wall_ms_(), 0, kMaxMs));
    last_ = std::max(hlc_make(wall, 0), last_ + 1);
    return last_;
}

void HybridClock::observe(std::uint64_t remote) noexcept {
    last_ = std::max(last_, std::min(remote, kHlcMax));
}

std::int64_t HybridClock::now_ms() const {
    return std::max(wall_ms_(), static_cast<std::int64_t>(hlc_ms(last_)));
}

}  // namespace lindra::replica
