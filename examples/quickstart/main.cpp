// The README's example: a coordinator sets up a group, a candidate and a
// mentor work offline, and the roster shows where everyone is.
#include <lindra/replica.hpp>

#include <cstdio>

int main(int argc, char** argv) {
    lindra::Replica tablet(argc > 1 ? argv[1] : "quickstart.db");  // created on first open

    // One transaction for the whole registration.
    lindra::Id course, module, group, ola, mia, gathering;
    tablet.batch([&](lindra::Writes& w) {
        const auto org = w.register_organization("Fjellvik kommune", lindra::OrganizationKind::municipality);
        course = w.register_course("Palliative care basics", "2026.1", "nb", 4);
        module = w.register_module({.course = course, .ordinal = 1, .title = "M1: What is palliative care"});
        group = w.create_group({.course = course, .organization = org, .name = "Fjellvik group 1"});
        mia = w.register_person("Mia Mentor", lindra::Profession::nurse, org);
        ola = w.register_person("Ola Nordmann", lindra::Profession::health_care_worker, org);
        w.add_member(group, mia, lindra::MemberRole::mentor);
        w.add_member(group, ola, lindra::MemberRole::candidate);
        gathering = w.plan_gathering({.group = group, .ordinal = 1, .title = "G1: Kick-off"});
    });

    // Each call below is its own transaction, with its outbox entry.
    tablet.complete_module(ola, module, group, /*score=*/92);
    tablet.add_time_spent(ola, module, group, 25 * 60);
    tablet.hold_gathering(gathering);
    tablet.record_attendance(gathering, ola, lindra::AttendanceStatus::present);

    try {
        tablet.record_score(ola, module, group, 150);  // bad input: nothing is written
    } catch (const lindra::Error& e) {
        std::printf("refused: %s\n", e.what());  // "module_progress.best_score: 150 is outside 0..100"
    }

    for (const auto& m : tablet.roster(group).members)
        std::printf("%-14s %-9s modules %d/%d  gatherings %d/%d\n",
                    std::string(lindra::member_name(m.display_name, m.status)).c_str(),
                    std::string(lindra::to_string(m.role)).c_str(), m.modules_completed, m.modules_required,
                    m.gatherings_attended, m.gatherings_held);
    std::printf("%lld changes wait for the server\n", static_cast<long long>(tablet.outbox_size()));
}
