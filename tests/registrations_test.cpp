// The coordinator's registration list (Replica::import_registrations): a
// good file imports, importing it again writes nothing, and a bad line
// writes nothing at all and says which line and column.
#include "support/temp_dir.hpp"

#include <lindra/replica.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <optional>
#include <random>
#include <string>

using namespace lindra;
using lindra::test::TempDir;

namespace {

struct Coordinator {
    TempDir dir;
    Replica r{dir.file("coordinator.db")};
    Id fjellvik, dalen, course, group1, group2;

    Coordinator() {
        r.batch([&](Writes& w) {
            fjellvik = w.register_organization("Fjellvik kommune", OrganizationKind::municipality);
            dalen = w.register_organization("Dalen kommune", OrganizationKind::municipality);
            course = w.register_course("Palliative care basics", "1.0", "nb", 3);
            group1 = w.create_group({.course = course, .organization = fjellvik, .name = "Fjellvik group 1"});
            group2 = w.create_group({.course = course, .organization = fjellvik, .name = "Fjellvik group 2"});
        });
    }

    std::optional<RosterEntry> member(const Id& group, std::string_view name) const {
        const auto roster = r.roster(group);
        const auto it = std::find_if(roster.members.begin(), roster.members.end(),
                                     [&](const RosterEntry& e) { return e.display_name == name; });
        if (it == roster.members.end()) return std::nullopt;
        return *it;
    }
};

const std::string kGood =
    "group,display_name,role,profession,organization\n"
    "Fjellvik group 1,Mia Haugen,mentor,nurse,Fjellvik kommune\n"
    "Fjellvik group 1,\"Nordmann, Ola\",candidate,health_care_worker,Fjellvik kommune\n"
    "fjellvik GROUP 1,Kari Lie,Candidate,Health care worker,Dalen kommune\n"
    "Fjellvik group 2,Mia Haugen,candidate,nurse,Fjellvik kommune\n";

// The error a bad file gets, after checking it wrote nothing.
Error refused(Coordinator& c, const std::string& csv) {
    const auto outbox = c.r.outbox_size();
    const auto people = c.r.count("person");
    try {
        c.r.import_registrations(csv);
    } catch (const Error& e) {
        CHECK(c.r.outbox_size() == outbox);
        CHECK(c.r.count("person") == people);
        return e;
    }
    FAIL("the import was not refused");
    throw;
}

}  // namespace

TEST_CASE("a registration list imports, and importing it again writes nothing") {
    Coordinator c;
    const auto before = c.r.outbox_size();
    const auto first = c.r.import_registrations(kGood);
    CHECK(first.lines == 4);
    CHECK(first.people_created == 3);  // Mia is on two lines
    CHECK(first.people_existing == 0);
    CHECK(first.memberships_added == 4);
    CHECK(first.memberships_unchanged == 0);
    CHECK(first.withdrawn_lines.empty());

    const auto ola = c.member(c.group1, "Nordmann, Ola");
    REQUIRE(ola);
    CHECK(ola->role == MemberRole::candidate);
    CHECK(ola->status == MemberStatus::active);
    const auto kari = c.r.person(c.member(c.group1, "Kari Lie")->person);
    REQUIRE(kari);
    CHECK(kari->profession == Profession::health_care_worker);
    CHECK(kari->organization == c.dalen);
    CHECK(c.member(c.group1, "Mia Haugen")->role == MemberRole::mentor);
    CHECK(c.member(c.group2, "Mia Haugen")->role == MemberRole::candidate);
    CHECK(c.member(c.group2, "Mia Haugen")->person == c.member(c.group1, "Mia Haugen")->person);
    CHECK(c.r.count("person") == 3);

    const auto after = c.r.outbox_size();
    CHECK(after > before);
    const auto again = c.r.import_registrations(kGood);
    CHECK(c.r.outbox_size() == after);
    CHECK(c.r.count("person") == 3);
    CHECK(again.lines == 4);
    CHECK(again.people_created == 0);
    CHECK(again.people_existing == 3);
    CHECK(again.memberships_added == 0);
    CHECK(again.memberships_unchanged == 4);
}

