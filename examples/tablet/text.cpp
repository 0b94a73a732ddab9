#include "text.hpp"

#include <algorithm>
#include <ctime>
#include <ostream>

namespace tablet {
namespace {

std::size_t width(const std::string& s) {
    // Count every byte that is not a UTF-8 continuation byte.
    return static_cast<std::size_t>(
        std::count_if(s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

std::string format_local(lindra::Timestamp ms, const char* format) {
    const std::time_t t = static_cast<std::time_t>(ms / 1000);
    std::tm tm{};
    localtime_r(&t, &tm);
    char buf[32];
    return std::string(buf, std::strftime(buf, sizeof buf, format, &tm));
}

}  // namespace

void Table::print(std::ostream& out, int indent) const {
    std::vector<std::size_t> widths;
    for (const auto& row : rows_) {
        widths.resize(std::max(widths.size(), row.size()));
        for (std::size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], width(row[i]));
    }
    for (const auto& row : rows_) {
        std::string line(static_cast<std::size_t>(indent), ' ');
        for (std::size_t i = 0; i < row.size(); ++i) {
            line += row[i];
            if (i + 1 < row.size()) line += std::string(widths[i] - width(row[i]) + 2, ' ');
        }
        out << line << '\n';
    }
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

}  // namespace tablet
