#include "fuzz/fuzz_world.hpp"

#include "support/fixture.hpp"
#include "support/temp_dir.hpp"

#include <lindra/replica.hpp>
#include <lindra/schema.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>

namespace lindra::fuzz {

Id fixed_id(std::uint8_t kind, std::uint16_t n) {
    Id id;
    id.bytes = {0x1d, 0x5a, kind, 0, 0, 0, 0x40, 0, 0x80, 0, 0, 0, 0, 0, 0, 0};
    id.bytes[14] = static_cast<std::uint8_t>(n >> 8);
    id.bytes[15] = static_cast<std::uint8_t>(n);
    return id;
}

namespace {

Seed make_seed() {
    const test::TempDir dir(true);
    Replica r(dir.file("seed.db"), {.wall_clock_ms = [] { return kSeedMs; }});
    const test::Seeded s = test::seed_group(r);
    Id coordinator;
    r.batch([&](Writes& w) {
        coordinator = w.register_person("Cora Coordinator", Profession::nurse, s.organization);
        w.complete_module(s.candidates[0], s.modules[0], s.group, 85, 600);
        w.start_module(s.candidates[1], s.modules[1], s.group);
        w.hold_gathering(s.gatherings[0]);
        w.record_attendance(s.gatherings[0], s.candidates[0], AttendanceStatus::present, "on time");
        w.write_reflection(s.candidates[0], s.group, s.modules[2], "Listening matters most.");
    });

    Seed seed;
    seed.device = fixed_id(2, 0);
    Renamer rename(1);
    for (auto& e : r.outbox(SIZE_MAX)) {
        protocol::Entry& entry = seed.entries.emplace_back(protocol::Entry{e.seq, std::move(e.changes)});
        rename.rename(entry, seed.device);
    }
    seed.organization = rename(s.organization);
    seed.course = rename(s.course);
    seed.group = rename(s.group);
    seed.mentor = rename(s.mentor);
    seed.coordinator = rename(coordinator);
    for (const Id& id : s.candidates) seed.candidates.push_back(rename(id));
    for (const Id& id : s.modules) seed.modules.push_back(rename(id));
    for (const Id& id : s.gatherings) seed.gatherings.push_back(rename(id));
    return seed;
}

bool is_fixed(const Id& id) {
    Id pattern = fixed_id(id.bytes[2], 0);
    std::copy(id.bytes.begin() + 14, id.bytes.end(), pattern.bytes.begin() + 14);
    return id == pattern;
}

}  // namespace

Id Renamer::operator()(const Id& id) {
    if (is_fixed(id)) return id;
    const auto [it, added] = ids_.try_emplace(id);
    if (added) it->second = fixed_id(kind_, next_++);
    return it->second;
}

void Renamer::rename(protocol::Entry& entry, const Id& origin) {
    for (Change& c : entry.changes) {
        c.origin = origin;
        if (auto* id = std::get_if<Id>(&c.value)) *id = (*this)(*id);
    }
    const EntityDef& e = *find_entity(entry.changes.front().entity);
    const Id old_row = entry.changes.front().row;
    Id row = old_row;
    if (const auto it = ids_.find(old_row); it != ids_.end()) {
        row = it->second;
    } else if (!e.derived_id) {
        row = (*this)(old_row);
    } else {
        // The write that creates a derived row carries its keys; a later one
        // of a row whose keys were fixed already has a fixed id.
        std::vector<Id> keys;
        for (const FieldDef& f : e.fields) {
            if (!f.key) continue;
            const auto c = std::find_if(entry.changes.begin(), entry.changes.end(),
                                        [&](const Change& x) { return x.field == f.tag; });
            if (c != entry.changes.end()) keys.push_back(std::get<Id>(c->value));
        }
        if (!keys.empty()) row = ids_[old_row] = Id::derive(e.name, keys);
    }
    for (Change& c : entry.changes) c.row = row;
}

std::vector<protocol::Entry> writes(const std::function<void(Writes&)>& fn, const Id& origin, Renamer& rename) {
    const test::TempDir dir(true);
    Replica r(dir.file("writes.db"), {.wall_clock_ms = [] { return kNowMs; }});
    for (const auto& entry : seed().entries) r.apply_remote(entry.changes);
    r.batch(fn);
    std::vector<protocol::Entry> out;
    for (auto& e : r.outbox(SIZE_MAX)) {
        protocol::Entry& entry = out.emplace_back(protocol::Entry{e.seq, std::move(e.changes)});
        rename.rename(entry, origin);
    }
    return out;
}

void unpushed_writes(Writes& w) {
    const Seed& s = seed();
    w.record_score(s.candidates[1], s.modules[0], s.group, 40);
    w.add_time_spent(s.candidates[0], s.modules[0], s.group, 120);
    w.write_reflection(s.candidates[1], s.group, {}, "Draft, not yet pushed.");
    w.record_score(s.candidates[1], s.modules[0], s.group, 60);
}

const Seed& seed() {
    static const Seed s = make_seed();
    return s;
}

std::span<const User> users() {
    static const std::vector<User> all = [] {
        const Seed& s = seed();
        return std::vector<User>{
            {{.user = "admin-1", .role = Role::admin}, fixed_id(2, 1)},
            {{.user = "coord-1", .role = Role::coordinator, .person = s.coordinator, .organization = s.organization},
             fixed_id(2, 2)},
            {{.user = "mentor-1", .role = Role::mentor, .person = s.mentor}, fixed_id(2, 3)},
            {{.user = "cand-1", .role = Role::candidate, .person = s.candidates[0]}, fixed_id(2, 4)},
        };
    }();
    return all;
}

void copy_database(const std::string& from, const std::string& to) {
    for (const char* suffix : {"-wal", "-shm"}) std::filesystem::remove(to + suffix);
    std::filesystem::copy_file(from, to, std::filesystem::copy_options::overwrite_existing);
}

std::string dump(store::Database& db, std::span<const std::string_view> skip) {
    std::vector<std::string> tables;
    {
        auto st = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name");
        while (st.step())
            if (std::find(skip.begin(), skip.end(), st.text(0)) == skip.end()) tables.push_back(st.text(0));
    }
    std::string out;
    for (const std::string& table : tables) {
        std::string cols;
        auto info = db.prepare("SELECT name FROM pragma_table_info(?)");
        info.bind(1, table);
        while (info.step()) cols += (cols.empty() ? "quote(" : " || ',' || quote(") + info.text(0) + ")";
        auto rows = db.prepare("SELECT " + cols + " FROM " + table + " ORDER BY 1");
        out += table + ":\n";
        while (rows.step()) out += "  " + rows.text(0) + "\n";
    }
    return out;
}

void check_integrity(store::Database& db) {
    auto integrity = db.prepare("PRAGMA integrity_check");
    if (!integrity.step() || integrity.text(0) != "ok") finding("integrity_check: " + integrity.text(0));
    auto keys = db.prepare("PRAGMA foreign_key_check");
    if (keys.step()) finding("foreign_key_check: a row of " + keys.text(0) + " refers to a missing row");
}

void trace(const std::string& what) {
    static const bool on = std::getenv("LINDRA_FUZZ_TRACE") != nullptr;
    if (on) std::fprintf(stderr, "  %s\n", what.c_str());
}

void finding(const std::string& what) {
    std::fprintf(stderr, "lindra fuzz finding: %s\n", what.c_str());
    std::fflush(stderr);
    std::abort();
}

}  // namespace lindra::fuzz
