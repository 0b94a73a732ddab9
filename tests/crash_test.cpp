// Crash safety (DESIGN §4, docs/decisions.md "Durability"). On three paths
// (typed local writes, applying pulled pages, creating a replica file) each
// xWrite and xSync lindra makes in turn fails once, or is where the app
// crashes or the power goes (support/fault_vfs.hpp). Reopened with SQLite's
// own VFS, the file must pass integrity_check, hold every commit that
// returned (after a power cut: every commit a sync or make_durable()
// covered), never half of one, and take a new write.
#include "replica/core.hpp"
#include "store/database.hpp"
#include "store/migrations.hpp"
#include "support/fault_vfs.hpp"
#include "support/fixture.hpp"
#include "support/temp_dir.hpp"

#include <lindra/replica.hpp>

#include <sqlite3.h>
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

using namespace lindra;
using lindra::test::FaultVfs;
using lindra::test::TempDir;

namespace {

// A fixed wall clock: every run issues the same hlcs, so the file a run
// leaves compares byte for byte with a reference run's.
ReplicaOptions fixed_clock() {
    return {.wall_clock_ms = [] { return Timestamp{1'750'000'000'000}; }};
}

// The steps of one run share it.
struct Handle {
    std::string path;
    std::unique_ptr<Replica> replica;
};

struct Step {
    std::function<void(Handle&)> run;
    int after;  // the reference state the file holds once the step returned
    // lindra promises that once the step returned, every commit before it
    // survives a power cut.
    bool durable = false;
};

// One path through lindra and the states its file passes through: refs[k]
// is the snapshot after its k-th commit. Every step commits at most once,
// and that commit is its last write, except opening a new file (its
// migrations commit one by one).
struct Workload {
    std::string start;  // the file each run starts from; empty: the run creates it
    std::vector<Step> steps;
    std::vector<std::string> refs;
    // Which reference state the file's own bookkeeping (outbox, cursor,
    // user_version) says it is in; the snapshot must then equal that one.
    std::function<int(const std::string&)> progress;
    std::function<std::string(const std::string&)> snapshot;
    // The snapshot without clocks, for runs that retried a failed step (the
    // retry takes a fresh hlc), and what it is once every step ran.
    std::function<std::string(const std::string&)> content;
    std::string final_content;
};

std::int64_t query_int(store::Database& db, const std::string& sql) {
    auto s = db.prepare(sql);
    REQUIRE(s.step());
    return s.int64(0);
}

// Every row of every table in a stable order; `clocks`: with the hlc and
// clock columns.
std::string rows(const std::string& path, bool clocks = true) {
    store::Database db(path);
    std::string out;
    auto tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name");
    while (tables.step()) {
        const std::string table = tables.text(0);
        std::string cols;
        auto info = db.prepare("SELECT name FROM pragma_table_info(?) ORDER BY cid");
        info.bind(1, table);
        while (info.step()) {
            const std::string col = info.text(0);
            if (!clocks && (col == "hlc" || col == "lindra_clocks")) continue;
            cols += (cols.empty() ? "quote(" : " || ',' || quote(") + col + ")";
        }
        out += table + ":\n";
        auto r = db.prepare("SELECT " + cols + " FROM " + table + " ORDER BY 1");
        while (r.step()) out += "  " + r.text(0) + "\n";
    }
    return out;
}

void remove_files(const std::string& path) {
    for (const char* suffix : {"", "-wal", "-shm", "-journal"}) std::filesystem::remove(path + suffix);
}

void fresh_copy(const std::string& start, const std::string& path) {
    remove_files(path);
    if (!start.empty()) std::filesystem::copy_file(start, path);
}

// A replica closed cleanly (everything in the database file), for runs to copy.
void close_start_file(std::unique_ptr<Replica>& r) {
    const std::string path = r->path();
    r.reset();
    REQUIRE_FALSE(std::filesystem::exists(path + "-wal"));
}

Step open_step(int state) {
    return {[](Handle& h) { h.replica = std::make_unique<Replica>(h.path, fixed_clock()); }, state};
}
Step close_step(int state) {
    return {[](Handle& h) { h.replica.reset(); }, state};
}

// Fills w.refs by running the steps without faults.
void record_refs(Workload& w, const std::string& path) {
    fresh_copy(w.start, path);
    Handle h{path, nullptr};
    w.refs = {rows(w.start)};
    for (const auto& step : w.steps) {
        step.run(h);
        if (step.after == static_cast<int>(w.refs.size())) w.refs.push_back(rows(path));
        REQUIRE(static_cast<int>(w.refs.size()) == step.after + 1);
    }
    w.final_content = rows(path, false);
}

// ---- the three paths -------------------------------------------------------

// Typed writes on a seeded replica, each its own transaction, with the sync
// point a device makes before it pushes in the middle.
Workload local_writes(const TempDir& dir) {
    Workload w;
    w.start = dir.file("start.db");
    auto r = std::make_unique<Replica>(w.start, fixed_clock());
    const test::Seeded s = test::seed_group(*r);
    const std::int64_t base = r->outbox_size();
    close_start_file(r);

    const Id ola = s.candidates[0];
    auto write = [&](int state, std::function<void(Replica&)> f) {
        w.steps.push_back({[f](Handle& h) { f(*h.replica); }, state});
    };
    w.steps.push_back(open_step(0));
    write(1, [=](Replica& r) { r.start_module(ola, s.modules[0], s.group); });
    write(2, [=](Replica& r) { r.add_time_spent(ola, s.modules[0], s.group, 600); });
    write(3, [=](Replica& r) { r.record_attendance(s.gatherings[0], ola, AttendanceStatus::present); });
    w.steps.push_back({[](Handle& h) {
                           auto& core = detail::core_of(*h.replica);
                           std::lock_guard lock(core.mutex);
                           core.make_durable();
                       },
                       3, true});
    write(4, [=](Replica& r) { r.complete_module(ola, s.modules[0], s.group, 90, 300); });
    write(5, [=](Replica& r) { r.hold_gathering(s.gatherings[0]); });
    write(6, [=](Replica& r) { r.confirm_candidate(s.group, ola, s.mentor, "Took part throughout"); });
    w.steps.push_back(close_step(6));

    // Each write is one outbox entry: the outbox's length says how many
    // landed, and the domain rows must be exactly those writes' rows.
    w.progress = [base](const std::string& path) {
        store::Database db(path);
        return static_cast<int>(query_int(db, "SELECT count(*) FROM lindra_outbox") - base);
    };
    w.snapshot = [](const std::string& path) { return rows(path); };
    w.content = [](const std::string& path) { return rows(path, false); };
    record_refs(w, dir.file("ref.db"));
    return w;
}

const std::vector<std::string> kCursors = {"", "page-1", "page-2", "page-3"};

// Pulled pages of another device's changes on a replica with pending local
// changes, each page applied together with the cursor after it.
Workload pulled_pages(const TempDir& dir) {
    Workload w;
    std::vector<Change> changes;
    {
        Replica other(dir.file("other.db"), fixed_clock());
        const test::Seeded s = test::seed_group(other);
        other.complete_module(s.candidates[1], s.modules[1], s.group, std::nullopt, 1200);
        other.record_attendance(s.gatherings[0], s.candidates[1], AttendanceStatus::excused, "Night shift");
        for (auto& e : other.outbox(SIZE_MAX))
            for (auto& c : e.changes) changes.push_back(std::move(c));
    }
    const std::size_t page_size = (changes.size() + 2) / 3;
    std::vector<std::vector<Change>> pages(3);
    for (std::size_t i = 0; i < changes.size(); ++i) pages[i / page_size].push_back(changes[i]);

    w.start = dir.file("start.db");
    auto r = std::make_unique<Replica>(w.start, fixed_clock());
    test::seed_group(*r);
    close_start_file(r);

    w.steps.push_back(open_step(0));
    for (int i = 0; i < 3; ++i)
        w.steps.push_back({[page = pages[i], i](Handle& h) {
                               auto& core = detail::core_of(*h.replica);
                               std::lock_guard lock(core.mutex);
                               detail::Core::WriteTransaction txn(core);
                               core.apply_pulled(page, kCursors[i + 1], i == 2);
                               txn.commit();
                           },
                           i + 1});
    w.steps.push_back(close_step(3));

    // The stored cursor says which pages landed; the rows must be exactly those.
    w.progress = [](const std::string& path) {
        store::Database db(path);
        auto s = db.prepare("SELECT CAST(pull_cursor AS TEXT) FROM lindra_replica");
        REQUIRE(s.step());
        const auto it = std::find(kCursors.begin(), kCursors.end(), s.text(0));
        REQUIRE(it != kCursors.end());
        return static_cast<int>(it - kCursors.begin());
    };
    w.snapshot = [](const std::string& path) { return rows(path); };
    w.content = [](const std::string& path) { return rows(path, false); };
    record_refs(w, dir.file("ref.db"));
    return w;
}

// The first column of the first row of `sql`, from a plain connection:
// lindra's connections switch the file to WAL mode on open.
std::string plain_query(const std::string& path, const std::string& sql) {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    std::string out;
    // Reading the schema first makes SQLite find the file's journal mode.
    for (const std::string& q : {std::string("SELECT count(*) FROM sqlite_master"), sql}) {
        REQUIRE(sqlite3_prepare_v2(db, q.c_str(), -1, &st, nullptr) == SQLITE_OK);
        const int rc = sqlite3_step(st);
        out = rc == SQLITE_ROW ? reinterpret_cast<const char*>(sqlite3_column_text(st, 0)) : sqlite3_errmsg(db);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return out;
}

// The tables and the schema version of a file, whether it has its replica
// state yet (the device id is random, so not its value), and, once it has
// tables, its journal mode.
std::string schema(const std::string& path) {
    const std::string mode = plain_query(path, "PRAGMA journal_mode");
    store::Database db(path);
    std::string out = "user_version " + std::to_string(db.user_version()) + "\n";
    if (query_int(db, "SELECT count(*) FROM sqlite_master") > 0) out += "journal_mode " + mode + "\n";
    auto s = db.prepare("SELECT type, name, ifnull(sql, '') FROM sqlite_master ORDER BY name");
    bool replica_table = false;
    while (s.step()) {
        out += s.text(0) + " " + s.text(1) + ": " + s.text(2) + "\n";
        replica_table |= s.text(1) == "lindra_replica";
    }
    if (replica_table) out += "replica rows " + std::to_string(query_int(db, "SELECT count(*) FROM lindra_replica"));
    return out;
}

// Opening a new file: WAL mode, each migration in its own transaction,
// then the device id.
Workload new_file(const TempDir& dir) {
    Workload w;
    const auto migrations = detail::replica_migrations();
    // The states: each migration's, then the device id.
    const int full_state = static_cast<int>(migrations.size()) + 1;
    w.steps = {open_step(full_state), close_step(full_state)};
    for (std::size_t k = 0; k <= migrations.size(); ++k) {
        const std::string path = dir.file("ref" + std::to_string(k) + ".db");
        {
            store::Database db(path);
            store::migrate(db, migrations.first(k));
        }
        w.refs.push_back(schema(path));
    }
    const std::string full = dir.file("ref-full.db");
    { Replica r(full, fixed_clock()); }
    w.refs.push_back(schema(full));
    REQUIRE(w.refs.size() == migrations.size() + 2);

    w.progress = [latest = static_cast<int>(migrations.back().version)](const std::string& path) {
        store::Database db(path);
        const auto version = static_cast<int>(db.user_version());
        if (version < latest) return version;
        return latest + static_cast<int>(query_int(db, "SELECT count(*) FROM lindra_replica"));
    };
    w.snapshot = schema;
    w.content = schema;
    w.final_content = w.refs.back();
    return w;
}

// ---- walking every failure point ----------------------------------------

enum class Mode {
    fail,        // an I/O error, then the run stops and closes
    fail_retry,  // an I/O error, then the app retries the step on the same handle and carries on
    app_crash,
    power_loss,
};

const char* name_of(Mode m) {
    switch (m) {
        case Mode::fail:
            return "fail";
        case Mode::fail_retry:
            return "fail, then retry";
        case Mode::app_crash:
            return "app crash";
        case Mode::power_loss:
            return "power loss";
    }
    return "?";
}

FaultVfs::Mode vfs_mode(Mode m) {
    switch (m) {
        case Mode::fail:
        case Mode::fail_retry:
            return FaultVfs::Mode::fail;
        case Mode::app_crash:
            return FaultVfs::Mode::app_crash;
        case Mode::power_loss:
            return FaultVfs::Mode::power_loss;
    }
    return FaultVfs::Mode::count;
}

// What a run may leave: a reference state in [low, high].
struct Outcome {
    int low = 0;
    int high = 0;
    int returned = 0;  // the state of the last step that returned
    std::int64_t calls = 0;
    bool triggered = false;
    std::string trigger_point;
};

// Runs `w` with the `n`-th write or sync failing (0: none) and closes
// everything; lindra may only throw lindra::Error.
Outcome run(const Workload& w, FaultVfs::Mode vfs_mode, Mode mode, std::int64_t n, const std::string& path) {
    fresh_copy(w.start, path);
    const int final_state = w.steps.back().after;
    Outcome out;
    FaultVfs vfs(vfs_mode, n);
    Handle h{path, nullptr};  // closed before the VFS goes, even when a check throws
    std::optional<std::size_t> failed;
    std::vector<std::int64_t> syncs_at_return;
    for (std::size_t i = 0; i < w.steps.size() && !failed; ++i) {
        try {
            w.steps[i].run(h);
            syncs_at_return.push_back(vfs.syncs());
        } catch (const Error& e) {
            failed = i;
            UNSCOPED_INFO("step " << i << " threw: " << e.what());
        }
    }
    if (mode == Mode::fail_retry && failed)
        for (std::size_t i = *failed; i < w.steps.size(); ++i) w.steps[i].run(h);
    h.replica.reset();
    out.calls = vfs.calls();
    out.triggered = vfs.triggered();
    out.trigger_point = vfs.trigger_point();

    if (mode == Mode::fail_retry) {
        out.low = out.high = out.returned = final_state;
        return out;
    }
    const std::size_t returned = failed.value_or(w.steps.size());
    auto after = [&](std::size_t steps) { return steps == 0 ? 0 : w.steps[steps - 1].after; };
    out.returned = after(returned);
    // A step that reported an error did not make its last commit. A crash
    // reports to no one: the commit it interrupted may have landed, e.g.
    // when the bytes it did not get to write were already in the file.
    if (!failed || mode != Mode::fail)
        out.high = failed ? w.steps[*failed].after : final_state;
    else
        out.high = std::max(after(*failed), w.steps[*failed].after - 1);
    if (mode != Mode::power_loss) {
        // The operating system still holds every commit that returned.
        out.low = out.returned;
    } else {
        // A power cut keeps what a sync covered. In WAL mode any sync after a
        // commit covers it: a checkpoint syncs the WAL before it writes the
        // database, and the WAL restarts only when all of it is in the
        // synced database. And it keeps what lindra promised to keep.
        for (std::size_t i = returned; i-- > 0;)
            if (syncs_at_return[i] < vfs.syncs() || w.steps[i].durable) {
                out.low = after(i + 1);
                break;
            }
    }
    return out;
}

// Reopens the file with SQLite's own VFS and checks what the run left;
// returns the reference state it holds.
int check_file(const Workload& w, Mode mode, const Outcome& o, const std::string& path) {
    REQUIRE(plain_query(path, "PRAGMA integrity_check") == "ok");
    // Before any lindra connection sets the file's journal mode.
    const std::string found = mode == Mode::fail_retry ? w.content(path) : w.snapshot(path);
    const int k = w.progress(path);
    INFO("the file holds state " << k << "; the last step that returned left state " << o.returned);
    REQUIRE(k >= o.low);
    REQUIRE(k <= o.high);
    REQUIRE(found == (mode == Mode::fail_retry ? w.final_content : w.refs[static_cast<std::size_t>(k)]));

    Replica r(path);
    const auto before = r.outbox_size();
    r.register_person("Written after the fault", Profession::nurse);
    REQUIRE(r.outbox_size() == before + 1);
    return k;
}

struct Walk {
    std::int64_t total = 0;  // writes and syncs on the path
    int lost = 0;            // runs that lost a commit which had returned
};

Walk walk(const Workload& w, const TempDir& dir, Mode mode) {
    const std::string path = dir.file("run.db");
    Walk result;
    {
        // Counting alone, and buffering without a crash, change nothing.
        const Outcome counted = run(w, FaultVfs::Mode::count, Mode::fail, 0, path);
        check_file(w, Mode::fail, counted, path);
        const Outcome buffered = run(w, FaultVfs::Mode::power_loss, Mode::fail, 0, path);
        REQUIRE(buffered.calls == counted.calls);
        check_file(w, Mode::fail, buffered, path);
        result.total = counted.calls;
    }
    REQUIRE(result.total > 0);
    for (std::int64_t n = 1; n <= result.total; ++n) {
        INFO(name_of(mode) << " at write or sync " << n << " of " << result.total);
        const Outcome o = run(w, vfs_mode(mode), mode, n, path);
        INFO("which was the " << o.trigger_point);
        REQUIRE(o.triggered);
        if (check_file(w, mode, o, path) < o.returned) ++result.lost;
    }
    return result;
}

const Mode kModes[] = {Mode::fail, Mode::fail_retry, Mode::app_crash, Mode::power_loss};

}  // namespace

TEST_CASE("local writes survive a failed or cut-off write or sync at every point", "[crash]") {
    TempDir dir(true);
    const Workload w = local_writes(dir);
    for (const Mode mode : kModes) {
        DYNAMIC_SECTION(name_of(mode)) {
            const Walk walked = walk(w, dir, mode);
            // With synchronous=NORMAL a power cut takes the commits made
            // since the last sync; some runs must show it, or the crash
            // model cuts too little to tell.
            if (mode == Mode::power_loss) CHECK(walked.lost > 0);
            if (mode != Mode::power_loss) CHECK(walked.lost == 0);
        }
    }
}

TEST_CASE("a pulled page lands with its cursor or not at all, at every failure point", "[crash]") {
    TempDir dir(true);
    const Workload w = pulled_pages(dir);
    for (const Mode mode : kModes) {
        DYNAMIC_SECTION(name_of(mode)) {
            const Walk walked = walk(w, dir, mode);
            if (mode != Mode::power_loss) CHECK(walked.lost == 0);
        }
    }
}

TEST_CASE("creating a replica file can be cut off at any point and opened again", "[crash]") {
    TempDir dir(true);
    const Workload w = new_file(dir);
    for (const Mode mode : kModes) {
        DYNAMIC_SECTION(name_of(mode)) {
            const Walk walked = walk(w, dir, mode);
            if (mode != Mode::power_loss) CHECK(walked.lost == 0);
        }
    }
}

// The crash model tells the two synchronous levels apart: FULL keeps every
// commit that returned through a power cut, NORMAL (lindra's devices) may not.
TEST_CASE("power loss takes unsynced commits with synchronous=NORMAL, none with FULL", "[crash]") {
    TempDir dir(true);
    const std::string path = dir.file("plain.db");
    for (const bool full : {true, false}) {
        INFO("synchronous=" << (full ? "FULL" : "NORMAL"));
        auto commit_rows = [&](int& committed) {
            store::Database db(path, {.synchronous_full = full});
            db.exec("CREATE TABLE IF NOT EXISTS t (x INTEGER)");
            for (int i = 0; i < 5; ++i) {
                db.exec("INSERT INTO t VALUES (" + std::to_string(i) + ")");
                ++committed;
            }
        };
        std::int64_t total = 0;
        {
            remove_files(path);
            FaultVfs vfs;
            int committed = 0;
            commit_rows(committed);
            total = vfs.calls();
        }
        int lost = 0;
        for (std::int64_t n = 1; n <= total; ++n) {
            INFO("power loss at write or sync " << n);
            remove_files(path);
            int committed = 0;
            {
                FaultVfs vfs(FaultVfs::Mode::power_loss, n);
                try {
                    commit_rows(committed);
                } catch (const Error&) {
                }
            }
            store::Database db(path);
            const bool table = query_int(db, "SELECT count(*) FROM sqlite_master WHERE name = 't'") > 0;
            const std::int64_t rows = table ? query_int(db, "SELECT count(*) FROM t") : 0;
            if (full) CHECK(rows >= committed);
            lost += rows < committed;
        }
        if (!full) CHECK(lost > 0);
    }
}
