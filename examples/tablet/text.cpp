#include "text.hpp"

#include <lindra/report.hpp>

#include <ctime>
#include <map>
#include <ostream>

namespace tablet {
namespace {

std::string format_local(lindra::Timestamp ms, const char* format) {
    const std::time_t t = static_cast<std::time_t>(ms / 1000);
    std::tm tm{};
    localtime_r(&t, &tm);
    char buf[32];
    return std::string(buf, std::strftime(buf, sizeof buf, format, &tm));
}

}  // namespace

void Table::print(std::ostream& out, int indent) const {
    out << lindra::aligned_columns(rows_, indent);
}

std::string local_datetime(lindra::Timestamp ms) {
    return format_local(ms, "%Y-%m-%d %H:%M");
}
std::string local_date(lindra::Timestamp ms) {
    return format_local(ms, "%Y-%m-%d");
}

lindra::Timestamp local_time_in_days(int days, int hour) {
    const std::time_t now = std::time(nullptr);
    std::tm tm{};
    localtime_r(&now, &tm);
    tm.tm_mday += days;
    tm.tm_hour = hour;
    tm.tm_min = 0;
    tm.tm_sec = 0;
    tm.tm_isdst = -1;  // let mktime decide, so 10:00 stays 10:00 across a DST change
    return static_cast<lindra::Timestamp>(std::mktime(&tm)) * 1000;
}

std::string minutes(std::int64_t seconds) {
    return std::to_string((seconds + 30) / 60);
}


std::string writes_and_changes(std::int64_t writes, std::int64_t changes) {
    return counted(writes, "write") + " (" + counted(changes, "change") + ")";
}

std::vector<std::string> purge_lines(const lindra::SyncResult& result) {
    using lindra::ScopeKind;
    const auto removed = [](std::int64_t rows) { return ": removed " + counted(rows, "row"); };
    const auto quoted = [](const std::string& name, const lindra::Id& id) {
        return name.empty() ? id.to_string() : "\"" + name + "\"";  // an id only for a group never held by name
    };
    // Everything of a group the user left counts with it, whoever's it was.
    std::map<lindra::Id, std::pair<std::string, std::int64_t>> left;
    for (const auto& p : result.purged)
        if (p.kind == ScopeKind::group) left[p.group].first = p.group_name;
    // The rest: a person's work in a group (they left it, or this user is
    // no longer its mentor), and a person no group is shared with any more.
    std::map<std::pair<lindra::Id, lindra::Id>, std::pair<const lindra::PurgedScope*, std::int64_t>> work;
    std::map<lindra::Id, std::pair<std::string, std::int64_t>> people;
    std::int64_t unknown = 0;
    for (const auto& p : result.purged) {
        if (p.rows == 0 && p.kind != ScopeKind::group) {
            continue;  // a scope this device held nothing of: nothing to tell
        } else if (!p.kind) {
            unknown += p.rows;
        } else if (left.contains(p.group)) {
            left[p.group].second += p.rows;
        } else if (p.kind == ScopeKind::person) {
            auto& [name, rows] = people[p.person];
            name = p.person_name;
            rows += p.rows;
        } else {
            auto& [scope, rows] = work[{p.person, p.group}];
            scope = &p;
            rows += p.rows;
        }
    }
    const auto who = [](const std::string& name) { return name.empty() ? std::string("a person") : name; };
    std::vector<std::string> lines;
    for (const auto& [group, named] : left)
        lines.push_back("no longer a member of group " + quoted(named.first, group) + removed(named.second));
    for (const auto& [key, scope] : work)
        lines.push_back(who(scope.first->person_name) + "'s work in group " + quoted(scope.first->group_name, key.second) +
                        " is no longer this user's to see" + removed(scope.second));
    for (const auto& [person, named] : people)
        lines.push_back(who(named.first) + " no longer shares a group with this user" + removed(named.second));
    if (unknown > 0) lines.push_back("removed " + counted(unknown, "row") + " this user may no longer see");
    return lines;
}

}  // namespace tablet
