// lindra-server's settings: its command line (CLI11) and its config file
// (TOML, toml11), the flags overriding the file. Each flag has one key in
// the file: its own name at the top level, or, for a group's flags, the
// name without the group's prefix in the group's table ([oidc] issuer is
// --oidc-issuer). README, "Operating the server".
#pragma once

#include <lindra/server.hpp>

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace server_cli {

// A command line's or config file's mistake: reported in a line, exit 2.
struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// The files the server reads at start and again on SIGHUP.
struct Files {
    std::string cert, key;                 // TLS; empty with --insecure
    std::string token_key;                 // may be empty with OIDC
    std::string oidc_key;                  // a static key; empty without OIDC or with a JWK Set
    std::string oidc_jwks_ca;              // CAs for the JWK Set's URL; empty: the system's
    std::vector<std::string> issuer_keys;  // oldest first
};

struct ServeSettings {
    lindra::ServerOptions options;  // everything but the files' contents and the log
    std::string listen_host;        // as given, for the "listening on" line
    Files files;
    std::optional<lindra::OidcProvider> oidc;  // without the files' contents (files.oidc_*)
    std::string admin_host;                    // with admin_port: the admin listener
    std::optional<std::uint16_t> admin_port;
    bool json_logs = false;
};

// What main() runs.
struct Command {
    enum class Kind { serve, gen_key, gen_issuer_key, restored, issue_token, done } kind = Kind::serve;
    int exit_code = 0;  // Kind::done: --help was shown (0)
    ServeSettings serve;
    std::string out, db;  // gen-key, gen-issuer-key: out; restored: db
    std::string token_key_file;
    lindra::TokenClaims claims;  // issue-token
};

// Parses the command line and the config file it names. Throws UsageError
// naming the flag, or the config key and its line.
Command parse_command_line(int argc, char** argv);

// The files' contents into `options` (TLS, token keys, issuer keys): at
// start, and on SIGHUP. Throws std::runtime_error naming the file.
void read_files(const ServeSettings& settings, lindra::ServerOptions& options);

// "500ms", "10s", "30m", "12h", "30d": positive, at most ten years.
std::chrono::milliseconds parse_duration(const std::string& what, const std::string& text);

}  // namespace server_cli
