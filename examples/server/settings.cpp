#include "settings.hpp"

#include <lindra/error.hpp>

#include <CLI/CLI.hpp>
#include <toml.hpp>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

namespace server_cli {

namespace {

enum class Kind { text, flag, count, duration, list };

// One setting: its flag, its place in the config file, its help.
struct Spec {
    const char* flag;   // "--oidc-issuer"
    const char* table;  // "oidc", or "" for the top level
    const char* key;    // "issuer"
    Kind kind;
    const char* type;  // in --help: FILE, DURATION, ...
    const char* group;
    const char* help;
};

constexpr const char* kServer = "SERVER";
constexpr const char* kOidc = "OIDC: also take JWTs from an OpenID Connect provider (--token-key is then optional)";
constexpr const char* kIssuer = "CERTIFICATES: the server issues course certificates when it has a key to sign them";
constexpr const char* kLimits = "LIMITS: what keeps one client from crowding out the rest (README, \"Connection limits\")";
constexpr const char* kThreads = "THREADS (each at most 256; one per core when not given)";
constexpr const char* kOps = "OPERATIONS (README, \"Operating the server\")";

// Every setting of `lindra-server` (serving); the config file's keys too.
const Spec kSpecs[] = {
    {"--db", "", "db", Kind::text, "PATH|URI", kServer,
     "the server's SQLite database (created if missing), or a PostgreSQL one, postgresql://USER@HOST:PORT/DB "
     "(a libpq URI or keyword string), that several lindra-server processes share"},
    {"--listen", "", "listen", Kind::text, "HOST:PORT", kServer,
     "address to listen on; port 0 picks a free one; [::]:PORT takes IPv4 and IPv6"},
    {"--cert", "", "cert", Kind::text, "FILE", kServer,
     "the server's TLS certificate chain, PEM, its own certificate first"},
    {"--key", "", "key", Kind::text, "FILE", kServer, "the certificate's private key, PEM (unencrypted)"},
    {"--insecure", "", "insecure", Kind::flag, "", kServer,
     "plain TCP instead of TLS, for local development only: tokens and personal data cross the network in the "
     "clear"},
    {"--token-key", "", "token-key", Kind::text, "FILE", kServer,
     "PEM key that verifies lindra's tokens (from gen-key, or its public half)"},
    // OpenID Connect: its flags stay together, here and in [oidc].
    {"--oidc-issuer", "oidc", "issuer", Kind::text, "URL", kOidc, "must equal the tokens' \"iss\""},
    {"--oidc-audience", "oidc", "audience", Kind::text, "AUD", kOidc, "must be in the tokens' \"aud\""},
    {"--oidc-jwks", "oidc", "jwks", Kind::text, "FILE|URL", kOidc,
     "the provider's JWK Set: its jwks_uri (https; http only to loopback unless --oidc-jwks-allow-http) or a file; "
     "follows key rotation, an unknown kid refetching it at most every --oidc-jwks-refresh"},
    {"--oidc-jwks-ca", "oidc", "jwks-ca", Kind::text, "FILE", kOidc,
     "CA certificates (PEM) that the JWK Set's https URL must chain to, instead of the system's"},
    {"--oidc-jwks-allow-http", "oidc", "jwks-allow-http", Kind::flag, "", kOidc,
     "fetch the JWK Set over plain http from hosts other than loopback"},
    {"--oidc-jwks-refresh", "oidc", "jwks-refresh", Kind::duration, "DURATION", kOidc,
     "the least time between two fetches of the JWK Set for unknown kids (30s)"},
    {"--oidc-key", "oidc", "key", Kind::text, "PEM_FILE", kOidc,
     "or one static signing key of the provider, EC P-256 or RSA (no rotation)"},
    {"--oidc-algs", "oidc", "algs", Kind::text, "ALGS", kOidc, "the algorithms taken, ES256,RS256 by default"},
    {"--issuer-key", "issuer", "keys", Kind::list, "FILE", kIssuer,
     "an Ed25519 key from gen-issuer-key; give it again for each older key, oldest first: the last signs, all "
     "stay verifiable on tablets (in the config file: keys = [\"old.key\", \"new.key\"])"},
    {"--issuer-id", "issuer", "id", Kind::text, "URI", kIssuer,
     "the issuer in the certificates, say https://kurs.example.no"},
    {"--issuer-name", "issuer", "name", Kind::text, "TEXT", kIssuer, "the issuer's name in the certificates (lindra)"},
    {"--max-connections", "limits", "max-connections", Kind::count, "N", kLimits,
     "connections at once (512); over it a new connection closes the oldest one that has not said Hello"},
    {"--max-connections-per-address", "limits", "max-connections-per-address", Kind::count, "N", kLimits,
     "from one IPv4 address or IPv6 /64 (32); tablets behind one NAT share an address: raise it for large sites"},
    {"--hello-timeout", "limits", "hello-timeout", Kind::duration, "DURATION", kLimits,
     "from connecting to a welcomed Hello, TLS included (10s)"},
    {"--io-timeout", "limits", "io-timeout", Kind::duration, "DURATION", kLimits,
     "a frame's floor (30s), plus a second per MIN_RATE bytes"},
    {"--min-frame-rate", "limits", "min-frame-rate", Kind::count, "BYTES_PER_S", kLimits,
     "how fast a frame's bytes must keep coming (16384)"},
    {"--idle-timeout", "limits", "idle-timeout", Kind::duration, "DURATION", kLimits, "between frames (60s)"},
    {"--db-statement-timeout", "limits", "db-statement-timeout", Kind::duration, "DURATION", kLimits,
     "PostgreSQL: a store statement longer than this is cancelled and the device told to retry (30s)"},
    {"--db-idle-in-transaction-timeout", "limits", "db-idle-in-transaction-timeout", Kind::duration, "DURATION",
     kLimits, "PostgreSQL: a store session idle inside a transaction this long is ended, its locks released (60s)"},
    {"--io-threads", "threads", "io-threads", Kind::count, "N", kThreads,
     "threads that move bytes: TLS, framing, timeouts"},
    {"--worker-threads", "threads", "worker-threads", Kind::count, "N", kThreads,
     "threads that handle the messages: the store work"},
    {"--admin-listen", "", "admin-listen", Kind::text, "HOST:PORT", kOps,
     "the admin listener: /metrics (Prometheus), /healthz, /readyz; off unless given; keep it on loopback or a "
     "private network (it has no authentication)"},
    {"--log-format", "", "log-format", Kind::text, "text|json", kOps,
     "json: one JSON object per line (time, level, message and fields); text by default"},
};

constexpr const char* kDurationRule =
    "DURATION is a whole number with a unit: ms, s, m (minutes), h or d (days): 500ms, 10s, 2m, 12h, 30d";

// A setting's values and where they came from, for error messages.
struct Value {
    std::vector<std::string> values;
    std::string where;  // "--hello-timeout", or "hello-timeout (server.toml line 4)"
};
using Values = std::map<std::string, Value>;  // by flag

std::string config_key(const Spec& s) {
    return *s.table ? "[" + std::string(s.table) + "] " + s.key : std::string(s.key);
}

std::string located(const std::string& file, const std::string& what, std::uint_least32_t line) {
    return file + ": " + what + " at line " + std::to_string(line);
}

// The config file's settings; every key must be known and of its type.
Values read_config(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw UsageError("cannot read the config file " + path);
    toml::value root;
    try {
        root = toml::parse(in, path);
    } catch (const toml::syntax_error& e) {
        throw UsageError(located(path, "not valid TOML", e.location().line()) + ":\n" + e.what());
    }
    Values out;
    const auto take = [&](const std::string& table, const std::string& key, const toml::value& v) {
        const auto line = v.location().line();
        const auto spec = std::find_if(std::begin(kSpecs), std::end(kSpecs),
                                       [&](const Spec& s) { return s.table == table && s.key == key; });
        const std::string name = table.empty() ? key : "[" + table + "] " + key;
        if (spec == std::end(kSpecs)) throw UsageError(located(path, "unknown key '" + name + "'", line) +
                                                          " (the keys are in lindra-server --help)");
        Value value{{}, name + " (" + path + " line " + std::to_string(line) + ")"};
        const auto wrong = [&](const char* wants) {
            return UsageError(path + ": at line " + std::to_string(line) + ", '" + name + "' wants " + wants);
        };
        switch (spec->kind) {
            case Kind::text:
                if (!v.is_string()) throw wrong("a string, in quotes");
                value.values.push_back(v.as_string().str);
                break;
            case Kind::duration:
                if (!v.is_string()) throw wrong("a duration in quotes, like \"10s\" or \"2m\"");
                value.values.push_back(v.as_string().str);
                break;
            case Kind::flag:
                if (!v.is_boolean()) throw wrong("true or false");
                if (v.as_boolean()) value.values.push_back("true");
                break;
            case Kind::count:
                if (!v.is_integer() || v.as_integer() <= 0) throw wrong("a positive whole number, without quotes");
                value.values.push_back(std::to_string(v.as_integer()));
                break;
            case Kind::list:
                if (v.is_string()) {
                    value.values.push_back(v.as_string().str);
                    break;
                }
                if (!v.is_array()) throw wrong("a list of strings, like [\"a\", \"b\"]");
                for (const auto& item : v.as_array()) {
                    if (!item.is_string()) throw wrong("a list of strings, like [\"a\", \"b\"]");
                    value.values.push_back(item.as_string().str);
                }
                break;
        }
        if (!value.values.empty()) out[spec->flag] = std::move(value);
    };
    for (const auto& [key, v] : root.as_table()) {
        const bool group = std::any_of(std::begin(kSpecs), std::end(kSpecs),
                                       [&](const Spec& s) { return *s.table && s.table == key; });
        if (group && v.is_table()) {
            for (const auto& [inner, w] : v.as_table()) take(key, inner, w);
        } else {
            take("", key, v);
        }
    }
    return out;
}

// A positive whole number.
std::size_t parse_count(const std::string& what, const std::string& text) {
    std::size_t end = 0;
    unsigned long long n = 0;
    try {
        if (!text.empty() && std::isdigit(static_cast<unsigned char>(text[0]))) n = std::stoull(text, &end);
    } catch (const std::exception&) {
    }
    if (n == 0 || end != text.size()) throw UsageError(what + " wants a positive whole number, not \"" + text + "\"");
    return n;
}

// HOST:PORT, or [IPv6]:PORT; the host without brackets.
std::pair<std::string, std::uint16_t> parse_address(const std::string& what, const std::string& text) {
    const auto colon = text.rfind(':');
    if (colon == std::string::npos || colon == 0) throw UsageError(what + " wants HOST:PORT, like 127.0.0.1:9090");
    int port = -1;
    std::size_t end = 0;
    try {
        port = std::stoi(text.substr(colon + 1), &end);
    } catch (const std::exception&) {
    }
    if (port < 0 || port > 65535 || end != text.size() - colon - 1)
        throw UsageError(what + ": the port must be 0..65535");
    // "[::]:443" and "[::1]:443" name IPv6 hosts; "::" takes IPv4 peers too.
    std::string host = text.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    return {host, static_cast<std::uint16_t>(port)};
}

lindra::Id parse_id(const std::string& flag, const std::string& text) {
    if (text.empty()) return {};
    const auto id = lindra::Id::parse(text);
    if (!id) throw UsageError(flag + " wants a UUID");
    return *id;
}

std::string read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    if (!(in && text << in.rdbuf())) throw std::runtime_error("cannot read " + path);
    return text.str();
}

// The settings of `lindra-server [serve]` from the flags given and the
// config file's values, the flags first.
ServeSettings serve_settings(const Values& given, const Values& config) {
    const auto find = [&](const char* flag) -> const Value* {
        if (const auto it = given.find(flag); it != given.end()) return &it->second;
        if (const auto it = config.find(flag); it != config.end()) return &it->second;
        return nullptr;
    };
    const auto text = [&](const char* flag) {
        const Value* v = find(flag);
        return v ? v->values.back() : std::string();
    };
    ServeSettings s;
    auto& o = s.options;
    const std::string db = text("--db"), listen = text("--listen");
    if (db.empty() || listen.empty()) throw UsageError("--db and --listen are required (as flags or in --config)");
    o.db_path = db;
    const Value* where = find("--listen");
    std::tie(o.host, o.port) = parse_address(where->where, listen);
    s.listen_host = listen.substr(0, listen.rfind(':'));
    o.insecure = find("--insecure") != nullptr;
    s.files.cert = text("--cert");
    s.files.key = text("--key");
    if (o.insecure && (!s.files.cert.empty() || !s.files.key.empty()))
        throw UsageError("--insecure turns TLS off; drop --cert and --key");
    if (!o.insecure && (s.files.cert.empty() || s.files.key.empty()))
        throw UsageError("TLS needs --cert FILE and --key FILE (or --insecure for plain TCP)");
    s.files.token_key = text("--token-key");

    lindra::OidcProvider oidc;
    oidc.issuer = text("--oidc-issuer");
    oidc.audience = text("--oidc-audience");
    oidc.jwks = text("--oidc-jwks");
    oidc.jwks_allow_http = find("--oidc-jwks-allow-http") != nullptr;
    s.files.oidc_key = text("--oidc-key");
    s.files.oidc_jwks_ca = text("--oidc-jwks-ca");
    const std::string algs = text("--oidc-algs");
    const Value* refresh = find("--oidc-jwks-refresh");
    const bool with_oidc = !oidc.issuer.empty() || !oidc.audience.empty() || !oidc.jwks.empty() ||
                           !s.files.oidc_key.empty() || !s.files.oidc_jwks_ca.empty() || !algs.empty() ||
                           oidc.jwks_allow_http || refresh;
    if (with_oidc && (oidc.issuer.empty() || oidc.audience.empty() || oidc.jwks.empty() == s.files.oidc_key.empty()))
        throw UsageError(
            "an OpenID Connect provider needs --oidc-issuer, --oidc-audience and one of --oidc-jwks or --oidc-key");
    if (refresh)
        oidc.jwks_min_refresh =
            std::chrono::duration_cast<std::chrono::seconds>(parse_duration(refresh->where, refresh->values.back()));
    if (s.files.token_key.empty() && !with_oidc)
        throw UsageError("--token-key (or an OpenID Connect provider) is required");
    if (!algs.empty()) {
        oidc.algorithms.clear();
        std::istringstream names(algs);
        for (std::string name; std::getline(names, name, ',');) oidc.algorithms.push_back(name);
    }
    if (with_oidc) s.oidc = std::move(oidc);

    if (const Value* v = find("--issuer-key")) s.files.issuer_keys = v->values;
    o.issuer.id = text("--issuer-id");
    if (const Value* v = find("--issuer-name")) o.issuer.name = v->values.back();

    const auto count = [&](const char* flag, auto& field) {
        if (const Value* v = find(flag)) field = parse_count(v->where, v->values.back());
    };
    const auto duration = [&](const char* flag, std::chrono::milliseconds& field) {
        if (const Value* v = find(flag)) field = parse_duration(v->where, v->values.back());
    };
    count("--max-connections", o.max_connections);
    count("--max-connections-per-address", o.max_connections_per_address);
    count("--min-frame-rate", o.min_frame_rate);
    count("--io-threads", o.io_threads);
    count("--worker-threads", o.worker_threads);
    duration("--hello-timeout", o.hello_timeout);
    duration("--io-timeout", o.io_timeout);
    duration("--idle-timeout", o.idle_timeout);
    duration("--db-statement-timeout", o.db_statement_timeout);
    duration("--db-idle-in-transaction-timeout", o.db_idle_in_transaction_timeout);

    if (const Value* v = find("--admin-listen")) {
        const auto [host, port] = parse_address(v->where, v->values.back());
        s.admin_host = host;
        s.admin_port = port;
    }
    if (const Value* v = find("--log-format")) {
        const auto& f = v->values.back();
        if (f != "text" && f != "json") throw UsageError(v->where + " wants text or json, not \"" + f + "\"");
        s.json_logs = f == "json";
    }
    return s;
}

constexpr const char* kCommands[] = {"serve", "gen-key", "gen-issuer-key", "restored", "issue-token"};

}  // namespace

