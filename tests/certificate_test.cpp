// Course certificates end to end: the server issues one by the rule, in
// the push that completes it, whoever pushed it and in whatever order the
// pieces came, exactly once; a tablet verifies it with no network, and a
// certificate changed on a device verifies as bad.
#include "support/db.hpp"
#include "support/fixture.hpp"
#include "support/sync_fixture.hpp"

#include <lindra/server.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <memory>

using namespace lindra;
using lindra::test::require_ok;
using lindra::test::SyncWorld;
using lindra::test::tamper;

namespace {

std::function<void(ServerOptions&)> issuing(std::vector<std::string> keys) {
    return [keys = std::move(keys)](ServerOptions& o) {
        o.issuer.keys_pem = keys;
        o.issuer.id = "https://kurs.example.no";
        o.issuer.name = "Kompetansesenteret";
    };
}

struct Course {
    SyncWorld w;
    Replica& office = w.tablet("office");  // the coordinator's, the mentor's and the candidates' writes alike
    lindra::test::Seeded s = lindra::test::seed_group(office);
    Id ola = s.candidates[0];

    explicit Course(std::vector<std::string> keys = {generate_issuer_key()}) : w(issuing(std::move(keys))) {
        require_ok(w.sync(office));
    }
    void sync() { require_ok(w.sync(office)); }
    void pass_modules(const Id& who, int m1_score = 85) {
        office.batch([&](Writes& x) {
            x.complete_module(who, s.modules[0], s.group, m1_score);
            x.complete_module(who, s.modules[1], s.group, std::nullopt);
            x.complete_module(who, s.modules[2], s.group, std::nullopt);
        });
    }
    void attend(const Id& who, int gatherings = 2) {
        office.batch([&](Writes& x) {
            for (int i = 0; i < gatherings; ++i) {
                x.hold_gathering(s.gatherings[static_cast<std::size_t>(i)]);
                x.record_attendance(s.gatherings[static_cast<std::size_t>(i)], who, AttendanceStatus::present);
            }
        });
    }
    void confirm(const Id& who) { office.confirm_candidate(s.group, who, s.mentor); }
    // Every piece of the rule, then a sync: the certificate is issued.
    void meet_rule(const Id& who) {
        pass_modules(who);
        attend(who);
        confirm(who);
        sync();
    }
    std::int64_t certificates() { return lindra::test::count_rows(w.server_db(), "certificate"); }
};

}  // namespace

TEST_CASE("the server issues a certificate in the push that completes the rule, in any order, once") {
    Course c;
    const std::vector<std::string> orders[] = {{"modules", "attendance", "confirmation"},
                                               {"confirmation", "attendance", "modules"},
                                               {"attendance", "confirmation", "modules"}};
    for (const auto& order : orders) {
        Course fresh;
        std::int64_t before = 0;
        for (const auto& step : order) {
            CHECK(fresh.certificates() == before);
            if (step == "modules") fresh.pass_modules(fresh.ola);
            if (step == "attendance") fresh.attend(fresh.ola);
            if (step == "confirmation") fresh.confirm(fresh.ola);
            fresh.sync();
        }
        CHECK(fresh.certificates() == 1);
        // The tablet that completed it holds it after the same round's pull.
        const auto held = fresh.office.certificates_of(fresh.ola);
        REQUIRE(held.size() == 1);
        const auto check = fresh.office.verify_certificate(held[0]);
        INFO(check.reason);
        CHECK(check.status == CertificateStatus::valid);
        CHECK(check.person_name == "Ola Nordmann");
        CHECK(check.course_title == "Palliative care basics");
        CHECK(check.issuer == "Kompetansesenteret");
        CHECK(check.serial.size() == 14);
        // Nothing more completes it again: it stays one.
        fresh.attend(fresh.ola, 3);
        fresh.confirm(fresh.ola);
        fresh.sync();
        CHECK(fresh.certificates() == 1);
    }
}

TEST_CASE("all pieces in one push issue one certificate, and a candidate who misses the rule gets none") {
    Course c;
    const Id kari = c.s.candidates[1];
    c.pass_modules(c.ola);
    c.pass_modules(kari, 70);  // M1 needs 80
    c.attend(c.ola);
    c.attend(kari);
    c.confirm(c.ola);
    c.confirm(kari);
    c.sync();
    CHECK(c.certificates() == 1);
    CHECK(c.office.certificates_of(kari).empty());
    // Kari retakes M1 and passes: her certificate comes with that change.
    c.office.record_score(kari, c.s.modules[0], c.s.group, 92);
    c.sync();
    CHECK(c.certificates() == 2);
    CHECK(c.office.certificates_of(kari).size() == 1);
}

TEST_CASE("a certificate is never taken back by a later change") {
    Course c;
    c.meet_rule(c.ola);
    REQUIRE(c.certificates() == 1);
    c.office.reset_module(c.ola, c.s.modules[0], c.s.group);
    c.office.withdraw_member(c.s.group, c.ola);
    c.sync();
    CHECK(c.certificates() == 1);
    // Still there, and still valid, on the tablet that pulled the changes.
    const auto held = c.office.certificates_of(c.ola);
    REQUIRE(held.size() == 1);
    CHECK(c.office.verify_certificate(held[0]).status == CertificateStatus::valid);
}

