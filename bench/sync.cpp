// lindra-bench sync: 100,000 module-progress writes made on device A, pushed
// to a server and pulled to device B over loopback TLS (plain TCP with
// --insecure), end to end; and in
// the same run the same rows moved as an SQLite session changeset (A ->
// server -> B), the hand-rolled alternative.
//
// The server runs in this process; A and B run as child processes (this
// binary's hidden `sync-device` command), so each client's peak RSS is its
// own. B starts pulling while A pushes: the clock runs from A's first push
// to B's last applied pull.
#include "bench.hpp"
#include "changeset.hpp"
#include "round_latency.hpp"
#include <lindra/testing/certs.hpp>

#include <lindra/replica.hpp>
#include <lindra/server.hpp>
#include <lindra/sync.hpp>

#include <spawn.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace lindra::bench {
namespace {

using Clock = std::chrono::steady_clock;

struct Child {
    pid_t pid = 0;
    std::filesystem::path out;  // key=value lines the child wrote
};

Child spawn_device(const std::vector<std::string>& args, const std::filesystem::path& out) {
    std::vector<std::string> all = {"/proc/self/exe", "sync-device", "--out", out.string()};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = 0;
    if (posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, argv.data(), environ) != 0)
        throw std::runtime_error("cannot start a device process");
    return {pid, out};
}

// Waits for the child; returns what it reported.
std::map<std::string, double> wait_device(const Child& c) {
    int status = 0;
    if (waitpid(c.pid, &status, 0) != c.pid) throw std::runtime_error("lost a device process");
    std::map<std::string, double> values;
    std::ifstream in(c.out);
    for (std::string key; in >> key;) {
        double v = 0;
        in >> v;
        values[key] = v;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || !values.count("ok")) {
        std::ifstream err(c.out.string() + ".err");
        std::stringstream msg;
        msg << err.rdbuf();
        throw std::runtime_error("a device process failed: " + msg.str());
    }
    return values;
}

double seconds_between(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

// The peak RSS of this process image in MiB (VmHWM). Not getrusage: a
// posix_spawn child runs in its parent's memory until exec, and ru_maxrss
// would count the parent's.
double own_peak_rss_mib() {
    std::ifstream status("/proc/self/status");
    for (std::string key; status >> key;) {
        if (key == "VmHWM:") {
            double kib = 0;
            status >> kib;
            return kib / 1024.0;
        }
        status.ignore(4096, '\n');
    }
    return 0;
}

}  // namespace

// The hidden child: `sync-device --out FILE --db PATH --port P --token T
// --mode push|pull [--expect N] (--ca FILE | --insecure 1)`. Writes "key
// value" lines to FILE.
int sync_device(int argc, char** argv) {
    std::map<std::string, std::string> opt;
    for (int i = 2; i + 1 < argc; i += 2) opt[argv[i]] = argv[i + 1];
    std::ofstream out(opt["--out"]);
    try {
        Replica replica(opt["--db"]);
        SyncOptions o;
        o.port = static_cast<std::uint16_t>(std::stoi(opt["--port"]));
        o.token = opt["--token"];
        o.app = "lindra-bench";
        o.insecure = opt.count("--insecure") > 0;
        if (!o.insecure) {
            std::ifstream ca(opt["--ca"]);
            std::stringstream pem;
            pem << ca.rdbuf();
            o.tls.ca_pem = pem.str();
        }
        SyncClient client(replica, o);
        if (opt["--mode"] == "push") {
            const auto r = client.sync();
            if (!r.ok()) throw std::runtime_error(r.message);
            out << "pushed " << r.changes_pushed << "\nbytes_sent " << r.bytes_sent << "\n";
        } else {
            const auto expect = std::stoll(opt["--expect"]);
            const auto deadline = Clock::now() + std::chrono::minutes(5);
            std::int64_t rows = 0;
            for (int round = 0; rows < expect; ++round) {
                if (Clock::now() > deadline) throw std::runtime_error("B did not get every row in 5 minutes");
                const auto r = client.sync();
                if (!r.ok()) throw std::runtime_error(r.message);
                rows = replica.count("module_progress");
                if (rows < expect) std::this_thread::sleep_for(std::chrono::milliseconds(20));
                out << "rounds " << round + 1 << "\n";
            }
            const auto noop = client.sync();  // nothing left to do
            if (!noop.ok()) throw std::runtime_error(noop.message);
            out << "rows " << rows << "\nnoop_bytes " << noop.bytes_sent + noop.bytes_received << "\n";
        }
        out << "peak_rss_mib " << own_peak_rss_mib() << "\nok 1\n";
        return 0;
    } catch (const std::exception& e) {
        std::ofstream(opt["--out"] + ".err") << e.what();
        return 1;
    }
}

