// SQL for the domain tables, generated from the schema table.
//
// Each entity is a WITHOUT ROWID table named after it, keyed by its 16-byte
// id, with one column per field (two for progress: `attempt`, `status`) and
// `lindra_clocks`, the row's merge metadata (see model/row.hpp). References
// are not SQL foreign keys: changes arrive field by field in any order and
// partially (by scope), so a row may name one this device has not seen yet.
#pragma once

#include <lindra/schema.hpp>

#include <string>
#include <vector>

namespace lindra::model {

// The column names holding field `f`.
std::vector<std::string> columns_of(const FieldDef& f);

// Statements creating what schema version `version` added: new tables for
// entities added in that version, new columns for fields added to older
// entities, and their indexes. With `with_clocks` false the tables lack
// lindra_clocks (the benchmark's raw baseline uses that).
std::vector<std::string> domain_ddl(std::uint16_t version, bool with_clocks = true);

}  // namespace lindra::model
