// The coordinator's completion report: each candidate's modules,
// gatherings, confirmation and certificate by the server's own rule, and
// what a missing certificate still lacks; rendered as CSV and as a table.
#include "support/fixture.hpp"
#include "support/sync_fixture.hpp"
#include "support/temp_dir.hpp"

#include <lindra/report.hpp>
#include <lindra/server.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <sstream>

using namespace lindra;
using lindra::test::Seeded;
using lindra::test::TempDir;

namespace {

constexpr std::uint16_t kCertificate = 12;         // the schema's tags (model/schema.cpp)
constexpr Timestamp kIssued = 1'796'000'000'000;   // 2026-11-30
constexpr Timestamp kRevoked = 1'796'500'000'000;  // 2026-12-05

// A certificate row as the server would send it: server-only, so a tablet
// only ever gets one from a pull.
void receive_certificate(Replica& r, const Seeded& s, const Id& person, const std::string& serial,
                         std::optional<std::string> revoked_for = {}) {
    const Id row = Id::derive("certificate", {person, s.course, s.group});
    const Id server = Id::derive("test-server", {});
    const std::uint64_t hlc = r.hlc() + (1u << 16);
    std::vector<Change> changes = {{kCertificate, row, 2, person, hlc, server},
                                   {kCertificate, row, 3, s.course, hlc, server},
                                   {kCertificate, row, 4, s.group, hlc, server},
                                   {kCertificate, row, 5, kIssued, hlc, server},
                                   {kCertificate, row, 6, serial, hlc, server}};
    if (revoked_for) {
        changes.push_back({kCertificate, row, 10, kRevoked, hlc, server});
        changes.push_back({kCertificate, row, 11, *revoked_for, hlc, server});
    }
    r.apply_remote(changes);
}

void pass_all(Writes& w, const Seeded& s, const Id& who) {
    w.complete_module(who, s.modules[0], s.group, 90);
    w.complete_module(who, s.modules[1], s.group);
    w.complete_module(who, s.modules[2], s.group);
}

const CompletionReportRow& row_of(const CompletionReport& report, const Id& person) {
    const auto it = std::find_if(report.rows.begin(), report.rows.end(), [&](auto& r) { return r.person == person; });
    REQUIRE(it != report.rows.end());
    return *it;
}

std::vector<std::string> lines(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
}

// One group on the coordinator's tablet (seed_group: M1 needs 80, M1-M3
// required, M4 optional; G1-G3; the course asks for 2 gatherings):
// Kari met the rule and holds her certificate; Ola lacks M2 and a
// gathering; Per did everything but is not confirmed; "Sæther, Nils" had
// his revoked; Liv met the rule and waits for the server.
struct Course {
    TempDir dir;
    Replica r{dir.file("coordinator.db")};
    Seeded s = lindra::test::seed_group(r);
    Id ola = s.candidates[0], kari = s.candidates[1], per, nils, liv;

    Course() {
        r.batch([&](Writes& w) {
            for (const auto& [who, name] :
                 {std::pair<Id*, const char*>{&per, "Per Berg"}, {&nils, "Sæther, Nils"}, {&liv, "Liv Dahl"}}) {
                *who = w.register_person(name, Profession::assistant, s.organization);
                w.add_member(s.group, *who, MemberRole::candidate);
            }
            w.hold_gathering(s.gatherings[0]);
            w.hold_gathering(s.gatherings[1]);
            for (const Id& who : {kari, per, nils, liv}) {
                pass_all(w, s, who);
                w.record_attendance(s.gatherings[0], who, AttendanceStatus::present);
                w.record_attendance(s.gatherings[1], who, AttendanceStatus::present);
            }
            w.complete_module(ola, s.modules[0], s.group, 90);
            w.complete_module(ola, s.modules[2], s.group);
            w.record_attendance(s.gatherings[0], ola, AttendanceStatus::present);
            w.record_attendance(s.gatherings[1], ola, AttendanceStatus::absent);
            for (const Id& who : {kari, ola, nils, liv}) w.confirm_candidate(s.group, who, s.mentor);
        });
        receive_certificate(r, s, kari, "7Q2M-K9XD-4HRA");
        receive_certificate(r, s, nils, "3JHP-W2XM-9QAA", "issued by mistake");
    }
};

}  // namespace

