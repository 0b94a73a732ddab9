// Bad input through the public lindra::Replica API: every case must fail with
// the right Errc, name the field it is about, and write nothing at all (no
// outbox entry, no change to any table of the file).
#include "store/database.hpp"
#include "support/db.hpp"
#include "support/temp_dir.hpp"

#include <lindra/change.hpp>
#include <lindra/error.hpp>
#include <lindra/replica.hpp>

#include <catch2/catch.hpp>

#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

using lindra::Change;
using lindra::Errc;
using lindra::Error;
using lindra::Id;
using lindra::Replica;
using lindra::Value;
using lindra::test::count_rows;
using lindra::test::dump;
using lindra::test::error_of;
using lindra::test::TempDir;

namespace {

// A small but complete world: one of every row the cases touch.
struct World {
    Id org, course, module, group, mentor, candidate, other, membership, gathering, progress, reflection;
};

World seed(Replica& r) {
    using namespace lindra;
    World w;
    w.org = r.register_organization("Care home", OrganizationKind::care_unit);
    w.course = r.register_course("Palliative care", "1", "nb", 4);
    w.module = r.register_module({w.course, 1, "M1: Basics", ModuleKind::elearning, true, 80});
    w.group = r.create_group({w.course, w.org, "Group A", "2026-01-05", "2026-06-30"});
    w.mentor = r.register_person("Mia Mentor", Profession::nurse, w.org);
    w.candidate = r.register_person("Carl Candidate", Profession::assistant, w.org);
    w.other = r.register_person("Olga Other", Profession::health_care_worker, w.org);
    r.add_member(w.group, w.mentor, MemberRole::mentor);
    w.membership = r.add_member(w.group, w.candidate, MemberRole::candidate);
    w.gathering = r.plan_gathering({w.group, 1, "First gathering"});
    r.start_module(w.candidate, w.module, w.group);
    w.progress = Id::derive("module_progress", {w.candidate, w.module, w.group});
    w.reflection = r.write_reflection(w.candidate, w.group, w.module, "What I learnt");
    return w;
}

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

Value s(const char* text) {
    return std::string(text);
}
Value i(std::int64_t v) {
    return v;
}

std::string repeat(const std::string& unit, std::size_t n) {
    std::string out;
    for (std::size_t k = 0; k < n; ++k) out += unit;
    return out;
}

// A valid remote batch: a new organization (name, kind) and a newer title
// for the existing course. `spoil` turns its middle change into a bad one.
std::vector<Change> remote_batch(const Replica& r, const World& w, const std::function<void(Change&)>& spoil) {
    const Id origin = Id::random();
    const Id org = Id::random();
    const auto hlc = r.hlc() + (std::uint64_t{1000} << 16);  // a second ahead: it would win
    std::vector<Change> batch = {
        {1, org, 2, s("Remote org"), hlc, origin},
        {1, org, 3, s("region"), hlc, origin},
        {3, w.course, 2, s("Renamed remotely"), hlc, origin},
    };
    spoil(batch[1]);
    return batch;
}

struct Case {
    using Act = std::function<void(Replica&, const World&)>;
    Case(std::string name, Act act, Errc errc, std::string field, std::string mentions = {}, bool remote = false)
        : name(std::move(name)),
          act(std::move(act)),
          errc(errc),
          field(std::move(field)),
          mentions(std::move(mentions)),
          remote(remote) {}

