#include "support/db.hpp"

#include "model/row.hpp"
#include "server/storage.hpp"
#include "store/database.hpp"
#include "store/pg.hpp"

#include <lindra/schema.hpp>

#include <vector>

namespace lindra::test {
namespace {

// A domain row as text: its id, then each field's value, clock and
// counter totals. Equal for two stores exactly when the rows are.
std::string describe(const EntityDef& e, const Id& id, const model::RowState& st) {
    std::string out = "  " + id.to_string();
    for (std::size_t i = 0; i < e.fields.size(); ++i) {
        const auto& f = st.fields[i];
        out += " " + std::string(e.fields[i].name) + "=" + to_string(f.value);
        if (f.clock.hlc) out += "@" + std::to_string(f.clock.hlc) + "/" + f.clock.origin.to_string().substr(0, 8);
        for (const auto& [origin, total] : f.totals)
            out += "+" + origin.to_string().substr(0, 8) + ":" + std::to_string(total);
    }
    return out + "\n";
}

std::string dump_domain(const std::string& db, const EntityDef& e) {
    std::string out = std::string(e.name) + ":\n";
    if (server::is_postgres(db)) {
        store::pg::Connection conn(db);
        const auto r = conn.query("SELECT id, state FROM lindra_row WHERE entity = $1 ORDER BY id",
                                  {store::pg::Param::int2(static_cast<std::int16_t>(e.tag))});
        for (int i = 0; i < r.rows(); ++i) {
            const auto b = r.bytea(i, 0), state = r.bytea(i, 1);
            Id id;
            std::copy(b.begin(), b.end(), id.bytes.begin());
            out += describe(
                e, id,
                model::RowStore::decode_row(e, {reinterpret_cast<const std::uint8_t*>(state.data()), state.size()}));
        }
        return out;
    }
    store::Database file(db);
    auto rows = file.prepare("SELECT id FROM " + std::string(e.name) + " ORDER BY id");
    while (rows.step()) out += describe(e, rows.id(0), model::row_store(e).load(file, rows.id(0)));
    return out;
}

}  // namespace

std::string dump_table(const std::string& path, const std::string& table) {
    if (const EntityDef* e = find_entity(table)) return dump_domain(path, *e);
    REQUIRE_FALSE(server::is_postgres(path));  // the server's own tables differ between its backends
    store::Database db(path);
    std::string cols;
    auto info = db.prepare("SELECT name FROM pragma_table_info(?)");
    info.bind(1, table);
    while (info.step()) cols += (cols.empty() ? "quote(" : " || ',' || quote(") + info.text(0) + ")";
    auto rows = db.prepare("SELECT " + cols + " FROM " + table + " ORDER BY 1");
    std::string out = table + ":\n";
    while (rows.step()) out += "  " + rows.text(0) + "\n";
    return out;
}

std::string dump(const std::string& path, Tables which) {
    std::string out;
    if (which == Tables::domain) {
        for (const auto& e : entities()) out += dump_domain(path, e);
        return out;
    }
    std::vector<std::string> tables;
    {
        store::Database db(path);
        auto st = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name");
        while (st.step()) tables.push_back(st.text(0));
    }
    for (const auto& t : tables) out += dump_table(path, t);
    return out;
}

std::int64_t count_rows(const std::string& path, const std::string& table) {
    if (server::is_postgres(path)) {
        store::pg::Connection conn(path);
        if (const EntityDef* e = find_entity(table))
            return conn
                .query("SELECT count(*) FROM lindra_row WHERE entity = $1",
                       {store::pg::Param::int2(static_cast<std::int16_t>(e->tag))})
                .int64(0, 0);
        return conn.query("SELECT count(*) FROM " + table).int64(0, 0);
    }
    store::Database db(path);
    auto s = db.prepare("SELECT count(*) FROM " + table);
    REQUIRE(s.step());
    return s.int64(0);
}

void tamper(const std::string& path, const std::string& sql) {
    store::Database db(path);
    db.exec(sql);
}

}  // namespace lindra::test
