// The laws of every merge rule (DESIGN §3), over seeded random changes:
// any order, grouping or duplication of the same set of changes gives the
// same field state; and each rule's own promise (progress never regresses,
// counters never double count, ...).
#include "model/merge.hpp"

#include <lindra/schema.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <random>
#include <string>
#include <utility>
#include <vector>

using namespace lindra;
using model::Clock;
using model::FieldState;

namespace {

struct FieldChange {
    Value value;
    Clock clock;
};

const FieldDef& field_of(std::string_view entity, std::string_view field) {
    return *find_entity(entity)->field(field);
}

// One field per merge rule.
struct RuleCase {
    const char* rule;
    const FieldDef& field;
};
const RuleCase kRules[] = {
    {"lww", field_of("gathering", "title")},
    {"add_wins", field_of("membership", "status")},
    {"progress", field_of("module_progress", "progress")},
    {"max", field_of("module_progress", "best_score")},
    {"min", field_of("module_progress", "first_completed_at")},
    {"counter", field_of("module_progress", "time_spent_s")},
    {"tombstone", field_of("gathering", kDeletedField)},
};

FieldState initial(const FieldDef& f) {
    FieldState s;
    if (f.rule == MergeRule::progress || f.rule == MergeRule::counter || f.rule == MergeRule::tombstone)
        s.value = std::int64_t{0};
    return s;
}

// Random valid changes from a few origins with colliding hlcs, so ties and
// equal values are common.
std::vector<FieldChange> random_changes(const FieldDef& f, std::mt19937_64& rng, int n) {
    static const std::vector<Id> origins = {Id::random(), Id::random(), Id::random()};
    std::vector<FieldChange> out;
    for (int i = 0; i < n; ++i) {
        FieldChange c;
        c.clock = {1 + rng() % 6, origins[rng() % origins.size()]};
        switch (f.rule) {
            case MergeRule::lww:
                c.value = std::string(1, static_cast<char>('a' + rng() % 4));
                break;
            case MergeRule::add_wins:
                c.value = std::string(f.values[rng() % f.values.size()]);
                break;
            case MergeRule::progress:
                c.value = progress_value(static_cast<std::int64_t>(rng() % 3), static_cast<int>(rng() % 4));
                break;
            case MergeRule::max:
            case MergeRule::min:
            case MergeRule::counter:
                c.value = static_cast<std::int64_t>(rng() % 5);
                break;
            case MergeRule::tombstone:
                c.value = static_cast<std::int64_t>(rng() % 2);
                break;
        }
        out.push_back(std::move(c));
    }
    return out;
}

FieldState fold(const FieldDef& f, FieldState s, const std::vector<FieldChange>& changes) {
    for (const auto& c : changes) model::merge_field(f, s, c.value, c.clock);
    return s;
}

std::int64_t as_int(const Value& v) {
    return std::get<std::int64_t>(v);
}

// Any order, grouping or duplication of `changes` gives the same state.
void check_laws(const FieldDef& f, const std::vector<FieldChange>& changes, std::mt19937_64& rng) {
    const FieldState reference = fold(f, initial(f), changes);

    // Commutative: any order.
    auto shuffled = changes;
    std::shuffle(shuffled.begin(), shuffled.end(), rng);
    REQUIRE(fold(f, initial(f), shuffled) == reference);

    // Idempotent: duplicates, and re-applying everything.
    auto duplicated = shuffled;
    for (const auto& c : changes)
        if (rng() % 2) duplicated.insert(duplicated.begin() + static_cast<long>(rng() % duplicated.size()), c);
    REQUIRE(fold(f, initial(f), duplicated) == reference);
    REQUIRE(fold(f, reference, changes) == reference);

    // Associative: merging prefixes on two replicas and then exchanging the
    // rest gives the same as one pass.
    const auto cut = changes.begin() + static_cast<long>(rng() % (changes.size() + 1));
    const std::vector<FieldChange> left(changes.begin(), cut), right(cut, changes.end());
    REQUIRE(fold(f, fold(f, initial(f), left), right) == reference);
    REQUIRE(fold(f, fold(f, initial(f), right), left) == reference);
}

}  // namespace

