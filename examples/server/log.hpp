// lindra-server's log on stdout: the lines as they are, or (--log-format
// json) one JSON object per line, {"time", "level", "message", ...fields},
// the session lines' key=value pairs as fields. What is logged is the same
// either way: no token, no personal data beyond the user id and peer
// address of a session line (README, "Operating the server").
// Thread-safe: one line at a time.
#pragma once

#include <mutex>
#include <string_view>

namespace server_cli {

class Log {
public:
    explicit Log(bool json) : json_(json) {}
    // `level`: "info", "warning", "error".
    void write(std::string_view level, std::string_view line);
    void info(std::string_view line) { write("info", line); }

private:
    bool json_;
    std::mutex mutex_;
};

}  // namespace server_cli