TEST_CASE("a certificate changed on a tablet verifies as bad; one signed with a key it lacks, as unknown") {
    Course c;
    c.meet_rule(c.ola);
    const auto id = c.office.certificates_of(c.ola).at(0);
    const std::string file = c.w.path("office");
    auto status = [&] {
        Replica again(file);
        return again.verify_certificate(id).status;
    };
    REQUIRE(status() == CertificateStatus::valid);

    SECTION("one byte of the signed payload changed") {
        tamper(file,
               "UPDATE certificate SET credential = substr(credential, 1, 100) || "
               "(CASE substr(credential, 101, 1) WHEN 'A' THEN 'B' ELSE 'A' END) || substr(credential, 102)");
        CHECK(status() == CertificateStatus::bad_signature);
    }
    SECTION("the certificate given to another person") {
        tamper(file, "UPDATE certificate SET person_id = (SELECT id FROM person WHERE display_name = 'Kari Hansen')");
        CHECK(status() == CertificateStatus::bad_signature);
    }
    SECTION("another certificate's credential copied over") {
        tamper(file, "UPDATE certificate SET credential = 'eyJhbGciOiJFZERTQSJ9.e30.AAAA'");
        CHECK(status() == CertificateStatus::bad_signature);
    }
    SECTION("the issuer's key never arrived") {
        tamper(file, "DELETE FROM issuer_key");
        CHECK(status() == CertificateStatus::unknown_key);
    }
    SECTION("no such certificate") {
        Replica again(file);
        CHECK(lindra::test::error_of([&] { again.verify_certificate(Id::random()); }).errc() == Errc::not_found);
    }
}

TEST_CASE("after the server takes a new issuer key, certificates signed with the old one still verify") {
    const std::string old_key = generate_issuer_key();
    Course c({old_key});
    c.meet_rule(c.ola);
    const std::string new_key = generate_issuer_key();
    c.w.restart_server(issuing({old_key, new_key}));
    const Id kari = c.s.candidates[1];
    c.pass_modules(kari);
    c.attend(kari);
    c.confirm(kari);
    c.sync();
    const auto ola = c.office.verify_certificate(c.office.certificates_of(c.ola).at(0));
    const auto karis = c.office.verify_certificate(c.office.certificates_of(kari).at(0));
    CHECK(ola.status == CertificateStatus::valid);
    CHECK(karis.status == CertificateStatus::valid);
    CHECK(ola.kid != karis.kid);
    CHECK(lindra::test::count_rows(c.office.path(), "issuer_key") == 2);
}

TEST_CASE("a revoked certificate verifies as revoked on every tablet, by the signed list, and stays revoked") {
    Course c;
    const Id kari = c.s.candidates[1];
    for (const Id& who : {c.ola, kari}) {
        c.pass_modules(who);
        c.attend(who);
        c.confirm(who);
    }
    c.sync();
    const Id olas = c.office.certificates_of(c.ola).at(0);
    const Id karis = c.office.certificates_of(kari).at(0);
    Replica& candidate = c.w.tablet("candidate");
    require_ok(c.w.sync(candidate));
    const auto before = candidate.verify_certificate(olas);
    REQUIRE(before.status == CertificateStatus::valid);
    // The list is signed from the start: the tablet knows how old it is.
    REQUIRE(before.revocation_list_age_ms);

    CHECK(lindra::test::error_of([&] { c.office.revoke_certificate(olas, "  "); }).errc() == Errc::invalid_argument);
    CHECK(lindra::test::error_of([&] { c.office.revoke_certificate(Id::random(), "why"); }).errc() == Errc::not_found);
    c.office.revoke_certificate(olas, "the attendance was recorded in error");
    c.sync();
    require_ok(c.w.sync(candidate));
    const auto after = candidate.verify_certificate(olas);
    CHECK(after.status == CertificateStatus::revoked);
    CHECK(after.reason == "revoked: the attendance was recorded in error");
    CHECK(candidate.verify_certificate(karis).status == CertificateStatus::valid);
    CHECK(lindra::test::count_rows(c.w.server_db(), "certificate") == 2);  // the row stays

    // A second revocation keeps the first one's bit; a new reason changes
    // the reason only.
    c.office.revoke_certificate(karis, "left before the end");
    c.office.revoke_certificate(olas, "attendance recorded in error (G2)");
    c.sync();
    require_ok(c.w.sync(candidate));
    CHECK(candidate.verify_certificate(karis).status == CertificateStatus::revoked);
    const auto again = candidate.verify_certificate(olas);
    CHECK(again.status == CertificateStatus::revoked);
    CHECK(again.reason == "revoked: attendance recorded in error (G2)");

    // The bit is in the signed list: a tablet that clears the row's
    // revocation still finds it revoked. One that changes the list's
    // signed bytes has no list it can trust, and says so.
    const std::string file = candidate.path();
    auto check = [&] {
        Replica reopened(file);
        return reopened.verify_certificate(olas);
    };
    tamper(file, "UPDATE certificate SET revoked_at = NULL, revocation_reason = NULL");
    CHECK(check().status == CertificateStatus::revoked);
    tamper(file,
           "UPDATE status_list SET credential = substr(credential, 1, 100) || "
           "(CASE substr(credential, 101, 1) WHEN 'A' THEN 'B' ELSE 'A' END) || substr(credential, 102)");
    const auto untrusted = check();
    CHECK_FALSE(untrusted.revocation_list_age_ms);
    CHECK(untrusted.status == CertificateStatus::valid);  // the row said nothing more, and the list is not trusted
    CHECK(untrusted.reason.find("the revocation list on this device does not verify") != std::string::npos);
}

