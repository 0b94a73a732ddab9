// lindra-syncd, the real binary, run as a child process against an
// in-process MockServer: --once, backoff while the server is away, the
// server's retry_after, SIGTERM in the middle of a large push, SIGHUP with a
// new token, a progress bar on a terminal, and wrong usage.
#include "support/child_process.hpp"
#include "support/mock_course.hpp"
#include "support/temp_dir.hpp"

#include <lindra/testing/mock_server.hpp>

#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#ifndef LINDRA_SYNCD_PATH
#error "LINDRA_SYNCD_PATH must name the lindra-syncd binary"
#endif

namespace lindra::test {
namespace {

using namespace std::chrono_literals;
using lindra::testing::ErrorCode;
using lindra::testing::Frame;
using lindra::testing::MockServerOptions;
using Clock = std::chrono::steady_clock;

void write_file(const std::string& path, const std::string& text) {
    // Written beside and renamed: the daemon never reads half a file.
    const std::string tmp = path + ".new";
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        out << text;
        REQUIRE(out.good());
    }
    REQUIRE(::chmod(tmp.c_str(), 0600) == 0);
    std::filesystem::rename(tmp, path);
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

// lindra-syncd with `args`; its stdout and stderr go to the file `output`.
struct Syncd : ChildProcess {
    Syncd(const std::vector<std::string>& args, const std::string& output)
        : ChildProcess(LINDRA_SYNCD_PATH, args, output) {}
};

// The mock course (Ola's tablet and token), a token file, and the daemon's
// arguments for this server.
struct World : MockCourse {
    explicit World(bool tls = false) : MockCourse(MockServerOptions{.tls = tls}) {
        write_file(token_file, token);
        if (tls) write_file(ca_file, mock.ca_pem());
    }

    std::vector<std::string> args(std::vector<std::string> more = {}) const {
        std::vector<std::string> a{
            "--db", tablet.path(), "--server", "127.0.0.1:" + std::to_string(mock.port()), "--token-file", token_file};
        if (mock.ca_pem().empty()) {
            a.emplace_back("--insecure");
        } else {
            a.emplace_back("--ca");
            a.push_back(ca_file);
        }
        a.insert(a.end(), more.begin(), more.end());
        return a;
    }
    std::string output() const { return read_file(output_file); }
    // Waits until the daemon's output holds `pattern` `times` times.
    bool output_has(const std::string& pattern, std::size_t times = 1, std::chrono::milliseconds timeout = 20s) const {
        const std::regex re(pattern);
        return eventually(
            [&] {
                const auto text = output();
                return static_cast<std::size_t>(std::distance(std::sregex_iterator(text.begin(), text.end(), re),
                                                              std::sregex_iterator())) >= times;
            },
            timeout);
    }

