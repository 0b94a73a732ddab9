#include "replica/rows.hpp"

#include <string>

namespace lindra::detail {

model::RowState Rows::load(const EntityDef& e, const Id& row) {
    return model::row_store(e).load(db_, row);
}

std::vector<Id> Rows::referring(const EntityDef& e, std::string_view field, const Id& target) {
    // `e` and `field` come from the schema table, never from input.
    auto s = db_.cached("SELECT id FROM " + std::string(e.name) + " WHERE " + std::string(field) + " = ?");
    s->bind(1, target);
    std::vector<Id> out;
    while (s->step()) out.push_back(s->id(0));
    return out;
}

}  // namespace lindra::detail