TEST_CASE("merge rules are commutative, associative and idempotent") {
    for (const auto& rc : kRules) {
        SECTION(rc.rule) {
            for (std::uint64_t seed = 1; seed <= 300; ++seed) {
                INFO("seed " << seed);
                std::mt19937_64 rng(seed);
                check_laws(rc.field, random_changes(rc.field, rng, 1 + static_cast<int>(rng() % 8)), rng);
            }
        }
    }
}

// The server validates a pushed change before it merges it, but a merge
// rule must not depend on that: a value of the wrong type, no value, or a
// number at the integer limits is merged without throwing or undefined
// behaviour (the suite runs under UBSan), and the laws still hold. A
// counter's pushed total of INT64_MAX once overflowed inside the server.
TEST_CASE("merge rules keep their laws on values no validation let through") {
    const Id origin = Id::random();
    const std::vector<Value> hostile = {Value{},
                                        std::int64_t{INT64_MAX},
                                        std::int64_t{INT64_MAX - 1},
                                        std::int64_t{INT64_MIN},
                                        std::int64_t{-1},
                                        std::int64_t{0},
                                        std::int64_t{600},
                                        std::string(),
                                        std::string("withdrawn"),
                                        std::string("x"),
                                        origin};
    for (const auto& rc : kRules) {
        SECTION(rc.rule) {
            for (std::uint64_t seed = 1; seed <= 300; ++seed) {
                INFO("seed " << seed);
                std::mt19937_64 rng(seed);
                auto changes = random_changes(rc.field, rng, 1 + static_cast<int>(rng() % 8));
                for (auto& c : changes)
                    if (rng() % 2) c.value = hostile[rng() % hostile.size()];
                check_laws(rc.field, changes, rng);
            }
        }
    }
}

TEST_CASE("a counter's total saturates at the integer limits, whatever the order") {
    const auto& f = field_of("module_progress", "time_spent_s");
    const Id a = Id::random(), b = Id::random(), c = Id::random();
    auto merged = [&](std::vector<FieldChange> changes) {
        std::sort(changes.begin(), changes.end(), [](const auto& x, const auto& y) { return x.clock < y.clock; });
        const FieldState first = fold(f, initial(f), changes);
        while (std::next_permutation(changes.begin(), changes.end(),
                                     [](const auto& x, const auto& y) { return x.clock < y.clock; }))
            REQUIRE(fold(f, initial(f), changes) == first);
        return first;
    };
    // The case: a row holding 600 from one device, INT64_MAX pushed from another.
    auto s = merged({{std::int64_t{600}, {1, a}}, {std::int64_t{INT64_MAX}, {2, b}}});
    CHECK(as_int(s.value) == INT64_MAX);
    CHECK(s.totals.size() == 2);

    s = merged({{std::int64_t{INT64_MAX}, {1, a}}, {std::int64_t{INT64_MAX - 1}, {2, b}}, {std::int64_t{600}, {3, c}}});
    CHECK(as_int(s.value) == INT64_MAX);
    s = merged({{std::int64_t{INT64_MIN}, {1, a}}, {std::int64_t{INT64_MIN}, {2, b}}, {std::int64_t{-600}, {3, c}}});
    CHECK(as_int(s.value) == INT64_MIN);
    // Each origin's total is kept as it came (sorted by origin): only the sum saturates.
    std::vector<std::pair<Id, std::int64_t>> totals = {{a, INT64_MIN}, {b, INT64_MIN}, {c, -600}};
    std::sort(totals.begin(), totals.end());
    CHECK(s.totals == totals);
}

TEST_CASE("a change whose value has the wrong type changes no number-ruled field") {
    for (const char* name : {"time_spent_s", "best_score", "first_completed_at", "progress"}) {
        INFO(name);
        const auto& f = field_of("module_progress", name);
        FieldState s = initial(f);
        REQUIRE(model::merge_field(f, s, std::int64_t{5}, {3, Id::random()}));
        const FieldState before = s;
        for (const Value& v : {Value{}, Value{std::string("60")}, Value{Id::random()}}) {
            CHECK_FALSE(model::merge_field(f, s, v, {9, Id::random()}));  // later, still no effect
            CHECK(s == before);
        }
    }
}

