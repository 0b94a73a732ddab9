#include "fleet_checks.hpp"

#include <lindra/schema.hpp>

#include <sqlite3.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <unordered_map>

namespace lindra::bench {
namespace {

struct DbCloser {
    void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct StmtCloser {
    void operator()(sqlite3_stmt* st) const { sqlite3_finalize(st); }
};
using Db = std::unique_ptr<sqlite3, DbCloser>;
using Stmt = std::unique_ptr<sqlite3_stmt, StmtCloser>;

Db open_read_only(const std::string& path) {
    sqlite3* raw = nullptr;
    const int rc = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READONLY, nullptr);
    Db db(raw);
    if (rc != SQLITE_OK) throw std::runtime_error("cannot open " + path + ": " + sqlite3_errstr(rc));
    sqlite3_busy_timeout(raw, 10'000);
    return db;
}

Stmt prepare(sqlite3* db, const std::string& sql) {
    sqlite3_stmt* raw = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &raw, nullptr) != SQLITE_OK)
        throw std::runtime_error(std::string(sqlite3_db_filename(db, "main")) + ": " + sqlite3_errmsg(db) + " (" + sql +
                                 ")");
    return Stmt(raw);
}

Id id_of(sqlite3_stmt* st, int column) {
    Id id;
    if (sqlite3_column_type(st, column) == SQLITE_BLOB && sqlite3_column_bytes(st, column) == 16)
        std::copy_n(static_cast<const std::uint8_t*>(sqlite3_column_blob(st, column)), 16, id.bytes.begin());
    return id;
}

// One row of a domain table: its id, the group and person that scope it,
// and every column (values and clocks) in one string.
struct Row {
    Id id, group, person;
    std::string digest;
};

std::vector<Row> rows_of(sqlite3* db, const EntityDef& e) {
    auto st = prepare(db, "SELECT * FROM " + std::string(e.name));
    const int n = sqlite3_column_count(st.get());
    int id_col = -1, group_col = -1, person_col = -1;
    for (int c = 0; c < n; ++c) {
        const std::string_view name = sqlite3_column_name(st.get(), c);
        if (name == "id") id_col = c;
        if (!e.group_field.empty() && name == e.group_field) group_col = c;
        if (!e.person_field.empty() && name == e.person_field) person_col = c;
    }
    std::vector<Row> out;
    int rc = 0;
    while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) {
        Row r;
        r.id = id_of(st.get(), id_col);
        r.group = group_col >= 0 ? id_of(st.get(), group_col) : r.id;  // a mentor_group is its own group
        r.person = person_col >= 0 ? id_of(st.get(), person_col) : r.id;
        for (int c = 0; c < n; ++c) {
            const int type = sqlite3_column_type(st.get(), c);
            r.digest += static_cast<char>('0' + type);
            if (type == SQLITE_NULL) continue;
            const auto* p = static_cast<const char*>(type == SQLITE_BLOB
                                                         ? sqlite3_column_blob(st.get(), c)
                                                         : static_cast<const void*>(sqlite3_column_text(st.get(), c)));
            const int bytes = sqlite3_column_bytes(st.get(), c);
            r.digest += std::to_string(bytes) + ":";
            if (p) r.digest.append(p, static_cast<std::size_t>(bytes));
        }
        out.push_back(std::move(r));
    }
    if (rc != SQLITE_DONE)
        throw std::runtime_error(std::string("reading ") + std::string(e.name) + ": " + sqlite3_errmsg(db));
    return out;
}

std::optional<Id> parse_hex(std::string_view text) {
    if (text.size() != 32) return std::nullopt;
    Id id;
    for (std::size_t i = 0; i < 16; ++i) {
        unsigned v = 0;
        if (std::sscanf(std::string(text.substr(2 * i, 2)).c_str(), "%2x", &v) != 1) return std::nullopt;
        id.bytes[i] = static_cast<std::uint8_t>(v);
    }
    return id;
}

}  // namespace

std::map<Id, OriginCount> log_counts_sqlite(const std::string& db_path) {
    auto db = open_read_only(db_path);
    auto st = prepare(db.get(), "SELECT origin, COUNT(*), COUNT(DISTINCT seq) FROM lindra_log GROUP BY origin");
    std::map<Id, OriginCount> out;
    int rc = 0;
    while ((rc = sqlite3_step(st.get())) == SQLITE_ROW)
        out[id_of(st.get(), 0)] = {sqlite3_column_int64(st.get(), 1), sqlite3_column_int64(st.get(), 2)};
    if (rc != SQLITE_DONE)
        throw std::runtime_error("reading the server's log: " + std::string(sqlite3_errmsg(db.get())));
    return out;
}

