#include "lookup.hpp"

#include <algorithm>
#include <vector>

namespace tablet {

using lindra::Errc;
using lindra::Error;
using lindra::Id;

namespace {

// What the user calls an entity.
std::string_view noun(std::string_view entity) {
    return entity == "mentor_group" ? std::string_view("group") : entity;
}

bool course_has_module(const lindra::Replica& replica, const Id& course, const Id& module) {
    const auto modules = replica.modules(course);
    return std::any_of(modules.begin(), modules.end(), [&](const lindra::Module& m) { return m.id == module; });
}

std::string names(const std::vector<lindra::Group>& groups) {
    std::string out;
    for (const auto& g : groups) out += (out.empty() ? "" : ", ") + g.name;
    return out;
}

}  // namespace

Id resolve(const lindra::Replica& replica, std::string_view entity, std::string_view name) {
    if (const auto id = replica.find(entity, name)) return *id;
    throw Error(Errc::not_found,
                "no " + std::string(noun(entity)) + " named \"" + std::string(name) + "\" on this device");
}

std::string person_name(const lindra::Replica& replica, const Id& person) {
    const auto p = replica.person(person);
    return p && !p->display_name.empty() ? p->display_name : person.to_string();
}

std::string module_title(const lindra::Replica& replica, const Id& course, const Id& module) {
    for (const auto& m : replica.modules(course))
        if (m.id == module) return m.title;
    return module.to_string();
}

lindra::Group pick_group(const lindra::Replica& replica, const Id& person, const std::optional<Id>& module,
                         const std::optional<std::string>& group_name) {
    const auto who = person_name(replica, person);
    const auto mine = replica.groups_of(person);
    if (group_name) {
        const Id wanted = resolve(replica, "mentor_group", *group_name);
        const auto it = std::find_if(mine.begin(), mine.end(), [&](const lindra::Group& g) { return g.id == wanted; });
        if (it == mine.end())
            throw Error(Errc::invalid_argument, who + " is not a member of group \"" + *group_name + "\"");
        if (module && !course_has_module(replica, it->course, *module))
            throw Error(Errc::invalid_argument, "the course of group " + it->name + " has no such module");
        return *it;
    }
    if (mine.empty()) throw Error(Errc::not_found, who + " is not a member of any group");
    std::vector<lindra::Group> fit;
    std::copy_if(mine.begin(), mine.end(), std::back_inserter(fit),
                 [&](const lindra::Group& g) { return !module || course_has_module(replica, g.course, *module); });
    if (fit.size() == 1) return fit.front();
    if (fit.empty())
        throw Error(Errc::not_found,
                    "none of " + who + "'s groups (" + names(mine) + ") has a course with that module");
    throw Error(Errc::ambiguous, who + " is in " + std::to_string(fit.size()) + " groups that fit (" + names(fit) +
                                     "); say which with --group GROUP");
}

const lindra::RosterEntry* member(const lindra::Roster& roster, const Id& person) {
    for (const auto& m : roster.members)
        if (m.person == person && m.status != lindra::MemberStatus::withdrawn) return &m;
    return nullptr;
}

Id pick_mentor(const lindra::Replica& replica, const lindra::Group& group,
               const std::optional<std::string>& mentor_name) {
    const auto roster = replica.roster(group.id);
    if (mentor_name) {
        const Id mentor = resolve(replica, "person", *mentor_name);
        const auto* m = member(roster, mentor);
        if (!m || m->role != lindra::MemberRole::mentor)
            throw Error(Errc::invalid_argument,
                        person_name(replica, mentor) + " is not a mentor of group " + group.name);
        return mentor;
    }
    std::vector<Id> mentors;
    for (const auto& m : roster.members)
        if (m.role == lindra::MemberRole::mentor && m.status != lindra::MemberStatus::withdrawn)
            mentors.push_back(m.person);
    if (mentors.size() == 1) return mentors.front();
    throw Error(mentors.empty() ? Errc::not_found : Errc::ambiguous,
                "group " + group.name + " has " + std::to_string(mentors.size()) +
                    " mentors; say who confirms with --mentor MENTOR");
}

GatheringInGroup find_gathering(const lindra::Replica& replica, const Id& gathering) {
    const auto row = replica.gathering(gathering);
    const auto group = row ? replica.group(row->group) : std::nullopt;
    if (!row || !group)
        throw Error(Errc::not_found, "gathering " + gathering.to_string() + " belongs to no group on this device");
    return {*row, *group};
}

}  // namespace tablet