TEST_CASE("lww keeps the value of the highest (hlc, origin)") {
    const auto& f = field_of("gathering", "title");
    const Id low = Id::parse("00000000-0000-4000-8000-000000000001").value();
    const Id high = Id::parse("00000000-0000-4000-8000-000000000002").value();
    FieldState s = initial(f);
    CHECK(model::merge_field(f, s, std::string("first"), {10, low}));
    CHECK_FALSE(model::merge_field(f, s, std::string("older"), {9, high}));
    CHECK(model::merge_field(f, s, std::string("tie, higher origin"), {10, high}));
    CHECK_FALSE(model::merge_field(f, s, std::string("tie, lower origin"), {10, low}));
    CHECK(s.value == Value{std::string("tie, higher origin")});
}

TEST_CASE("add_wins: a later hlc decides, an add beats a withdraw at the same hlc") {
    const auto& f = field_of("membership", "status");
    const Id a = Id::parse("00000000-0000-4000-8000-0000000000aa").value();
    const Id b = Id::parse("00000000-0000-4000-8000-000000000001").value();  // lower origin
    FieldState s = initial(f);
    model::merge_field(f, s, std::string("withdrawn"), {10, a});
    model::merge_field(f, s, std::string("active"), {10, b});  // same hlc, lower origin, but an add
    CHECK(s.value == Value{std::string("active")});
    model::merge_field(f, s, std::string("withdrawn"), {11, b});  // a later withdraw wins
    CHECK(s.value == Value{std::string("withdrawn")});
    model::merge_field(f, s, std::string("active"), {10, a});  // a stale add does not resurrect
    CHECK(s.value == Value{std::string("withdrawn")});
}

TEST_CASE("progress never goes backwards; a reset is a new attempt") {
    const auto& f = field_of("module_progress", "progress");
    FieldState s = initial(f);
    model::merge_field(f, s, progress_value(1, 2), {5, Id::random()});  // completed
    model::merge_field(f, s, progress_value(1, 1), {9, Id::random()});  // a stale tablet: in progress, later hlc
    CHECK(s.value == Value{progress_value(1, 2)});
    model::merge_field(f, s, progress_value(2, 0), {6, Id::random()});  // reset: attempt 2, not started
    CHECK(s.value == Value{progress_value(2, 0)});
    model::merge_field(f, s, progress_value(1, 3), {20, Id::random()});  // attempt 1 passed arrives late
    CHECK(s.value == Value{progress_value(2, 0)});
}

TEST_CASE("min keeps the earliest time, max the best score") {
    const auto& min_f = field_of("module_progress", "first_completed_at");
    const auto& max_f = field_of("module_progress", "best_score");
    FieldState first = initial(min_f), best = initial(max_f);
    for (std::int64_t t : {500, 300, 900})
        model::merge_field(min_f, first, t, {static_cast<std::uint64_t>(t), Id::random()});
    for (std::int64_t v : {40, 85, 60})
        model::merge_field(max_f, best, v, {static_cast<std::uint64_t>(v), Id::random()});
    CHECK(first.value == Value{std::int64_t{300}});
    CHECK(best.value == Value{std::int64_t{85}});
}

TEST_CASE("a counter sums per-origin totals; retries and stale totals count once") {
    const auto& f = field_of("module_progress", "time_spent_s");
    const Id a = Id::random(), b = Id::random();
    FieldState s = initial(f);
    model::merge_field(f, s, std::int64_t{60}, {1, a});
    model::merge_field(f, s, std::int64_t{120}, {2, a});  // a's running total grew
    model::merge_field(f, s, std::int64_t{120}, {2, a});  // the same change retried
    model::merge_field(f, s, std::int64_t{60}, {1, a});   // a stale total arriving late
    model::merge_field(f, s, std::int64_t{30}, {1, b});
    CHECK(as_int(s.value) == 150);
    CHECK(s.totals.size() == 2);
}

TEST_CASE("a tombstone is final") {
    const auto& f = field_of("gathering", kDeletedField);
    FieldState s = initial(f);
    model::merge_field(f, s, std::int64_t{1}, {5, Id::random()});
    model::merge_field(f, s, std::int64_t{0}, {50, Id::random()});
    CHECK(s.value == Value{std::int64_t{1}});
}
