// A small course with one mentor group, written through the public API.
#pragma once

#include <lindra/replica.hpp>

#include <vector>

namespace lindra::test {

struct Seeded {
    Id organization, course, group, mentor;
    std::vector<Id> candidates;
    std::vector<Id> modules;     // M1..M4; M1 has pass score 80, M4 is optional
    std::vector<Id> gatherings;  // G1..G3
};

inline Seeded seed_group(Replica& r) {
    Seeded s;
    r.batch([&](Writes& w) {
        s.organization = w.register_organization("Fjellvik kommune", OrganizationKind::municipality);
        s.course = w.register_course("Palliative care basics", "2026.1", "nb", 2);
        auto module = [&](int ordinal, const char* title) {
            return NewModule{.course = s.course, .ordinal = ordinal, .title = title};
        };
        NewModule m1 = module(1, "M1: What is palliative care");
        m1.pass_score = 80;
        NewModule m3 = module(3, "M3: Talking with families");
        m3.kind = ModuleKind::reflection;
        NewModule m4 = module(4, "M4: Further reading");
        m4.required = false;
        for (const auto& m : {m1, module(2, "M2: Pain and symptoms"), m3, m4})
            s.modules.push_back(w.register_module(m));
        s.group = w.create_group({.course = s.course,
                                  .organization = s.organization,
                                  .name = "Fjellvik group 1",
                                  .starts_on = "2026-09-01",
                                  .ends_on = "2026-12-15"});
        s.mentor = w.register_person("Mia Mentor", Profession::nurse, s.organization);
        w.add_member(s.group, s.mentor, MemberRole::mentor);
        for (const char* name : {"Ola Nordmann", "Kari Hansen"}) {
            s.candidates.push_back(w.register_person(name, Profession::health_care_worker, s.organization));
            w.add_member(s.group, s.candidates.back(), MemberRole::candidate);
        }
        for (int i = 1; i <= 3; ++i)
            s.gatherings.push_back(
                w.plan_gathering({.group = s.group,
                                  .ordinal = i,
                                  .title = "G" + std::to_string(i) + ": Gathering " + std::to_string(i)}));
    });
    return s;
}

}  // namespace lindra::test