TEST_CASE("a registration list finds people already registered, by name and organization") {
    Coordinator c;
    const Id ola = c.r.register_person("Ola Nordmann", Profession::assistant, c.fjellvik);
    const Id other = c.r.register_person("Ola Nordmann", Profession::nurse, c.dalen);
    c.r.add_member(c.group1, ola, MemberRole::candidate);
    const auto outbox = c.r.outbox_size();
    const auto s = c.r.import_registrations(
        "display_name,organization,group,role,profession\n"  // any order
        "OLA NORDMANN,Fjellvik kommune,Fjellvik group 1,candidate,nurse\n"
        "ola nordmann,Fjellvik kommune,Fjellvik group 2,candidate,nurse\n");
    CHECK(s.people_existing == 1);
    CHECK(s.people_created == 0);
    CHECK(s.memberships_unchanged == 1);
    CHECK(s.memberships_added == 1);
    CHECK(c.r.outbox_size() == outbox + 1);                       // only the new membership
    CHECK(c.r.person(ola)->profession == Profession::assistant);  // kept
    CHECK(c.r.groups_of(other).empty());
}

TEST_CASE("a withdrawn member stays withdrawn when the list is imported again") {
    Coordinator c;
    c.r.import_registrations(kGood);
    const Id ola = c.member(c.group1, "Nordmann, Ola")->person;
    c.r.withdraw_member(c.group1, ola);
    const auto outbox = c.r.outbox_size();
    const auto s = c.r.import_registrations(kGood);
    CHECK(s.withdrawn_lines == std::vector<int>{3});
    CHECK(s.memberships_unchanged == 3);
    CHECK(c.r.outbox_size() == outbox);
    CHECK(c.member(c.group1, "Nordmann, Ola")->status == MemberStatus::withdrawn);
}

TEST_CASE("a registration list with a BOM, CRLF, quotes and blank lines") {
    Coordinator c;
    const auto s = c.r.import_registrations(
        "\xEF\xBB\xBFGroup,Display name,Role,Profession,Organization\r\n"
        "\r\n"
        "Fjellvik group 1,\"S\xC3\xA6ther, Nils \"\"Nisse\"\"\",candidate,other,Fjellvik kommune\r\n"
        ",,,,\r\n"
        "  Fjellvik group 1 , \"Lie, Kari\" ,mentor,NURSE,Fjellvik kommune\r\n"
        "\r\n");
    CHECK(s.lines == 2);
    CHECK(s.memberships_added == 2);
    CHECK(c.member(c.group1, "S\xC3\xA6ther, Nils \"Nisse\""));
    CHECK(c.member(c.group1, "Lie, Kari")->role == MemberRole::mentor);

    SECTION("and with the empty columns a spreadsheet may add") {
        const auto t = c.r.import_registrations(
            "group,display_name,role,profession,organization,,\n"
            "Fjellvik group 2,\"Nordmann, Ola\",candidate,nurse,Fjellvik kommune,,\n");
        CHECK(t.people_created == 1);
        CHECK(c.member(c.group2, "Nordmann, Ola"));
    }
    SECTION("and with semicolons, as a spreadsheet in a Norwegian locale saves it") {
        const auto t = c.r.import_registrations(
            "group;display_name;role;profession;organization\n"
            "Fjellvik group 2;Nordmann, Ola;candidate;nurse;Fjellvik kommune\n");
        CHECK(t.people_created == 1);
        CHECK(c.member(c.group2, "Nordmann, Ola"));
    }
}

