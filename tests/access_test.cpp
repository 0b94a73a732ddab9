// Authorization and scoped reads on the server, cell by cell: for every
// kind of user, which pushed changes the server applies and which rows a
// pull gives them (DESIGN §2, §6; README "Security model"). Driven through
// the server's sans-I/O session with real signed tokens, so identity comes
// from the token exactly as in production.
#include "protocol/messages.hpp"
#include "replica/hlc.hpp"
#include "server/auth.hpp"
#include "server/certificates.hpp"
#include "server/session.hpp"
#include "server/store.hpp"
#include "support/db.hpp"
#include "support/temp_dir.hpp"
#include "support/test_store.hpp"

#include <lindra/replica.hpp>
#include <lindra/server.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <map>
#include <set>

namespace lindra::test {
namespace {

using protocol::ErrorCode;
using server::Identity;

std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// The world every cell starts from: two organizations, group 1 in the first
// (mentor Mona; candidates Ola and Kari; Wenche withdrawn) and group 2 in the
// second (mentor Per).
struct World {
    Id org1, org2, course, module, module2, group1, group2, gathering1, gathering2;
    Id mona, ola, kari, wenche, per, cora, conrad;
    Id ola_progress, ola_reflection;
    Id kari_certificate;  // issued at the seed: Kari met the rule
};

// One message to a session and its one reply, through the codec both ways.
protocol::ServerMessage exchange(server::ServerSession& session, const protocol::ClientMessage& m) {
    const std::string body = protocol::encode(m);
    auto reply = session.on_frame({reinterpret_cast<const std::uint8_t*>(body.data()), body.size()});
    REQUIRE(reply.frames.size() == 1);
    const auto& f = reply.frames.front();
    return protocol::decode_server({reinterpret_cast<const std::uint8_t*>(f.data()), f.size()}, 64 << 20);
}

// One device talking to the server's session directly: frames in, frames out.
class Device {
  public:
    Device(server::SessionContext& context, std::string token, std::uint16_t schema = schema_version())
        : session_(context, "test"), device_(Id::random()) {
        protocol::Hello h{{protocol::kVersion}, device_, std::move(token), schema, "access_test", {}};
        welcome_ = send(h);
    }

    bool welcomed() const { return std::holds_alternative<protocol::Welcome>(welcome_); }
    const protocol::ServerMessage& welcome() const { return welcome_; }
    const Id& id() const { return device_; }

    protocol::ServerMessage send(const protocol::ClientMessage& m) { return exchange(session_, m); }

    // Pushes one write: `fields` of `entity` row `row`, stamped now.
    protocol::ServerMessage push(std::string_view entity, const Id& row, const std::vector<FieldValue>& fields) {
        const EntityDef& e = *find_entity(entity);
        const auto hlc = replica::hlc_make(static_cast<std::uint64_t>(now_ms()), 0);
        protocol::Entry entry{++seq_, {}};
        for (const auto& [name, value] : fields)
            entry.changes.push_back({e.tag, row, e.field(name)->tag, value, hlc, device_});
        last_ = send(protocol::Push{{entry}});
        return last_;
    }
    const protocol::ServerMessage& last() const { return last_; }