TEST_CASE("the report gives each candidate's counts, confirmation and certificate by the rule") {
    Course g;
    const auto report = g.r.completion_report(g.s.group);
    CHECK(report.scope == "Fjellvik group 1");
    REQUIRE(report.rows.size() == 5);  // the candidates; the mentor is not one
    std::vector<std::string> names;
    for (const auto& row : report.rows) names.push_back(row.display_name);
    CHECK(names == std::vector<std::string>{"Kari Hansen", "Liv Dahl", "Ola Nordmann", "Per Berg", "Sæther, Nils"});

    const auto& kari = row_of(report, g.kari);
    CHECK(kari.group_name == "Fjellvik group 1");
    CHECK(kari.organization_name == "Fjellvik kommune");
    CHECK(kari.course_title == "Palliative care basics");
    CHECK(kari.status == MemberStatus::active);
    CHECK((kari.modules_passed == 3 && kari.modules_required == 3));
    CHECK((kari.gatherings_attended == 2 && kari.gatherings_held == 2 && kari.gatherings_required == 2));
    CHECK(kari.confirmed);
    CHECK(kari.confirmed_by == g.s.mentor);
    CHECK(kari.confirmed_by_name == "Mia Mentor");
    CHECK(kari.confirmed_at.value_or(0) > 0);
    CHECK(kari.met);
    CHECK(kari.certificate == CertificateState::issued);
    CHECK(kari.serial == "7Q2M-K9XD-4HRA");
    CHECK(kari.issued_at == kIssued);
    CHECK_FALSE(kari.revoked_at);
    CHECK(kari.lacking.empty());

    const auto& ola = row_of(report, g.ola);
    CHECK((ola.modules_passed == 2 && ola.modules_required == 3));
    CHECK((ola.gatherings_attended == 1 && ola.gatherings_held == 2));
    CHECK(ola.confirmed);
    CHECK_FALSE(ola.met);
    CHECK(ola.certificate == CertificateState::missing);
    CHECK(ola.serial.empty());
    CHECK(ola.lacking == std::vector<std::string>{"module 2 \"M2: Pain and symptoms\" not passed",
                                                  "attended 1 of 2 gatherings held; the course asks for 2"});

    const auto& per = row_of(report, g.per);
    CHECK((per.modules_passed == 3 && per.gatherings_attended == 2));
    CHECK_FALSE(per.confirmed);
    CHECK_FALSE(per.confirmed_by);
    CHECK(per.confirmed_by_name.empty());
    CHECK_FALSE(per.met);
    CHECK(per.certificate == CertificateState::missing);
    CHECK(per.lacking == std::vector<std::string>{"no mentor has confirmed the participation"});

    const auto& nils = row_of(report, g.nils);
    CHECK(nils.certificate == CertificateState::revoked);
    CHECK(nils.serial == "3JHP-W2XM-9QAA");
    CHECK(nils.revoked_at == kRevoked);
    CHECK(nils.revocation_reason == "issued by mistake");
    CHECK(nils.lacking.empty());

    const auto& liv = row_of(report, g.liv);
    CHECK(liv.met);
    CHECK(liv.certificate == CertificateState::missing);
    CHECK(liv.lacking.empty());
}

TEST_CASE("the report counts a module passed by its pass score, and a withdrawn candidate's membership") {
    Course g;
    g.r.record_score(g.ola, g.s.modules[0], g.s.group, 85);  // best score stays 90
    g.r.batch([&](Writes& w) {
        const Id low = w.register_person("Lav Poeng", Profession::assistant, g.s.organization);
        w.add_member(g.s.group, low, MemberRole::candidate);
        w.complete_module(low, g.s.modules[0], g.s.group, 70);  // M1 needs 80
        w.withdraw_member(g.s.group, g.per);
    });
    const auto report = g.r.completion_report(g.s.group);
    const auto low =
        std::find_if(report.rows.begin(), report.rows.end(), [](auto& row) { return row.display_name == "Lav Poeng"; });
    REQUIRE(low != report.rows.end());
    CHECK(low->modules_passed == 0);
    REQUIRE_FALSE(low->lacking.empty());
    CHECK(low->lacking[0] == "module 1 \"M1: What is palliative care\" not passed (best score 70, needs 80)");
    const auto& per = row_of(report, g.per);
    CHECK(per.status == MemberStatus::withdrawn);
    CHECK(per.lacking.front() == "the membership is withdrawn");
}

