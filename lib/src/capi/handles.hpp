// The C API's handles: the C++ objects behind lindra.h's opaque types.
#pragma once

#include <lindra/lindra.h>
#include <lindra/replica.hpp>

#include <atomic>
#include <thread>

struct lindra_replica {
    lindra::Replica replica;
    // While lindra_replica_batch runs its callback: the batch's writes and
    // the thread they belong to (set and read by that thread only).
    std::atomic<std::thread::id> batch_thread{};
    lindra::Writes* batch = nullptr;

    // Where a write made through this handle on this thread goes.
    lindra::Writes& writes();
};
