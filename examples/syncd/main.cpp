// lindra-syncd: keeps one local replica in sync with a server, for shared
// PCs and for integrations with other systems (DESIGN.md §8). Another
// process (the app) writes the same database; the daemon pushes its writes
// soon after and pulls on a schedule.
//
//   lindra-syncd --db PATH --server HOST:PORT --token-file FILE [--interval S] [--once]
//                [--ca FILE] [--insecure] [--max-backoff S]
//
// Exit status: 0 stopped by SIGTERM or SIGINT, or --once in sync; 1 an
// error, or --once not in sync; 2 wrong usage; 3 --once in sync, but the
// server refused writes on the way. README.md has the rest.
#include "daemon.hpp"
#include "options.hpp"
#include "reporter.hpp"
#include "signals.hpp"

#include <unistd.h>

#include <exception>
#include <iostream>
#include <span>

int main(int argc, char** argv) {
    try {
        syncd::block_signals();  // before any thread, the library's included, starts
    } catch (const std::exception& e) {
        std::cerr << "lindra-syncd: " << e.what() << '\n';
        return 1;
    }
    syncd::Options options;
    try {
        options = syncd::parse_options({argv + 1, static_cast<std::size_t>(argc > 0 ? argc - 1 : 0)});
    } catch (const syncd::UsageError& e) {
        std::cerr << "lindra-syncd: " << e.what() << "\n(lindra-syncd --help lists the options)\n";
        return 2;
    }
    if (options.help) {
        syncd::print_usage(std::cout);
        return 0;
    }
    syncd::Reporter report(std::cerr, ::isatty(STDERR_FILENO) == 1);
    try {
        syncd::Daemon daemon(options, report);
        syncd::SignalThread signals([&daemon](int signal) { daemon.on_signal(signal); });
        return daemon.run();
    } catch (const std::exception& e) {
        report.line(e.what());
        return 1;
    }
}