std::chrono::milliseconds parse_duration(const std::string& what, const std::string& text) {
    std::size_t end = 0;
    long long n = 0;
    try {
        if (!text.empty() && std::isdigit(static_cast<unsigned char>(text[0]))) n = std::stoll(text, &end);
    } catch (const std::exception&) {
    }
    const std::string unit = text.substr(end);
    const long long scale = unit == "ms"  ? 1
                            : unit == "s" ? 1000
                            : unit == "m" ? 60'000
                            : unit == "h" ? 3'600'000
                            : unit == "d" ? 86'400'000
                                          : 0;
    if (n <= 0 || scale == 0 || n > 10LL * 366 * 86'400'000 / scale)
        throw UsageError(what + " wants a positive whole number with a unit, ms, s, m, h or d (500ms, 10s, 30m, "
                                "12h, 30d), not \"" + text + "\"");
    return std::chrono::milliseconds(n * scale);
}

void read_files(const ServeSettings& s, lindra::ServerOptions& o) {
    if (!o.insecure) o.tls = {read_text(s.files.cert), read_text(s.files.key)};
    o.tokens.key_pem = s.files.token_key.empty() ? std::string() : read_text(s.files.token_key);
    o.tokens.oidc.clear();
    if (s.oidc) {
        auto oidc = *s.oidc;
        if (!s.files.oidc_key.empty()) oidc.public_key_pem = read_text(s.files.oidc_key);
        if (!s.files.oidc_jwks_ca.empty()) oidc.jwks_ca_pem = read_text(s.files.oidc_jwks_ca);
        o.tokens.oidc.push_back(std::move(oidc));
    }
    o.issuer.keys_pem.clear();
    for (const auto& file : s.files.issuer_keys) o.issuer.keys_pem.push_back(read_text(file));
}