TEST_CASE("a bad registration list writes nothing and names the line and the column") {
    Coordinator c;
    const std::string header = "group,display_name,role,profession,organization\n";
    const std::string good = "Fjellvik group 1,Mia Haugen,mentor,nurse,Fjellvik kommune\n";

    SECTION("an unknown role") {
        const auto e = refused(c, header + good + "Fjellvik group 1,Ola Nordmann,leader,nurse,Fjellvik kommune\n");
        CHECK(e.errc() == Errc::bad_enum_value);
        CHECK(e.field() == "role");
        CHECK(std::string(e.what()) == "line 3, role: \"leader\" is not one of: mentor, candidate");
    }
    SECTION("an unknown profession") {
        const auto e = refused(c, header + good + "Fjellvik group 1,Ola Nordmann,candidate,doctor,Fjellvik kommune\n");
        CHECK(e.errc() == Errc::bad_enum_value);
        CHECK(std::string(e.what()) ==
              "line 3, profession: \"doctor\" is not one of: assistant, health_care_worker, nurse, other");
    }
    SECTION("an unknown group") {
        const auto e = refused(c, header + good + "Dalen group,Ola Nordmann,candidate,nurse,Fjellvik kommune\n");
        CHECK(e.errc() == Errc::not_found);
        CHECK(e.field() == "group");
        CHECK_THAT(e.what(), Catch::StartsWith("line 3, group: no group named \"Dalen group\" on this device"));
    }
    SECTION("the first words of a group's name are not enough") {
        const auto e = refused(c, header + "Fjellvik group,Ola Nordmann,candidate,nurse,Fjellvik kommune\n");
        CHECK(e.errc() == Errc::ambiguous);  // two groups start so
        CHECK(e.field() == "group");
        const auto f = refused(c, header + "Fjellvik group 1,Ola Nordmann,candidate,nurse,Dalen\n");
        CHECK(f.errc() == Errc::not_found);  // only one starts so, but a list names it whole
        CHECK(f.field() == "organization");
        CHECK_THAT(f.what(), Catch::Contains("write the whole name (\"Dalen kommune\"?) or its id"));
        c.r.register_organization("Dalen helsesenter", OrganizationKind::care_unit);
        const auto g = refused(c, header + "Fjellvik group 1,Ola Nordmann,candidate,nurse,Dalen\n");
        CHECK(g.errc() == Errc::ambiguous);
        CHECK(g.field() == "organization");
    }
    SECTION("a group by its id") {
        const auto s = c.r.import_registrations(header + c.group2.to_string() + ",Ola,candidate,nurse,Dalen kommune\n");
        CHECK(s.memberships_added == 1);
    }
    SECTION("too few or too many fields") {
        auto e = refused(c, header + good + "Fjellvik group 1,Ola Nordmann,candidate,nurse\n");
        CHECK(e.field() == "organization");
        CHECK(std::string(e.what()) == "line 3, organization: 4 fields where the header has 5: no organization field");
        e = refused(c, header + good + "Fjellvik group 1,Nordmann, Ola,candidate,nurse,Fjellvik kommune\n");
        CHECK_THAT(e.what(),
                   Catch::StartsWith("line 3: 6 fields where the header has 5; put a value holding a comma in quotes"));
    }
    SECTION("bad quoting") {
        auto e =
            refused(c, header + good + "Fjellvik group 1,Ola \"Olsen\" Nordmann,candidate,nurse,Fjellvik kommune\n");
        CHECK(e.field() == "display_name");
        CHECK_THAT(e.what(),
                   Catch::StartsWith("line 3, display_name: a quote inside a field that does not start with one"));
        e = refused(c, header + good + "Fjellvik group 1,\"Ola\" Nordmann,candidate,nurse,Fjellvik kommune\n");
        CHECK_THAT(e.what(), Catch::StartsWith("line 3, display_name: text after the closing quote"));
        e = refused(c, header + good + "Fjellvik group 1,\"Ola Nordmann,candidate,nurse,Fjellvik kommune\n" + good);
        CHECK_THAT(e.what(), Catch::StartsWith("line 3, display_name: the quoted field never closes"));
        e = refused(c, header + good + "Fjellvik group 1,\"Ola\nNordmann\",candidate,nurse,Fjellvik kommune\n");
        CHECK(std::string(e.what()) == "line 3, display_name: holds a line break or another control character");
    }
    SECTION("the header") {
        auto e = refused(c, "group,name,role,profession,organization,email\n" + good);
        CHECK(std::string(e.what()) ==
              "line 1 (the header): unknown column \"name\", \"email\"; missing column display_name; the columns are "
              "group,display_name,role,profession,organization");
        e = refused(c, good + good);
        CHECK_THAT(e.what(), Catch::StartsWith("line 1: the first line must be a header"));
        e = refused(c, "group,display_name,role,Role,profession,organization\n");
        CHECK(e.field() == "role");
        e = refused(c, "\n\n");
        CHECK_THAT(e.what(), Catch::StartsWith("the registration list is empty"));
    }
    SECTION("an empty value, a repeated member, a changed role") {
        auto e = refused(c, header + good + "Fjellvik group 1,Ola Nordmann,,nurse,Fjellvik kommune\n");
        CHECK(std::string(e.what()) == "line 3, role: empty; every column needs a value");
        e = refused(c, header + good + "Fjellvik group 1,MIA HAUGEN,candidate,nurse,Fjellvik kommune\n");
        CHECK_THAT(e.what(),
                   Catch::StartsWith("line 3, display_name: MIA HAUGEN is in Fjellvik group 1 on line 2 already"));
        c.r.import_registrations(header + good);
        e = refused(c, header + "Fjellvik group 1,Mia Haugen,candidate,nurse,Fjellvik kommune\n");
        CHECK(e.field() == "role");
        CHECK_THAT(e.what(), Catch::StartsWith("line 2, role: Mia Haugen is a mentor in Fjellvik group 1 already"));
    }
    SECTION("two people of that name in the organization") {
        c.r.register_person("Mia Haugen", Profession::nurse, c.fjellvik);
        c.r.register_person("Mia Haugen", Profession::assistant, c.fjellvik);
        const auto e = refused(c, header + good);
        CHECK(e.errc() == Errc::ambiguous);
        CHECK(e.field() == "display_name");
    }
    SECTION("a name too long for the schema") {
        const auto e = refused(
            c, header + good + "Fjellvik group 1," + std::string(300, 'x') + ",candidate,nurse,Fjellvik kommune\n");
        CHECK(e.errc() == Errc::too_long);
        CHECK_THAT(e.what(), Catch::StartsWith("line 3, display_name: "));
    }
    SECTION("not UTF-8") {
        auto e = refused(c, header + good + "Fjellvik group 1,S\xE6ther,candidate,nurse,Fjellvik kommune\n");
        CHECK_THAT(e.what(), Catch::StartsWith("line 3: not valid UTF-8; save the file as UTF-8"));
        e = refused(c, std::string("\xFF\xFEg\0r\0", 6));
        CHECK_THAT(e.what(), Catch::StartsWith("line 1: the file is UTF-16"));
    }
}