    // Every row id a full pull gives this device, with purges applied.
    std::set<Id> pull_all() {
        std::set<Id> rows;
        std::string cursor;
        for (int round = 0; round < 100; ++round) {
            auto m = send(protocol::Pull{cursor, 50'000, false});
            const auto* batch = std::get_if<protocol::PullBatch>(&m);
            REQUIRE(batch);
            for (const auto& p : batch->purges)
                for (const auto& r : p.rows) rows.erase(r);
            for (const auto& c : batch->changes) rows.insert(c.row);
            cursor = batch->next_cursor;
            if (!batch->has_more) return rows;
        }
        FAIL("the pull did not end");
        return rows;
    }

  private:
    server::ServerSession session_;
    Id device_;
    std::int64_t seq_ = 0;
    protocol::ServerMessage welcome_, last_;
};

class Server {
  public:
    Server() {
        TokenOptions tokens;
        tokens.key_pem = key_;
        auth_ = server::token_authenticator(tokens);
        // An issuer: its keys and status list are catalog rows of data model 2.
        store_ = server::open_store(test_store_.db(), {.issuer = std::make_shared<const server::Issuer>(
                                                           std::vector{generate_issuer_key()}, "", "lindra")});
        context_.emplace(server::SessionContext{*store_, *auth_, protocol::Limits{},
                                                [this](std::string_view line) { log_.emplace_back(line); }, now_ms});
    }

    server::SessionContext& context() { return *context_; }
    std::string db() const { return test_store_.db(); }
    const std::vector<std::string>& log() const { return log_; }

    std::string token(Role role, const Id& person, const Id& org = {}, std::chrono::seconds ttl = std::chrono::hours(1),
                      std::int64_t now_s = 0) {
        return issue_token(key_,
                           {.user = "u-" + person.to_string().substr(0, 8),
                            .role = role,
                            .person = person,
                            .organization = org,
                            .ttl = ttl},
                           "lindra", "lindra", now_s);
    }
    std::string admin_token() { return issue_token(key_, {.user = "seed", .role = Role::admin}); }

    // Writes the world through the typed API on a seed tablet and pushes it
    // as an admin (a back-office import).
    World seed() {
        TempDir tablet_dir;
        Replica seed(tablet_dir.file("seed.db"));
        World w;
        seed.batch([&](Writes& x) {
            w.org1 = x.register_organization("Fjellvik kommune", OrganizationKind::municipality);
            w.org2 = x.register_organization("Dalby kommune", OrganizationKind::municipality);
            w.course = x.register_course("Palliative care", "1", "nb", 2);
            w.module = x.register_module({.course = w.course, .ordinal = 1, .title = "M1"});
            w.module2 = x.register_module({.course = w.course, .ordinal = 2, .title = "M2"});
            w.group1 = x.create_group({.course = w.course, .organization = w.org1, .name = "Fjellvik 1"});
            w.group2 = x.create_group({.course = w.course, .organization = w.org2, .name = "Dalby 1"});
            auto person = [&](const char* name, const Id& org) {
                return x.register_person(name, Profession::nurse, org);
            };
            w.mona = person("Mona Mentor", w.org1);
            w.ola = person("Ola Nordmann", w.org1);
            w.kari = person("Kari Hansen", w.org1);
            w.wenche = person("Wenche Withdrawn", w.org1);
            w.per = person("Per Mentor", w.org2);
            w.cora = person("Cora Coordinator", w.org1);
            w.conrad = person("Conrad Coordinator", w.org2);
            x.add_member(w.group1, w.mona, MemberRole::mentor);
            x.add_member(w.group1, w.ola, MemberRole::candidate);
            x.add_member(w.group1, w.kari, MemberRole::candidate);
            x.add_member(w.group1, w.wenche, MemberRole::candidate);
            x.withdraw_member(w.group1, w.wenche);
            x.add_member(w.group2, w.per, MemberRole::mentor);
            w.gathering1 = x.plan_gathering({.group = w.group1, .ordinal = 1, .title = "G1"});
            w.gathering2 = x.plan_gathering({.group = w.group2, .ordinal = 1, .title = "G1"});
            x.start_module(w.ola, w.module, w.group1);
            w.ola_reflection = x.write_reflection(w.ola, w.group1, w.module, "Ola's own thoughts");
            // Kari's rows exist where Ola's twins do not: the targets of the
            // refusal-equivalence probes.
            x.start_module(w.kari, w.module, w.group1);
            x.record_attendance(w.gathering1, w.kari, AttendanceStatus::present);
            x.confirm_candidate(w.group1, w.kari, w.mona);
            // The rest of Kari's rule: her certificate is issued with the seed.
            x.complete_module(w.kari, w.module, w.group1);
            x.complete_module(w.kari, w.module2, w.group1);
            for (int i = 2; i <= 3; ++i) {
                const Id g = x.plan_gathering({.group = w.group1, .ordinal = i, .title = "G" + std::to_string(i)});
                x.hold_gathering(g);
                x.record_attendance(g, w.kari, AttendanceStatus::present);
            }
        });
        w.kari_certificate = Id::derive("certificate", {w.kari, w.course, w.group1});
        w.ola_progress = Id::derive("module_progress", {w.ola, w.module, w.group1});
        Device admin(*context_, admin_token());
        REQUIRE(admin.welcomed());
        protocol::Push push;
        for (auto& e : seed.outbox(SIZE_MAX)) {
            for (auto& c : e.changes) c.origin = admin.id();
            push.entries.push_back({e.seq, std::move(e.changes)});
        }
        const auto ack = admin.send(push);
        REQUIRE(std::get<protocol::PushAck>(ack).rejected.empty());
        REQUIRE(count_rows(test_store_.db(), "certificate") == 1);
        return w;
    }

  private:
    TempDir dir_;
    TestStore test_store_{dir_};
    std::string key_ = generate_token_key();
    std::unique_ptr<server::Authenticator> auth_;
    std::unique_ptr<server::ServerStore> store_;
    std::vector<std::string> log_;
    std::optional<server::SessionContext> context_;
};

enum Who { self, other_candidate, own_mentor, other_mentor, coordinator, other_coordinator, withdrawn, expired };
constexpr Who kEveryone[] = {self,        other_candidate,   own_mentor, other_mentor,
                             coordinator, other_coordinator, withdrawn,  expired};
const char* name_of(Who w) {
    constexpr const char* names[] = {"candidate (self)",     "other candidate", "own mentor",
                                     "other group's mentor", "coordinator",     "other org's coordinator",
                                     "withdrawn member",     "expired token"};
    return names[w];
}

std::string token_for(Server& s, const World& w, Who who) {
    switch (who) {
        case self:
            return s.token(Role::candidate, w.ola);
        case other_candidate:
            return s.token(Role::candidate, w.kari);
        case own_mentor:
            return s.token(Role::mentor, w.mona);
        case other_mentor:
            return s.token(Role::mentor, w.per);
        case coordinator:
            return s.token(Role::coordinator, w.cora, w.org1);
        case other_coordinator:
            return s.token(Role::coordinator, w.conrad, w.org2);
        case withdrawn:
            return s.token(Role::candidate, w.wenche);
        case expired:  // the candidate's own token, two hours old with a one-hour life
            return s.token(Role::candidate, w.ola, {}, std::chrono::hours(1), now_ms() / 1000 - 7200);
    }
    return {};
}

// The id of the pusher's own person row, for "their own" operations.
Id person_of(const World& w, Who who) {
    const Id ids[] = {w.ola, w.kari, w.mona, w.per, w.cora, w.conrad, w.wenche, w.ola};
    return ids[who];
}

struct PushCase {
    const char* what;
    std::function<void(Device&, const World&, Who)> push;
    std::set<Who> allowed;
    std::int64_t logged = 1;  // log entries an allowed push adds, the server's own writes included
};

}  // namespace

TEST_CASE("authorization matrix: who may push which change") {
    using V = std::vector<FieldValue>;
    const Id new_person = Id::random();
    const std::vector<PushCase> cases = {
        {"organization: a new care unit under the first organization",
         [](Device& d, const World& w, Who) {
             d.push("organization", Id::random(),
                    V{{"name", "Care unit"}, {"kind", "care_unit"}, {"parent_id", w.org1}});
         },
         {coordinator}},
        {"course: retitle (the shared catalog)",
         [](Device& d, const World& w, Who) {
             d.push("course", w.course, V{{"title", "Palliative care 2"}});
         },
         {coordinator, other_coordinator}},
        {"module: new pass score",
         [](Device& d, const World& w, Who) {
             d.push("module", w.module, V{{"pass_score", std::int64_t{70}}});
         },
         {coordinator, other_coordinator}},
        {"person: Ola's display name",
         [](Device& d, const World& w, Who) {
             d.push("person", w.ola, V{{"display_name", "Ola N."}});
         },
         {self, coordinator}},
        {"person: Ola's profession",
         [](Device& d, const World& w, Who) {
             d.push("person", w.ola, V{{"profession", "assistant"}});
         },
         {coordinator}},
        {"mentor_group: rename group 1",
         [](Device& d, const World& w, Who) {
             d.push("mentor_group", w.group1, V{{"name", "Fjellvik A"}});
         },
         {coordinator}},
        {"membership: register a new candidate in group 1",
         [&](Device& d, const World& w, Who) {
             d.push(
                 "membership", Id::derive("membership", {w.group1, new_person}),
                 V{{"group_id", w.group1}, {"person_id", new_person}, {"role", "candidate"}, {"status", "registered"}});
         },
         {coordinator}},
        {"membership: withdraw Kari",
         [](Device& d, const World& w, Who) {
             d.push("membership", Id::derive("membership", {w.group1, w.kari}), V{{"status", "withdrawn"}});
         },
         {coordinator}},
        {"gathering: hold group 1's gathering",
         [](Device& d, const World& w, Who) {
             d.push("gathering", w.gathering1, V{{"status", "held"}});
         },
         {own_mentor}},
        {"gathering: plan one in group 2",
         [](Device& d, const World& w, Who) {
             d.push("gathering", Id::random(),
                    V{{"group_id", w.group2}, {"ordinal", std::int64_t{2}}, {"title", "G2"}, {"status", "planned"}});
         },
         {other_mentor}},
        {"attendance: Ola present at group 1's gathering",
         [](Device& d, const World& w, Who) {
             d.push("attendance", Id::derive("attendance", {w.gathering1, w.ola}),
                    V{{"gathering_id", w.gathering1},
                      {"person_id", w.ola},
                      {"group_id", w.group1},
                      {"status", "present"}});
         },
         {own_mentor}},
        {"attendance: group 2's gathering filed under group 1",
         [](Device& d, const World& w, Who) {
             d.push("attendance", Id::derive("attendance", {w.gathering2, w.ola}),
                    V{{"gathering_id", w.gathering2},
                      {"person_id", w.ola},
                      {"group_id", w.group1},
                      {"status", "present"}});
         },
         {}},
        {"mentor_confirmation: confirm Ola",
         [](Device& d, const World& w, Who) {
             d.push("mentor_confirmation", Id::derive("mentor_confirmation", {w.group1, w.ola}),
                    V{{"group_id", w.group1},
                      {"person_id", w.ola},
                      {"mentor_id", w.mona},
                      {"confirmed_at", std::int64_t{1'790'000'000'000}}});
         },
         {own_mentor}},
        {"module_progress: Ola's, in group 1",
         [](Device& d, const World& w, Who) {
             d.push("module_progress", w.ola_progress, V{{"best_score", std::int64_t{90}}});
         },
         {self}},
        // reset_module: a new attempt is the person's own, like all
        // their progress; a coordinator's reset is refused (README, "The
        // C++ API").
        {"module_progress: a new attempt of Ola's module (reset_module)",
         [](Device& d, const World& w, Who) {
             d.push("module_progress", w.ola_progress,
                    V{{"progress", progress_value(1, static_cast<int>(ProgressStatus::not_started))}});
         },
         {self}},
        {"module_progress: their own, in group 1",
         [](Device& d, const World& w, Who who) {
             const Id p = person_of(w, who);
             d.push("module_progress", Id::derive("module_progress", {p, w.module, w.group1}),
                    V{{"person_id", p},
                      {"module_id", w.module},
                      {"group_id", w.group1},
                      {"best_score", std::int64_t{50}}});
         },
         {self, other_candidate, own_mentor}},
        {"reflection: Ola's text",
         [](Device& d, const World& w, Who) {
             d.push("reflection", w.ola_reflection, V{{"text", "Rewritten"}});
         },
         {self}},
        {"reflection: a new one of their own in group 1",
         [](Device& d, const World& w, Who who) {
             d.push("reflection", Id::random(),
                    V{{"person_id", person_of(w, who)}, {"group_id", w.group1}, {"text", "Mine"}});
         },
         {self, other_candidate, own_mentor}},
        {"certificate: Ola's",
         [](Device& d, const World& w, Who) {
             d.push("certificate", Id::derive("certificate", {w.ola, w.course, w.group1}),
                    V{{"person_id", w.ola},
                      {"course_id", w.course},
                      {"group_id", w.group1},
                      {"issued_at", std::int64_t{1'790'000'000'000}},
                      {"serial", "X-1"}});
         },
         {}},
        // Revocation: a coordinator of the group's organization, with a
        // reason; the server then marks the certificate revoked and signs
        // the status list anew (three log entries).
        {"revocation: Kari's certificate",
         [](Device& d, const World& w, Who) {
             d.push("revocation", Id::derive("revocation", {w.kari_certificate}),
                    V{{"certificate_id", w.kari_certificate},
                      {"group_id", w.group1},
                      {"person_id", w.kari},
                      {"reason", "issued in error"}});
         },
         {coordinator},
         3},
        {"revocation: Kari's certificate filed under Ola",
         [](Device& d, const World& w, Who) {
             d.push("revocation", Id::derive("revocation", {w.kari_certificate}),
                    V{{"certificate_id", w.kari_certificate},
                      {"group_id", w.group1},
                      {"person_id", w.ola},
                      {"reason", "issued in error"}});
         },
         {}},
    };

    for (const auto& c : cases) {
        for (const Who who : kEveryone) {
            Server s;
            const World w = s.seed();
            const auto log_before = count_rows(s.db(), "lindra_log");
            Device d(s.context(), token_for(s, w, who));
            INFO(c.what << " by " << name_of(who));
            if (who == expired) {  // refused at Hello: nothing it sends counts
                const auto* e = std::get_if<protocol::ErrorMessage>(&d.welcome());
                REQUIRE(e);
                CHECK(e->code == ErrorCode::unauthenticated);
                CHECK(e->message == "the token has expired");
                c.push(d, w, who);
                CHECK(std::holds_alternative<protocol::ErrorMessage>(d.last()));
                CHECK(count_rows(s.db(), "lindra_log") == log_before);
                continue;
            }
            REQUIRE(d.welcomed());
            const bool allowed = c.allowed.contains(who);
            c.push(d, w, who);
            const auto* ack = std::get_if<protocol::PushAck>(&d.last());
            REQUIRE(ack);
            CHECK(ack->acked_seq == 1);
            CHECK(count_rows(s.db(), "lindra_log") - log_before == (allowed ? c.logged : 0));
            if (allowed) {
                CHECK(ack->rejected.empty());
            } else {
                REQUIRE(ack->rejected.size() == 1);
                CHECK(ack->rejected[0].code == ErrorCode::permission_denied);
                CHECK_FALSE(ack->rejected[0].reason.empty());
            }
        }
    }
}

TEST_CASE("a tombstone on a row identified by other rows is refused, even an admin's") {
    Server s;
    const World w = s.seed();
    Device admin(s.context(), s.admin_token());
    REQUIRE(admin.welcomed());
    const auto log_before = count_rows(s.db(), "lindra_log");
    for (const auto& [entity, row] : {std::pair{"membership", Id::derive("membership", {w.group1, w.kari})},
                                      std::pair{"certificate", w.kari_certificate}}) {
        INFO(entity);
        admin.push(entity, row, {{"deleted", std::int64_t{1}}});
        const auto* ack = std::get_if<protocol::PushAck>(&admin.last());
        REQUIRE(ack);
        REQUIRE(ack->rejected.size() == 1);
        CHECK(ack->rejected[0].code == ErrorCode::invalid_argument);
        CHECK(ack->rejected[0].reason.find("cannot be deleted") != std::string::npos);
    }
    CHECK(count_rows(s.db(), "lindra_log") == log_before);
}

TEST_CASE("authorization matrix: which rows a pull gives whom") {
    Server s;
    const World w = s.seed();
    struct Row {
        const char* what;
        Id id;
        std::set<Who> readers;
    };
    const std::vector<Row> rows = {
        {"the course (catalog)",
         w.course,
         {self, other_candidate, own_mentor, other_mentor, coordinator, other_coordinator, withdrawn}},
        {"group 1", w.group1, {self, other_candidate, own_mentor, coordinator}},
        {"group 1's gathering", w.gathering1, {self, other_candidate, own_mentor, coordinator}},
        {"group 2's gathering", w.gathering2, {other_mentor, other_coordinator}},
        {"Ola's person row", w.ola, {self, other_candidate, own_mentor, coordinator}},
        {"Wenche's person row (withdrawn)", w.wenche, {withdrawn, coordinator}},
        {"Ola's module progress", w.ola_progress, {self, own_mentor, coordinator}},
        {"Ola's reflection", w.ola_reflection, {self, own_mentor}},
    };
    for (const Who who : kEveryone) {
        Device d(s.context(), token_for(s, w, who));
        if (who == expired) {
            CHECK_FALSE(d.welcomed());
            CHECK(std::holds_alternative<protocol::ErrorMessage>(d.send(protocol::Pull{{}, 100, false})));
            continue;
        }
        REQUIRE(d.welcomed());
        const auto got = d.pull_all();
        for (const auto& r : rows) {
            INFO(name_of(who) << " pulling " << r.what);
            CHECK(got.contains(r.id) == r.readers.contains(who));
        }
    }
}

// A pull reads the log through its scopes: what the rest of the fleet wrote
// since the cursor costs it nothing, and no batch comes back empty with
// "more to come" while the device's own scopes are quiet.
TEST_CASE("a pull carries its scopes' entries in order, past any number of others' entries") {
    Server s;
    const World w = s.seed();
    Device ola(s.context(), token_for(s, w, self));
    Device mona(s.context(), token_for(s, w, own_mentor));
    Device per(s.context(), token_for(s, w, other_mentor));
    REQUIRE((ola.welcomed() && mona.welcomed() && per.welcomed()));
    ola.pull_all();
    std::string cursor;
    for (int round = 0; round < 10; ++round) {
        const auto m = ola.send(protocol::Pull{cursor, 50'000, false});
        cursor = std::get<protocol::PullBatch>(m).next_cursor;
        if (!std::get<protocol::PullBatch>(m).has_more) break;
    }
    auto others_write = [&](int n) {
        for (int i = 0; i < n; ++i)
            REQUIRE(
                std::get<protocol::PushAck>(per.push("gathering", w.gathering2, {{"title", "G" + std::to_string(i)}}))
                    .rejected.empty());
    };
    auto pull = [&](std::uint32_t max_changes) {
        const auto m = ola.send(protocol::Pull{cursor, max_changes, false});
        const auto& batch = std::get<protocol::PullBatch>(m);
        cursor = batch.next_cursor;
        return batch;
    };

    others_write(300);
    const auto quiet = pull(10);
    CHECK(quiet.changes.empty());
    CHECK_FALSE(quiet.has_more);  // one batch, not 300 entries / 40 a batch
    CHECK(quiet.remaining == 0);

    for (const char* title : {"A", "B", "C"}) {
        others_write(100);
        REQUIRE(std::get<protocol::PushAck>(mona.push("gathering", w.gathering1, {{"title", title}})).rejected.empty());
    }
    others_write(100);
    std::vector<std::string> titles;
    for (int round = 0; round < 10; ++round) {
        const auto batch = pull(2);
        REQUIRE(batch.changes.size() <= 2);
        for (const auto& c : batch.changes) {
            CHECK(c.row == w.gathering1);
            titles.push_back(std::get<std::string>(c.value));
        }
        if (!batch.has_more) break;
    }
    CHECK(titles == std::vector<std::string>{"A", "B", "C"});
    // The cursor is at the head: nothing left for a new session either.
    server::ServerSession again(s.context(), "test");
    const auto welcome = exchange(
        again, protocol::Hello{
                   {protocol::kVersion}, ola.id(), token_for(s, w, self), schema_version(), "access_test", cursor});
    CHECK_FALSE(std::get<protocol::Welcome>(welcome).pull_needed);
}

// A tablet of an older data model gets only the entities and fields it
// knows: its decoder would refuse the rest (and it pulls everything again
// when it migrates).
TEST_CASE("a device of data model 1 pulls none of model 2's entities and fields") {
    Server s;
    const World w = s.seed();
    auto entities_pulled = [&](std::uint16_t schema) {
        Device d(s.context(), token_for(s, w, self), schema);
        REQUIRE(d.welcomed());
        std::set<std::string> names;
        std::string cursor;
        for (int round = 0; round < 100; ++round) {
            const auto m = d.send(protocol::Pull{cursor, 50'000, false});
            const auto& batch = std::get<protocol::PullBatch>(m);
            for (const auto& c : batch.changes) {
                const EntityDef* e = find_entity(c.entity);
                REQUIRE(e);
                REQUIRE(e->field(c.field));
                CHECK(std::max(e->since, e->field(c.field)->since) <= schema);
                names.insert(std::string(e->name));
            }
            cursor = batch.next_cursor;
            if (!batch.has_more) break;
        }
        return names;
    };
    const auto now = entities_pulled(schema_version());
    CHECK(now.contains("issuer_key"));
    CHECK(now.contains("status_list"));
    const auto old = entities_pulled(1);
    CHECK_FALSE(old.contains("issuer_key"));
    CHECK_FALSE(old.contains("status_list"));
    CHECK(old.contains("course"));
}

namespace {

// Everything a device observes of the server, as the bytes of the frames it
// receives: the Welcome (without times), then a whole pull, a
// probing push, a whole pull after it, and a second session's Welcome and
// pull. Every occurrence of `alias` is written as `as`.
std::vector<std::string> observe(Server& s, const std::string& token, const std::function<void(Device&)>& probe,
                                 const Id& alias, const Id& as) {
    std::vector<std::string> seen;
    auto record = [&](protocol::ServerMessage m) {
        if (auto* w = std::get_if<protocol::Welcome>(&m)) {
            w->server_hlc = 0;
            w->highest_hlc = 0;  // the device's own stamp of its probe, taken at another moment
        }
        std::string bytes = protocol::encode(m);
        const std::string from(reinterpret_cast<const char*>(alias.bytes.data()), alias.bytes.size());
        const std::string to(reinterpret_cast<const char*>(as.bytes.data()), as.bytes.size());
        for (auto at = bytes.find(from); at != std::string::npos; at = bytes.find(from, at + to.size()))
            bytes.replace(at, from.size(), to);
        seen.push_back(std::move(bytes));
    };
    auto pull_all = [&](Device& d, std::string& cursor) {
        for (int round = 0; round < 100; ++round) {
            auto m = d.send(protocol::Pull{cursor, 50'000, false});
            const auto* batch = std::get_if<protocol::PullBatch>(&m);
            REQUIRE(batch);
            cursor = batch->next_cursor;
            const bool more = batch->has_more;
            record(std::move(m));
            if (!more) return;
        }
        FAIL("the pull did not end");
    };
    Device d(s.context(), token);
    REQUIRE(d.welcomed());
    record(d.welcome());
    std::string cursor;
    pull_all(d, cursor);
    probe(d);
    const auto* ack = std::get_if<protocol::PushAck>(&d.last());
    REQUIRE(ack);
    REQUIRE(ack->rejected.size() == 1);  // a probe that is accepted proves nothing
    record(d.last());
    pull_all(d, cursor);
    // A second session of the same device: Welcome says whether a pull is
    // needed.
    server::ServerSession again(s.context(), "test");
    record(
        exchange(again, protocol::Hello{{protocol::kVersion}, d.id(), token, schema_version(), "access_test", cursor}));
    return seen;
}

}  // namespace

// A refused write must not tell its pusher whether the row it aimed at
// exists (README "Security model"). For every entity whose ids anyone can
// derive from ids they know, each user who may not read the row probes it once
// where it exists (Kari's) and once where it does not (Ola's twin, never
// written), on the same server; the two transcripts must be equal byte for
// byte, with the row ids aliased.
TEST_CASE("a refusal tells nothing of whether the row exists") {
    using V = std::vector<FieldValue>;
    struct Probe {
        const char* what;
        std::function<std::pair<Id, Id>(const World&)> targets;  // (existing, absent)
        std::function<V(const World&, const Id& person)> fields;
        std::vector<Who> probers;
    };
    const std::vector<Probe> probes = {
        {"module_progress: best_score only",
         [](const World& w) {
             return std::pair{Id::derive("module_progress", {w.kari, w.module, w.group1}),
                              Id::derive("module_progress", {w.kari, w.module2, w.group1})};
         },
         [](const World&, const Id&) {
             return V{{"best_score", std::int64_t{1}}};
         },
         {self, other_mentor, other_coordinator, withdrawn}},
        {"module_progress: with its keys",
         [](const World& w) {
             return std::pair{Id::derive("module_progress", {w.kari, w.module, w.group1}),
                              Id::derive("module_progress", {w.kari, w.module2, w.group1})};
         },
         [](const World&, const Id&) {
             return V{{"best_score", std::int64_t{1}}};
         },
         {self, other_mentor, withdrawn}},
        {"module_progress: a time near the integer limit",
         [](const World& w) {
             return std::pair{Id::derive("module_progress", {w.kari, w.module, w.group1}),
                              Id::derive("module_progress", {w.kari, w.module2, w.group1})};
         },
         [](const World&, const Id&) {
             return V{{"time_spent_s", std::int64_t{INT64_MAX}}};
         },
         {self, other_mentor}},
        {"attendance: status",
         [](const World& w) {
             return std::pair{Id::derive("attendance", {w.gathering1, w.kari}),
                              Id::derive("attendance", {w.gathering1, w.ola})};
         },
         [](const World&, const Id&) {
             return V{{"status", "absent"}};
         },
         {other_mentor, other_coordinator, withdrawn}},
        {"mentor_confirmation: statement",
         [](const World& w) {
             return std::pair{Id::derive("mentor_confirmation", {w.group1, w.kari}),
                              Id::derive("mentor_confirmation", {w.group1, w.ola})};
         },
         [](const World&, const Id&) {
             return V{{"statement", "Well done"}};
         },
         {other_mentor, other_coordinator, withdrawn}},
        {"membership: status",
         [](const World& w) {
             return std::pair{Id::derive("membership", {w.group1, w.kari}),
                              Id::derive("membership", {w.group1, w.per})};
         },
         [](const World&, const Id&) {
             return V{{"status", "active"}};
         },
         {other_mentor, other_coordinator}},
    };
    for (const auto& p : probes) {
        for (const Who who : p.probers) {
            Server s;
            const World w = s.seed();
            const auto [existing, absent] = p.targets(w);
            INFO(p.what << " probed by " << name_of(who));
            auto probe_of = [&](const Id& row) {
                return [&, row](Device& d) {
                    V fields = p.fields(w, w.kari);
                    if (std::string_view(p.what).ends_with("with its keys")) {
                        const Id module = row == existing ? w.module : w.module2;
                        fields.insert(fields.begin(),
                                      {{"person_id", w.kari}, {"module_id", module}, {"group_id", w.group1}});
                    }
                    d.push(std::string(p.what).substr(0, std::string(p.what).find(':')), row, fields);
                };
            };
            const auto there = observe(s, token_for(s, w, who), probe_of(existing), existing, absent);
            const auto not_there = observe(s, token_for(s, w, who), probe_of(absent), absent, absent);
            REQUIRE(there.size() == not_there.size());
            for (std::size_t i = 0; i < there.size(); ++i) {
                INFO("frame " << i << " of " << there.size());
                CHECK(there[i] == not_there[i]);
            }
        }
    }
}

}  // namespace lindra::test

namespace lindra::test {

// What the server remembers of refused writes is bounded: a logged-in user
// must not be able to fill its disk by pushing writes it may not make.
TEST_CASE("the server forgets refusals the device has heard, and keeps few in any case") {
    Server s;
    const World w = s.seed();
    const std::string token = token_for(s, w, self);
    const Id device = Id::random();
    auto hello = [&](server::ServerSession& session, std::int64_t acked_seq) {
        exchange(session,
                 protocol::Hello{{protocol::kVersion}, device, token, schema_version(), "access_test", {}, acked_seq});
    };
    // A push of Ola's writes `seqs` to Kari's progress, which she may not make.
    const Id kari_progress = Id::derive("module_progress", {w.kari, w.module, w.group1});
    const auto field = find_entity("module_progress")->field("best_score")->tag;
    auto push = [&](server::ServerSession& session, std::int64_t first, std::int64_t count) {
        protocol::Push p;
        for (std::int64_t seq = first; seq < first + count; ++seq)
            p.entries.push_back({seq,
                                 {{9, kari_progress, field, std::int64_t{seq % 100},
                                   replica::hlc_make(static_cast<std::uint64_t>(now_ms()), 0), device}}});
        const auto m = exchange(session, p);
        const auto* ack = std::get_if<protocol::PushAck>(&m);
        REQUIRE(ack);
        return ack->rejected;
    };
    // 100,000 writes to Kari's progress, which Ola may not make, in pushes
    // of 25,000 (the device hears none of the answers).
    constexpr std::int64_t kWrites = 100'000, kPerPush = 25'000;
    {
        server::ServerSession session(s.context(), "test");
        hello(session, 0);
        for (std::int64_t first = 1; first <= kWrites; first += kPerPush)
            CHECK(push(session, first, kPerPush).size() == static_cast<std::size_t>(kPerPush));
    }
    CHECK(count_rows(s.db(), "lindra_refused") == server::ServerStore::kRefusalsKept);
    // A retry of a write whose refusal was forgotten is judged anew, never
    // acknowledged as if applied.
    {
        server::ServerSession session(s.context(), "test");
        hello(session, 0);
        const auto rejected = push(session, 1, 1);
        REQUIRE(rejected.size() == 1);
        CHECK(rejected[0].seq == 1);
        CHECK(rejected[0].code == ErrorCode::permission_denied);
    }
    // Its next Hello says it holds every answer: nothing is kept.
    server::ServerSession again(s.context(), "test");
    hello(again, kWrites);
    CHECK(count_rows(s.db(), "lindra_refused") == 0);
}

}  // namespace lindra::test