TEST_CASE("a revocation and a membership cannot be deleted through the API") {
    Course c;
    c.meet_rule(c.ola);
    const Id id = c.office.certificates_of(c.ola).at(0);
    c.office.revoke_certificate(id, "issued in error");
    const Id revocation = Id::derive("revocation", {id});
    CHECK(lindra::test::error_of([&] { c.office.remove("revocation", revocation); }).errc() == Errc::invalid_argument);
    const Id membership = Id::derive("membership", {c.s.group, c.ola});
    CHECK(lindra::test::error_of([&] { c.office.remove("membership", membership); }).errc() == Errc::invalid_argument);
}

TEST_CASE("a credential from elsewhere verifies the same way, and anything else as bad, without throwing") {
    Course c;
    c.meet_rule(c.ola);
    const std::string jws = c.office.verify_certificate(c.office.certificates_of(c.ola).at(0)).credential;
    // Another tablet that has the server's keys but not Ola's row.
    Replica& other = c.w.tablet("other");
    require_ok(c.w.sync(other));
    tamper(other.path(), "DELETE FROM certificate");
    const auto shown = other.verify_credential("  " + jws + "\n");
    INFO(shown.reason);
    CHECK(shown.status == CertificateStatus::valid);
    CHECK(shown.person_name == "Ola Nordmann");
    CHECK(shown.serial.size() == 14);
    std::string changed = jws;
    changed[jws.find('.') + 20] = changed[jws.find('.') + 20] == 'A' ? 'B' : 'A';
    CHECK(other.verify_credential(changed).status == CertificateStatus::bad_signature);
    CHECK(other.verify_credential("").status == CertificateStatus::bad_signature);
    CHECK(other.verify_credential("not.a.jws").status == CertificateStatus::bad_signature);
}

TEST_CASE("a server without an issuer key refuses a revocation it could not carry out") {
    Course c;
    c.meet_rule(c.ola);
    const Id id = c.office.certificates_of(c.ola).at(0);
    c.w.restart_server([](ServerOptions&) {});  // no issuer key
    c.office.revoke_certificate(id, "issued in error");
    const auto r = c.w.sync(c.office);
    require_ok(r);
    REQUIRE(r.rejected.size() == 1);
    CHECK(r.rejected[0].reason.find("no issuer key") != std::string::npos);
    CHECK(c.office.verify_certificate(id).status == CertificateStatus::valid);
    CHECK(c.office.refused_writes().size() == 1);  // the coordinator's write is kept, not lost
}

TEST_CASE("the revocation list is signed anew at least daily, so its age is that of the last sync") {
    const std::string key = generate_issuer_key();
    Course c({key});
    c.meet_rule(c.ola);
    const Id id = c.office.certificates_of(c.ola).at(0);
    // The server's clock and a tablet's, moved on by `days_on` days: the
    // server signs its list when it starts, then time passes.
    auto days_on = std::make_shared<std::atomic<int>>(0);
    const std::function<Timestamp()> later = [days_on] {
        return std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch() + std::chrono::hours(25) * days_on->load())
            .count();
    };
    c.w.restart_server([&](ServerOptions& o) {
        issuing({key})(o);
        o.wall_clock_ms = later;
    });
    const std::string token = c.w.token({.user = "next-day", .role = Role::admin, .ttl = std::chrono::hours(72)});
    *days_on = 1;
    Replica& tablet = c.w.tablet("next-day", {.wall_clock_ms = later});
    require_ok(c.w.sync(tablet, token));  // a pull only: the list it gets is a day old
    const auto before = tablet.verify_certificate(id);
    REQUIRE(before.revocation_list_age_ms);
    CHECK(*before.revocation_list_age_ms > 24 * 3600 * 1000);
    // The day's first push brings a list signed now.
    tablet.add_time_spent(c.ola, c.s.modules[0], c.s.group, 60);
    require_ok(c.w.sync(tablet, token));
    const auto after = tablet.verify_certificate(id);
    REQUIRE(after.revocation_list_age_ms);
    CHECK(*after.revocation_list_age_ms < 3600 * 1000);
    CHECK(after.status == CertificateStatus::valid);
}
