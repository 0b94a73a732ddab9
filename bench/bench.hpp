// lindra-bench: benchmarks with their baselines in the same run.
#pragma once

#include <filesystem>

namespace lindra::bench {

struct Args {
    bool json = false;  // print one JSON object on the last line
    int count = 100'000;
    bool insecure = false;  // sync over plain TCP instead of TLS
    int rounds = 500;       // timed sync rounds of each kind (round latency)
};

std::filesystem::path make_temp_dir();

int local_writes(const Args& args);
int sync(const Args& args);
int rounds(const Args& args);
// `lindra-bench fleet ...`: many tablets against lindra-server processes
// (fleet.cpp); takes its own flags.
int fleet(int argc, char** argv);
// The device processes `lindra-bench sync` starts.
int sync_device(int argc, char** argv);

}  // namespace lindra::bench
