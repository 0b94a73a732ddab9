// lindra-server: the central sync server, and the tools for its tokens.
//
//   lindra-server [serve] --db PATH|postgresql://... --listen HOST:PORT --token-key FILE
//                 (--cert FILE --key FILE | --insecure) [OPTIONS]   or   --config FILE
//   lindra-server gen-key --out FILE
//   lindra-server gen-issuer-key --out FILE
//   lindra-server restored --db PATH|postgresql://...
//   lindra-server issue-token --key FILE --user NAME --role ROLE ...
//
// The command line and config file: settings.cpp. PORT 0 picks a free port;
// the line "listening on HOST:PORT" tells which. Logs one line per session
// to stdout. Stops cleanly on SIGINT or SIGTERM.
#include <lindra/error.hpp>
#include <lindra/server.hpp>

#include "log.hpp"
#include "metrics.hpp"
#include "settings.hpp"

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

using server_cli::UsageError;

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    if (!(in && text << in.rdbuf())) throw std::runtime_error("cannot read " + path);
    return text.str();
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
int gen_key(const std::string& path, bool issuer) {
    const std::string pem = issuer ? lindra::generate_issuer_key() : lindra::generate_token_key();
    // O_EXCL: replacing a key would invalidate every token, or leave
    // unverifiable every certificate, signed with it.
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0) throw std::runtime_error("cannot create " + path + ": " + std::strerror(errno));
    const bool written = ::write(fd, pem.data(), pem.size()) == static_cast<ssize_t>(pem.size());
    if (::close(fd) != 0 || !written) throw std::runtime_error("cannot write " + path);
    return 0;
}

int serve(server_cli::ServeSettings settings);

}  // namespace

int main(int argc, char** argv) {
    server_cli::Command cmd;
    try {
        cmd = server_cli::parse_command_line(argc, argv);
    } catch (const UsageError& e) {
        std::cerr << "lindra-server: " << e.what() << "\n(lindra-server --help, or lindra-server COMMAND --help)\n";
        return 2;
    }
    using Kind = server_cli::Command::Kind;
    try {
        switch (cmd.kind) {
            case Kind::done: return cmd.exit_code;
            case Kind::gen_key: return gen_key(cmd.out, false);
            case Kind::gen_issuer_key: return gen_key(cmd.out, true);
            case Kind::restored: {
                const auto id = lindra::renew_server_id(cmd.db);
                std::cout << "new server id " << id.to_string()
                          << ": every tablet pulls everything again at its next round\n";
                return 0;
            }
            case Kind::issue_token:
                std::cout << lindra::issue_token(read_file(cmd.token_key_file), cmd.claims) << "\n";
                return 0;
            case Kind::serve: break;
        }
    } catch (const std::exception& e) {
        std::cerr << "lindra-server: " << e.what() << "\n";
        return 1;
    }
    return serve(std::move(cmd.serve));
}

namespace {

int serve(server_cli::ServeSettings settings) {
    auto& options = settings.options;
    raise_file_limit(options.max_connections);
    server_cli::Log log(settings.json_logs);

    // Block the signals before any thread starts, then wait for them.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);

    try {
        server_cli::read_files(settings, options);
        options.log = [&log](std::string_view line) { log.info(line); };
        const auto metrics = std::make_shared<server_cli::Metrics>();
        options.observer = metrics;
        if (settings.admin_port) {
            options.admin.host = settings.admin_host;
            options.admin.port = settings.admin_port;
            options.admin.metrics = [metrics] { return metrics->scrape(); };
        }
        lindra::SyncServer server(options);  // a copy: a reload starts again from the settings
        log.info("listening on " + settings.listen_host + ":" + std::to_string(server.port()));
        if (settings.admin_port)
            log.info("admin listening on " + settings.admin_host + ":" + std::to_string(server.admin_port()));
        for (;;) {
            int signal = 0;
            sigwait(&signals, &signal);
            if (signal != SIGHUP) {
                log.info(std::string("stopping (") + strsignal(signal) + ")");
                break;
            }
            // The files again; on any failure the server keeps what it had.
            try {
                lindra::ServerOptions fresh = settings.options;
                server_cli::read_files(settings, fresh);
                server.reload(fresh.tls, fresh.tokens, fresh.issuer);
                metrics->reloaded(true);
                log.info("reloaded the certificate and keys from their files");
            } catch (const std::exception& e) {
                metrics->reloaded(false);
                log.write("error", std::string("reload failed, the certificate and keys in use are kept: ") + e.what());
            }
        }
        server.stop();
    } catch (const std::exception& e) {
        std::cerr << "lindra-server: " << e.what() << "\n";
        return 1;
    }
    return 0;
}

}  // namespace
