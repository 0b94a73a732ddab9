#include "model/merge.hpp"

#include <algorithm>
#include <cstdint>
#include <tuple>

namespace lindra::model {
namespace {

// Order used by max/min-like rules: "no value" below every number.
std::strong_ordering compare_numbers(const Value& a, const Value& b) {
    const auto* x = std::get_if<std::int64_t>(&a);
    const auto* y = std::get_if<std::int64_t>(&b);
    if (!x || !y) return (x != nullptr) <=> (y != nullptr);
    return *x <=> *y;
}

bool take(FieldState& cur, const Value& value, const Clock& clock) {
    cur.value = value;
    cur.clock = clock;
    return true;
}

// The winning value is the greatest under `order`; among changes carrying it
// the clock kept is the greatest, so the clock converges too.
bool merge_ordered(FieldState& cur, const Value& value, const Clock& clock, std::strong_ordering order) {
    if (order > 0) return take(cur, value, clock);
    if (order == 0 && clock > cur.clock) {
        cur.clock = clock;
        return true;
    }
    return false;
}

// Last writer wins on (hlc, origin). Equal clocks with different values can
// only come from a faulty peer; the greater value wins so replicas still agree.
bool merge_lww(FieldState& cur, const Value& value, const Clock& clock, bool add_wins) {
    if (cur.clock.hlc == 0) return take(cur, value, clock);
    auto key = [add_wins](const Value& v, const Clock& c) {
        return std::make_tuple(c.hlc, add_wins && is_add(v), c.origin);
    };
    const auto order = key(value, clock) <=> key(cur.value, cur.clock);
    if (order > 0 || (order == 0 && value > cur.value)) return take(cur, value, clock);
    return false;
}

// Every input is safe, valid or not: a total that is not a number is
// ignored, and the sum saturates instead of overflowing (a peer's total
// near INT64_MAX must not be undefined behaviour, even unvalidated).
bool merge_counter(FieldState& cur, const Value& value, const Clock& clock) {
    const auto* in = std::get_if<std::int64_t>(&value);
    if (!in) return false;
    const std::int64_t total = *in;
    auto it = std::lower_bound(cur.totals.begin(), cur.totals.end(), clock.origin,
                               [](const auto& e, const Id& o) { return e.first < o; });
    bool changed = false;
    if (it == cur.totals.end() || it->first != clock.origin) {
        cur.totals.insert(it, {clock.origin, total});
        changed = true;
    } else if (total > it->second) {
        it->second = total;
        changed = true;
    }
    if (clock > cur.clock) {
        cur.clock = clock;
        changed = true;
    }
    if (changed) {
        // Summed wide, then clamped: exact for any totals a peer sends.
        __extension__ using Wide = __int128;  // GCC and clang; -Wpedantic knows it is not ISO
        Wide sum = 0;
        for (const auto& [o, t] : cur.totals) sum += t;
        cur.value = static_cast<std::int64_t>(std::clamp<Wide>(sum, INT64_MIN, INT64_MAX));
    }
    return changed;
}

}  // namespace

RowState merged(const EntityDef& e, RowState st, std::span<const Change> changes) {
    for (const auto& c : changes)
        if (const FieldDef* f = e.field(c.field)) merge_field(*f, st.fields[e.index_of(*f)], c.value, Clock{c.hlc, c.origin});
    return st;
}

bool is_add(const Value& v) noexcept {
    const auto* s = std::get_if<std::string>(&v);
    return !s || *s != "withdrawn";
}

bool merge_field(const FieldDef& f, FieldState& cur, const Value& value, const Clock& clock) {
    switch (f.rule) {
        case MergeRule::lww:
            return merge_lww(cur, value, clock, false);
        case MergeRule::add_wins:
            return merge_lww(cur, value, clock, true);
        case MergeRule::progress:
        case MergeRule::max:
        case MergeRule::tombstone:
            return merge_ordered(cur, value, clock, compare_numbers(value, cur.value));
        case MergeRule::min: {
            // The earliest time wins; "no value" loses to every number.
            const auto* in = std::get_if<std::int64_t>(&value);
            const auto* have = std::get_if<std::int64_t>(&cur.value);
            const auto order = !in     ? (have ? std::strong_ordering::less : std::strong_ordering::equal)
                               : !have ? std::strong_ordering::greater
                                       : *have <=> *in;
            return merge_ordered(cur, value, clock, order);
        }
        case MergeRule::counter:
            return merge_counter(cur, value, clock);
    }
    return false;
}

}  // namespace lindra::model
