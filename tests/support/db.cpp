#include "support/db.hpp"

#include "store/database.hpp"

#include <lindra/schema.hpp>

namespace lindra::test {

std::string dump(const std::string& path, Tables which) {
    store::Database db(path);
    std::string out;
    auto tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name");
    while (tables.step()) {
        const auto table = tables.text(0);
        if (which == Tables::domain && !find_entity(table)) continue;
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

std::int64_t count_rows(const std::string& path, const std::string& table) {
    store::Database db(path);
    auto s = db.prepare("SELECT count(*) FROM " + table);
    REQUIRE(s.step());
    return s.int64(0);
}

}  // namespace lindra::test