TEST_CASE("an organization's report holds its groups and those of the organizations under it, no others") {
    Course g;
    Id unit_group, other_group;
    g.r.batch([&](Writes& w) {
        const Id unit = w.register_organization("Fjellvik sykehjem", OrganizationKind::care_unit, g.s.organization);
        const Id other = w.register_organization("Dalbygd kommune", OrganizationKind::municipality);
        unit_group = w.create_group({.course = g.s.course, .organization = unit, .name = "Sykehjem group"});
        other_group = w.create_group({.course = g.s.course, .organization = other, .name = "Dalbygd group"});
        w.add_member(unit_group, w.register_person("Ada Unit", Profession::nurse, unit), MemberRole::candidate);
        w.add_member(other_group, w.register_person("Bo Other", Profession::nurse, other), MemberRole::candidate);
    });
    const auto report = g.r.completion_report_for_organization(g.s.organization);
    CHECK(report.scope == "Fjellvik kommune");
    REQUIRE(report.rows.size() == 6);
    // By organization name, then group.
    CHECK(report.rows.front().group == g.s.group);
    CHECK(report.rows.back().group == unit_group);
    CHECK(report.rows.back().display_name == "Ada Unit");
    CHECK(report.rows.back().organization_name == "Fjellvik sykehjem");
    CHECK(std::none_of(report.rows.begin(), report.rows.end(), [&](auto& row) { return row.group == other_group; }));
}

TEST_CASE("a report of a group or organization the device does not hold is not_found") {
    Course g;
    CHECK_THROWS_MATCHES(g.r.completion_report(Id::random()), Error,
                         Catch::Predicate<Error>([](const Error& e) { return e.errc() == Errc::not_found; }));
    CHECK_THROWS_MATCHES(g.r.completion_report_for_organization(g.s.group), Error,
                         Catch::Predicate<Error>([](const Error& e) { return e.errc() == Errc::not_found; }));
}

TEST_CASE("the CSV is RFC 4180: a header, one CRLF line a candidate, quoted where needed") {
    Course g;
    const std::string csv = completion_report_csv(g.r.completion_report(g.s.group));
    const auto all = lines(csv);
    REQUIRE(all.size() == 6);
    for (const auto& line : all) CHECK(line.ends_with('\r'));
    CHECK(all[0] ==
          "organization,group,course,person,person_id,membership,modules_passed,modules_required,"
          "gatherings_attended,gatherings_held,gatherings_required,confirmed,confirmed_by,confirmed_at,rule_met,"
          "certificate,serial,issued_at,revoked_at,revocation_reason,lacking\r");
    CHECK(all[1] == "Fjellvik kommune,Fjellvik group 1,Palliative care basics,Kari Hansen," + g.kari.to_string() +
                        ",active,3,3,2,2,2,yes,Mia Mentor," + all[1].substr(all[1].find("Mentor,") + 7, 20) +
                        ",yes,issued,7Q2M-K9XD-4HRA,2026-11-30T00:53:20Z,,,\r");
    CHECK(all[3] == "Fjellvik kommune,Fjellvik group 1,Palliative care basics,Ola Nordmann," + g.ola.to_string() +
                        ",active,2,3,1,2,2,yes,Mia Mentor," + all[3].substr(all[3].find("Mentor,") + 7, 20) +
                        ",no,missing,,,,,\"module 2 \"\"M2: Pain and symptoms\"\" not passed; attended 1 of 2 "
                        "gatherings held; the course asks for 2\"\r");
    CHECK(all[4].find(",Per Berg,") != std::string::npos);
    CHECK(all[4].find(",no,,,no,missing,") != std::string::npos);
    CHECK(all[5].starts_with("Fjellvik kommune,Fjellvik group 1,Palliative care basics,\"Sæther, Nils\"," +
                             g.nils.to_string() + ","));
    CHECK(all[5].ends_with(",revoked,3JHP-W2XM-9QAA,2026-11-30T00:53:20Z,2026-12-05T19:46:40Z,issued by mistake,\r"));
}

