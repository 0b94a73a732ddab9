// lindra-server: the central sync server, and the tools for its tokens.
//
//   lindra-server --db PATH|postgresql://... --listen HOST:PORT --token-key FILE (--cert FILE --key FILE | --insecure) [LIMITS]
//                 [THREADS]
//   lindra-server gen-key --out FILE
//   lindra-server gen-issuer-key --out FILE
//   lindra-server restored --db PATH|postgresql://...
//   lindra-server issue-token --key FILE --user NAME --role ROLE ...
//
// PORT 0 picks a free port; the line "listening on HOST:PORT" tells which.
// Logs one line per session to stdout. Stops cleanly on SIGINT or SIGTERM.
#include <lindra/error.hpp>
#include <lindra/server.hpp>

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>

namespace {

int usage(const char* why) {
    if (why) std::cerr << "lindra-server: " << why << "\n";
    std::cerr << "usage: lindra-server --db PATH|postgresql://... --listen HOST:PORT --token-key FILE [OIDC] [LIMITS] [THREADS]\n"
                 "                     (--cert FILE --key FILE | --insecure)\n"
                 "  --db PATH          the server's SQLite database (created if missing), or\n"
                 "  --db postgresql://USER@HOST:PORT/DB  a PostgreSQL database (a libpq URI or\n"
                 "                     keyword string) that several lindra-server processes share\n"
                 "  --listen HOST:PORT address to listen on; port 0 picks a free one; [::]:PORT takes IPv4 and IPv6\n"
                 "  --cert FILE        the server's TLS certificate chain, PEM, its own certificate first\n"
                 "  --key FILE         the certificate's private key, PEM (unencrypted)\n"
                 "  --insecure         plain TCP instead of TLS, for local development only: tokens\n"
                 "                     and personal data cross the network in the clear\n"
                 "  --token-key FILE   PEM key that verifies lindra's tokens (from gen-key, or its public half)\n"
                 "  OIDC: also take JWTs from an OpenID Connect provider (--token-key is then optional):\n"
                 "  --oidc-issuer URL --oidc-audience AUD (--oidc-jwks FILE|URL | --oidc-key PEM_FILE)\n"
                 "  [--oidc-algs ES256,RS256] [--oidc-jwks-ca FILE] [--oidc-jwks-allow-http] [--oidc-jwks-refresh 30s]\n"
                 "  --oidc-jwks        the provider's JWK Set: its jwks_uri (https; http only to loopback\n"
                 "                     unless --oidc-jwks-allow-http) or a file; follows key rotation,\n"
                 "                     an unknown kid refetching it at most every --oidc-jwks-refresh (30s)\n"
                 "  CERTIFICATES: the server issues course certificates when it has a key to sign them:\n"
                 "  --issuer-key FILE  an Ed25519 key from gen-issuer-key; give it again for each older key,\n"
                 "                     oldest first: the last signs, all stay verifiable on tablets\n"
                 "  --issuer-id URI    the issuer in the certificates, say https://kurs.example.no\n"
                 "  --issuer-name TEXT the issuer's name in the certificates (lindra)\n"
                 "  LIMITS: what keeps one client from crowding out the rest (README, \"Connection limits\"):\n"
                 "  --max-connections N              connections at once (512); over it a new connection\n"
                 "                                   closes the oldest one that has not said Hello\n"
                 "  --max-connections-per-address N  from one IPv4 address or IPv6 /64 (32); tablets behind\n"
                 "                                   one NAT share an address: raise it for large sites\n"
                 "  --hello-timeout DURATION         from connecting to a welcomed Hello, TLS included (10s)\n"
                 "  --io-timeout DURATION            a frame's floor (30s), plus a second per MIN_RATE bytes\n"
                 "  --min-frame-rate BYTES_PER_S     how fast a frame's bytes must keep coming (16384)\n"
                 "  --idle-timeout DURATION          between frames (60s)\n"
                 "  --db-statement-timeout DURATION  PostgreSQL: a store statement longer than this is\n"
                 "                                   cancelled and the device told to retry (30s)\n"
                 "  --db-idle-in-transaction-timeout DURATION\n"
                 "                                   PostgreSQL: a store session idle inside a transaction\n"
                 "                                   this long is ended, its locks released (60s)\n"
                 "  DURATION is a number with ms, s, m or h: 500ms, 10s, 2m\n"
                 "  THREADS (each at most 256; one per core when not given):\n"
                 "  --io-threads N                   threads that move bytes: TLS, framing, timeouts\n"
                 "  --worker-threads N               threads that handle the messages: the store work\n"
                 "\n"
                 "       lindra-server restored --db PATH|postgresql://...\n"
                 "  after restoring the store from a backup, before starting any server on it:\n"
                 "  a new server id, so every tablet pulls everything again at its next round\n"
                 "\n"
                 "       lindra-server gen-key --out FILE\n"
                 "  writes a new Ed25519 token key (mode 0600; never overwrites)\n"
                 "\n"
                 "       lindra-server gen-issuer-key --out FILE\n"
                 "  writes a new Ed25519 key that signs course certificates (mode 0600; never overwrites)\n"
                 "\n"
                 "       lindra-server issue-token --key FILE --user NAME --role ROLE [--person UUID] [--org UUID]\n"
                 "                                 [--ttl 12h|30m|3600s]\n"
                 "  prints a token signed with the key; ROLE is candidate, mentor, coordinator or admin\n";
    return 2;
}

// A command line's mistake: reported with the usage, exit status 2.
struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    if (!(in && text << in.rdbuf())) throw std::runtime_error("cannot read " + path);
    return text.str();
}

