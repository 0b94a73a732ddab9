// lindra's log: levels, the handler's life, and the promise of
// lindra/log.hpp that no token, name, free text or path reaches it, at any
// level, through a whole course of rounds (ok, refused writes, bad token,
// offline) against a MockServer.
#include "core/log.hpp"
#include "support/db.hpp"
#include "support/mock_course.hpp"

#include <lindra/log.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <fstream>
#include <mutex>
#include <regex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace lindra::test {
namespace {

struct Line {
    LogLevel level;
    std::string domain, message;
};

// Collects every line at `min` and above while it lives.
struct Captured {
    explicit Captured(LogLevel min = LogLevel::debug) {
        set_log_handler(
            [this](LogLevel level, std::string_view domain, std::string_view message) {
                std::lock_guard lock(mutex);
                lines.push_back({level, std::string(domain), std::string(message)});
            },
            min);
    }
    ~Captured() { set_log_handler({}); }
    std::vector<Line> take() {
        std::lock_guard lock(mutex);
        return lines;
    }
    bool any(std::string_view domain, std::string_view text) {
        for (const auto& l : take())
            if (l.domain == domain && l.message.find(text) != std::string::npos) return true;
        return false;
    }
    std::mutex mutex;
    std::vector<Line> lines;  // guarded by mutex
};

TEST_CASE("nothing personal reaches the log at any level") {
    Captured log(LogLevel::debug);
    MockCourse c;
    const std::string reflection = "Sat with Kari Haugen through her last night";
    Id stranger;
    c.tablet.batch([&](Writes& w) {
        w.complete_module(c.ola, c.module, c.group, 80, 600);
        w.write_reflection(c.ola, c.group, c.module, reflection);
        // A candidate may not register people: refused, and rolled back.
        stranger = w.register_person("Kari Haugen", Profession::nurse, c.org);
    });
    const auto r = c.sync();
    REQUIRE(r.ok());
    REQUIRE(r.rejected.size() == 1);

    SyncOptions bad = c.mock.client_options("not.a.token");
    CHECK(SyncClient(c.tablet, bad).sync().outcome == SyncOutcome::auth_failed);
    c.mock.stop();
    CHECK(c.sync().outcome == SyncOutcome::offline);

    // The log said what happened...
    CHECK(log.any("sync", "round ok"));
    CHECK(log.any("sync", "refused write"));
    CHECK(log.any("sync", stranger.to_string()));  // rows by id
    CHECK(log.any("sync", "round auth failed"));
    CHECK(log.any("sync", "round offline"));
    CHECK(log.any("sync", "pushing:"));  // debug lines were on
    CHECK(log.any("server", "session"));
    CHECK(log.any("replica", "new replica"));
    // ...and nothing of who or what.
    const std::vector<std::string> secret{c.token,         c.token.substr(0, 24), "not.a.token", "Ola Nordmann",
                                          "Kari",          reflection,            "Palliative",  "Fjordvik",
                                          "M1: Basics",    c.dir.path().string(), "ola.db"};
    const auto lines = log.take();
    REQUIRE(lines.size() > 10);
    // Users (the token's subject) and peers' addresses stay out too.
    const std::regex user("\\bola\\b|back-office|user=|peer=");

    for (const auto& l : lines)
        for (const auto& s : secret) {
            INFO(l.domain << ": " << l.message);
            CHECK(l.message.find(s) == std::string::npos);
        }
    for (const auto& l : lines) {
        INFO(l.domain << ": " << l.message);
        CHECK_FALSE(std::regex_search(l.message, user));
    }
}

TEST_CASE("a file refused or failing to open leaves its path out of the log") {
    Captured log(LogLevel::debug);
    TempDir dir;
    const auto text = dir.file("notes.txt");
    std::ofstream(text) << "not a database\n";
    // The error the app gets names the file...
    CHECK_THAT(error_of([&] { Replica r(text); }).what(), Catch::Contains(text));
    CHECK_THAT(error_of([&] { Replica r(dir.file("nowhere/r.db")); }).what(), Catch::Contains("nowhere"));
    { Replica ok(dir.file("r.db")); }
    // ...the log does not.
    for (const auto& l : log.take()) {
        INFO(l.domain << ": " << l.message);
        CHECK(l.message.find(dir.path().string()) == std::string::npos);
        CHECK(l.message.find("notes.txt") == std::string::npos);
        CHECK(l.message.find("nowhere") == std::string::npos);
    }
    CHECK(log.any("replica", "new replica"));
}

TEST_CASE("the log hears its level and above, and only while a handler is set") {
    MockCourse c;
    {
        Captured log(LogLevel::warning);
        c.tablet.register_person("Someone", Profession::nurse, c.org);  // refused by the server
        REQUIRE(c.sync().ok());
        const auto lines = log.take();
        REQUIRE_FALSE(lines.empty());
        for (const auto& l : lines) CHECK(l.level >= LogLevel::warning);
        CHECK(log.any("sync", "refused write"));
    }
    // No handler: rounds run silently (and Captured's handler is gone).
    Captured off(LogLevel::off);
    c.tablet.complete_module(c.ola, c.module, c.group);
    REQUIRE(c.sync().ok());
    CHECK(off.take().empty());
}

TEST_CASE("a handler that throws does not break a round") {
    set_log_handler([](LogLevel, std::string_view, std::string_view) { throw std::runtime_error("handler broke"); },
                    LogLevel::debug);
    MockCourse c;
    c.tablet.complete_module(c.ola, c.module, c.group, {}, 30);
    const auto r = c.sync();
    set_log_handler({});
    REQUIRE(r.ok());
    CHECK(c.server_time_spent() == 30);
}

TEST_CASE("once set_log_handler returns, the handler it replaced has finished") {
    using namespace std::chrono_literals;
    std::atomic<bool> inside{false}, finished{false};
    set_log_handler(
        [&](LogLevel, std::string_view, std::string_view) {
            inside = true;
            std::this_thread::sleep_for(200ms);
            finished = true;
        },
        LogLevel::debug);
    std::thread logger([] { detail::log(LogLevel::info, "test", "a slow handler"); });
    for (int i = 0; i < 400 && !inside; ++i) std::this_thread::sleep_for(5ms);
    REQUIRE(inside);
    set_log_handler({});  // an app would now free what the handler used
    CHECK(finished);
    logger.join();
}

TEST_CASE("log levels have names") {
    CHECK(to_string(LogLevel::debug) == "debug");
    CHECK(to_string(LogLevel::warning) == "warning");
    CHECK(to_string(LogLevel::off) == "off");
}

}  // namespace
}  // namespace lindra::test
