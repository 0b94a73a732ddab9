// lindra's log: one process-wide handler an app sets to hear what the
// library does (rounds, their outcome, refusals, migrations).
//
// What lindra logs is about the data's movement, never the data: no tokens,
// no names, no reflection or other free text, no values of fields, no file
// paths. Rows are named by entity and id, people not at all.
// tests/log_test.cpp holds the library to that at every level.
//
// Thread-safety: set_log_handler() from any thread. The handler runs on
// whatever thread logs (the app's, or a sync's), possibly on several at
// once; keep it short. set_log_handler() waits for calls of the handler it
// replaces to finish, so once it returns that handler is done with for
// good; hence it must not be called from a handler.
#pragma once

#include <functional>
#include <string_view>

namespace lindra {

enum class LogLevel { debug, info, warning, error, off };
std::string_view to_string(LogLevel level);

// `domain` names the part of lindra speaking: "replica", "sync", "server".
using LogHandler = std::function<void(LogLevel level, std::string_view domain, std::string_view message)>;

// Sends messages at `min` and above to `handler`, replacing any handler set
// before. An empty handler (the default) or LogLevel::off silences lindra.
void set_log_handler(LogHandler handler, LogLevel min = LogLevel::info);

}  // namespace lindra
