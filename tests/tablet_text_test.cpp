// lindra-tablet's words for what a round purged (examples/tablet/text.cpp):
// one line per group left, per person's work in a group, per person gone;
// never a group or person mixed up with another.
#include "tablet/text.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

namespace {

using lindra::Id;
using lindra::PurgedScope;
using lindra::ScopeKind;

Id id(std::uint8_t n) {
    Id i;
    i.bytes[0] = n;
    return i;
}

const Id north = id(1), south = id(2), per = id(3), siri = id(4);

}  // namespace

TEST_CASE("a purge is told per group left, per person's work in a group, and per person gone") {
    lindra::SyncResult r;
    r.purged = {
        // Per's work in two groups this user still mentors.
        {ScopeKind::person_in_group, north, per, "North", "Per Dahl", 2},
        {ScopeKind::personal, north, per, "North", "Per Dahl", 1},
        {ScopeKind::person_in_group, south, per, "South", "Per Dahl", 4},
        // A scope this device held nothing of.
        {ScopeKind::personal, south, per, "South", "Per Dahl", 0},
        // Per is gone from every shared group.
        {ScopeKind::person, {}, per, "", "Per Dahl", 1},
    };
    CHECK(tablet::purge_lines(r) == std::vector<std::string>{
                                        "Per Dahl's work in group \"North\" is no longer this user's to see: removed 3 rows",
                                        "Per Dahl's work in group \"South\" is no longer this user's to see: removed 4 rows",
                                        "Per Dahl no longer shares a group with this user: removed 1 row",
                                    });
}

TEST_CASE("a group left takes its members' rows with it in one line") {
    lindra::SyncResult r;
    r.purged = {
        {ScopeKind::group, north, {}, "North", "", 10},
        {ScopeKind::person_in_group, north, siri, "North", "Siri Berg", 2},
        {ScopeKind::personal, north, siri, "North", "Siri Berg", 1},
        {ScopeKind::person, {}, per, "", "", 1},  // a name this device never held
    };
    CHECK(tablet::purge_lines(r) == std::vector<std::string>{
                                        "no longer a member of group \"North\": removed 13 rows",
                                        "a person no longer shares a group with this user: removed 1 row",
                                    });
}

TEST_CASE("a group never held by name is named by its id; an older server's purge by its count") {
    lindra::SyncResult r;
    r.purged = {{ScopeKind::group, south, {}, "", "", 1}, {std::nullopt, {}, {}, "", "", 5}};
    CHECK(tablet::purge_lines(r) == std::vector<std::string>{
                                        "no longer a member of group " + south.to_string() + ": removed 1 row",
                                        "removed 5 rows this user may no longer see",
                                    });
    CHECK(tablet::purge_lines(lindra::SyncResult{}).empty());
}
