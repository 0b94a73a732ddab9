// The typed queries: plain SQL over the domain tables, which hold merged
// values. Deleted rows (tombstones) never appear.
#include "core/case_fold.hpp"
#include "replica/core.hpp"

#include <algorithm>
#include <cctype>

namespace lindra {

using detail::Core;

namespace {

std::optional<Id> opt_id(const store::Statement& s, int col) {
    if (s.is_null(col)) return std::nullopt;
    return s.id(col);
}
std::optional<std::int64_t> opt_int(const store::Statement& s, int col) {
    if (s.is_null(col)) return std::nullopt;
    return s.int64(col);
}
template <class E>
std::optional<E> opt_enum(const store::Statement& s, int col) {
    if (s.is_null(col)) return std::nullopt;
    return parse_enum<E>(s.text(col));
}

constexpr const char* kGroupColumns = "id, course_id, organization_id, name, starts_on, ends_on, status";
Group read_group(const store::Statement& s) {
    return {s.id(0), s.id(1), s.id(2), s.text(3), s.text(4), s.text(5), opt_enum<GroupStatus>(s, 6)};
}

std::vector<Group> query_groups(Core& c, const std::string& sql, const Id* person) {
    std::vector<Group> out;
    auto s = c.db.cached(sql);
    if (person) s->bind(1, *person).bind(2, to_string(MemberStatus::withdrawn));
    while (s->step()) out.push_back(read_group(*s));
    return out;
}

std::int64_t query_count(Core& c, const std::string& sql, std::initializer_list<Value> params) {
    auto s = c.db.cached(sql);
    int i = 1;
    for (const auto& p : params) s->bind(i++, p);
    s->step();
    return s->int64(0);
}

// Words end at ASCII punctuation or space; bytes of multi-byte characters
// are letters.
bool ends_word(const std::string& label, std::size_t at) {
    if (at == label.size()) return true;
    const auto b = static_cast<unsigned char>(label[at]);
    return b < 0x80 && !std::isalnum(b);
}

// `wanted` is whole words of `label` from its second word on ("nordmann"
// in "ola nordmann", "siri" in "berg, siri").
bool later_words(const std::string& label, const std::string& wanted) {
    for (auto at = label.find(wanted, 1); at != std::string::npos; at = label.find(wanted, at + 1))
        if (ends_word(label, at - 1) && ends_word(label, at + wanted.size())) return true;
    return false;
}

}  // namespace

std::int64_t Replica::count(std::string_view entity_name) const {
    const auto& e = detail::entity(entity_name);
    std::lock_guard lock(core_->mutex);
    return query_count(*core_, "SELECT count(*) FROM " + std::string(e.name) + " WHERE deleted = 0", {});
}

std::optional<Person> Replica::person(const Id& id) const {
    std::lock_guard lock(core_->mutex);
    auto s =
        core_->db.cached("SELECT display_name, profession, organization_id FROM person WHERE id = ? AND deleted = 0");
    s->bind(1, id);
    if (!s->step()) return std::nullopt;
    return Person{id, s->text(0), opt_enum<Profession>(*s, 1), opt_id(*s, 2)};
}

std::vector<Module> Replica::modules(const Id& course) const {
    std::lock_guard lock(core_->mutex);
    std::vector<Module> out;
    auto s = core_->db.cached(
        "SELECT id, ordinal, title, kind, required, pass_score FROM module"
        " WHERE course_id = ? AND deleted = 0 ORDER BY ordinal, title");
    s->bind(1, course);
    while (s->step()) {
        const auto pass = opt_int(*s, 5);
        out.push_back({s->id(0), course, static_cast<int>(s->int64(1)), s->text(2), opt_enum<ModuleKind>(*s, 3),
                       s->int64(4) != 0, pass ? std::optional<int>(static_cast<int>(*pass)) : std::nullopt});
    }
    return out;
}

std::optional<Group> Replica::group(const Id& id) const {
    std::lock_guard lock(core_->mutex);
    auto s =
        core_->db.cached(std::string("SELECT ") + kGroupColumns + " FROM mentor_group WHERE id = ? AND deleted = 0");
    s->bind(1, id);
    if (!s->step()) return std::nullopt;
    return read_group(*s);
}

std::vector<Group> Replica::groups() const {
    std::lock_guard lock(core_->mutex);
    return query_groups(
        *core_, std::string("SELECT ") + kGroupColumns + " FROM mentor_group WHERE deleted = 0 ORDER BY name", nullptr);
}

std::vector<Group> Replica::groups_of(const Id& person) const {
    std::lock_guard lock(core_->mutex);
    return query_groups(*core_,
                        std::string("SELECT ") + kGroupColumns +
                            " FROM mentor_group WHERE deleted = 0 AND id IN (SELECT group_id FROM membership"
                            " WHERE person_id = ? AND status <> ? AND deleted = 0) ORDER BY name",
                        &person);
}

namespace {
constexpr const char* kGatheringColumns = "id, group_id, ordinal, title, scheduled_at, mode, status, module_id";
Gathering read_gathering(const store::Statement& s) {
    return {s.id(0),
            s.id(1),
            static_cast<int>(s.int64(2)),
            s.text(3),
            opt_int(s, 4),
            opt_enum<GatheringMode>(s, 5),
            opt_enum<GatheringStatus>(s, 6).value_or(GatheringStatus::planned),
            opt_id(s, 7)};
}
}  // namespace

std::optional<Gathering> Replica::gathering(const Id& id) const {
    std::lock_guard lock(core_->mutex);
    auto s =
        core_->db.cached(std::string("SELECT ") + kGatheringColumns + " FROM gathering WHERE id = ? AND deleted = 0");
    s->bind(1, id);
    if (!s->step()) return std::nullopt;
    return read_gathering(*s);
}

std::vector<Gathering> Replica::gatherings(const Id& group) const {
    std::lock_guard lock(core_->mutex);
    std::vector<Gathering> out;
    auto s = core_->db.cached(std::string("SELECT ") + kGatheringColumns +
                              " FROM gathering WHERE group_id = ? AND deleted = 0 ORDER BY ordinal, title");
    s->bind(1, group);
    while (s->step()) out.push_back(read_gathering(*s));
    return out;
}

std::string_view member_name(std::string_view display_name, MemberStatus status) {
    if (!display_name.empty()) return display_name;
    return status == MemberStatus::withdrawn ? "a withdrawn member" : "a member whose name has not synced yet";
}

Roster Replica::roster(const Id& group) const {
    std::lock_guard lock(core_->mutex);
    Core& c = *core_;
    Roster r;
    {
        auto s =
            c.db.cached(std::string("SELECT ") + kGroupColumns + " FROM mentor_group WHERE id = ? AND deleted = 0");
        s->bind(1, group);
        if (!s->step()) throw Error(Errc::not_found, "group " + group.to_string() + " is not on this device");
        r.group = read_group(*s);
    }
    {
        auto s = c.db.cached("SELECT title, required_gatherings FROM course WHERE id = ?");
        s->bind(1, r.group.course);
        if (s->step()) {
            r.course_title = s->text(0);
            r.required_gatherings = static_cast<int>(s->int64(1));
        }
    }
    const Value completed = std::string(to_string(ProgressStatus::completed));
    const Value passed = std::string(to_string(ProgressStatus::passed));
    const Value held = std::string(to_string(GatheringStatus::held));
    const Value present = std::string(to_string(AttendanceStatus::present));
    const auto modules_required =
        query_count(c, "SELECT count(*) FROM module WHERE course_id = ? AND required = 1 AND deleted = 0", {r.group.course});
    const auto gatherings_held =
        query_count(c, "SELECT count(*) FROM gathering WHERE group_id = ? AND status = ? AND deleted = 0", {group, held});

    auto s = c.db.cached(
        "SELECT m.person_id, p.display_name, m.role, m.status FROM membership m"
        " LEFT JOIN person p ON p.id = m.person_id AND p.deleted = 0"
        " WHERE m.group_id = ? AND m.deleted = 0 ORDER BY m.role <> ?, p.display_name");
    s->bind(1, group).bind(2, to_string(MemberRole::mentor));
    while (s->step()) {
        RosterEntry e;
        e.person = s->id(0);
        e.display_name = s->text(1);
        e.role = opt_enum<MemberRole>(*s, 2).value_or(MemberRole::candidate);
        e.status = opt_enum<MemberStatus>(*s, 3).value_or(MemberStatus::registered);
        e.modules_required = static_cast<int>(modules_required);
        e.gatherings_held = static_cast<int>(gatherings_held);
        e.modules_completed = static_cast<int>(
            query_count(c,
                  "SELECT count(*) FROM module_progress mp JOIN module mo ON mo.id = mp.module_id"
                  " WHERE mp.person_id = ? AND mp.group_id = ? AND mp.status IN (?, ?) AND mp.deleted = 0"
                  " AND mo.required = 1 AND mo.deleted = 0",
                  {e.person, group, completed, passed}));
        e.gatherings_attended =
            static_cast<int>(query_count(c,
                                   "SELECT count(*) FROM attendance a JOIN gathering g ON g.id = a.gathering_id"
                                   " WHERE a.person_id = ? AND g.group_id = ? AND g.status = ? AND a.status = ?"
                                   " AND a.deleted = 0 AND g.deleted = 0",
                                   {e.person, group, held, present}));
        e.confirmed = query_count(c, "SELECT count(*) FROM mentor_confirmation WHERE id = ? AND deleted = 0",
                            {Id::derive("mentor_confirmation", {group, e.person})}) > 0;
        r.members.push_back(std::move(e));
    }
    return r;
}

std::vector<ModuleProgress> Replica::progress_of(const Id& person) const {
    std::lock_guard lock(core_->mutex);
    std::vector<ModuleProgress> out;
    auto s = core_->db.cached(
        "SELECT mp.group_id, mp.module_id, mo.ordinal, mo.title, mo.required, mp.attempt, mp.status,"
        " mp.best_score, mp.time_spent_s, mp.first_completed_at"
        " FROM module_progress mp LEFT JOIN module mo ON mo.id = mp.module_id"
        " WHERE mp.person_id = ? AND mp.deleted = 0 ORDER BY mp.group_id, mo.ordinal");
    s->bind(1, person);
    while (s->step()) {
        ModuleProgress p;
        p.person = person;
        p.group = s->id(0);
        p.module = s->id(1);
        p.ordinal = static_cast<int>(s->int64(2));
        p.module_title = s->text(3);
        p.required = s->int64(4) != 0;
        p.attempt = s->int64(5);
        p.status = opt_enum<ProgressStatus>(*s, 6).value_or(ProgressStatus::not_started);
        if (const auto b = opt_int(*s, 7)) p.best_score = static_cast<int>(*b);
        p.time_spent_s = s->int64(8);
        p.first_completed_at = opt_int(*s, 9);
        out.push_back(std::move(p));
    }
    return out;
}

std::optional<Id> Replica::find(std::string_view entity_name, std::string_view name) const {
    const auto& e = detail::entity(entity_name);
    std::lock_guard lock(core_->mutex);
    if (const auto id = Id::parse(name)) {
        const auto row = core_->load(e, *id);
        if (row.exists && row.fields[0].value != Value{std::int64_t{1}}) return id;  // not deleted
        return std::nullopt;
    }
    if (e.label_field.empty())
        throw Error(Errc::invalid_argument, std::string(e.name) + " rows have no name; address them by id");
    const std::string wanted = fold_case(name);
    if (wanted.empty()) throw Error(Errc::invalid_argument, "an empty name matches nothing");
    std::vector<Id> exact, prefix, later;
    auto s = core_->db.cached("SELECT id, " + std::string(e.label_field) + " FROM " + std::string(e.name) +
                              " WHERE deleted = 0");
    while (s->step()) {
        const std::string label = fold_case(s->text(1));
        if (label == wanted)
            exact.push_back(s->id(0));
        else if (label.starts_with(wanted) && ends_word(label, wanted.size()))
            prefix.push_back(s->id(0));
        else if (later_words(label, wanted))
            later.push_back(s->id(0));
    }
    const auto& hits = !exact.empty() ? exact : !prefix.empty() ? prefix : later;
    if (hits.size() > 1)
        throw Error(Errc::ambiguous, "\"" + std::string(name) + "\" matches " + std::to_string(hits.size()) + " " +
                                         std::string(e.name) + " rows; use more of the name or the id");
    if (hits.empty()) return std::nullopt;
    return hits.front();
}

}  // namespace lindra
