// The app's integration tests: the real lindra server in-process, seeded
// with a course, and the network faults a tablet in a care home meets.
#include "course_app.hpp"

#include <lindra/testing/mock_server.hpp>

#include <catch2/catch.hpp>

#include <filesystem>

using lindra::testing::ErrorCode;
using lindra::testing::Frame;
using lindra::testing::MockServer;

namespace {

// The mock server seeded with one group and its candidate, and the
// candidate's app on a fresh database.
struct Fixture {
    MockServer server;
    lindra::Id module, group, ola;
    // A name of its own: ctest runs test cases in parallel processes.
    std::string db =
        (std::filesystem::temp_directory_path() / ("course-app-" + lindra::Id::random().to_string() + ".db")).string();
    std::unique_ptr<course_app::CandidateApp> app;

    Fixture() {
        server.seed([&](lindra::Writes& w) {
            const auto org = w.register_organization("Fjordvik", lindra::OrganizationKind::municipality);
            const auto course = w.register_course("Palliative care", "2026", "nb", 4);
            module = w.register_module({.course = course, .ordinal = 1, .title = "M1: Basics", .pass_score = 80});
            group = w.create_group({.course = course, .organization = org, .name = "Fjordvik spring"});
            ola = w.register_person("Ola Nordmann", lindra::Profession::assistant, org);
            w.add_member(group, ola, lindra::MemberRole::candidate);
        });
        remove_db();
        const auto token = server.token({.user = "ola", .role = lindra::Role::candidate, .person = ola});
        app = std::make_unique<course_app::CandidateApp>(db, server.client_options(token), ola);
    }
    ~Fixture() {
        app.reset();
        remove_db();
    }
    void remove_db() {
        for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(db + suffix);
    }
    // The module as the server has it.
    lindra::ModuleProgress on_server() {
        for (const auto& p : server.rows().progress_of(ola))
            if (p.module == module) return p;
        FAIL("the server has no progress for the module");
        return {};
    }
};

}  // namespace

TEST_CASE_METHOD(Fixture, "work done offline reaches the server when the network comes back") {
    CHECK(app->sync_now() == "Up to date");  // the course arrives while online
    server.stop();                            // then the care home has no network
    app->finish_module(module, group, 85, 40 * 60);
    CHECK(app->sync_now() == "Offline: your work is saved on this tablet");

    server.start();
    CHECK(app->sync_now() == "Up to date");
    CHECK(on_server().status == lindra::ProgressStatus::passed);
    CHECK(on_server().time_spent_s == 40 * 60);
}

TEST_CASE_METHOD(Fixture, "a sync cut off after the server saved it never counts the time twice") {
    app->finish_module(module, group, 85, 40 * 60);
    server.faults().lose_push_ack();
    CHECK(app->sync_now() == "Offline: your work is saved on this tablet");
    CHECK(app->sync_now() == "Up to date");
    CHECK(on_server().time_spent_s == 40 * 60);
}

TEST_CASE_METHOD(Fixture, "a busy server and an expired sign-in are shown to the user") {
    server.faults().fail(Frame::push, ErrorCode::rate_limited, std::chrono::seconds(30));
    app->finish_module(module, group, 85, 60);
    CHECK(app->sync_now() == "The server is busy; trying again later");

    server.faults().reject_auth();
    CHECK(app->sync_now() == "Please sign in again");
    CHECK(app->sync_now() == "Up to date");
}
