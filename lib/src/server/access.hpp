// Who may read and write which rows (DESIGN §2 and §6; README, "Security
// model"), decided from the server's own rows at the moment of asking.
// Deny by default: a change is allowed only by a rule below.
#pragma once

#include "model/row.hpp"
#include "server/auth.hpp"
#include "server/storage.hpp"

#include <lindra/change.hpp>
#include <lindra/schema.hpp>

#include <optional>
#include <set>
#include <span>
#include <string>

namespace lindra::server {

// The scope a row belongs to, as log entries, grants and purges carry it:
// a kind letter and the ids that scope the row. Empty if the row lacks
// the group or person that scope it.
std::string scope_of(const EntityDef& e, const Id& row, const model::RowState& st);

// What a scope key names: its kind, and its group and person (nil where
// the kind has none). No kind for a key scope_of does not make.
struct ScopeParts {
    std::optional<ScopeKind> kind{};
    Id group{};
    Id person{};
};
ScopeParts parts_of_scope(std::string_view scope);

// One identity's rights, against the rows of `rows` (the store's, with a
// push's staged rows over them). Thread-safety: one thread at a time.
class Access {
public:
    Access(RowSource& rows, Identity who) : rows_(rows), who_(std::move(who)) {}

    const Identity& who() const noexcept { return who_; }
    bool reads_everything() const noexcept { return who_.role == Role::admin; }
    // The scopes `who` may read now, computed once per Access.
    const std::set<std::string>& readable();
    bool may_read(const std::string& scope) { return reads_everything() || readable().contains(scope); }

    // Why `who` may not apply `changes` (all to `row` of `e`, whose state
    // is `before` without them and `after` with them), or nothing if they
    // may. The reason names the rule, never a value, and says nothing of
    // the row that `before` does not.
    std::optional<std::string> refusal(const EntityDef& e, const Id& row, const model::RowState& before,
                                       const model::RowState& after, std::span<const Change> changes);

private:
    enum class Member { none, candidate, mentor };
    Member member(const Id& group, const Id& person);
    std::optional<Id> ref_of(std::string_view table, std::string_view column, const Id& row);
    // The rows of `table` whose `column` is `target`, not deleted (and, for
    // memberships, not withdrawn unless `withdrawn`), with their state.
    std::vector<model::RowState> live_referring(std::string_view table, std::string_view column, const Id& target,
                                                bool withdrawn = false);
    std::optional<std::string> writer_refusal(const EntityDef& e, const Id& row, const model::RowState& before,
                                              const model::RowState& after, std::span<const Change> changes,
                                              const std::optional<Id>& group, const std::optional<Id>& person);
    std::optional<std::string> coordinator_refusal(const EntityDef& e, const Id& row, const model::RowState& before,
                                                   const model::RowState& after, const Id& group);

    RowSource& rows_;
    Identity who_;
    std::optional<std::set<std::string>> readable_;
};

}  // namespace lindra::server
