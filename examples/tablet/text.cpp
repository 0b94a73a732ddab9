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
    std::vector<std::string> lines;
    const auto removed = [](std::int64_t rows) { return ": removed " + counted(rows, "row"); };
    // Everything of a group the user left counts with it, whoever's it was.
    std::map<lindra::Id, std::int64_t> left;
    for (const auto& p : result.purged)
        if (p.kind == ScopeKind::group) left[p.group] = 0;
    // The rest by person: progress and reflections in a group they left,
    // or only their name once no group is shared.
    struct Gone {
        std::string name, group;
        std::int64_t rows = 0;
    };
    std::map<lindra::Id, Gone> people;
    std::int64_t unknown = 0;
    for (const auto& p : result.purged) {
        if (!p.kind) {
            unknown += p.rows;
        } else if (left.contains(p.group)) {
            left[p.group] += p.rows;
        } else {
            auto& gone = people[p.person];
            gone.rows += p.rows;
            if (!p.person_name.empty()) gone.name = p.person_name;
            if (!p.group_name.empty()) gone.group = p.group_name;
        }
    }
    const auto group_named = [&](const lindra::Id& group) {
        for (const auto& p : result.purged)
            if (p.group == group && !p.group_name.empty()) return "group \"" + p.group_name + "\"";
        return "group " + group.to_string();  // one this device never held by name
    };
    for (const auto& [group, rows] : left) lines.push_back("no longer a member of " + group_named(group) + removed(rows));
    for (const auto& [person, gone] : people) {
        const std::string who = gone.name.empty() ? "a person" : gone.name;
        lines.push_back(who + (gone.group.empty() ? " no longer shares a group with this user"
                                                  : " is no longer a member of group \"" + gone.group + "\"") +
                        removed(gone.rows));
    }
    if (unknown > 0) lines.push_back("removed " + counted(unknown, "row") + " this user may no longer see");
    return lines;
}

}  // namespace tablet