    std::string name;
    Act act;
    Errc errc;
    std::string field;     // "entity.field" the error is about; empty if none
    std::string mentions;  // a further word the message must contain, if any
    bool remote;           // an apply_remote case: the clock must not move either
};

Case remote_case(std::string name, std::function<void(Change&, const World&)> spoil, Errc errc, std::string field,
                 std::string mentions = {}) {
    auto act = [spoil](Replica& r, const World& w) {
        r.apply_remote(remote_batch(r, w, [&](Change& c) { spoil(c, w); }));
    };
    return {std::move(name), act, errc, std::move(field), std::move(mentions), true};
}

std::vector<Case> cases() {
    using namespace lindra;
    using W = const World&;
    std::vector<Case> out = {
        // Names that are not in the schema table.
        {"create an unknown entity",
         [](Replica& r, W) {
             r.create("nope", {{"name", s("x")}});
         },
         Errc::unknown_entity, "", "nope"},
        {"update an unknown entity",
         [](Replica& r, W w) {
             r.update("nope", w.org, {{"name", s("x")}});
         },
         Errc::unknown_entity, "", "nope"},
        {"create with an unknown field",
         [](Replica& r, W) {
             r.create("organization", {{"name", s("New")}, {"colour", s("red")}});
         },
         Errc::unknown_field, "organization.colour"},
        {"update an unknown field",
         [](Replica& r, W w) {
             r.update("person", w.candidate, {{"shoe_size", i(42)}});
         },
         Errc::unknown_field, "person.shoe_size"},

        // Values of the wrong type.
        {"text into an integer field",
         [](Replica& r, W w) {
             r.update("course", w.course, {{"required_gatherings", s("four")}});
         },
         Errc::wrong_type, "course.required_gatherings"},
        {"an int into a ref",
         [](Replica& r, W w) {
             r.update("module", w.module, {{"course_id", i(5)}});
         },
         Errc::wrong_type, "module.course_id"},
        {"an id into a text field",
         [](Replica& r, W w) {
             r.update("organization", w.org, {{"name", w.org}});
         },
         Errc::wrong_type, "organization.name"},
        {"no value for a required field",
         [](Replica& r, W w) {
             r.update("organization", w.org, {{"name", Value{}}});
         },
         Errc::wrong_type, "organization.name"},
        {"text into the progress field",
         [](Replica& r, W w) {
             r.update("module_progress", w.progress, {{"progress", s("passed")}});
         },
         Errc::wrong_type, "module_progress.progress"},

        // Enum values outside the allowed set.
        {"update a membership role to boss",
         [](Replica& r, W w) {
             r.update("membership", w.membership, {{"role", s("boss")}});
         },
         Errc::bad_enum_value, "membership.role", "boss"},
        {"create a membership with role boss",
         [](Replica& r, W w) {
             r.create("membership",
                      {{"group_id", w.group}, {"person_id", w.other}, {"role", s("boss")}, {"status", s("active")}});
         },
         Errc::bad_enum_value, "membership.role", "boss"},
        {"progress to an unknown status",
         [](Replica& r, W w) {
             r.update("module_progress", w.progress, {{"progress", i(progress_value(1, 9))}});
         },
         Errc::bad_enum_value, "module_progress.progress"},

        // Text limits and encoding.
        {"a reflection of 4001 characters",
         [](Replica& r, W w) { r.write_reflection(w.candidate, w.group, {}, std::string(4001, 'x')); }, Errc::too_long,
         "reflection.text", "4000"},
        {"a reflection of 4001 two-byte characters",
         [](Replica& r, W w) { r.write_reflection(w.candidate, w.group, {}, repeat("\xC3\xB8", 4001)); },
         Errc::too_long, "reflection.text", "4000"},
        {"a course title of 201 characters",
         [](Replica& r, W) { r.register_course(std::string(201, 'T'), "1", "nb", 4); }, Errc::too_long, "course.title",
         "200"},
        {"an attendance note of 2001 characters",
         [](Replica& r, W w) {
             r.record_attendance(w.gathering, w.candidate, AttendanceStatus::present, std::string(2001, 'n'));
         },
         Errc::too_long, "attendance.note", "2000"},
        {"a display name with an embedded NUL",
         [](Replica& r, W) { r.register_person(std::string("Ann\0e", 5), Profession::nurse); }, Errc::invalid_argument,
         "person.display_name"},

        // Numbers out of range.
        {"complete_module with score 101",
         [](Replica& r, W w) { r.complete_module(w.candidate, w.module, w.group, 101); }, Errc::out_of_range,
         "module_progress.best_score", "101"},
        {"record_score -1", [](Replica& r, W w) { r.record_score(w.candidate, w.module, w.group, -1); },
         Errc::out_of_range, "module_progress.best_score", "-1"},
        {"negative time spent", [](Replica& r, W w) { r.add_time_spent(w.candidate, w.module, w.group, -1); },
         Errc::out_of_range, "module_progress.time_spent_s"},
        {"a pass score of 101",
         [](Replica& r, W w) {
             r.register_module({w.course, 2, "M2", ModuleKind::practice, true, 101});
         },
         Errc::out_of_range, "module.pass_score"},
        {"a gathering ordinal of 0",
         [](Replica& r, W w) {
             r.plan_gathering({w.group, 0, "Zero"});
         },
         Errc::out_of_range, "gathering.ordinal"},

        // Missing, fixed or malformed fields.
        {"a mentor group without a name",
         [](Replica& r, W w) {
             r.create("mentor_group", {{"course_id", w.course}, {"organization_id", w.org}});
         },
         Errc::invalid_argument, "mentor_group.name", "required"},
        {"a mentor group with an empty name",
         [](Replica& r, W w) { r.create_group({.course = w.course, .organization = w.org, .name = ""}); },
         Errc::invalid_argument, "mentor_group.name", "empty"},
        {"deleting a membership (final for that group and person)",
         [](Replica& r, W w) { r.remove("membership", w.membership); }, Errc::invalid_argument, "", "status"},
        {"a membership without its person",
         [](Replica& r, W w) {
             r.create("membership", {{"group_id", w.group}, {"role", s("candidate")}, {"status", s("active")}});
         },
         Errc::invalid_argument, "membership.person_id", "required"},
        {"moving a membership to another person",
         [](Replica& r, W w) {
             r.update("membership", w.membership, {{"person_id", w.other}});
         },
         Errc::invalid_argument, "membership.person_id", "identity"},
        {"moving progress to another group",
         [](Replica& r, W w) {
             r.update("module_progress", w.progress, {{"group_id", Id::random()}});
         },
         Errc::invalid_argument, "module_progress.group_id", "identity"},
        {"the date 2026-02-30",
         [](Replica& r, W w) {
             r.create_group({w.course, w.org, "Group B", "2026-02-30", ""});
         },
         Errc::invalid_argument, "mentor_group.starts_on", "2026-02-30"},
        {"a date without leading zeros",
         [](Replica& r, W w) {
             r.update("mentor_group", w.group, {{"ends_on", s("2026-6-30")}});
         },
         Errc::invalid_argument, "mentor_group.ends_on", "2026-6-30"},
        {"the nil id as a reference", [](Replica& r, W w) { r.write_reflection(w.candidate, w.group, Id{}, "text"); },
         Errc::invalid_argument, "reflection.module_id", "nil"},
        {"restoring a row",
         [](Replica& r, W w) {
             r.update("organization", w.org, {{"deleted", i(0)}});
         },
         Errc::invalid_argument, "organization.deleted"},
        {"a field given twice",
         [](Replica& r, W w) {
             r.update("organization", w.org, {{"name", s("A")}, {"name", s("B")}});
         },
         Errc::invalid_argument, "organization.name", "twice"},
        {"setting a counter",
         [](Replica& r, W w) {
             r.update("module_progress", w.progress, {{"time_spent_s", i(9)}});
         },
         Errc::invalid_argument, "module_progress.time_spent_s"},
        {"adding to a non-counter", [](Replica& r, W w) { r.add("course", w.course, "required_gatherings", 1); },
         Errc::invalid_argument, "course.required_gatherings"},
        {"updating a row that is not there",
         [](Replica& r, W) {
             r.update("organization", Id::random(), {{"name", s("Ghost")}});
         },
         Errc::not_found, ""},
        {"creating a derived row twice",
         [](Replica& r, W w) {
             r.create("membership", {{"group_id", w.group},
                                     {"person_id", w.candidate},
                                     {"role", s("candidate")},
                                     {"status", s("active")}});
         },
         Errc::invalid_argument, "", "already exists"},

        // A batch is one transaction: two good writes, then a bad one.
        {"batch whose third write names an unknown entity",
         [](Replica& r, W w) {
             r.batch([&](Writes& b) {
                 b.register_organization("Batch org", OrganizationKind::region);
                 b.record_score(w.candidate, w.module, w.group, 90);
                 b.create("nope", {});
             });
         },
         Errc::unknown_entity, "", "nope"},
        {"batch whose third write is too long",
         [](Replica& r, W w) {
             r.batch([&](Writes& b) {
                 b.hold_gathering(w.gathering);
                 b.record_attendance(w.gathering, w.candidate, AttendanceStatus::present);
                 b.write_reflection(w.candidate, w.group, {}, std::string(4001, 'x'));
             });
         },
         Errc::too_long, "reflection.text"},

        // apply_remote: one bad change in the middle of a valid batch.
        remote_case(
            "remote: unknown entity tag", [](Change& c, W) { c.entity = 99; }, Errc::unknown_entity, "", "99"),
        remote_case(
            "remote: unknown field tag", [](Change& c, W) { c.field = 99; }, Errc::unknown_field, "", "99"),
        remote_case(
            "remote: an int into an enum", [](Change& c, W) { c.value = i(3); }, Errc::wrong_type, "organization.kind"),
        remote_case(
            "remote: an enum value outside the set", [](Change& c, W) { c.value = s("planet"); }, Errc::bad_enum_value,
            "organization.kind", "planet"),
        remote_case(
            "remote: membership role boss",
            [](Change& c, W w) {
                c.entity = 6;
                c.row = w.membership;
                c.field = 4;
                c.value = s("boss");
            },
            Errc::bad_enum_value, "membership.role", "boss"),
        remote_case(
            "remote: unknown progress status",
            [](Change& c, W w) {
                c.entity = 9;
                c.row = w.progress;
                c.field = 5;
                c.value = i(lindra::progress_value(1, 9));
            },
            Errc::bad_enum_value, "module_progress.progress"),
        remote_case(
            "remote: a reflection of 4001 characters",
            [](Change& c, W w) {
                c.entity = 10;
                c.row = w.reflection;
                c.field = 6;
                c.value = std::string(4001, 'x');
            },
            Errc::too_long, "reflection.text"),
        remote_case(
            "remote: moving a membership to another person",
            [](Change& c, W w) {
                c.entity = 6;
                c.row = w.membership;
                c.field = 3;  // person_id, part of the row's identity
                c.value = w.other;
            },
            Errc::invalid_argument, "membership.person_id", "identity"),
        {"remote: a membership whose id does not match its group and person",
         [](Replica& r, W w) {
             const Id row = Id::random(), origin = Id::random();
             const auto hlc = r.hlc() + 1;
             const Change forged[] = {{6, row, 2, w.group, hlc, origin}, {6, row, 3, w.other, hlc, origin}};
             r.apply_remote(forged);
         },
         Errc::invalid_argument, "", "does not match", true},
        remote_case(
            "remote: nil origin", [](Change& c, W) { c.origin = Id{}; }, Errc::invalid_argument, "organization.kind",
            "organization.kind"),
        remote_case(
            "remote: hlc 0", [](Change& c, W) { c.hlc = 0; }, Errc::invalid_argument, "organization.kind",
            "organization.kind"),
        remote_case(
            "remote: an hlc above 2^63", [](Change& c, W) { c.hlc = std::uint64_t{1} << 63; }, Errc::invalid_argument,
            "organization.kind", "hlc"),
        remote_case(
            "remote: nil row id", [](Change& c, W) { c.row = Id{}; }, Errc::invalid_argument, "organization.kind",
            "organization.kind"),
    };

    // Malformed UTF-8, each as a whole reflection and inside a longer one.
    const std::pair<const char*, std::string> bad_utf8[] = {
        {"a lone continuation byte", "\x80"},
        {"an overlong encoding", "\xC0\xAF"},
        {"a UTF-16 surrogate", "\xED\xA0\x80"},
        {"a truncated sequence", "abc\xE2\x82"},
        {"a code point above U+10FFFF", "\xF4\x90\x80\x80"},
        {"an embedded NUL", std::string("ab\0cd", 5)},
    };
    for (const auto& [what, text] : bad_utf8) {
        for (const auto& t : {text, "Today I learnt " + text + " something"}) {
            out.push_back({std::string("a reflection with ") + what + (t == text ? "" : " inside"),
                           [t](Replica& r, W w) { r.write_reflection(w.candidate, w.group, {}, t); },
                           Errc::invalid_argument, "reflection.text", "UTF-8"});
        }
    }
    return out;
}

}  // namespace

