// seed-demo: what a coordinator would register for one mentor group, written
// in one Replica::batch so a failure leaves the replica as it was.
#include "commands.hpp"
#include "text.hpp"

#include <array>
#include <ostream>

namespace tablet {
namespace {

constexpr std::string_view kCourse = "Palliative care basics";

struct DemoModule {
    std::string_view title;
    lindra::ModuleKind kind;
    bool required;
    std::optional<int> pass_score;
};

using K = lindra::ModuleKind;
constexpr std::array<DemoModule, 8> kModules = {{
    {"M1: What is palliative care?", K::elearning, true, 80},
    {"M2: Talking with patients and relatives", K::elearning, true, {}},
    {"M3: Pain and symptom relief", K::elearning, true, 80},
    {"M4: Nutrition, fluids and mouth care", K::elearning, true, {}},
    {"M5: Ethics and advance care planning", K::elearning, true, 70},
    {"M6: The last days of life", K::practice, true, {}},
    {"M7: Grief and care for the bereaved", K::reflection, true, {}},
    {"M8: Palliative care at home", K::elearning, false, {}},
}};

struct DemoPerson {
    std::string_view name;
    lindra::Profession profession;
    lindra::MemberRole role;
};

using P = lindra::Profession;
using R = lindra::MemberRole;
constexpr std::array<DemoPerson, 4> kPeople = {{
    {"Mia Haugen", P::nurse, R::mentor},
    {"Ola Nordmann", P::health_care_worker, R::candidate},
    {"Kari Lie", P::assistant, R::candidate},
    {"Nils Sæther", P::health_care_worker, R::candidate},
}};

// Title and the ordinal of the module it discusses.
struct DemoGathering {
    std::string_view title;
    int module;
};
constexpr std::array<DemoGathering, 4> kGatherings = {{
    {"G1: Getting started: what palliative care means", 1},
    {"G2: Difficult conversations", 2},
    {"G3: Comfort and symptoms in practice", 3},
    {"G4: The last days, grief and looking back", 7},
}};

}  // namespace

void seed_demo(Session& s) {
    auto& r = s.replica();
    if (r.find("course", kCourse))
        throw lindra::Error(lindra::Errc::invalid_argument,
                            "this replica already has the demo course \"" + std::string(kCourse) + "\"");

    // Gatherings a week apart from today, 10:00 local time.
    std::array<lindra::Timestamp, kGatherings.size()> at{};
    for (std::size_t i = 0; i < at.size(); ++i) at[i] = local_time_in_days(7 * static_cast<int>(i), 10);

    std::string group_name;
    r.batch([&](lindra::Writes& w) {
        const auto org = w.register_organization("Fjellvik kommune", lindra::OrganizationKind::municipality);
        const auto course = w.register_course(std::string(kCourse), "1.0", "en", 3);
        std::array<lindra::Id, kModules.size()> modules;
        for (std::size_t i = 0; i < kModules.size(); ++i) {
            const auto& m = kModules[i];
            modules[i] = w.register_module({.course = course,
                                            .ordinal = static_cast<int>(i) + 1,
                                            .title = std::string(m.title),
                                            .kind = m.kind,
                                            .required = m.required,
                                            .pass_score = m.pass_score});
        }
        group_name = "Fjellvik nursing home group";
        const auto group = w.create_group({.course = course,
                                           .organization = org,
                                           .name = group_name,
                                           .starts_on = local_date(at.front()),
                                           .ends_on = local_date(at.back())});
        for (const auto& p : kPeople)
            w.add_member(group, w.register_person(std::string(p.name), p.profession, org), p.role);
        for (std::size_t i = 0; i < kGatherings.size(); ++i) {
            const auto& g = kGatherings[i];
            w.plan_gathering({.group = group,
                              .ordinal = static_cast<int>(i) + 1,
                              .title = std::string(g.title),
                              .scheduled_at = at[i],
                              .module = modules[static_cast<std::size_t>(g.module - 1)]});
        }
    });

    auto& out = s.out();
    out << "seeded Fjellvik kommune: course \"" << kCourse << "\" with " << kModules.size() << " modules\n"
        << "group \"" << group_name << "\": mentor " << kPeople[0].name << "; candidates";
    for (std::size_t i = 1; i < kPeople.size(); ++i) out << (i > 1 ? ", " : " ") << kPeople[i].name;
    out << '\n' << kGatherings.size() << " gatherings, weekly from " << local_datetime(at.front()) << '\n';
}

}  // namespace tablet
