// A MockServer seeded with a course of one module and a group with Ola in
// it, and Ola's tablet with her token: the shared start of the tests that
// drive a MockServer.
#pragma once

#include "support/temp_dir.hpp"
#include "support/test_store.hpp"

#include <lindra/testing/mock_server.hpp>

#include <cstdint>
#include <string>

namespace lindra::test {

struct MockCourse {
    explicit MockCourse(lindra::testing::MockServerOptions options = {}) : mock(on_test_store(std::move(options), store)) {
        mock.seed([&](Writes& w) {
            org = w.register_organization("Fjordvik", OrganizationKind::municipality);
            course = w.register_course("Palliative care", "2026", "nb", 4);
            module = w.register_module({.course = course, .ordinal = 1, .title = "M1: Basics"});
            group = w.create_group({.course = course, .organization = org, .name = "Fjordvik spring"});
            ola = w.register_person("Ola Nordmann", Profession::assistant, org);
            w.add_member(group, ola, MemberRole::candidate);
        });
        token = mock.token({.user = "ola", .role = Role::candidate, .person = ola});
    }

    // One round of Ola's tablet.
    SyncResult sync() {
        SyncClient client(tablet, mock.client_options(token));
        return client.sync();
    }
    // Ola's time on the module as the server has it; -1 if it has none.
    std::int64_t server_time_spent() {
        for (const auto& p : mock.rows().progress_of(ola))
            if (p.module == module) return p.time_spent_s;
        return -1;
    }

    // The server's store for this run (support/test_store.hpp).
    static lindra::testing::MockServerOptions on_test_store(lindra::testing::MockServerOptions o, const TestStore& s) {
        if (TestStore::postgres()) o.store = s.db();
        return o;
    }

    TempDir dir;
    TestStore store{dir};
    lindra::testing::MockServer mock;
    Id org, course, module, group, ola;
    std::string token;
    Replica tablet{dir.file("ola.db")};
};

}  // namespace lindra::test
