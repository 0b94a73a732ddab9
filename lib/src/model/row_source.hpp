// Rows as rules read them: the server's store (with a push's staged rows
// over it) or a tablet's replica. The access rules and the certificate rule
// are written once over it.
#pragma once

#include "model/row.hpp"

#include <optional>
#include <string_view>
#include <vector>

namespace lindra::model {

class RowSource {
  public:
    virtual ~RowSource() = default;
    virtual RowState load(const EntityDef& e, const Id& row) = 0;
    // The ids of rows of `e` whose ref field `field` holds `target`,
    // deleted ones included (the caller loads and judges them).
    virtual std::vector<Id> referring(const EntityDef& e, std::string_view field, const Id& target) = 0;
};

// A row's field by name; monostate if the row lacks it.
const Value& field_value(const EntityDef& e, const RowState& st, std::string_view field);
// The row exists and is not deleted.
bool is_live(const EntityDef& e, const RowState& st);
// A row's field by name as T; nothing if it holds no T.
template <class T>
std::optional<T> field_as(const EntityDef& e, const RowState& st, std::string_view field) {
    if (const T* v = std::get_if<T>(&field_value(e, st, field))) return *v;
    return std::nullopt;
}

}  // namespace lindra::model
