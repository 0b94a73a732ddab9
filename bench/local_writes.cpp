// lindra-bench local-writes: module-progress writes through lindra's public
// API versus raw SQLite inserts of the same rows into the same table shape,
// with the same pragmas (WAL, synchronous=NORMAL), in one run.
//
// Each API write is Writes::complete_module(): it validates, merges into the
// row with its clocks, and appends the change to the outbox. Each raw write
// is one prepared INSERT of the finished row, with ids computed beforehand,
// so the baseline is the cheapest thing an app could do without lindra.
#include "bench.hpp"

#include "model/ddl.hpp"

#include <lindra/replica.hpp>

#include <sqlite3.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace lindra::bench {
namespace {

constexpr int kModules = 20;

struct Rows {
    std::vector<Id> persons, modules;
    Id group, course;
};

void check(int rc, sqlite3* db) {
    if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) throw std::runtime_error(sqlite3_errmsg(db));
}

void exec(sqlite3* db, const std::string& sql) {
    check(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), db);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Writes per second of raw INSERTs, `per_txn` rows per transaction.
double run_raw(const std::filesystem::path& path, const Rows& rows, int writes, int per_txn) {
    sqlite3* db = nullptr;
    check(sqlite3_open(path.c_str(), &db), db);
    exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL");
    for (const auto& sql : model::domain_ddl(1, false)) exec(db, sql);
    sqlite3_stmt* ins = nullptr;
    check(
        sqlite3_prepare_v2(db,
                           "INSERT INTO module_progress (id, deleted, person_id, module_id, group_id, attempt, status,"
                           " best_score, time_spent_s, first_completed_at) VALUES (?, 0, ?, ?, ?, 1, 'completed', ?,"
                           " 0, ?)",
                           -1, &ins, nullptr),
        db);
    std::vector<Id> ids;
    ids.reserve(static_cast<std::size_t>(writes));
    for (int i = 0; i < writes; ++i)
        ids.push_back(
            Id::derive("module_progress", {rows.persons[static_cast<std::size_t>(i / kModules)],
                                           rows.modules[static_cast<std::size_t>(i % kModules)], rows.group}));
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < writes; ++i) {
        if (i % per_txn == 0) exec(db, "BEGIN");
        auto blob = [&](int col, const Id& id) { sqlite3_bind_blob(ins, col, id.bytes.data(), 16, SQLITE_STATIC); };
        blob(1, ids[static_cast<std::size_t>(i)]);
        blob(2, rows.persons[static_cast<std::size_t>(i / kModules)]);
        blob(3, rows.modules[static_cast<std::size_t>(i % kModules)]);
        blob(4, rows.group);
        sqlite3_bind_int64(ins, 5, 80);
        sqlite3_bind_int64(ins, 6, 1'700'000'000'000 + i);
        check(sqlite3_step(ins), db);
        sqlite3_reset(ins);
        if (i % per_txn == per_txn - 1 || i == writes - 1) exec(db, "COMMIT");
    }
    const double rate = writes / seconds_since(t0);
    sqlite3_finalize(ins);
    sqlite3_close(db);
    return rate;
}

Rows seed(Replica& r, int persons) {
    Rows rows;
    r.batch([&](Writes& w) {
        const Id org = w.register_organization("Bench municipality", OrganizationKind::municipality);
        rows.course = w.register_course("Palliative care", "1", "nb", 4);
        for (int m = 0; m < kModules; ++m)
            rows.modules.push_back(w.register_module({rows.course, m + 1, "Module " + std::to_string(m + 1)}));
        rows.group = w.create_group({rows.course, org, "Bench group"});
        for (int p = 0; p < persons; ++p)
            rows.persons.push_back(w.register_person("Person " + std::to_string(p), Profession::nurse, org));
    });
    return rows;
}

// Writes per second through the API, `per_txn` writes per transaction.
double run_api(const std::filesystem::path& path, int writes, int per_txn, Rows* rows_out) {
    Replica r(path.string());
    const Rows rows = seed(r, writes / kModules);
    const auto outbox_before = r.outbox_size();
    auto one = [&](Writes& w, int i) {
        w.complete_module(rows.persons[static_cast<std::size_t>(i / kModules)],
                          rows.modules[static_cast<std::size_t>(i % kModules)], rows.group, 80);
    };
    const auto t0 = std::chrono::steady_clock::now();
    if (per_txn == 1) {
        for (int i = 0; i < writes; ++i) one(r, i);
    } else {
        for (int i = 0; i < writes; i += per_txn)
            r.batch([&](Writes& w) {
                for (int k = i; k < std::min(writes, i + per_txn); ++k) one(w, k);
            });
    }
    const double rate = writes / seconds_since(t0);
    if (r.outbox_size() - outbox_before != writes) throw std::runtime_error("outbox does not hold one entry per write");
    *rows_out = rows;
    return rate;
}

}  // namespace

int local_writes(const Args& args) {
    const int writes = args.count;
    const auto dir = make_temp_dir();
    Rows rows;
    auto path = [&](const char* name) { return dir / name; };

    std::printf("local-writes: %d module-progress writes per mode\n", writes);
    const double api_txn = run_api(path("api-txn.db"), writes, 1, &rows);
    const double raw_txn = run_raw(path("raw-txn.db"), rows, writes, 1);
    std::printf("  one write per transaction:   api %9.0f/s  raw %9.0f/s  ratio %.2f\n", api_txn, raw_txn,
                api_txn / raw_txn);
    const double api_batch = run_api(path("api-batch.db"), writes, 1000, &rows);
    const double raw_batch = run_raw(path("raw-batch.db"), rows, writes, 1000);
    std::printf("  1,000 writes per transaction: api %9.0f/s  raw %9.0f/s  ratio %.2f\n", api_batch, raw_batch,
                api_batch / raw_batch);
    std::filesystem::remove_all(dir);
    if (args.json)
        std::printf(
            "{\"api_per_s_txn\": %.0f, \"raw_per_s_txn\": %.0f, \"ratio_txn\": %.3f, \"api_per_s_batch\": %.0f,"
            " \"raw_per_s_batch\": %.0f, \"ratio_batch\": %.3f}\n",
            api_txn, raw_txn, api_txn / raw_txn, api_batch, raw_batch, api_batch / raw_batch);
    return 0;
}

}  // namespace lindra::bench
