#include "log.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <string>

namespace server_cli {

namespace {

// RFC 3339 in UTC, to the millisecond.
std::string now_utc() {
    const auto now = std::chrono::system_clock::now();
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
    const std::time_t t = std::chrono::system_clock::to_time_t(now);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char out[32];
    std::snprintf(out, sizeof out, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
    return out;
}

// "session peer=a:1 pushed=3 end=\"closed by peer\"": the words before the
// first key=value are the message; the pairs are fields, whole numbers as
// numbers.
nlohmann::json to_json(std::string_view level, std::string_view line) {
    nlohmann::json out = {{"time", now_utc()}, {"level", level}};
    std::string message;
    std::size_t i = 0;
    bool pairs = false;
    while (i < line.size()) {
        while (i < line.size() && line[i] == ' ') ++i;
        const std::size_t start = i;
        while (i < line.size() && line[i] != ' ' && line[i] != '=') ++i;
        if (i < line.size() && line[i] == '=' && i > start) {
            const std::string key(line.substr(start, i - start));
            std::string value;
            ++i;
            if (i < line.size() && line[i] == '"') {
                const auto end = line.find('"', i + 1);
                value = std::string(line.substr(i + 1, end == std::string_view::npos ? end : end - i - 1));
                i = end == std::string_view::npos ? line.size() : end + 1;
            } else {
                const auto end = std::min(line.find(' ', i), line.size());
                value = std::string(line.substr(i, end - i));
                i = end;
            }
            const bool number = !value.empty() && value.size() < 16 &&
                                std::all_of(value.begin(), value.end(), [](unsigned char c) { return std::isdigit(c); });
            if (number) out[key] = std::stoll(value);
            else out[key] = value;
            pairs = true;
        } else if (!pairs) {
            while (i < line.size() && line[i] != ' ') ++i;
            if (!message.empty()) message += ' ';
            message += line.substr(start, i - start);
        } else {
            while (i < line.size() && line[i] != ' ') ++i;  // a stray word after the pairs
        }
    }
    if (!message.empty() && message.back() == ':') message.pop_back();
    out["message"] = message;
    return out;
}

}  // namespace

void Log::write(std::string_view level, std::string_view line) {
    // Lines come from the library and from lindra-server; an invalid UTF-8
    // byte is replaced rather than break the JSON.
    const std::string text =
        json_ ? to_json(level, line).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) : std::string(line);
    std::lock_guard lock(mutex_);
    std::cout << text << std::endl;
}

}  // namespace server_cli
