// A tiny app built against an installed lindra: a tablet records progress
// offline, then syncs with an in-process MockServer. Prints "consumer ok".
#include <lindra/replica.hpp>
#include <lindra/sync.hpp>
#include <lindra/testing/mock_server.hpp>

#include <cstdio>
#include <filesystem>

int main() {
    const auto path = std::filesystem::temp_directory_path() / ("lindra-consumer-" + lindra::Id::random().to_string() + ".db");
    lindra::testing::MockServer server;
    lindra::Id ola, module, group;
    server.seed([&](lindra::Writes& w) {
        const auto org = w.register_organization("Fjordvik", lindra::OrganizationKind::municipality);
        const auto course = w.register_course("Palliative care", "2026", "nb", 4);
        module = w.register_module({.course = course, .ordinal = 1, .title = "M1"});
        group = w.create_group({.course = course, .organization = org, .name = "Spring"});
        ola = w.register_person("Ola", lindra::Profession::assistant, org);
        w.add_member(group, ola, lindra::MemberRole::candidate);
    });
    int rc = 1;
    {
        lindra::Replica tablet(path.string());
        tablet.add_time_spent(ola, module, group, 600);
        lindra::SyncClient client(tablet, server.client_options(server.token({.user = "ola", .role = lindra::Role::candidate, .person = ola})));
        const auto r = client.sync();
        const auto progress = server.rows().progress_of(ola);
        if (r.ok() && progress.size() == 1 && progress[0].time_spent_s == 600) {
            std::puts("consumer ok");
            rc = 0;
        } else {
            std::printf("consumer failed: %s\n", r.message.c_str());
        }
    }
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path.string() + suffix);
    return rc;
}
