#include "support/db.hpp"

#include "store/database.hpp"

#include <lindra/schema.hpp>

#include <vector>

namespace lindra::test {

std::string dump_table(const std::string& path, const std::string& table) {
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
    std::vector<std::string> tables;
    {
        store::Database db(path);
        auto st = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name");
        while (st.step())
            if (which == Tables::all || find_entity(st.text(0))) tables.push_back(st.text(0));
    }
    std::string out;
    for (const auto& t : tables) out += dump_table(path, t);
    return out;
}

std::int64_t count_rows(const std::string& path, const std::string& table) {
    store::Database db(path);
    auto s = db.prepare("SELECT count(*) FROM " + table);
    REQUIRE(s.step());
    return s.int64(0);
}

}  // namespace lindra::test
