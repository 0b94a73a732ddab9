#include "bench.hpp"

#include <lindra/error.hpp>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <random>
#include <string>
#include <string_view>

namespace lindra::bench {

std::filesystem::path make_temp_dir() {
    std::random_device rd;
    auto dir = std::filesystem::temp_directory_path() / ("lindra-bench-" + std::to_string(rd()));
    std::filesystem::create_directories(dir);
    return dir;
}

}  // namespace lindra::bench

namespace {
int usage() {
    std::fprintf(stderr,
                 "usage: lindra-bench local-writes|sync|rounds [--json] [--count N] [--rounds N] [--insecure]\n"
                 "       lindra-bench fleet [--devices N] [--rate R] [--servers K] [--store sqlite|postgres] ...\n"
                 "  local-writes  module-progress writes through the API vs raw SQLite inserts\n"
                 "  sync          writes on device A pushed and pulled to device B through a server,\n"
                 "                vs the same rows as an SQLite session changeset; then the rounds below\n"
                 "  rounds        how long a sync round takes against a running server, with nothing\n"
                 "                to do and with 10 writes to push; a no-op round's bytes on the wire\n"
                 "  fleet         many tablets syncing at an offered rate with lindra-server processes\n"
                 "                (lindra-bench fleet --help for its flags)\n"
                 "  --json        print one JSON object with the figures on the last line\n"
                 "  --count N     writes per mode (default 100000)\n"
                 "  --rounds N    timed rounds of each kind (default 500)\n"
                 "  --insecure    sync over plain TCP instead of TLS\n");
    return 2;
}
}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) return usage();
    const std::string_view command = argv[1];
    if (command == "sync-device") return lindra::bench::sync_device(argc, argv);
    if (command == "fleet") return lindra::bench::fleet(argc, argv);
    lindra::bench::Args args;
    for (int i = 2; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (a == "--json")
            args.json = true;
        else if (a == "--insecure")
            args.insecure = true;
        else if (a == "--count" && i + 1 < argc)
            args.count = std::atoi(argv[++i]);
        else if (a == "--rounds" && i + 1 < argc)
            args.rounds = std::atoi(argv[++i]);
        else
            return usage();
    }
    if (args.count < 20 || args.count % 20 != 0) {
        std::fprintf(stderr, "lindra-bench: --count must be a positive multiple of 20\n");
        return 2;
    }
    if (args.rounds < 1) {
        std::fprintf(stderr, "lindra-bench: --rounds must be a positive number\n");
        return 2;
    }
    try {
        if (command == "local-writes") return lindra::bench::local_writes(args);
        if (command == "sync") return lindra::bench::sync(args);
        if (command == "rounds") return lindra::bench::rounds(args);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "lindra-bench: %s\n", e.what());
        return 1;
    }
    return usage();
}
