// Finding rows by id or human name, and working out which group (and which
// mentor) a command is about when the user did not say.
#pragma once

#include <lindra/replica.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace tablet {

// The row of `entity` ("person", "mentor_group", "module", "gathering")
// named by `name` (an id or the start of its human name). Throws not_found
// naming what was looked for, or the library's ambiguous error.
lindra::Id resolve(const lindra::Replica& replica, std::string_view entity, std::string_view name);

std::string person_name(const lindra::Replica& replica, const lindra::Id& person);
std::string module_title(const lindra::Replica& replica, const lindra::Id& course, const lindra::Id& module);

// The group a person's command is about. With `group_name` (--group) that
// group, checked to hold the person and, if given, the module. Without it the
// one group of the person whose course has `module` (any of the person's
// groups when there is no module); none or several is an error that asks for
// --group.
lindra::Group pick_group(const lindra::Replica& replica, const lindra::Id& person,
                         const std::optional<lindra::Id>& module, const std::optional<std::string>& group_name);

// The mentor confirming in `group`: `mentor_name` (--mentor), checked to be a
// mentor of the group, or else the group's only active mentor.
lindra::Id pick_mentor(const lindra::Replica& replica, const lindra::Group& group,
                       const std::optional<std::string>& mentor_name);

// The member entry of `person` in the roster, or nullptr. The entry points
// into `roster`, so a temporary roster is refused.
const lindra::RosterEntry* member(const lindra::Roster& roster, const lindra::Id& person);
const lindra::RosterEntry* member(const lindra::Roster&& roster, const lindra::Id& person) = delete;

// A gathering and the group it belongs to.
struct GatheringInGroup {
    lindra::Gathering gathering;
    lindra::Group group;
};
GatheringInGroup find_gathering(const lindra::Replica& replica, const lindra::Id& gathering);

}  // namespace tablet
