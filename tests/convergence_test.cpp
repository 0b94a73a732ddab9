// Property test: the same random set of changes, applied to several replicas
// in different orders, with duplicates and in different batches, leaves
// byte-identical domain tables (values and clocks).
//
// LINDRA_SEEDS=N runs N seeds (default 1000); LINDRA_SEED=S replays one.
#include "support/db.hpp"
#include "support/temp_dir.hpp"

#include <lindra/replica.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <random>

using namespace lindra;
using lindra::test::dump;
using lindra::test::Tables;
using lindra::test::TempDir;

namespace {

std::vector<std::uint64_t> seeds_to_run(std::uint64_t default_count) {
    if (const char* one = std::getenv("LINDRA_SEED")) return {std::strtoull(one, nullptr, 10)};
    std::uint64_t n = default_count;
    if (const char* count = std::getenv("LINDRA_SEEDS")) n = std::strtoull(count, nullptr, 10);
    std::vector<std::uint64_t> seeds;
    for (std::uint64_t s = 1; s <= n; ++s) seeds.push_back(s);
    return seeds;
}

// A random valid value for `f`, from small pools so that conflicts and equal
// values are common.
Value random_value(const FieldDef& f, std::mt19937_64& rng, const std::vector<Id>& refs) {
    auto pick = [&](std::uint64_t n) { return rng() % n; };
    switch (f.type) {
        case FieldType::text:
            return std::string(1 + pick(3), static_cast<char>('a' + pick(3)));
        case FieldType::integer:
            if (f.rule == MergeRule::counter) return static_cast<std::int64_t>(pick(50));
            return f.min + static_cast<std::int64_t>(
                               pick(static_cast<std::uint64_t>(std::min<std::int64_t>(f.max - f.min, 5) + 1)));
        case FieldType::boolean:
            return static_cast<std::int64_t>(pick(2));
        case FieldType::enumeration:
            return std::string(f.values[pick(f.values.size())]);
        case FieldType::ref:
            return refs[pick(refs.size())];
        case FieldType::timestamp:
            return static_cast<std::int64_t>(1'700'000'000'000 + pick(10));
        case FieldType::date:
            return std::string(pick(2) ? "2026-09-01" : "2026-12-15");
        case FieldType::progress:
            return progress_value(static_cast<std::int64_t>(pick(3)), static_cast<int>(pick(f.values.size())));
    }
    return std::monostate{};
}

// A row of `e` with its key values; rows identified by other rows get the
// id their keys derive, as every device would compute it. The group and
// person that scope a row never change either, so each row has one.
struct Row {
    Id id;
    std::vector<Id> keys;  // in schema order
    std::map<std::uint16_t, Id> scoping;  // non-key scope fields, by tag
};

Row random_row(const EntityDef& e, std::mt19937_64& rng, const std::vector<Id>& refs) {
    Row row;
    for (const auto& f : e.fields)
        if (f.key) row.keys.push_back(refs[rng() % refs.size()]);
    row.id = e.derived_id ? Id::derive(e.name, row.keys) : Id::random();
    // Chosen by the id, as two rows with the same keys are one row.
    for (const auto& f : e.fields)
        if (!f.key && (f.name == e.group_field || f.name == e.person_field))
            row.scoping[f.tag] = refs[(row.id.bytes[0] + f.tag) % refs.size()];
    return row;
}

std::vector<Change> random_changes(std::mt19937_64& rng, int n) {
    // A few rows per entity and a few origins with colliding clocks.
    std::vector<Id> refs, origins;
    for (int i = 0; i < 3; ++i) {
        refs.push_back(Id::random());
        origins.push_back(Id::random());
    }
    const auto all = entities();
    std::vector<std::vector<Row>> rows(all.size());
    for (std::size_t e = 0; e < all.size(); ++e)
        for (int i = 0; i < 3; ++i) rows[e].push_back(random_row(all[e], rng, refs));

    std::vector<Change> out;
    for (int i = 0; i < n; ++i) {
        const auto ei = rng() % all.size();
        const auto& e = all[ei];
        const auto& f = e.fields[rng() % e.fields.size()];
        const Row& row = rows[ei][rng() % rows[ei].size()];
        Value v = random_value(f, rng, refs);
        if (f.key) {
            std::size_t k = 0;
            for (const auto& g : e.fields) {
                if (&g == &f) break;
                k += g.key;
            }
            v = row.keys[k];
        } else if (row.scoping.contains(f.tag)) {
            v = row.scoping.at(f.tag);
        } else if (f.nullable && rng() % 10 == 0 && (f.rule == MergeRule::lww || f.rule == MergeRule::add_wins)) {
            v = std::monostate{};
        }
        out.push_back({e.tag, row.id, f.tag, std::move(v), 1 + rng() % 12, origins[rng() % origins.size()]});
    }
    return out;
}

// Applies `changes` in a random order with random duplicates, in random batches.
void deliver(Replica& r, std::vector<Change> changes, std::mt19937_64& rng) {
    const auto n = changes.size();
    for (std::size_t i = 0; i < n; ++i)
        if (rng() % 4 == 0) changes.push_back(changes[rng() % n]);
    std::shuffle(changes.begin(), changes.end(), rng);
    for (std::size_t at = 0; at < changes.size();) {
        const std::size_t len = std::min<std::size_t>(1 + rng() % 10, changes.size() - at);
        r.apply_remote(std::span(changes).subspan(at, len));
        at += len;
    }
}

}  // namespace