TEST_CASE("bad input fails, names its field and writes nothing", "[bad_input]") {
    TempDir dir;
    const auto path = dir.file("r.db");
    Replica r(path);
    const World w = seed(r);

    for (const auto& c : cases()) {
        DYNAMIC_SECTION(c.name) {
            const auto outbox_before = r.outbox_size();
            const auto hlc_before = r.hlc();
            const auto before = dump(path);

            const Error e = error_of([&] { c.act(r, w); });
            const std::string message = e.what();
            INFO("message: " << message);
            CHECK(e.errc() == c.errc);
            CHECK(e.field() == c.field);
            if (!c.field.empty()) {
                // The message names the entity and the field.
                const auto dot = c.field.find('.');
                CHECK(contains(message, c.field.substr(0, dot)));
                CHECK(contains(message, c.field.substr(dot + 1)));
            }
            if (!c.mentions.empty()) CHECK(contains(message, c.mentions));

            CHECK(r.outbox_size() == outbox_before);
            CHECK(dump(path) == before);
            if (c.remote) CHECK(r.hlc() == hlc_before);

            // The replica is still usable, and the failed write consumed no seq.
            r.register_organization("Afterwards", lindra::OrganizationKind::region);
            const auto box = r.outbox(1000);
            REQUIRE(box.size() == static_cast<std::size_t>(outbox_before + 1));
            CHECK(box.back().seq == box[box.size() - 2].seq + 1);
        }
    }
}

