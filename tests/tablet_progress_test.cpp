// lindra-tablet sync, the real binary, against an in-process MockServer: on
// a pseudo-terminal it draws lindra-syncd's progress bar, page by page;
// elsewhere it prints its lines and nothing else.
#include "support/child_process.hpp"
#include "support/mock_course.hpp"

#include <lindra/testing/mock_server.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#ifndef LINDRA_TABLET_PATH
#error "LINDRA_TABLET_PATH must name the lindra-tablet binary"
#endif

namespace lindra::test {
namespace {

using namespace std::chrono_literals;
using lindra::testing::Frame;
using lindra::testing::MockServerOptions;

constexpr int kReflections = 5'000;  // 4 changes each: 20,000 changes
constexpr int kPageChanges = 2'000;  // the server's pages: 10 of them
constexpr int kPagesDelayed = 12;    // every page, with room to spare

// Ola's course on a server of plain TCP whose pull pages are small, with
// 5,000 of her reflections to pull, and her token in a file.
struct World : MockCourse {
    World()
        : MockCourse(
              MockServerOptions{.tls = false, .tweak = [](ServerOptions& o) { o.max_pull_changes = kPageChanges; }}) {
        mock.seed([&](Writes& x) {
            for (int i = 0; i < kReflections; ++i) x.write_reflection(ola, group, module, "r");
        });
        std::ofstream(token_file) << token << '\n';
    }

    std::vector<std::string> sync(const std::string& db) const {
        return {"--db", db, "sync", "--server", "127.0.0.1:" + std::to_string(mock.port()), "--token-file", token_file,
                "--insecure"};
    }

    std::string token_file = dir.file("token");
};

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

// The bar, its counts, the bytes in the units of the summary, the rate and
// the time left, as lindra-syncd's.
TEST_CASE("on a terminal sync draws a bar that moves page by page, with a rate and the time left") {
    World w;
    // Each page a little late, so that the pull lasts long enough on any
    // machine for a rate and the time left (from half a second on).
    for (int nth = 1; nth <= kPagesDelayed; ++nth) w.mock.faults().delay(Frame::pull_batch, 150ms, nth);
    const auto [out, status] = run_on_terminal(LINDRA_TABLET_PATH, w.sync(w.tablet.path()), 30s);
    INFO(out.substr(out.size() > 3000 ? out.size() - 3000 : 0));
    REQUIRE(status == 0);

    const std::regex page(R"(pulling (\[[#.]+\]) ([0-9]+) changes, ([0-9]+) writes to come, [0-9.]+ [kM]?B received)");
    std::vector<long> pulled, to_come;
    std::set<std::string> bars;
    for (auto it = std::sregex_iterator(out.begin(), out.end(), page); it != std::sregex_iterator(); ++it) {
        bars.insert((*it)[1]);
        pulled.push_back(std::stol((*it)[2]));
        to_come.push_back(std::stol((*it)[3]));
    }
    REQUIRE(!pulled.empty());
    // The total from Welcome, before the first page; none left at the end.
    CHECK(pulled.front() == 0);
    CHECK(to_come.front() >= kReflections);
    CHECK(to_come.back() == 0);
    CHECK(pulled.back() >= 4 * kReflections);
    CHECK(std::is_sorted(pulled.begin(), pulled.end()));
    CHECK(std::is_sorted(to_come.rbegin(), to_come.rend()));
    CHECK(pulled.size() >= 4 * kReflections / kPageChanges);  // a bar for each page, not only at the end
    CHECK(bars.size() >= 5);                                  // and it moved
    CHECK(std::regex_search(out, std::regex(R"(pulling \[[#.]+\] [0-9]+ changes, [0-9]+ writes to come, [0-9.]+ [kM]?B received, [0-9.]+k? changes/s, about [0-9.]+ m?s left)")));
    // The bar is erased before the summary, whose bytes are in its units.
    CHECK(std::regex_search(out, std::regex(R"(\r\x1b\[Ksynced: pushed 0 writes \(0 changes\), pulled [0-9]+ changes \([0-9]+ B sent, [0-9.]+ [kM]B received\)\r\n$)")));
}

TEST_CASE("off a terminal sync prints its summary line and no bar") {
    World w;
    const auto db = w.dir.file("kari.db");  // a fresh replica pulls all of it
    const auto out_file = w.dir.file("tablet.out");
    ChildProcess init(LINDRA_TABLET_PATH, {"--db", db, "init"}, out_file);
    REQUIRE(init.wait() == 0);
    ChildProcess sync(LINDRA_TABLET_PATH, w.sync(db), out_file);
    REQUIRE(sync.wait() == 0);
    const auto out = read_file(out_file);
    INFO(out);
    CHECK(std::regex_match(out, std::regex(R"(synced: pushed 0 writes \(0 changes\), pulled [0-9]+ changes \([0-9]+ B sent, [0-9.]+ [kM]B received\)\n)")));
}

}  // namespace
}  // namespace lindra::test
