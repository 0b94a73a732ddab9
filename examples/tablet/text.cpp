#include "text.hpp"

#include <lindra/report.hpp>

#include <ctime>
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

}  // namespace tablet