Command parse_command_line(int argc, char** argv) {
    // A first word that is no option must be a command; CLI11 would call
    // it an unexpected argument.
    if (argc > 1 && argv[1][0] != '-' &&
        std::find_if(std::begin(kCommands), std::end(kCommands),
                     [&](const char* c) { return std::string_view(c) == argv[1]; }) == std::end(kCommands))
        throw UsageError(std::string("unknown command '") + argv[1] +
                         "'; the commands are serve (the default), gen-key, gen-issuer-key, restored and "
                         "issue-token");
    std::vector<char*> args(argv, argv + argc);
    if (args.size() > 1 && std::string_view(args[1]) == "serve") args.erase(args.begin() + 1);

    CLI::App app("lindra-server: the central sync server, and the tools for its tokens.\n"
                 "Serves with no command: lindra-server [serve] --db PATH|URI --listen HOST:PORT --token-key FILE "
                 "(--cert FILE --key FILE | --insecure) [OPTIONS], or with --config FILE.",
                 "lindra-server");
    app.footer(std::string(kDurationRule) +
               "\nEvery option but --config may also be set in the config file (TOML): its name as the key, at the "
               "top level or, in a group, in the group's table without its prefix: [oidc] issuer, [issuer] keys, "
               "[limits] hello-timeout, [threads] io-threads. Flags override the file.\n"
               "Signals: SIGINT and SIGTERM stop; SIGHUP reads the TLS certificate and key, the token keys and the "
               "issuer keys again.");
    app.get_formatter()->column_width(40);
    app.require_subcommand(0, 1);

    std::string config_path;
    app.add_option("--config", config_path, "settings from this TOML file; flags given as well win")
        ->type_name("FILE")
        ->group(kServer);
    std::map<std::string, std::string> single;
    std::map<std::string, std::vector<std::string>> lists;
    bool switched = false;  // read through count(): one variable serves every switch
    for (const auto& s : kSpecs) {
        const std::string help = s.help + std::string(" [config: ") + config_key(s) + "]";
        CLI::Option* opt = nullptr;
        if (s.kind == Kind::flag) opt = app.add_flag(s.flag, switched, help);
        else if (s.kind == Kind::list) opt = app.add_option(s.flag, lists[s.flag], help)->type_name(s.type);
        else
            opt = app.add_option(s.flag, single[s.flag], help)
                      ->type_name(s.type)
                      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
        opt->group(s.group);
    }

    Command cmd;
    std::string role, person, org, ttl;
    auto* gen_key = app.add_subcommand("gen-key", "writes a new Ed25519 token key (mode 0600; never overwrites)");
    gen_key->add_option("--out", cmd.out, "the key's new file")->type_name("FILE");
    auto* gen_issuer = app.add_subcommand(
        "gen-issuer-key", "writes a new Ed25519 key that signs course certificates (mode 0600; never overwrites)");
    gen_issuer->add_option("--out", cmd.out, "the key's new file")->type_name("FILE");
    auto* restored = app.add_subcommand(
        "restored", "after restoring the store from a backup, before starting any server on it: a new server id, so "
                    "every tablet pulls everything again at its next round");
    restored->add_option("--db", cmd.db, "the store, as for serving")->type_name("PATH|URI");
    auto* issue = app.add_subcommand("issue-token", "prints a token signed with the key");
    issue->add_option("--key", cmd.token_key_file, "the token key, from gen-key")->type_name("FILE");
    issue->add_option("--user", cmd.claims.user, "the user's stable id, the token's subject")
        ->type_name("NAME");
    issue->add_option("--role", role, "candidate, mentor, coordinator or admin")->type_name("ROLE");
    issue->add_option("--person", person, "the person row this user is")->type_name("UUID");
    issue->add_option("--org", org, "a coordinator's organization")->type_name("UUID");
    issue->add_option("--ttl", ttl, "how long the token is valid (12h): a whole number with s, m, h or d: 90m, 12h, 30d")
        ->type_name("DURATION");
    issue->footer(kDurationRule);

    try {
        app.parse(static_cast<int>(args.size()), args.data());
    } catch (const CLI::CallForHelp&) {
        std::cout << (app.get_subcommands().empty() ? app.help() : app.get_subcommands().front()->help());
        cmd.kind = Command::Kind::done;
        return cmd;
    } catch (const CLI::ExtrasError&) {
        // CLI11 lists what was left over, last first; name the first.
        const auto left = app.remaining(true);
        const auto option = std::find_if(left.begin(), left.end(), [](const std::string& a) { return a[0] == '-'; });
        if (option != left.end()) throw UsageError("unknown option " + *option);
        throw UsageError("unexpected argument '" + (left.empty() ? std::string() : left.front()) + "'");
    } catch (const CLI::ParseError& e) {
        throw UsageError(e.what());
    }

    // Checked here rather than by CLI11, which would report a missing flag
    // before a misspelt one.
    for (auto* sub : {gen_key, gen_issuer, restored, issue})
        if (sub->parsed())
            for (const char* flag : {"--out", "--db", "--key", "--user", "--role"})
                if (auto* opt = sub->get_option_no_throw(flag); opt && opt->count() == 0)
                    throw UsageError(sub->get_name() + " needs " + flag);
    if (gen_key->parsed()) cmd.kind = Command::Kind::gen_key;
    else if (gen_issuer->parsed()) cmd.kind = Command::Kind::gen_issuer_key;
    else if (restored->parsed()) cmd.kind = Command::Kind::restored;
    if (cmd.kind != Command::Kind::serve) return cmd;
    if (issue->parsed()) {
        cmd.kind = Command::Kind::issue_token;
        try {
            cmd.claims.role = lindra::parse_role(role);
        } catch (const lindra::Error& e) {
            throw UsageError(std::string("--role: ") + e.what());
        }
        cmd.claims.person = parse_id("--person", person);
        cmd.claims.organization = parse_id("--org", org);
        if (!ttl.empty()) {
            cmd.claims.ttl = std::chrono::duration_cast<std::chrono::seconds>(parse_duration("--ttl", ttl));
            if (cmd.claims.ttl.count() == 0) throw UsageError("--ttl must be at least a second");
        }
        return cmd;
    }

    Values given;
    for (const auto& s : kSpecs) {
        if (app.get_option(s.flag)->count() == 0) continue;
        Value v{{}, s.flag};
        if (s.kind == Kind::flag) v.values = {"true"};
        else if (s.kind == Kind::list) v.values = lists[s.flag];
        else v.values = {single[s.flag]};
        given[s.flag] = std::move(v);
    }
    const Values config = config_path.empty() ? Values{} : read_config(config_path);
    cmd.serve = serve_settings(given, config);
    return cmd;
}

}  // namespace server_cli