TEST_CASE("the CSV defuses a name a spreadsheet would run as a formula") {
    Course g;
    g.r.update("person", g.per, {{"display_name", std::string("=HYPERLINK(\"http://x\")")}});
    const std::string csv = completion_report_csv(g.r.completion_report(g.s.group));
    CHECK(csv.find(",\"'=HYPERLINK(\"\"http://x\"\")\",") != std::string::npos);
}

TEST_CASE("the table lines up each group's candidates and says what is lacking") {
    Course g;
    g.r.update("person", g.per, {{"display_name", std::string("Per \x1b[31mBerg")}});
    const auto all = lines(completion_report_table(g.r.completion_report(g.s.group)));
    REQUIRE(all.size() == 8);
    CHECK(all[0] == "Fjellvik group 1 - Palliative care basics, Fjellvik kommune");
    CHECK(all[1] == "  the course asks for 3 modules passed and 2 gatherings attended");
    const auto column = all[2].find("certificate");
    REQUIRE(column != std::string::npos);
    CHECK(all[3].starts_with("  Kari Hansen"));
    CHECK(all[3].find("3/3") != std::string::npos);
    CHECK(all[3].substr(column).starts_with("issued 7Q2M-K9XD-4HRA, "));
    CHECK(all[5].substr(column).starts_with("missing: module 2 \"M2: Pain and symptoms\" not passed; attended 1 of 2"));
    CHECK(all[6].find("Per \xEF\xBF\xBD[31mBerg") != std::string::npos);  // no escape reaches the terminal
    CHECK(all[6].find("no ") != std::string::npos);
    CHECK(all[6].ends_with("missing: no mentor has confirmed the participation"));
    // "Sæther, Nils" is one column shorter in bytes' terms than on screen.
    const auto nils_column = text_width(all[7].substr(0, all[7].find("revoked")));
    CHECK(nils_column == column);
    CHECK(all[7].ends_with("issued by mistake"));
    CHECK(all[4].ends_with("missing: the rule is met; the server issues it once it has these records (sync)"));
}

TEST_CASE("text_width counts what a terminal shows") {
    CHECK(text_width("Nils Sæther") == 11);
    CHECK(text_width("Nils Sa\xCC\x8A"
                     "ther") == 11);                     // a + combining ring above
    CHECK(text_width("\xE6\x97\xA5\xE6\x9C\xAC") == 4);  // two CJK ideographs
    CHECK(text_width("\xFF"
                     "a") == 2);  // not UTF-8: a column a byte
    CHECK(aligned_columns({{"å", "x"}, {"abc", "y"}}, 1) == " å    x\n abc  y\n");
}

TEST_CASE("the report shows a certificate the server issued, once the coordinator's tablet pulls it") {
    lindra::test::SyncWorld w([](ServerOptions& o) {
        o.issuer.keys_pem = {generate_issuer_key()};
        o.issuer.id = "https://kurs.example.no";
        o.issuer.name = "Kompetansesenteret";
    });
    Replica& office = w.tablet("office");
    const Seeded s = lindra::test::seed_group(office);
    const Id ola = s.candidates[0];
    office.batch([&](Writes& x) {
        pass_all(x, s, ola);
        for (int i = 0; i < 2; ++i) {
            x.hold_gathering(s.gatherings[static_cast<std::size_t>(i)]);
            x.record_attendance(s.gatherings[static_cast<std::size_t>(i)], ola, AttendanceStatus::present);
        }
        x.confirm_candidate(s.group, ola, s.mentor);
    });
    auto row = row_of(office.completion_report(s.group), ola);
    CHECK(row.met);
    CHECK(row.certificate == CertificateState::missing);
    lindra::test::require_ok(w.sync(office));
    lindra::test::require_ok(w.sync(office));  // the push issued it; this pull brings it if the first did not
    row = row_of(office.completion_report(s.group), ola);
    CHECK(row.certificate == CertificateState::issued);
    const auto held = office.certificates_of(ola);
    REQUIRE(held.size() == 1);
    CHECK(row.serial == office.verify_certificate(held[0]).serial);
    CHECK(row.issued_at.value_or(0) > 0);
}
