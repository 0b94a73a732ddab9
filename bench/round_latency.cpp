#include "round_latency.hpp"

#include "bench.hpp"
#include "changeset.hpp"
#include "support/proxy.hpp"

#include <lindra/replica.hpp>
#include <lindra/server.hpp>
#include <lindra/sync.hpp>
#include <lindra/testing/certs.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace lindra::bench {
namespace {

using Clock = std::chrono::steady_clock;

// The q-quantile of `ms` (nearest rank).
double quantile(std::vector<double> ms, double q) {
    std::sort(ms.begin(), ms.end());
    const auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(ms.size())));
    return ms[std::clamp<std::size_t>(rank, 1, ms.size()) - 1];
}

SyncResult checked(SyncClient& client) {
    auto r = client.sync();
    if (!r.ok()) throw std::runtime_error("a round failed: " + r.message);
    return r;
}

// The round's time; adds its frame bytes to `bytes`.
double timed_ms(SyncClient& client, std::int64_t expect_pushed, std::uint64_t& bytes) {
    const auto start = Clock::now();
    const auto r = checked(client);
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    if (r.changes_pushed != expect_pushed)
        throw std::runtime_error("a round pushed " + std::to_string(r.changes_pushed) + " changes, not " +
                                 std::to_string(expect_pushed));
    bytes += r.bytes_sent + r.bytes_received;
    return ms;
}

std::string url_for(bool websocket, bool insecure, std::uint16_t port) {
    const std::string authority = "127.0.0.1:" + std::to_string(port);
    if (websocket) return (insecure ? "ws://" : "wss://") + authority + "/lindra";
    return (insecure ? "" : "tls://") + authority;
}

}  // namespace

RoundLatency measure_round_latency(const std::filesystem::path& dir, bool insecure, int rounds, bool websocket) {
    std::filesystem::create_directories(dir);
    ServerOptions so;
    so.db_path = (dir / "latency-server.db").string();
    so.tokens.key_pem = generate_token_key();
    so.insecure = insecure;
    SyncOptions o;
    o.token = issue_token(so.tokens.key_pem, {.user = "device-c", .role = Role::admin});
    o.app = "lindra-bench";
    o.insecure = insecure;
    if (!insecure) {
        const auto ca = testing::make_ca("lindra bench CA");
        const auto leaf = testing::issue_leaf(ca, {.dns_names = {"localhost"}, .ip_addresses = {"127.0.0.1"}});
        so.tls = {leaf.certificate_pem, leaf.private_key_pem};
        o.tls.ca_pem = ca.certificate_pem;
    }
    SyncServer server(std::move(so));
    o.url = url_for(websocket, insecure, server.port());

    Replica replica((dir / "latency-c.db").string());
    SyncClient client(replica, o);
    constexpr int kWarmUp = 20;  // connections, caches and the server's first pages
    for (int i = 0; i < kWarmUp; ++i) checked(client);

    RoundLatency out;
    out.websocket = websocket;
    out.rounds = rounds;
    std::vector<double> noop, write10;
    std::uint64_t noop_bytes = 0, write_bytes = 0;
    for (int i = 0; i < rounds; ++i) noop.push_back(timed_ms(client, 0, noop_bytes));

    const auto rows = make_progress_rows(10 * rounds);
    for (int i = 0; i < rounds; ++i) {
        replica.batch([&](Writes& w) {  // untimed: the tablet's own writes
            for (int k = 10 * i; k < 10 * (i + 1); ++k) {
                const auto& r = rows[static_cast<std::size_t>(k)];
                w.complete_module(r.person, r.module, r.group, static_cast<int>(r.best_score), r.time_spent_s);
            }
        });
        write10.push_back(timed_ms(client, 70, write_bytes));  // 7 changes a write
    }
    out.bytes_per_change = static_cast<double>(write_bytes) / (70.0 * rounds);
    out.noop_p50_ms = quantile(noop, 0.50);
    out.noop_p99_ms = quantile(noop, 0.99);
    out.write10_p50_ms = quantile(write10, 0.50);
    out.write10_p99_ms = quantile(write10, 0.99);

    // One more no-op round through a proxy that counts what crosses it.
    test::Proxy proxy(server.port());
    SyncOptions via = o;
    via.url = url_for(websocket, insecure, proxy.port());
    SyncClient counted(replica, via);
    const auto r = checked(counted);
    out.noop_frame_bytes = r.bytes_sent + r.bytes_received;
    for (int i = 0; i < 500 && proxy.finished() < 1; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (proxy.finished() < 1) throw std::runtime_error("the proxy's connection did not end");
    out.noop_wire_bytes =
        proxy.bytes(test::Direction::client_to_server) + proxy.bytes(test::Direction::server_to_client);
    return out;
}

void print_round_latency(const RoundLatency& r, bool insecure) {
    std::printf("  rounds against a running server over %s, %d of each kind:\n",
                r.websocket ? (insecure ? "ws://" : "wss://") : (insecure ? "plain TCP" : "TLS"), r.rounds);
    std::printf("             nothing to do: p50 %.2f ms, p99 %.2f ms; 10 writes: p50 %.2f ms, p99 %.2f ms\n",
                r.noop_p50_ms, r.noop_p99_ms, r.write10_p50_ms, r.write10_p99_ms);
    std::printf("             a no-op round on the wire: %llu bytes with the handshake (%llu bytes of frames)\n",
                static_cast<unsigned long long>(r.noop_wire_bytes),
                static_cast<unsigned long long>(r.noop_frame_bytes));
    std::printf("             %.1f frame bytes per change pushed (10-write rounds, both ways)\n", r.bytes_per_change);
}

void print_transport_ratio(const RoundLatency& raw, const RoundLatency& ws) {
    std::printf("  WebSocket / raw frames: round p50 %.2fx (no-op), %.2fx (10 writes); bytes per change %.3fx;"
                " a no-op round's wire bytes %.2fx\n",
                ws.noop_p50_ms / raw.noop_p50_ms, ws.write10_p50_ms / raw.write10_p50_ms,
                ws.bytes_per_change / raw.bytes_per_change,
                static_cast<double>(ws.noop_wire_bytes) / static_cast<double>(raw.noop_wire_bytes));
}

std::string round_latency_json(const RoundLatency& r) {
    char out[600];
    const char* p = r.websocket ? "wss_" : "";
    std::snprintf(out, sizeof out,
                  "\"%sround_latency_rounds\": %d, \"%snoop_round_p50_ms\": %.2f, \"%snoop_round_p99_ms\": %.2f,"
                  " \"%swrite10_round_p50_ms\": %.2f, \"%swrite10_round_p99_ms\": %.2f,"
                  " \"%snoop_round_wire_bytes\": %llu, \"%sround_bytes_per_change\": %.1f",
                  p, r.rounds, p, r.noop_p50_ms, p, r.noop_p99_ms, p, r.write10_p50_ms, p, r.write10_p99_ms, p,
                  static_cast<unsigned long long>(r.noop_wire_bytes), p, r.bytes_per_change);
    return out;
}

int rounds(const Args& args) {
    const auto dir = make_temp_dir();
    const auto r = measure_round_latency(dir, args.insecure, args.rounds);
    const auto ws = measure_round_latency(dir / "ws", args.insecure, args.rounds, true);
    std::filesystem::remove_all(dir);
    print_round_latency(r, args.insecure);
    print_round_latency(ws, args.insecure);
    print_transport_ratio(r, ws);
    if (args.json) std::printf("{%s, %s}\n", round_latency_json(r).c_str(), round_latency_json(ws).c_str());
    return 0;
}

}  // namespace lindra::bench