// A subcommand's "--flag value" pairs, each flag one of `known`.
std::map<std::string, std::string> flags(int argc, char** argv, std::initializer_list<std::string_view> known) {
    std::map<std::string, std::string> out;
    for (int i = 2; i < argc; i += 2) {
        const std::string flag = argv[i];
        if (std::find(known.begin(), known.end(), flag) == known.end()) throw UsageError("unknown option " + flag);
        if (i + 1 >= argc) throw UsageError("missing value for " + flag);
        out[flag] = argv[i + 1];
    }
    return out;
}

std::string required(const std::map<std::string, std::string>& f, const std::string& flag) {
    const auto it = f.find(flag);
    if (it == f.end()) throw UsageError(flag + " is required");
    return it->second;
}

// "500ms", "10s", "30m", "12h": positive, at most ten years.
std::chrono::milliseconds parse_duration(const std::string& flag, const std::string& text) {
    std::size_t end = 0;
    long long n = 0;
    try {
        n = std::stoll(text, &end);
    } catch (const std::exception&) {
    }
    const std::string unit = text.substr(end);
    const long long scale = unit == "ms" ? 1 : unit == "s" ? 1000 : unit == "m" ? 60'000 : unit == "h" ? 3'600'000 : 0;
    if (n <= 0 || scale == 0 || n > 10LL * 366 * 24 * 3'600'000 / scale)
        throw UsageError(flag + " wants a positive number with a unit: ms, s, m or h (500ms, 10s, 30m, 12h)");
    return std::chrono::milliseconds(n * scale);
}

std::chrono::seconds parse_ttl(const std::string& text) {
    const auto ttl = std::chrono::duration_cast<std::chrono::seconds>(parse_duration("--ttl", text));
    if (ttl.count() == 0) throw UsageError("--ttl must be at least a second");
    return ttl;
}

// A positive whole number.
std::size_t parse_count(const std::string& flag, const std::string& text) {
    std::size_t end = 0;
    unsigned long long n = 0;
    try {
        if (!text.empty() && std::isdigit(static_cast<unsigned char>(text[0]))) n = std::stoull(text, &end);
    } catch (const std::exception&) {
    }
    if (n == 0 || end != text.size()) throw UsageError(flag + " wants a positive whole number, not \"" + text + "\"");
    return n;
}

lindra::Id parse_id(const std::map<std::string, std::string>& f, const std::string& flag) {
    const auto it = f.find(flag);
    if (it == f.end()) return {};
    const auto id = lindra::Id::parse(it->second);
    if (!id) throw UsageError(flag + " wants a UUID");
    return *id;
}

// Every connection is a file descriptor, and accepting one to refuse it
// takes one too; many systems start a process with a soft limit of 1024.
// Raise it to the hard limit, and say so if that is too low for the cap.
void raise_file_limit(std::size_t max_connections) {
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
    if (limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &limit);
        ::getrlimit(RLIMIT_NOFILE, &limit);
    }
    constexpr rlim_t kSpare = 64;  // the store, the listener, a refused connection or two
    if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < max_connections + kSpare)
        std::cerr << "lindra-server: warning: the file descriptor limit (" << limit.rlim_cur
                  << ") is too low for --max-connections " << max_connections
                  << "; raise it (ulimit -n, LimitNOFILE=)\n";
}

