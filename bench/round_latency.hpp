// How long one sync round takes a tablet against a server that is already
// running: a round with nothing to do, and a round that pushes 10 writes,
// each timed from sync() to its result over loopback (TLS unless
// --insecure), over raw frames or WebSocket (wss://, ws:// when insecure).
// Also the bytes a no-op round puts on the wire, TLS handshake and close
// included, counted by a loopback proxy between the two, and the frame
// bytes per pushed change.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace lindra::bench {

struct RoundLatency {
    bool websocket = false;
    int rounds = 0;  // of each kind
    double noop_p50_ms = 0, noop_p99_ms = 0;
    double write10_p50_ms = 0, write10_p99_ms = 0;
    std::uint64_t noop_wire_bytes = 0;   // TCP payload both ways: TLS records, handshake and close_notify included
    std::uint64_t noop_frame_bytes = 0;  // lindra's frames alone, as SyncResult counts them
    double bytes_per_change = 0;         // frame bytes both ways of the 10-write rounds, per change pushed
};

// Starts a server on a fresh store in `dir` and runs one replica against it.
// Throws std::runtime_error if a round fails.
RoundLatency measure_round_latency(const std::filesystem::path& dir, bool insecure, int rounds,
                                   bool websocket = false);

void print_round_latency(const RoundLatency& r, bool insecure);
// WebSocket against raw frames: the ratios of their figures.
void print_transport_ratio(const RoundLatency& raw, const RoundLatency& ws);
// The figures as JSON members (no braces), to join the sync bench's object;
// a WebSocket run's names start with "wss_".
std::string round_latency_json(const RoundLatency& r);

}  // namespace lindra::bench