// The cases above would see a partial write: the same operations with good
// input do change the file.
TEST_CASE("the good twins of the bad input do write", "[bad_input]") {
    TempDir dir;
    const auto path = dir.file("r.db");
    Replica r(path);
    const World w = seed(r);
    const auto outbox_before = r.outbox_size();
    const auto orgs_before = count_rows(path, "organization");
    const auto before = dump(path);

    SECTION("the remote batch without the bad change") {
        r.apply_remote(remote_batch(r, w, [](Change&) {}));
        CHECK(count_rows(path, "organization") == orgs_before + 1);
        CHECK(r.outbox_size() == outbox_before);  // remote changes are not re-sent
        lindra::store::Database db(path);
        auto st = db.prepare("SELECT title FROM course WHERE id = ?");
        st.bind(1, w.course);
        REQUIRE(st.step());
        CHECK(st.text(0) == "Renamed remotely");
    }
    SECTION("a batch of three good writes") {
        r.batch([&](lindra::Writes& b) {
            b.register_organization("Batch org", lindra::OrganizationKind::region);
            b.record_score(w.candidate, w.module, w.group, 90);
            b.write_reflection(w.candidate, w.group, {}, "fine");
        });
        CHECK(r.outbox_size() == outbox_before + 3);
        CHECK(count_rows(path, "organization") == orgs_before + 1);
        CHECK(count_rows(path, "reflection") == 2);
    }
    SECTION("values at the limits") {
        r.record_score(w.candidate, w.module, w.group, 0);
        r.complete_module(w.candidate, w.module, w.group, 100);
        r.register_course(std::string(200, 'T'), "1", "nb", 100);
        r.create_group({w.course, w.org, "Leap", "2028-02-29", "2028-12-31"});
        r.update("membership", w.membership, {{"role", s("mentor")}});
        CHECK(r.outbox_size() == outbox_before + 5);
    }
    CHECK(dump(path) != before);
}