TEST_CASE("a mangled registration list imports or names a line, and never half") {
    // Each run mangles the good list a little: bytes that matter to CSV
    // and UTF-8 replaced, inserted or removed. Whatever comes of it, a
    // refusal names a line and writes nothing, and an import that went
    // through writes nothing the second time.
    Coordinator c;
    constexpr unsigned kSeed = 20261206;
    std::mt19937 random(kSeed);
    const std::string bytes = std::string("\",;\r\n x\xC3\xA6\xFF\xEF", 11) + std::string(1, '\0');
    const auto pick = [&](std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(random); };
    int imported = 0, refusals = 0;
    for (int run = 0; run < 1000; ++run) {
        std::string text = kGood;
        for (std::size_t k = 0, n = 1 + pick(3); k < n && !text.empty(); ++k) {
            const auto at = pick(text.size());
            switch (pick(4)) {
                case 0:
                    text[at] = bytes[pick(bytes.size())];
                    break;
                case 1:
                    text.insert(at, 1, bytes[pick(bytes.size())]);
                    break;
                case 2:
                    text.erase(at, 1);
                    break;
                default:
                    text.resize(at);
                    break;
            }
        }
        INFO("seed " << kSeed << ", run " << run << ": " << text);
        const auto outbox = c.r.outbox_size();
        try {
            c.r.import_registrations(text);
            ++imported;
            const auto written = c.r.outbox_size();
            c.r.import_registrations(text);
            CHECK(c.r.outbox_size() == written);
        } catch (const Error& e) {
            ++refusals;
            CHECK_FALSE(e.storage_failure());
            const std::string what = e.what();
            CHECK((what.starts_with("line ") || what.starts_with("the registration list is empty")));
            CHECK(c.r.outbox_size() == outbox);
        }
    }
    CHECK(imported > 0);
    CHECK(refusals > 0);
}