int sync(const Args& args) {
    const int n = args.count;
    const auto dir = make_temp_dir();
    const auto rows = make_progress_rows(n);
    std::printf("sync: %d module-progress writes from device A to device B through the server, over %s\n", n,
                args.insecure ? "plain TCP" : "TLS");

    ServerOptions so;
    so.db_path = (dir / "server.db").string();
    // Admins: the benchmark measures sync, not the authorization checks.
    so.tokens.key_pem = generate_token_key();
    const auto token_a = issue_token(so.tokens.key_pem, {.user = "device-a", .role = Role::admin});
    const auto token_b = issue_token(so.tokens.key_pem, {.user = "device-b", .role = Role::admin});
    // A throw-away CA and certificate: the devices trust the CA's file.
    std::vector<std::string> transport = {"--insecure", "1"};
    so.insecure = args.insecure;
    if (!args.insecure) {
        const auto ca = testing::make_ca("lindra bench CA");
        const auto leaf = testing::issue_leaf(ca, {.dns_names = {"localhost"}, .ip_addresses = {"127.0.0.1"}});
        so.tls = {leaf.certificate_pem, leaf.private_key_pem};
        std::ofstream(dir / "ca.pem") << ca.certificate_pem;
        transport = {"--ca", (dir / "ca.pem").string()};
    }
    SyncServer server(std::move(so));
    const auto port = std::to_string(server.port());

    {  // untimed: A writes, 1,000 per transaction
        Replica a((dir / "a.db").string());
        for (std::size_t i = 0; i < rows.size(); i += 1000)
            a.batch([&](Writes& w) {
                for (std::size_t k = i; k < std::min(rows.size(), i + 1000); ++k) {
                    const auto& r = rows[k];
                    w.complete_module(r.person, r.module, r.group, static_cast<int>(r.best_score), r.time_spent_s);
                }
            });
        Replica b((dir / "b.db").string());  // created now, so its setup is not timed either
    }

    const auto start = Clock::now();
    const Child a = spawn_device({"--db", (dir / "a.db").string(), "--port", port, "--token", token_a, "--mode", "push",
                                  transport[0], transport[1]},
                                 dir / "a.out");
    const Child b = spawn_device({"--db", (dir / "b.db").string(), "--port", port, "--token", token_b, "--mode", "pull",
                                  "--expect", std::to_string(n), transport[0], transport[1]},
                                 dir / "b.out");
    const auto b_out = wait_device(b);
    const auto end = Clock::now();
    const auto a_out = wait_device(a);
    const double rss_a = a_out.at("peak_rss_mib"), rss_b = b_out.at("peak_rss_mib");
    server.stop();

    const double e2e = n / seconds_between(start, end);
    const double wire = a_out.at("bytes_sent") / n;
    const double rss = std::max(rss_a, rss_b);
    const double noop = b_out.at("noop_bytes");
    std::printf("  lindra:    %9.0f writes/s end to end (B pulled in %g rounds), %.1f bytes per write on the wire\n",
                e2e, b_out.at("rounds"), wire);
    std::printf("             peak RSS: device A %.1f MiB, device B %.1f MiB; a no-op sync: %g bytes\n", rss_a, rss_b,
                noop);

    const auto latency = measure_round_latency(dir, args.insecure, args.rounds);
    const auto ws_latency = measure_round_latency(dir / "ws", args.insecure, args.rounds, true);
    print_round_latency(latency, args.insecure);
    print_round_latency(ws_latency, args.insecure);
    print_transport_ratio(latency, ws_latency);

    const auto cs = run_changeset(rows, dir);
    const double changeset = n / cs.seconds;
    std::printf("  changeset: %9.0f writes/s end to end, %.1f bytes per write on the wire\n", changeset,
                cs.bytes_per_row);
    std::printf("  ratio lindra / changeset: %.2f\n", e2e / changeset);
    std::filesystem::remove_all(dir);
    if (args.json)
        std::printf(
            "{\"changes\": %d, \"tls\": %s, \"e2e_per_s\": %.0f, \"changeset_per_s\": %.0f, \"ratio_vs_changeset\": %.3f,"
            " \"wire_bytes_per_change\": %.1f, \"client_peak_rss_mib\": %.1f, \"noop_round_bytes\": %.0f, %s, %s}\n",
            n, args.insecure ? "false" : "true", e2e, changeset, e2e / changeset, wire, rss, noop,
            round_latency_json(latency).c_str(), round_latency_json(ws_latency).c_str());
    return 0;
}

}  // namespace lindra::bench