// gen-key and gen-issuer-key: a new Ed25519 key in a new file.
int gen_key(int argc, char** argv, bool issuer) {
    const auto f = flags(argc, argv, {"--out"});
    const auto path = required(f, "--out");
    const std::string pem = issuer ? lindra::generate_issuer_key() : lindra::generate_token_key();
    // O_EXCL: replacing a key would invalidate every token, or leave
    // unverifiable every certificate, signed with it.
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0) throw std::runtime_error("cannot create " + path + ": " + std::strerror(errno));
    const bool written = ::write(fd, pem.data(), pem.size()) == static_cast<ssize_t>(pem.size());
    if (::close(fd) != 0 || !written) throw std::runtime_error("cannot write " + path);
    return 0;
}

int restored(int argc, char** argv) {
    const auto f = flags(argc, argv, {"--db"});
    const auto id = lindra::renew_server_id(required(f, "--db"));
    std::cout << "new server id " << id.to_string() << ": every tablet pulls everything again at its next round\n";
    return 0;
}

int issue_token(int argc, char** argv) {
    const auto f = flags(argc, argv, {"--key", "--user", "--role", "--person", "--org", "--ttl"});
    lindra::TokenClaims claims;
    claims.user = required(f, "--user");
    try {
        claims.role = lindra::parse_role(required(f, "--role"));
    } catch (const lindra::Error& e) {
        throw UsageError(e.what());
    }
    claims.person = parse_id(f, "--person");
    claims.organization = parse_id(f, "--org");
    if (f.count("--ttl")) claims.ttl = parse_ttl(f.at("--ttl"));
    const std::string key = read_file(required(f, "--key"));
    std::cout << lindra::issue_token(key, claims) << "\n";
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    const std::string command = argc > 1 ? argv[1] : "";
    if (command == "gen-key" || command == "gen-issuer-key" || command == "issue-token" || command == "restored") {
        try {
            return command == "gen-key"          ? gen_key(argc, argv, false)
                   : command == "gen-issuer-key" ? gen_key(argc, argv, true)
                   : command == "restored" ? restored(argc, argv)
                                           : issue_token(argc, argv);
        } catch (const UsageError& e) {
            return usage(e.what());
        } catch (const std::exception& e) {
            std::cerr << "lindra-server " << command << ": " << e.what() << "\n";
            return 1;
        }
    }

    std::string db, listen, token_key;
    std::string cert, key;  // TLS
    bool insecure = false;
    lindra::OidcProvider oidc;
    std::string oidc_key, oidc_algs, oidc_jwks_ca, oidc_jwks_refresh;
    std::vector<std::string> issuer_keys;  // files, oldest first
    std::map<std::string, std::string> limits;  // flag -> value, threads too
    lindra::ServerOptions options;
    static constexpr std::string_view kLimitFlags[] = {"--max-connections", "--max-connections-per-address",
                                                       "--hello-timeout",   "--io-timeout",
                                                       "--min-frame-rate",  "--idle-timeout",
                                                       "--io-threads",      "--worker-threads",

                                                       "--db-statement-timeout",
                                                       "--db-idle-in-transaction-timeout"};
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--help" || arg == "-h") return usage(nullptr), 0;
        if (arg == "--insecure") {
            insecure = true;
            continue;
        }
        if (arg == "--oidc-jwks-allow-http") {
            oidc.jwks_allow_http = true;
            continue;
        }
        if (i + 1 >= argc) return usage(("missing value for " + arg).c_str());
        if (arg == "--db") db = argv[++i];
        else if (arg == "--cert") cert = argv[++i];
        else if (arg == "--key") key = argv[++i];
        else if (arg == "--listen") listen = argv[++i];
        else if (arg == "--token-key") token_key = argv[++i];
        else if (arg == "--oidc-issuer") oidc.issuer = argv[++i];
        else if (arg == "--oidc-audience") oidc.audience = argv[++i];
        else if (arg == "--oidc-key") oidc_key = argv[++i];
        else if (arg == "--oidc-algs") oidc_algs = argv[++i];
        else if (arg == "--oidc-jwks") oidc.jwks = argv[++i];
        else if (arg == "--oidc-jwks-ca") oidc_jwks_ca = argv[++i];
        else if (arg == "--oidc-jwks-refresh") oidc_jwks_refresh = argv[++i];
        else if (arg == "--issuer-key") issuer_keys.push_back(argv[++i]);
        else if (arg == "--issuer-id") options.issuer.id = argv[++i];
        else if (arg == "--issuer-name") options.issuer.name = argv[++i];
        else if (std::find(std::begin(kLimitFlags), std::end(kLimitFlags), arg) != std::end(kLimitFlags))
            limits[arg] = argv[++i];
        else return usage(("unknown option " + arg).c_str());
    }
    if (db.empty() || listen.empty()) return usage("--db and --listen are required");
    if (insecure && (!cert.empty() || !key.empty())) return usage("--insecure turns TLS off; drop --cert and --key");
    if (!insecure && (cert.empty() || key.empty()))
        return usage("TLS needs --cert FILE and --key FILE (or --insecure for plain TCP)");
    const bool with_oidc = !oidc.issuer.empty() || !oidc.audience.empty() || !oidc_key.empty() || !oidc_algs.empty() ||
                           !oidc.jwks.empty() || !oidc_jwks_ca.empty() || !oidc_jwks_refresh.empty() || oidc.jwks_allow_http;
    if (with_oidc && (oidc.issuer.empty() || oidc.audience.empty() || oidc_key.empty() == oidc.jwks.empty()))
        return usage("an OpenID Connect provider needs --oidc-issuer, --oidc-audience and one of --oidc-jwks or --oidc-key");
    if (token_key.empty() && !with_oidc) return usage("--token-key (or an OpenID Connect provider) is required");
    const auto colon = listen.rfind(':');
    if (colon == std::string::npos) return usage("--listen wants HOST:PORT");
    int port = -1;
    try {
        port = std::stoi(listen.substr(colon + 1));
    } catch (...) {
    }
    if (port < 0 || port > 65535) return usage("the port must be 0..65535");
    // "[::]:443" and "[::1]:443" name IPv6 hosts; "::" takes IPv4 peers too.
    std::string host = listen.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);

    try {
        for (const auto& [flag, value] : limits) {
            if (flag == "--max-connections")
                options.max_connections = parse_count(flag, value);
            else if (flag == "--max-connections-per-address")
                options.max_connections_per_address = parse_count(flag, value);
            else if (flag == "--min-frame-rate")
                options.min_frame_rate = parse_count(flag, value);
            else if (flag == "--hello-timeout")
                options.hello_timeout = parse_duration(flag, value);
            else if (flag == "--io-timeout")
                options.io_timeout = parse_duration(flag, value);
            else if (flag == "--idle-timeout")
                options.idle_timeout = parse_duration(flag, value);
            else if (flag == "--io-threads")
                options.io_threads = parse_count(flag, value);
            else if (flag == "--worker-threads")
                options.worker_threads = parse_count(flag, value);
            else if (flag == "--db-statement-timeout")
                options.db_statement_timeout = parse_duration(flag, value);
            else if (flag == "--db-idle-in-transaction-timeout")
                options.db_idle_in_transaction_timeout = parse_duration(flag, value);
        }
    } catch (const UsageError& e) {
        return usage(e.what());
    }
    raise_file_limit(options.max_connections);

    // Block the stop signals before any thread starts, then wait for them.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

    try {
        options.db_path = db;
        options.host = host;
        options.port = static_cast<std::uint16_t>(port);
        options.insecure = insecure;
        if (!insecure) options.tls = {read_file(cert), read_file(key)};
        if (!token_key.empty()) options.tokens.key_pem = read_file(token_key);
        for (const auto& file : issuer_keys) options.issuer.keys_pem.push_back(read_file(file));
        if (with_oidc) {
            if (!oidc_key.empty()) oidc.public_key_pem = read_file(oidc_key);
            if (!oidc_jwks_ca.empty()) oidc.jwks_ca_pem = read_file(oidc_jwks_ca);
            if (!oidc_jwks_refresh.empty())
                oidc.jwks_min_refresh = std::chrono::duration_cast<std::chrono::seconds>(
                    parse_duration("--oidc-jwks-refresh", oidc_jwks_refresh));
            if (!oidc_algs.empty()) {
                oidc.algorithms.clear();
                std::istringstream names(oidc_algs);
                for (std::string name; std::getline(names, name, ',');) oidc.algorithms.push_back(name);
            }
            options.tokens.oidc.push_back(std::move(oidc));
        }
        std::mutex out;
        options.log = [&out](std::string_view line) {
            std::lock_guard lock(out);
            std::cout << line << std::endl;
        };
        lindra::SyncServer server(std::move(options));
        std::cout << "listening on " << listen.substr(0, colon) << ":" << server.port() << std::endl;
        int signal = 0;
        sigwait(&stop_signals, &signal);
        std::cout << "stopping (" << strsignal(signal) << ")" << std::endl;
        server.stop();
    } catch (const std::exception& e) {
        std::cerr << "lindra-server: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