TEST_CASE("a reflection of exactly 4000 characters is accepted", "[bad_input]") {
    // One to four bytes per character: the limit counts characters, not bytes.
    const std::string unit = GENERATE(as<std::string>{}, "x", "\xC3\xB8", "\xE2\x82\xAC", "\xF0\x9F\x98\x80");
    TempDir dir;
    const auto path = dir.file("r.db");
    Replica r(path);
    const World w = seed(r);
    const auto outbox_before = r.outbox_size();

    const std::string text = repeat(unit, 4000);
    const Id id = r.write_reflection(w.candidate, w.group, w.module, text);
    CHECK(r.outbox_size() == outbox_before + 1);
    lindra::store::Database db(path);
    auto st = db.prepare("SELECT text FROM reflection WHERE id = ?");
    st.bind(1, id);
    REQUIRE(st.step());
    CHECK(st.text(0) == text);

    const auto e = error_of([&] { r.write_reflection(w.candidate, w.group, w.module, text + unit); });
    CHECK(e.errc() == Errc::too_long);
    CHECK(e.field() == "reflection.text");
    CHECK(r.outbox_size() == outbox_before + 1);
}

TEST_CASE("an app exception inside batch lands none of its writes", "[bad_input]") {
    TempDir dir;
    const auto path = dir.file("r.db");
    Replica r(path);
    const World w = seed(r);
    const auto outbox_before = r.outbox_size();
    const auto before = dump(path);

    CHECK_THROWS_AS(r.batch([&](lindra::Writes& b) {
        b.register_organization("Batch org", lindra::OrganizationKind::region);
        b.record_score(w.candidate, w.module, w.group, 90);
        throw std::runtime_error("the app changed its mind");
    }),
                    std::runtime_error);
    CHECK(r.outbox_size() == outbox_before);
    CHECK(dump(path) == before);
}

// A row that arrived without its keys (a remote change to one field) cannot
// be given keys that derive another id by a local update.
TEST_CASE("a local update cannot give a row keys that do not match its id", "[bad_input]") {
    TempDir dir;
    const auto path = dir.file("r.db");
    Replica r(path);
    const World w = seed(r);
    const Id row = Id::derive("membership", {w.group, w.other});
    const Change role{6, row, 4, s("candidate"), r.hlc() + 1, Id::random()};
    r.apply_remote({&role, 1});
    const auto before = dump(path);
    const auto outbox_before = r.outbox_size();

    const Error e = error_of([&] { r.update("membership", row, {{"group_id", w.group}, {"person_id", w.candidate}}); });
    CHECK(e.errc() == Errc::invalid_argument);
    CHECK(std::string(e.what()).find("does not match") != std::string::npos);
    CHECK(dump(path) == before);
    CHECK(r.outbox_size() == outbox_before);

    r.update("membership", row, {{"group_id", w.group}, {"person_id", w.other}});  // the right keys
    CHECK(r.groups_of(w.other).size() == 0);  // no status yet: not an active member
    CHECK(count_rows(path, "membership") == 3);
}
