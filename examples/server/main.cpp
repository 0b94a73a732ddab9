// lindra-server: the central sync server.
//
//   lindra-server --db PATH --listen HOST:PORT --config USERS_FILE
//
// PORT 0 picks a free port; the line "listening on HOST:PORT" tells which.
// Logs one line per session to stdout. Stops cleanly on SIGINT or SIGTERM.
#include <lindra/error.hpp>
#include <lindra/server.hpp>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <mutex>
#include <string>

namespace {

int usage(const char* why) {
    if (why) std::cerr << "lindra-server: " << why << "\n";
    std::cerr << "usage: lindra-server --db PATH --listen HOST:PORT --config USERS_FILE\n"
                 "  --db PATH          the server's database (created if missing)\n"
                 "  --listen HOST:PORT address to listen on; port 0 picks a free one\n"
                 "  --config FILE      users, one \"user ID ROLE TOKEN\" per line\n";
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    std::string db, listen, config;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--help" || arg == "-h") return usage(nullptr), 0;
        if (i + 1 >= argc) return usage(("missing value for " + arg).c_str());
        if (arg == "--db") db = argv[++i];
        else if (arg == "--listen") listen = argv[++i];
        else if (arg == "--config") config = argv[++i];
        else return usage(("unknown option " + arg).c_str());
    }
    if (db.empty() || listen.empty() || config.empty()) return usage("--db, --listen and --config are required");
    const auto colon = listen.rfind(':');
    if (colon == std::string::npos) return usage("--listen wants HOST:PORT");
    int port = -1;
    try {
        port = std::stoi(listen.substr(colon + 1));
    } catch (...) {
    }
    if (port < 0 || port > 65535) return usage("the port must be 0..65535");

    // Block the stop signals before any thread starts, then wait for them.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

    try {
        lindra::ServerOptions options;
        options.db_path = db;
        options.host = listen.substr(0, colon);
        options.port = static_cast<std::uint16_t>(port);
        options.users = lindra::load_users(config);
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
