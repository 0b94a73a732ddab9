#include "server/access.hpp"

#include <algorithm>
#include <cstring>

namespace lindra::server {
namespace {

std::optional<Id> id_field(const EntityDef& e, const model::RowState& st, std::string_view name) {
    const FieldDef* f = name.empty() ? nullptr : e.field(name);
    if (!f) return std::nullopt;
    if (const Id* id = std::get_if<Id>(&st.fields[e.index_of(*f)].value)) return *id;
    return std::nullopt;
}

std::string key(char kind, std::initializer_list<Id> ids) {
    std::string k(1, kind);
    for (const auto& id : ids) k.append(reinterpret_cast<const char*>(id.bytes.data()), id.bytes.size());
    return k;
}

// The group and the person that scope a row (the row itself for groups and
// persons).
std::optional<Id> group_of(const EntityDef& e, const Id& row, const model::RowState& st) {
    if (e.scope == ScopeKind::group && e.group_field.empty()) return row;
    return id_field(e, st, e.group_field);
}
std::optional<Id> person_of(const EntityDef& e, const Id& row, const model::RowState& st) {
    if (e.scope == ScopeKind::person) return row;
    return id_field(e, st, e.person_field);
}

}  // namespace

std::string scope_of(const EntityDef& e, const Id& row, const model::RowState& st) {
    switch (e.scope) {
        case ScopeKind::catalog:
            return "c";
        case ScopeKind::person:
            return key('p', {row});
        case ScopeKind::group: {
            const auto g = group_of(e, row, st);
            return g ? key('g', {*g}) : std::string();
        }
        case ScopeKind::person_in_group:
        case ScopeKind::personal: {
            const auto g = group_of(e, row, st);
            const auto p = person_of(e, row, st);
            if (!g || !p) return {};
            return key(e.scope == ScopeKind::personal ? 'r' : 'q', {*g, *p});
        }
    }
    return {};
}

ScopeParts parts_of_scope(std::string_view scope) {
    constexpr std::size_t n = sizeof(Id::bytes);
    const auto id_at = [&](std::size_t i) {
        Id id;
        std::memcpy(id.bytes.data(), scope.data() + 1 + i * n, n);
        return id;
    };
    if (scope.size() == 1 + n && scope[0] == 'g') return {ScopeKind::group, id_at(0), {}};
    if (scope.size() == 1 + n && scope[0] == 'p') return {ScopeKind::person, {}, id_at(0)};
    if (scope.size() == 1 + 2 * n && (scope[0] == 'q' || scope[0] == 'r'))
        return {scope[0] == 'q' ? ScopeKind::person_in_group : ScopeKind::personal, id_at(0), id_at(1)};
    return {};
}

namespace {

using model::is_live;

const Value& value_of(const EntityDef& e, const model::RowState& st, std::string_view field) {
    return model::field_value(e, st, field);
}

bool withdrawn(const EntityDef& membership, const model::RowState& st) {
    return value_of(membership, st, "status") == Value{std::string("withdrawn")};
}

}  // namespace

Access::Member Access::member(const Id& group, const Id& person) {
    if (person.is_nil()) return Member::none;
    const EntityDef& e = *find_entity("membership");
    const auto st = rows_.load(e, Id::derive("membership", {group, person}));
    if (!is_live(e, st) || withdrawn(e, st)) return Member::none;
    return value_of(e, st, "role") == Value{std::string("mentor")} ? Member::mentor : Member::candidate;
}

std::optional<Id> Access::ref_of(std::string_view table, std::string_view column, const Id& row) {
    const EntityDef& e = *find_entity(table);
    const auto st = rows_.load(e, row);
    if (!is_live(e, st)) return std::nullopt;
    return id_field(e, st, column);
}

std::vector<model::RowState> Access::live_referring(std::string_view table, std::string_view column, const Id& target,
                                                    bool with_withdrawn) {
    const EntityDef& e = *find_entity(table);
    std::vector<model::RowState> out;
    for (const Id& id : rows_.referring(e, column, target)) {
        auto st = rows_.load(e, id);
        // The source may list a row whose field has changed since (a
        // push's staged rows): judged on the row as it is.
        if (!is_live(e, st) || id_field(e, st, column) != target) continue;
        if (table == "membership" && !with_withdrawn && withdrawn(e, st)) continue;
        out.push_back(std::move(st));
    }
    return out;
}

const std::set<std::string>& Access::readable() {
    if (readable_) return *readable_;
    const EntityDef& membership = *find_entity("membership");
    auto id_of = [&](const model::RowState& st, std::string_view f) { return *id_field(membership, st, f); };
    std::set<std::string> r{"c"};
    const Id& self = who_.person;
    if (!self.is_nil()) r.insert(key('p', {self}));
    if (!self.is_nil() && who_.role != Role::admin) {
        for (const auto& mine : live_referring("membership", "person_id", self)) {
            const Id g = id_of(mine, "group_id");
            const bool mentor = value_of(membership, mine, "role") == Value{std::string("mentor")};
            r.insert(key('g', {g}));
            for (const auto& other : live_referring("membership", "group_id", g)) {
                const Id m = id_of(other, "person_id");
                r.insert(key('p', {m}));
                if (mentor || m == self) {
                    r.insert(key('q', {g, m}));
                    r.insert(key('r', {g, m}));
                }
            }
        }
    }
    if (who_.role == Role::coordinator && !who_.organization.is_nil()) {
        // Every group of the organization with all its members, withdrawn
        // ones too (coordinators follow completion); never reflections.
        const EntityDef& group = *find_entity("mentor_group");
        for (const Id& g : rows_.referring(group, "organization_id", who_.organization)) {
            const auto st = rows_.load(group, g);
            if (!is_live(group, st) || id_field(group, st, "organization_id") != who_.organization) continue;
            r.insert(key('g', {g}));
            for (const auto& m : live_referring("membership", "group_id", g, /*withdrawn=*/true)) {
                r.insert(key('p', {id_of(m, "person_id")}));
                r.insert(key('q', {g, id_of(m, "person_id")}));
            }
        }
        // Every person of the organization, deleted ones too.
        const EntityDef& person = *find_entity("person");
        for (const Id& p : rows_.referring(person, "organization_id", who_.organization))
            if (id_field(person, rows_.load(person, p), "organization_id") == who_.organization)
                r.insert(key('p', {p}));
    }
    readable_ = std::move(r);
    return *readable_;
}

std::optional<std::string> Access::refusal(const EntityDef& e, const Id& row, const model::RowState& before,
                                           const model::RowState& after, std::span<const Change> changes) {
    const std::string name(e.name);
    if (e.writer == Writer::server) return "only the server writes " + name + " rows";
    if (who_.role == Role::admin) return std::nullopt;

    const auto group = group_of(e, row, after);
    const auto person = person_of(e, row, after);
    if (auto why = writer_refusal(e, row, before, after, changes, group, person)) return why;
    // A row that refers to a row of a group (a gathering, a certificate)
    // must be in that row's group, and be its person's where both have one.
    for (const auto& c : changes) {
        const FieldDef* f = e.field(c.field);
        const Id* target = std::get_if<Id>(&c.value);
        if (!f || f->type != FieldType::ref || !target || f->name == e.group_field || f->name == e.person_field)
            continue;
        const EntityDef* t = find_entity(f->ref_entity);
        if (!t || t->group_field.empty()) continue;
        const bool by_person = !t->person_field.empty() && !e.person_field.empty();
        if (ref_of(t->name, t->group_field, *target) != group ||
            (by_person && ref_of(t->name, t->person_field, *target) != person))
            return name + "." + std::string(f->name) + " must name a " + std::string(t->name) + " of the same group" +
                   (by_person ? " and person" : "");
    }
    return std::nullopt;
}

std::optional<std::string> Access::writer_refusal(const EntityDef& e, const Id& row, const model::RowState& before,
                                                  const model::RowState& after, std::span<const Change> changes,
                                                  const std::optional<Id>& group, const std::optional<Id>& person) {
    const std::string name(e.name);
    switch (e.writer) {
        case Writer::coordinator: {
            if (who_.role == Role::coordinator) return coordinator_refusal(e, row, before, after, group.value_or(Id{}));
            const bool self_only = std::all_of(changes.begin(), changes.end(), [&](const Change& c) {
                const FieldDef* f = e.field(c.field);
                return f && f->self_writable;
            });
            if (before.exists && person == who_.person && self_only) return std::nullopt;
            return "only a coordinator may write " + name + " rows" +
                   (e.scope == ScopeKind::person ? " (or a person their own name)" : "");
        }
        case Writer::group_mentor:
            if (!group || member(*group, who_.person) != Member::mentor)
                return "only a mentor of the group may write its " + name + " rows";
            return std::nullopt;
        case Writer::self:
            if (!person || *person != who_.person) return name + " rows are written only by the person they belong to";
            if (!group || member(*group, *person) == Member::none)
                return "only a member of the group may write " + name + " rows in it";
            return std::nullopt;
        case Writer::server:
            break;
    }
    return "refused";
}

std::optional<std::string> Access::coordinator_refusal(const EntityDef& e, const Id& row, const model::RowState& before,
                                                       const model::RowState& after, const Id& group) {
    const Id& own = who_.organization;
    const std::string refused = std::string(e.name) + " belongs to another organization than the coordinator's";
    // The organization a row belongs to, before and after the change: its
    // organization_id, its group's, or (organizations) its parent's. Both
    // must be the coordinator's, so no row moves out of or into their reach.
    auto org_of = [&](const model::RowState& st) -> std::optional<Id> {
        if (e.field("organization_id")) return id_field(e, st, "organization_id");
        if (!e.group_field.empty()) return ref_of("mentor_group", "organization_id", group);
        if (e.field("parent_id")) return row == own ? own : id_field(e, st, "parent_id");
        return own;  // courses and modules: the shared catalog
    };
    if (own.is_nil()) return refused;
    if (row == own && id_field(e, before, "parent_id") != id_field(e, after, "parent_id"))
        return "a coordinator may not move their own organization";
    if ((before.exists && org_of(before) != own) || org_of(after) != own) return refused;
    return std::nullopt;
}

}  // namespace lindra::server