    std::string token_file = dir.file("token");
    std::string ca_file = dir.file("ca.pem");
    std::string output_file = dir.file("syncd.out");
};

// The waits of the daemon's "backoff: next try in ..." lines, in order.
std::vector<std::chrono::milliseconds> backoffs(const std::string& output) {
    static const std::regex re(R"(backoff: [0-9]+ writes? waits? for the server; next try in ([0-9.]+) (ms|s))");
    std::vector<std::chrono::milliseconds> out;
    for (auto it = std::sregex_iterator(output.begin(), output.end(), re); it != std::sregex_iterator(); ++it) {
        const double v = std::stod((*it)[1]);
        out.emplace_back(static_cast<std::int64_t>((*it)[2] == "s" ? v * 1000 : v));
    }
    return out;
}

// Nothing the daemon prints may carry a token, a name or free text.
void check_discreet(std::string output, const World& w) {
    // The temporary folder's random name could spell anything.
    const std::string dir = w.dir.path().string();
    for (auto at = output.find(dir); at != std::string::npos; at = output.find(dir)) output.erase(at, dir.size());
    CHECK(output.find(w.token) == std::string::npos);
    CHECK(output.find("Ola") == std::string::npos);
    CHECK(output.find("Nordmann") == std::string::npos);
    CHECK(output.find("felt unsure") == std::string::npos);
}

}  // namespace

TEST_CASE("a run with --once over TLS pushes the writes made before it started, and exits 3 for a refused one") {
    World w(/*tls=*/true);
    w.tablet.add_time_spent(w.ola, w.module, w.group, 60);
    w.tablet.write_reflection(w.ola, w.group, w.module, "I felt unsure at first");
    w.tablet.register_course("Ola's own course", "1", "nb", 1);  // a candidate may not: refused
    REQUIRE(w.tablet.outbox_size() == 3);

    Syncd d(w.args({"--once"}), w.output_file);
    const auto status = d.wait();
    const auto out = w.output();
    INFO(out);
    REQUIRE(status == 3);  // in sync, with a write refused on the way
    CHECK(w.server_time_spent() == 60);
    CHECK(w.mock.pushed_by(w.tablet.device_id()).size() == 3);
    CHECK(w.mock.rows().count("reflection") == 1);
    CHECK(w.mock.rows().count("course") == 1);
    CHECK(w.tablet.count("course") == 1);  // rolled back
    CHECK(w.tablet.outbox_size() == 0);
    CHECK(out.find("over TLS") != std::string::npos);
    CHECK(std::regex_search(out,
                            std::regex("round ok: pushed [1-9][0-9]* writes? \\([1-9][0-9]* changes?; 1 refused\\), pulled [0-9]+ "
                                       "changes?, "
                                       "[0-9.]+ [kM]?B sent, [0-9.]+ [kM]?B received, [0-9.]+ m?s")));
    CHECK(out.find("refused by the server: entity course, code permission_denied, seq 3") != std::string::npos);
    CHECK(out.find("writes refused: 1, rolled back; what they set stays in the replica") != std::string::npos);
    CHECK(out.find("in sync, with 1 writes refused on the way") != std::string::npos);
    // Kept for the app (and pushed once, above: not retried).
    REQUIRE(w.tablet.refused_writes().size() == 1);
    CHECK(w.tablet.refused_writes()[0].entity == "course");
    CHECK(out.find("\033") == std::string::npos);  // no bar in a file
    check_discreet(out, w);
    CHECK(out.find("own course") == std::string::npos);
}

TEST_CASE("a run with --once says why it is not in sync, and exits 1") {
    SECTION("a refused token: at once, without retrying") {
        World w;
        w.tablet.add_time_spent(w.ola, w.module, w.group, 60);
        write_file(w.token_file, "not-a-token-but-secret-stuff\n");
        Syncd d(w.args({"--once", "--min-backoff-ms", "10"}), w.output_file);
        const auto status = d.wait();
        const auto out = w.output();
        INFO(out);
        CHECK(status == 1);
        CHECK(out.find("not in sync: the server refused the token") != std::string::npos);
        CHECK(out.find("not-a-token") == std::string::npos);
        CHECK(w.mock.frames(Frame::hello) == 1);
        CHECK(w.tablet.outbox_size() == 1);
    }
    SECTION("no server: backs off until --timeout") {
        World w;
        w.tablet.add_time_spent(w.ola, w.module, w.group, 60);
        w.mock.stop();
        Syncd d(w.args({"--once", "--timeout", "1", "--min-backoff-ms", "50"}), w.output_file);
        const auto status = d.wait();
        const auto out = w.output();
        INFO(out);
        CHECK(status == 1);
        CHECK(out.find("not in sync within --timeout 1 s") != std::string::npos);
        CHECK(backoffs(out).size() >= 2);
        CHECK(d.ran() < 5s);
        CHECK(w.tablet.outbox_size() == 1);
    }
}

TEST_CASE("with the server away it backs off ever longer; back, it gets the writes, and new ones at once") {
    World w;
    w.tablet.add_time_spent(w.ola, w.module, w.group, 60);
    w.mock.stop();
    Syncd d(w.args({"--interval", "3600", "--min-backoff-ms", "100", "--poll-ms", "100"}), w.output_file);

    REQUIRE(w.output_has("backoff: [0-9]+ writes? waits? for the server; next try in", 3));
    const auto waits = backoffs(w.output());
    INFO(w.output());
    REQUIRE(waits.size() >= 3);
    CHECK(waits[0] >= 75ms);
    CHECK(waits[0] <= 100ms);
    CHECK(waits[1] > waits[0]);
    CHECK(waits[2] > waits[1]);
    CHECK(w.output().find("round offline") != std::string::npos);

    w.mock.start();
    REQUIRE(eventually([&] { return w.server_time_spent() == 60; }));
    REQUIRE(w.output_has("round ok: pushed [1-9]"));

    // A local app writes: pushed long before the hour's interval is up.
    const auto written = Clock::now();
    w.tablet.add_time_spent(w.ola, w.module, w.group, 30);
    REQUIRE(eventually([&] { return w.server_time_spent() == 90; }, 10s));
    CHECK(Clock::now() - written < 5s);
    REQUIRE(eventually([&] { return w.tablet.outbox_size() == 0; }, 5s));

    d.signal(SIGTERM);
    CHECK(d.wait() == 0);
    INFO(w.output());
    CHECK(w.output().find("SIGTERM: stopped") != std::string::npos);
    check_discreet(w.output(), w);
}

TEST_CASE("a refused write is reported once and kept; the daemon neither backs off nor pushes it again") {
    World w;
    Syncd d(w.args({"--interval", "3600", "--min-backoff-ms", "10", "--poll-ms", "50"}), w.output_file);
    REQUIRE(w.output_has("round ok"));
    w.tablet.register_course("Ola's own course", "1", "nb", 1);  // a candidate may not: refused
    REQUIRE(w.output_has("writes refused: 1, rolled back"));
    // Polls find nothing more to push: the refusal is not retried.
    std::this_thread::sleep_for(500ms);
    d.signal(SIGTERM);
    CHECK(d.wait() == 0);
    const auto out = w.output();
    INFO(out);
    CHECK(w.mock.pushed_by(w.tablet.device_id()).size() == 1);
    CHECK(out.find("backoff") == std::string::npos);
    CHECK(w.tablet.outbox_size() == 0);
    REQUIRE(w.tablet.refused_writes().size() == 1);
    CHECK(w.tablet.refused_writes()[0].entity == "course");
    check_discreet(out, w);
    CHECK(out.find("own course") == std::string::npos);
}

TEST_CASE("a round at start, then one each --interval, with nothing written") {
    World w;
    Syncd d(w.args({"--interval", "1"}), w.output_file);
    const auto start = Clock::now();
    REQUIRE(eventually([&] { return w.mock.frames(Frame::hello) >= 3; }, 10s));
    CHECK(Clock::now() - start >= 1900ms);
    d.signal(SIGINT);
    CHECK(d.wait() == 0);
    INFO(w.output());
    CHECK(w.output().find("SIGINT: stopped") != std::string::npos);
}

TEST_CASE("the server's retry_after is obeyed: the next connection comes no sooner") {
    World w;
    w.tablet.add_time_spent(w.ola, w.module, w.group, 60);
    constexpr auto retry_after = 1500ms;
    w.mock.faults().fail(Frame::hello, ErrorCode::rate_limited, retry_after);

    Syncd d(w.args({"--once", "--min-backoff-ms", "10"}), w.output_file);
    std::vector<Clock::time_point> seen;  // when each connection was first noticed
    REQUIRE(eventually([&] {
        while (seen.size() < w.mock.connections()) seen.push_back(Clock::now());
        return seen.size() >= 2;
    }));
    const auto status = d.wait();
    const auto out = w.output();
    INFO(out);
    REQUIRE(status == 0);
    // Noticing the first connection late (a busy machine) can only shorten
    // the gap seen here; without retry_after it would be about 10 ms.
    CHECK(seen[1] - seen[0] >= retry_after - 100ms);
    CHECK(d.ran() >= retry_after);  // exact: from before the first connection to after the second
    CHECK(w.mock.frames(Frame::hello) == 2);
    CHECK(out.find("round server error (rate_limited)") != std::string::npos);
    const auto waits = backoffs(out);
    REQUIRE(waits.size() == 1);
    CHECK(waits[0] >= retry_after);
    CHECK(out.find("the server asked for 1.5 s") != std::string::npos);
    CHECK(w.server_time_spent() == 60);
}

TEST_CASE("SIGTERM in the middle of a large push: exits 0 at once, and nothing is lost or doubled") {
    World w;
    constexpr int writes = 3000;
    w.tablet.batch([&](Writes& x) {
        for (int i = 0; i < writes; ++i) x.add_time_spent(w.ola, w.module, w.group, 1);
    });
    REQUIRE(w.tablet.outbox_size() == writes);
    // The third PushAck takes three seconds: the daemon is in the middle
    // of its round when it is told to stop. (The MockServer waits for the
    // delayed frame when it stops, so longer would only slow the test.)
    w.mock.faults().delay(Frame::push_ack, 3s, 3);

    {
        Syncd d(w.args({"--interval", "3600", "--push-batch", "500"}), w.output_file);
        REQUIRE(eventually([&] { return w.mock.frames(Frame::push) >= 3; }));
        // The first two batches are acknowledged; the third one's ack is
        // on its way, slowly.
        REQUIRE(eventually([&] { return w.tablet.outbox_size() <= writes - 900; }));
        std::this_thread::sleep_for(100ms);
        const auto stop = Clock::now();
        d.signal(SIGTERM);
        const auto status = d.wait(8s);
        INFO(w.output());
        REQUIRE(status == 0);
        CHECK(Clock::now() - stop < 2s);  // well before the ack would have come
        CHECK(w.output().find("SIGTERM: cancelling the running round") != std::string::npos);
        CHECK(w.output().find("round cancelled") != std::string::npos);
    }
    // What was acknowledged left the outbox; the rest waits.
    const auto left = w.tablet.outbox_size();
    CHECK(left > 0);
    CHECK(left < writes);
    CHECK(w.server_time_spent() >= writes - left);

    Syncd again(w.args({"--once", "--push-batch", "500"}), w.output_file);
    const auto status = again.wait();
    INFO(w.output());
    REQUIRE(status == 0);
    CHECK(w.tablet.outbox_size() == 0);
    CHECK(w.server_time_spent() == writes);  // every second once: none lost, none counted twice
    std::set<std::int64_t> seqs;
    for (const auto& p : w.mock.pushed_by(w.tablet.device_id())) seqs.insert(p.seq);
    CHECK(seqs.size() == static_cast<std::size_t>(writes));
}

TEST_CASE("a refused token waits for SIGHUP, which rereads the token file") {
    World w;
    w.tablet.add_time_spent(w.ola, w.module, w.group, 60);
    const std::string bad = "garbage-token-do-not-print";
    write_file(w.token_file, bad + "\n");
    Syncd d(w.args({"--interval", "3600", "--min-backoff-ms", "10", "--max-backoff", "60", "--poll-ms", "50"}),
            w.output_file);

    REQUIRE(w.output_has("the server refused the token; [0-9]+ writes? waits? for the server; next try in 60 s or on SIGHUP"));
    // No hammering: the daemon waits for the operator, local writes or not.
    w.tablet.add_time_spent(w.ola, w.module, w.group, 30);
    std::this_thread::sleep_for(500ms);
    CHECK(w.mock.frames(Frame::hello) == 1);

    write_file(w.token_file, w.token + "\n");
    d.signal(SIGHUP);
    REQUIRE(eventually([&] { return w.server_time_spent() == 90; }));
    REQUIRE(w.output_has("SIGHUP: reread the token file"));
    CHECK(w.mock.frames(Frame::hello) == 2);

    d.signal(SIGTERM);
    CHECK(d.wait() == 0);
    const auto out = w.output();
    INFO(out);
    CHECK(out.find(bad) == std::string::npos);
    check_discreet(out, w);
}

TEST_CASE("on a terminal a round draws a progress bar") {
    World w;
    w.tablet.batch([&](Writes& x) {
        for (int i = 0; i < 40; ++i) x.add_time_spent(w.ola, w.module, w.group, 1);
    });
    const auto [out, status] = run_on_terminal(LINDRA_SYNCD_PATH, w.args({"--once", "--push-batch", "10"}), 20s);
    INFO(out);
    REQUIRE(status == 0);
    CHECK(out.find("pushing [") != std::string::npos);
    CHECK(out.find("pulling [") != std::string::npos);
    CHECK(out.find("round ok: pushed") != std::string::npos);
    CHECK(w.server_time_spent() == 40);
}

// A pull of 150,000 changes in pages of 5,000, on a pseudo-terminal: the
// bar moves with the pages, says how many are left from the first page on,
// and shows a rate and the time left; the round's line gives its bytes in
// the bar's units.
TEST_CASE("on a terminal a long pull moves page by page, with a rate and the time left") {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    constexpr int kScale = 10;  // the same pages, a tenth of the changes: sanitizers are slow
#else
    constexpr int kScale = 1;
#endif
    World w;
    const auto start = Clock::now();
    w.mock.seed([&](Writes& x) {
        // A reflection is 4 changes (its fields): 37,500 of them.
        for (int i = 0; i < 37'500 / kScale; ++i) x.write_reflection(w.ola, w.group, w.module, "r");
    });
    INFO("seeded in " << std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count() << " ms");
    const auto [out, status] =
        run_on_terminal(LINDRA_SYNCD_PATH, w.args({"--once", "--pull-batch", std::to_string(5000 / kScale)}), 50s);
    INFO(out.substr(out.size() > 3000 ? out.size() - 3000 : 0));
    REQUIRE(status == 0);
    const std::regex page(R"(pulling \[[#.]+\] ([0-9]+) changes, ([0-9]+) writes to come)");
    std::vector<long> pulled, to_come;
    for (auto it = std::sregex_iterator(out.begin(), out.end(), page); it != std::sregex_iterator(); ++it) {
        pulled.push_back(std::stol((*it)[1]));
        to_come.push_back(std::stol((*it)[2]));
    }
    REQUIRE(!pulled.empty());
    // The total from Welcome, before the first page: all 37,500 writes.
    CHECK(pulled.front() == 0);
    CHECK(to_come.front() >= 37'500 / kScale);
    CHECK(pulled.size() >= 20);  // a bar for each page, not only at the end
    CHECK(std::is_sorted(pulled.begin(), pulled.end()));
    if (kScale == 1)  // the rate shows after half a second of a phase
        CHECK(std::regex_search(out, std::regex(R"(pulling \[[#.]+\] [0-9]+ changes, [0-9]+ writes to come, [0-9.]+ [kM]?B received, [0-9.]+k? changes/s, about [0-9.]+ m?s left)")));
    CHECK(std::regex_search(out, std::regex(R"(round ok: pushed 0 writes \(0 changes; 0 refused\), pulled [0-9]+ changes, [0-9.]+ [kM]?B sent, [0-9.]+ [kM]?B received)")));
    CHECK(pulled.back() >= 150'000 / kScale);
}

TEST_CASE("wrong usage exits 2 with a message, writes nothing and never echoes a token") {
    World w;
    const std::string db = w.dir.file("never.db");
    const std::string server = "127.0.0.1:" + std::to_string(w.mock.port());
    struct Case {
        std::vector<std::string> args;
        std::string message;
    };
    const std::vector<Case> cases{
        {{}, "--db PATH is required"},
        {{"--db", db, "--token-file", w.token_file}, "--server URL is required"},
        {{"--db", db, "--server", server}, "--token-file FILE is required"},
        {{"--db", db, "--server", "127.0.0.1", "--token-file", w.token_file}, "missing port (host:port)"},
        {{"--db", db, "--server", "127.0.0.1:70000", "--token-file", w.token_file}, "bad port \"70000\": a number from 1 to 65535"},
        {{"--db", db, "--server", server, "--token-file", w.token_file, "--interval", "soon"},
         "--interval wants a whole number of seconds"},
        {{"--db", db, "--server", server, "--token-file", w.token_file, "--interval", "0"},
         "--interval wants a whole number of seconds"},
        {{"--db", db, "--server", server, "--token-file", w.token_file, "--max-backoff"},
         "--max-backoff wants a value"},
        {{"--db", db, "--server", server, "--token-file", w.token_file, "--insecure", "--ca", w.ca_file},
         "does not go with --ca"},
        {{"--db", db, "--server", server, "--token-file", w.token_file, "--timeout", "5"},
         "--timeout goes with --once"},
        {{"--db", db, "--server", server, "--token-file", w.token_file, "--frobnicate"}, "unknown option --frobnicate"},
        {{"--db", db, "--server", server, "--token", w.token}, "there is no --token"},
        {{"--db", db, "--server", server, "--token-file", w.token_file, w.token}, "unexpected argument"},
        {{"--db", db, "--db", db, "--server", server, "--token-file", w.token_file}, "--db is given twice"},
    };
    for (const auto& c : cases) {
        std::string line;
        for (const auto& a : c.args) line += a + " ";
        INFO("lindra-syncd " << line);
        Syncd d(c.args, w.output_file);
        const auto status = d.wait();
        const auto out = w.output();
        INFO(out);
        CHECK(status == 2);
        CHECK(out.find(c.message) != std::string::npos);
        CHECK(out.find("--help") != std::string::npos);
        CHECK(out.find(w.token) == std::string::npos);
        CHECK_FALSE(std::filesystem::exists(db));
    }

    Syncd help({"--help"}, w.output_file);
    CHECK(help.wait() == 0);
    CHECK(w.output().find("usage: lindra-syncd --db PATH --server URL --token-file FILE") != std::string::npos);
}

TEST_CASE("a token file or replica that is not there exits 1 and says which") {
    World w;
    const std::string server = "127.0.0.1:" + std::to_string(w.mock.port());
    SECTION("a missing token file") {
        Syncd d({"--db", w.tablet.path(), "--server", server, "--token-file", w.dir.file("nope"), "--insecure"},
                w.output_file);
        CHECK(d.wait() == 1);
        CHECK(w.output().find("cannot read the token file " + w.dir.file("nope") + ": No such file or directory") !=
              std::string::npos);
    }
    SECTION("an empty token file") {
        write_file(w.token_file, "\n");
        Syncd d(w.args({"--once"}), w.output_file);
        CHECK(d.wait() == 1);
        CHECK(w.output().find("the token file " + w.token_file + " is empty") != std::string::npos);
    }
    SECTION("a replica that does not exist, without --create") {
        const std::string db = w.dir.file("never.db");
        Syncd d({"--db", db, "--server", server, "--token-file", w.token_file, "--insecure"}, w.output_file);
        CHECK(d.wait() == 1);
        CHECK(w.output().find("does not exist (--create makes a new one)") != std::string::npos);
        CHECK_FALSE(std::filesystem::exists(db));
    }
}

}  // namespace lindra::test
