// A replicated row as the merge code sees it: each field's merged value and
// its clock, plus per-origin totals for counter fields.
//
// The clocks are kept in the row itself (column `lindra_clocks`) rather than
// in a table of their own: a write then touches one B-tree entry instead of
// one per field, and deleting a row (purge) deletes its clocks with it. The
// blob is canonical (fields in tag order, origins sorted), so two replicas in
// the same state hold byte-identical rows.
#pragma once

#include "store/database.hpp"

#include <lindra/change.hpp>
#include <lindra/schema.hpp>

#include <compare>
#include <string>
#include <utility>
#include <vector>

namespace lindra::model {

struct Clock {
    std::uint64_t hlc = 0;  // 0: never written
    Id origin;
    friend auto operator<=>(const Clock&, const Clock&) = default;
};

struct FieldState {
    Value value;
    Clock clock;
    // Counter fields only: each origin's running total, sorted by origin.
    std::vector<std::pair<Id, std::int64_t>> totals;
    friend bool operator==(const FieldState&, const FieldState&) = default;
};

struct RowState {
    bool exists = false;
    std::vector<FieldState> fields;  // parallel to EntityDef::fields
};

// Loads and saves rows of one entity with statements generated from the
// schema table.
class RowStore {
  public:
    explicit RowStore(const EntityDef& e);

    const EntityDef& entity() const noexcept { return *entity_; }
    // A fresh row: every field at its default, no clocks.
    RowState empty() const;
    RowState load(store::Database& db, const Id& row) const;
    void save(store::Database& db, const Id& row, const RowState& state) const;

    // A whole row (values, then clocks) as one canonical blob, for stores
    // that keep rows of every entity in one table (the server's PostgreSQL
    // backend). decode_row throws Errc::corrupt for a malformed blob.
    static std::string encode_row(const EntityDef& e, const RowState& state);
    static RowState decode_row(const EntityDef& e, std::span<const std::uint8_t> blob);
    static std::string encode_clocks(const EntityDef& e, const RowState& state);
    static void decode_clocks(const EntityDef& e, std::span<const std::uint8_t> blob, RowState& state);

  private:
    const EntityDef* entity_;
    std::string select_sql_;
    std::string upsert_sql_;
};

// The RowStore of each entity, indexed like entities().
const RowStore& row_store(const EntityDef& e);

}  // namespace lindra::model
