// The library's side of lindra/log.hpp. Callers build the message only when
// it will be heard:
//
//     if (log_enabled(LogLevel::info)) log(LogLevel::info, "sync", "...");
//
// What goes into a message is set out in lindra/log.hpp: never tokens,
// names, free text or field values.
#pragma once

#include <lindra/log.hpp>

#include <string_view>

namespace lindra::detail {

bool log_enabled(LogLevel level) noexcept;
void log(LogLevel level, std::string_view domain, std::string_view message);

}  // namespace lindra::detail
