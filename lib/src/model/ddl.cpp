#include "model/ddl.hpp"

#include <algorithm>

namespace lindra::model {
namespace {

std::string column_defs(const FieldDef& f) {
    switch (f.type) {
        case FieldType::progress:
            return "attempt INTEGER NOT NULL DEFAULT 0, status TEXT NOT NULL DEFAULT '" + std::string(f.values[0]) +
                   "'";
        case FieldType::ref:
            return std::string(f.name) + " BLOB";
        case FieldType::text:
        case FieldType::enumeration:
        case FieldType::date:
            return std::string(f.name) + " TEXT";
        case FieldType::integer:
        case FieldType::boolean:
        case FieldType::timestamp:
            // Rules with a natural zero (counter, tombstone) never hold NULL.
            if (f.rule == MergeRule::counter || f.rule == MergeRule::tombstone)
                return std::string(f.name) + " INTEGER NOT NULL DEFAULT 0";
            return std::string(f.name) + " INTEGER";
    }
    return {};
}

}  // namespace

std::vector<std::string> columns_of(const FieldDef& f) {
    if (f.type == FieldType::progress) return {"attempt", "status"};
    return {std::string(f.name)};
}

std::vector<std::string> domain_ddl(std::uint16_t version, bool with_clocks) {
    std::vector<std::string> out;
    for (const auto& e : entities()) {
        if (e.since > version) continue;
        const std::string table(e.name);
        if (e.since == version) {
            std::string sql = "CREATE TABLE " + table + " (id BLOB PRIMARY KEY NOT NULL CHECK (length(id) = 16)";
            for (const auto& f : e.fields)
                if (f.since <= version) sql += ", " + column_defs(f);
            if (with_clocks) sql += ", lindra_clocks BLOB NOT NULL";
            out.push_back(sql + ") WITHOUT ROWID");
        } else {
            for (const auto& f : e.fields)
                if (f.since == version) out.push_back("ALTER TABLE " + table + " ADD COLUMN " + column_defs(f));
        }
        for (const auto& f : e.fields)
            if (f.indexed && std::max(f.since, e.since) == version)
                out.push_back("CREATE INDEX " + table + "_" + std::string(f.name) + " ON " + table + " (" +
                              std::string(f.name) + ")");
    }
    return out;
}

}  // namespace lindra::model
