// The merge rules of DESIGN §3, one function for every field of every entity,
// used for local writes, pulled changes on clients and pushed changes on the
// server alike.
//
// Each rule is a join over the set of changes a replica has seen, so it is
// commutative, associative and idempotent: replicas that have seen the same
// changes hold the same FieldState, whatever the order or duplication.
#pragma once

#include "model/row.hpp"

namespace lindra::model {

// Merges one change of `f` (its value and clock) into `cur`. Returns true
// when `cur` changed. Defined for any value, valid or not (no overflow, no
// throw), though only checked values (Core::check) should reach it.
bool merge_field(const FieldDef& f, FieldState& cur, const Value& value, const Clock& clock);

// `st` with `changes` (all to its row) merged in, each by its field's rule.
RowState merged(const EntityDef& e, RowState st, std::span<const Change> changes);

// add_wins: every membership status but "withdrawn" is an add.
bool is_add(const Value& v) noexcept;

}  // namespace lindra::model