std::map<Id, OriginCount> log_counts_postgres(const std::string& connection) {
    std::string quoted = "'";
    for (char c : connection) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
    quoted += "'";
    const std::string command = "psql -X -q -At -F ' ' -v ON_ERROR_STOP=1 -d " + quoted +
                                " -c \"SELECT encode(origin, 'hex'), count(*), count(DISTINCT seq) FROM lindra_log"
                                " GROUP BY origin\" 2>&1";
    std::unique_ptr<FILE, int (*)(FILE*)> pipe(::popen(command.c_str(), "r"), ::pclose);
    if (!pipe) throw std::runtime_error("cannot run psql");
    std::string output;
    char buffer[4096];
    while (auto n = std::fread(buffer, 1, sizeof buffer, pipe.get())) output.append(buffer, n);
    const int status = ::pclose(pipe.release());
    if (status != 0) throw std::runtime_error("psql could not count the server's log: " + output);
    std::map<Id, OriginCount> out;
    std::size_t start = 0;
    while (start < output.size()) {
        const auto end = std::min(output.find('\n', start), output.size());
        const std::string line = output.substr(start, end - start);
        start = end + 1;
        char origin[64];
        long long entries = 0, seqs = 0;
        if (std::sscanf(line.c_str(), "%63s %lld %lld", origin, &entries, &seqs) != 3) continue;
        if (auto id = parse_hex(origin)) out[*id] = {entries, seqs};
    }
    return out;
}

Comparison compare_with_reference(const std::string& reference_path, const std::vector<TabletView>& tablets,
                                  std::size_t max_lines) {
    Comparison out;
    auto report = [&](std::string line) {
        if (out.lines.size() < max_lines) out.lines.push_back(std::move(line));
        ++out.differences;
    };
    // The reference's rows, by entity, and of the scoped entities by group.
    const auto ref_db = open_read_only(reference_path);
    struct Entity {
        const EntityDef* def;
        std::unordered_map<Id, Row> all;                           // catalog and people
        std::unordered_map<Id, std::vector<const Row*>> by_group;  // the rest
    };
    std::vector<Entity> ref;
    ref.reserve(entities().size());
    for (const auto& e : entities()) {
        Entity out{&e, {}, {}};
        for (auto& r : rows_of(ref_db.get(), e)) {
            const Id id = r.id;
            out.all.emplace(id, std::move(r));
        }
        if (e.scope != ScopeKind::catalog && e.scope != ScopeKind::person)
            for (const auto& [id, r] : out.all) out.by_group[r.group].push_back(&r);
        ref.push_back(std::move(out));
    }

    for (const auto& t : tablets) {
        const auto db = open_read_only(t.path);
        for (const auto& e : ref) {
            std::unordered_map<Id, const Row*> expect;
            switch (e.def->scope) {
                case ScopeKind::catalog:
                    for (const auto& [id, r] : e.all) expect.emplace(id, &r);
                    break;
                case ScopeKind::person:
                    for (const auto& p : t.people)
                        if (auto it = e.all.find(p); it != e.all.end()) expect.emplace(p, &it->second);
                    break;
                case ScopeKind::group:
                case ScopeKind::person_in_group:
                case ScopeKind::personal:
                    for (const auto& g : t.groups) {
                        const auto it = e.by_group.find(g);
                        if (it == e.by_group.end()) continue;
                        for (const Row* r : it->second)
                            if (e.def->scope == ScopeKind::group || t.mentor || r->person == t.person)
                                expect.emplace(r->id, r);
                    }
                    break;
            }
            std::size_t matched = 0;
            for (const auto& r : rows_of(db.get(), *e.def)) {
                const auto it = expect.find(r.id);
                if (it == expect.end())
                    report(t.name + ": holds a " + std::string(e.def->name) + " row it should not (" +
                           r.id.to_string() + ")");
                else if (it->second->digest != r.digest)
                    report(t.name + ": its " + std::string(e.def->name) + " row " + r.id.to_string() +
                           " differs from the server's");
                else
                    ++matched;
            }
            out.rows += matched;
            if (matched < expect.size())
                for (const auto& [id, r] : expect) {
                    bool found = false;
                    auto st = prepare(db.get(), "SELECT 1 FROM " + std::string(e.def->name) + " WHERE id = ?");
                    sqlite3_bind_blob(st.get(), 1, id.bytes.data(), 16, SQLITE_STATIC);
                    found = sqlite3_step(st.get()) == SQLITE_ROW;
                    if (!found) report(t.name + ": lacks the " + std::string(e.def->name) + " row " + id.to_string());
                }
        }
    }
    return out;
}

}  // namespace lindra::bench
