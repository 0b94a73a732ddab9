#include "backoff.hpp"

#include <algorithm>

namespace syncd {

Backoff::Backoff(std::chrono::milliseconds min, std::chrono::milliseconds max)
    : min_(min), max_(std::max(min, max)), random_(std::random_device{}()) {}

std::chrono::milliseconds Backoff::next(std::chrono::milliseconds floor) {
    ++failures_;
    // Doubling stops at the cap; the shift never runs past it.
    std::int64_t base = min_.count();
    for (int i = 1; i < failures_ && base < max_.count(); ++i) base *= 2;
    base = std::min(base, static_cast<std::int64_t>(max_.count()));
    std::uniform_real_distribution<double> jitter(0.75, 1.0);
    const auto wait =
        std::chrono::milliseconds(std::max<std::int64_t>(1, static_cast<std::int64_t>(base * jitter(random_))));
    return std::max(wait, floor);
}

}  // namespace syncd