TEST_CASE("replicas converge whatever the order, duplication and batching of changes") {
    TempDir dir(true);
    for (const auto seed : seeds_to_run(1000)) {
        INFO("seed " << seed << " (replay: LINDRA_SEED=" << seed << ")");
        std::mt19937_64 rng(seed);
        const auto changes = random_changes(rng, 30 + static_cast<int>(rng() % 30));
        std::vector<std::string> dumps;
        for (int replica = 0; replica < 3; ++replica) {
            const auto path = dir.file("s" + std::to_string(seed) + "-r" + std::to_string(replica) + ".db");
            {
                Replica r(path);
                deliver(r, changes, rng);
            }
            dumps.push_back(dump(path, Tables::domain));
            std::filesystem::remove(path);
            std::filesystem::remove(path + "-wal");
            std::filesystem::remove(path + "-shm");
        }
        REQUIRE(!dumps[0].empty());
        REQUIRE(dumps[1] == dumps[0]);
        REQUIRE(dumps[2] == dumps[0]);
    }
}

TEST_CASE("devices writing offline converge after exchanging their outboxes") {
    TempDir dir(true);
    for (const auto seed : seeds_to_run(1000)) {
        if (seed > 200 && !std::getenv("LINDRA_SEED")) break;  // each seed is a full scenario
        INFO("seed " << seed << " (replay: LINDRA_SEED=" << seed << ")");
        std::mt19937_64 rng(seed);
        std::vector<std::unique_ptr<Replica>> devices;
        for (int d = 0; d < 3; ++d)
            devices.push_back(
                std::make_unique<Replica>(dir.file("s" + std::to_string(seed) + "-d" + std::to_string(d) + ".db")));

        // A shared catalog, known to everyone before going offline.
        const Id person = Id::random(), group = Id::random();
        std::vector<Id> modules = {Id::random(), Id::random()};

        for (int op = 0; op < 25; ++op) {
            Replica& r = *devices[rng() % devices.size()];
            const Id& module = modules[rng() % modules.size()];
            switch (rng() % 7) {
                case 0:
                    r.start_module(person, module, group);
                    break;
                case 1:
                    r.complete_module(person, module, group, static_cast<int>(rng() % 101));
                    break;
                case 2:
                    r.add_time_spent(person, module, group, static_cast<std::int64_t>(rng() % 600));
                    break;
                case 3:
                    r.reset_module(person, module, group);
                    break;
                case 4:
                    r.record_score(person, module, group, static_cast<int>(rng() % 101));
                    break;
                case 5:
                    r.add_member(group, person, rng() % 2 ? MemberRole::candidate : MemberRole::mentor);
                    break;
                case 6:
                    try {
                        r.withdraw_member(group, person);
                    } catch (const Error& e) {
                        REQUIRE(e.errc() == Errc::not_found);  // not added on this device yet
                    }
                    break;
            }
        }
        std::vector<Change> all;
        for (auto& d : devices)
            for (auto& entry : d->outbox(1000)) all.insert(all.end(), entry.changes.begin(), entry.changes.end());
        std::vector<std::string> dumps;
        for (auto& d : devices) {
            deliver(*d, all, rng);
            dumps.push_back(dump(d->path(), Tables::domain));
        }
        REQUIRE(dumps[1] == dumps[0]);
        REQUIRE(dumps[2] == dumps[0]);
    }
}
