// Each command resolves its operands to ids, makes one write (one
// transaction, or one Replica::batch when it writes several things) and
// prints what the data looks like now.
#include "commands.hpp"

#include "lookup.hpp"
#include "text.hpp"

#include <lindra/report.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

namespace tablet {

using lindra::Errc;
using lindra::Error;
using lindra::Id;
using lindra::to_string;

namespace {

constexpr lindra::Timestamp kWeekMs = 7LL * 24 * 60 * 60 * 1000;

std::string dates(const lindra::Group& g) {
    if (g.starts_on.empty() && g.ends_on.empty()) return "-";
    return (g.starts_on.empty() ? "?" : g.starts_on) + " .. " + (g.ends_on.empty() ? "?" : g.ends_on);
}

std::string or_dash(const std::optional<int>& v) {
    return v ? std::to_string(*v) : "-";
}

// --minutes N as seconds for add_time_spent, checked here against the
// schema's range so that an error speaks of the minutes the user gave.
std::optional<std::int64_t> seconds_option(const Session& s) {
    const auto minutes = s.int64_option("--minutes");
    if (!minutes) return std::nullopt;
    const auto* field = lindra::find_entity("module_progress")->field("time_spent_s");
    const std::int64_t most = field->max / 60;
    if (*minutes < 0 || *minutes > most)
        throw UsageError("--minutes: " + std::to_string(*minutes) + " is outside 0.." + std::to_string(most) +
                         " (minutes of time spent, added to what is recorded)");
    return *minutes * 60;
}

std::optional<Id> optional_ref(const lindra::Replica& r, std::string_view entity,
                               const std::optional<std::string>& name) {
    if (!name) return std::nullopt;
    return resolve(r, entity, *name);
}

// ---- commands ---------------------------------------------------------------

void cmd_init(Session& s) {
    const bool existed = std::filesystem::exists(s.db_path());
    auto& r = s.replica();
    s.out() << (existed ? "opened existing replica " : "created replica ") << r.path() << '\n'
            << "device id: " << r.device_id().to_string() << '\n';
}

// ---- the coordinator's registrations ----------------------------------------

// A registration list (README, "Registering a course's people"): every line
// or, if one is wrong, nothing.
void cmd_import_registrations(Session& s) {
    const auto& path = s.operand(0);
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    if (!in || !std::filesystem::is_regular_file(path)) throw Error(Errc::not_found, "cannot read " + path);
    lindra::RegistrationImport r;
    try {
        r = s.replica().import_registrations(text.str());
    } catch (const Error& e) {
        if (e.storage_failure()) throw;
        throw Error(e.errc(), path + ", " + e.what() + " (nothing was imported)", e.sqlite_code(), e.field());
    }
    s.out() << "imported " << path << ": " << r.lines << (r.lines == 1 ? " line\n" : " lines\n")
            << "  people: " << r.people_created << " registered, " << r.people_existing << " registered already\n"
            << "  memberships: " << r.memberships_added << " added, " << r.memberships_unchanged << " there already\n";
    for (const auto line : r.withdrawn_lines)
        s.out() << "  line " << line
                << ": withdrawn from the group since; left withdrawn (member add GROUP PERSON --role ROLE adds them"
                   " again)\n";
}

void cmd_person_add(Session& s) {
    auto& r = s.replica();
    const auto profession = s.option("--profession");
    if (!profession) throw UsageError("person add needs --profession assistant|health_care_worker|nurse|other");
    const auto p = lindra::to_enum<lindra::Profession>(*profession);
    const auto organization = optional_ref(r, "organization", s.option("--organization"));
    const Id id = r.register_person(s.operand(0), p, organization);
    s.out() << "registered " << s.operand(0) << " (" << to_string(p) << "): " << id.to_string() << '\n';
}

// A person's display name: their own to change, or a coordinator's.
void cmd_person_rename(Session& s) {
    auto& r = s.replica();
    const Id person = resolve(r, "person", s.operand(0));
    r.update("person", person, {{"display_name", s.operand(1)}});
    s.out() << "renamed to " << s.operand(1) << '\n';
}

// The member entry of `person` in `group`, withdrawn ones too.
std::optional<lindra::RosterEntry> membership(const lindra::Replica& r, const Id& group, const Id& person) {
    for (const auto& m : r.roster(group).members)
        if (m.person == person) return m;
    return std::nullopt;
}

void cmd_member_add(Session& s) {
    auto& r = s.replica();
    const auto role_name = s.option("--role");
    if (!role_name) throw UsageError("member add needs --role mentor|candidate");
    const auto role = lindra::to_enum<lindra::MemberRole>(*role_name);
    const Id group = resolve(r, "mentor_group", s.operand(0));
    const Id person = resolve(r, "person", s.operand(1));
    const auto who = person_name(r, person);
    const auto group_name = r.group(group)->name;
    const auto m = membership(r, group, person);
    if (m && m->role == role && m->status != lindra::MemberStatus::withdrawn) {
        s.out() << who << " is a " << to_string(role) << " of " << group_name << " already; nothing written\n";
        return;
    }
    r.add_member(group, person, role);
    s.out() << who << ": " << to_string(role) << " of " << group_name << " (active)\n";
}

void cmd_member_withdraw(Session& s) {
    auto& r = s.replica();
    const Id group = resolve(r, "mentor_group", s.operand(0));
    const Id person = resolve(r, "person", s.operand(1));
    const auto who = person_name(r, person);
    const auto group_name = r.group(group)->name;
    const auto m = membership(r, group, person);
    if (!m) throw Error(Errc::not_found, who + " is not a member of " + group_name);
    if (m->status == lindra::MemberStatus::withdrawn) {
        s.out() << who << " was withdrawn from " << group_name << " already; nothing written\n";
        return;
    }
    r.withdraw_member(group, person);
    s.out() << who << " withdrawn from " << group_name << '\n';
}

// A word for a shell: as it is, or in single quotes.
std::string shell_word(const std::string& word) {
    const bool plain = !word.empty() && std::all_of(word.begin(), word.end(), [](unsigned char c) {
        return std::isalnum(c) || std::string_view("_./:=@%+-").find(static_cast<char>(c)) != std::string_view::npos;
    });
    if (plain) return word;
    std::string out = "'";
    for (const char c : word) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

// What the server's operator runs to give PERSON a token (lindra-server
// issue-token): a coordinator's names their organization too.
void cmd_token_request(Session& s) {
    auto& r = s.replica();
    const Id person = resolve(r, "person", s.operand(0));
    const auto& role = s.operand(1);
    if (role != "candidate" && role != "mentor" && role != "coordinator")
        throw UsageError("token-request: the role is candidate, mentor or coordinator, not \"" + role + "\"");
    std::string line = "lindra-server issue-token --key " + shell_word(s.option("--key").value_or("token.key")) +
                       " --user " + shell_word(s.option("--user").value_or(person.to_string())) + " --role " + role +
                       " --person " + person.to_string();
    if (role == "coordinator") {
        auto organization = optional_ref(r, "organization", s.option("--organization"));
        if (!organization) organization = r.person(person)->organization;
        if (!organization)
            throw Error(Errc::invalid_argument, person_name(r, person) +
                                                    " belongs to no organization; say which one they coordinate with"
                                                    " --organization ORG");
        line += " --org " + organization->to_string();
    }
    s.out() << line << '\n';
}

void cmd_groups(Session& s) {
    auto& r = s.replica();
    const auto who = s.optional_operand(0);
    const auto groups = who ? r.groups_of(resolve(r, "person", *who)) : r.groups();
    if (groups.empty()) {
        s.out() << "no groups\n";
        return;
    }
    Table t;
    t.add({"group", "course", "status", "dates", "members", "id"});
    for (const auto& g : groups) {
        const auto roster = r.roster(g.id);
        const auto active =
            std::count_if(roster.members.begin(), roster.members.end(),
                          [](const lindra::RosterEntry& m) { return m.status != lindra::MemberStatus::withdrawn; });
        t.add({g.name, roster.course_title, g.status ? std::string(to_string(*g.status)) : "-", dates(g),
               std::to_string(active), g.id.to_string()});
    }
    t.print(s.out(), 0);
}

void cmd_roster(Session& s) {
    auto& r = s.replica();
    const auto roster = r.roster(resolve(r, "mentor_group", s.operand(0)));
    const auto& g = roster.group;
    s.out() << g.name << " - " << roster.course_title << '\n'
            << (g.status ? to_string(*g.status) : "-") << ", " << dates(g) << ", " << roster.required_gatherings
            << " gatherings required\n\n";
    Table members;
    for (const auto& m : roster.members) {
        // Mentors confirm others; they are not confirmed themselves.
        std::string confirmed = m.confirmed ? "yes" : "no";
        if (m.role == lindra::MemberRole::mentor) confirmed = "-";
        members.add({std::string(lindra::member_name(m.display_name, m.status)), std::string(to_string(m.role)),
                     std::string(to_string(m.status)),
                     "modules " + std::to_string(m.modules_completed) + "/" + std::to_string(m.modules_required),
                     "gatherings " + std::to_string(m.gatherings_attended) + "/" + std::to_string(m.gatherings_held),
                     "confirmed " + confirmed});
    }
    members.print(s.out());
    const auto gatherings = r.gatherings(g.id);
    if (gatherings.empty()) return;
    s.out() << "\ngatherings:\n";
    Table t;
    for (const auto& x : gatherings)
        t.add({x.title, std::string(to_string(x.status)), x.scheduled_at ? local_datetime(*x.scheduled_at) : "-"});
    t.print(s.out());
}

// The coordinator's completion report, of a group or of an organization
// (and those under it): the library renders it, so apps show the same.
void cmd_report(Session& s) {
    const auto group = s.optional_operand(0);
    const auto organization = s.option("--organization");
    if (group.has_value() == organization.has_value())
        throw UsageError("report wants a GROUP or --organization ORG (one of them)");
    auto& r = s.replica();
    const auto report = group ? r.completion_report(resolve(r, "mentor_group", *group))
                              : r.completion_report_for_organization(resolve(r, "organization", *organization));
    s.out() << (s.flag("--csv") ? lindra::completion_report_csv(report) : lindra::completion_report_table(report));
}

void cmd_show(Session& s) {
    auto& r = s.replica();
    const Id person = resolve(r, "person", s.operand(0));
    const auto p = r.person(person);
    s.out() << person_name(r, person);
    if (p && p->profession) s.out() << " (" << to_string(*p->profession) << ")";
    s.out() << '\n';

    auto progress = r.progress_of(person);
    const auto groups = r.groups_of(person);
    if (groups.empty()) s.out() << "not a member of any group on this device\n";
    for (const auto& g : groups) {
        s.out() << '\n' << g.name << " - " << r.roster(g.id).course_title << '\n';
        Table t;
        t.add({"#", "module", "status", "attempt", "best", "pass", "minutes"});
        for (const auto& m : r.modules(g.course)) {
            const auto it = std::find_if(progress.begin(), progress.end(),
                                         [&](const auto& mp) { return mp.group == g.id && mp.module == m.id; });
            const auto title = m.title + (m.required ? "" : " (optional)");
            if (it == progress.end()) {
                t.add({std::to_string(m.ordinal), title, "not_started", "-", "-", or_dash(m.pass_score), "0"});
                continue;
            }
            t.add({std::to_string(m.ordinal), title, std::string(to_string(it->status)), std::to_string(it->attempt),
                   or_dash(it->best_score), or_dash(m.pass_score), minutes(it->time_spent_s)});
            progress.erase(it);
        }
        t.print(s.out());
    }
    // Progress in groups the person has left is still theirs: show it too.
    if (progress.empty()) return;
    s.out() << "\nin other groups:\n";
    Table t;
    for (const auto& mp : progress)
        t.add({std::to_string(mp.ordinal), mp.module_title, std::string(to_string(mp.status)),
               std::to_string(mp.attempt), or_dash(mp.best_score), "", minutes(mp.time_spent_s)});
    t.print(s.out());
}

// One progress write, in one batch: start or complete, a score, time spent.
void write_progress(lindra::Replica& r, const Id& person, const Id& module, const Id& group, bool complete,
                    std::optional<int> score, std::optional<std::int64_t> seconds) {
    r.batch([&](lindra::Writes& w) {
        if (complete) {
            w.complete_module(person, module, group, score);
        } else {
            w.start_module(person, module, group);
            if (score) w.record_score(person, module, group, *score);
        }
        if (seconds && *seconds != 0) w.add_time_spent(person, module, group, *seconds);
    });
}

void cmd_progress(Session& s) {
    auto& r = s.replica();
    const Id person = resolve(r, "person", s.operand(0));
    const Id module = resolve(r, "module", s.operand(1));
    const bool complete = s.operand(2) == "complete";
    const auto score = s.int_option("--score");
    const auto seconds = seconds_option(s);
    const auto group = pick_group(r, person, module, s.option("--group"));

    try {
        write_progress(r, person, module, group.id, complete, score, seconds);
    } catch (const Error& e) {
        // The total would pass the most a row holds: say it in minutes.
        if (seconds && e.field() == "module_progress.time_spent_s")
            throw Error(e.errc(), "--minutes: " + std::to_string(*seconds / 60) +
                                      " more minutes would pass the most time a module records (" +
                                      std::to_string(lindra::find_entity("module_progress")->field("time_spent_s")->max / 60) +
                                      " minutes)");
        throw;
    }

    for (const auto& mp : r.progress_of(person)) {
        if (mp.group != group.id || mp.module != module) continue;
        s.out() << person_name(r, person) << ", " << mp.module_title << ": " << to_string(mp.status) << " (attempt "
                << mp.attempt << ", best score " << or_dash(mp.best_score) << ", " << minutes(mp.time_spent_s)
                << " min)\n";
        if (!complete && mp.status > lindra::ProgressStatus::in_progress)
            s.out() << "progress never goes backwards: it stays " << to_string(mp.status) << '\n';
    }
}

void cmd_attend(Session& s) {
    auto& r = s.replica();
    const auto status = lindra::to_enum<lindra::AttendanceStatus>(s.operand(2));
    const Id gathering = resolve(r, "gathering", s.operand(0));
    const Id person = resolve(r, "person", s.operand(1));
    const auto [row, group] = find_gathering(r, gathering);
    const auto who = person_name(r, person);
    const auto roster = r.roster(group.id);
    if (!member(roster, person)) throw Error(Errc::invalid_argument, who + " is not a member of group " + group.name);

    r.record_attendance(gathering, person, status, s.option("--note").value_or(""));
    s.out() << row.title << ": " << who << " " << to_string(status) << '\n';
    if (row.status != lindra::GatheringStatus::held)
        s.out() << "note: the gathering is " << to_string(row.status) << "; attendance counts once it is held\n";
}

void cmd_confirm(Session& s) {
    auto& r = s.replica();
    const Id person = resolve(r, "person", s.operand(0));
    const auto group = pick_group(r, person, std::nullopt, s.option("--group"));
    const auto who = person_name(r, person);
    const auto roster = r.roster(group.id);
    const auto* m = member(roster, person);
    if (!m || m->role != lindra::MemberRole::candidate)
        throw Error(Errc::invalid_argument, who + " is not a candidate of group " + group.name);
    const Id mentor = pick_mentor(r, group, s.option("--mentor"));

    r.confirm_candidate(group.id, person, mentor, s.option("--statement").value_or(""));
    s.out() << person_name(r, mentor) << " confirmed " << who << " in " << group.name << '\n';
}

void cmd_reflect(Session& s) {
    auto& r = s.replica();
    const Id person = resolve(r, "person", s.operand(0));
    const auto module = optional_ref(r, "module", s.option("--module"));
    const auto group = pick_group(r, person, module, s.option("--group"));

    const Id id = r.write_reflection(person, group.id, module, s.operand(1));
    s.out() << "reflection " << id.to_string() << " saved for " << person_name(r, person);
    if (module) s.out() << " on " << module_title(r, group.course, *module);
    s.out() << '\n';
}

void cmd_gathering_plan(Session& s) {
    auto& r = s.replica();
    const Id group = resolve(r, "mentor_group", s.operand(0));
    const auto existing = r.gatherings(group);
    int next = 1;
    std::optional<lindra::Timestamp> last;
    for (const auto& g : existing) {
        next = std::max(next, g.ordinal + 1);
        if (g.scheduled_at) last = std::max(last.value_or(*g.scheduled_at), *g.scheduled_at);
    }
    // A week after the latest one, like the rest of the plan.
    const auto at = last ? std::optional(*last + kWeekMs) : std::nullopt;

    const Id id = r.plan_gathering({.group = group,
                                    .ordinal = s.int_option("--ordinal").value_or(next),
                                    .title = s.operand(1),
                                    .scheduled_at = at,
                                    .module = optional_ref(r, "module", s.option("--module"))});
    s.out() << "planned " << s.operand(1) << (at ? " for " + local_datetime(*at) : std::string()) << " ("
            << id.to_string() << ")\n";
}

void set_gathering_status(Session& s, lindra::GatheringStatus status) {
    auto& r = s.replica();
    const Id gathering = resolve(r, "gathering", s.operand(0));
    if (status == lindra::GatheringStatus::held)
        r.hold_gathering(gathering);
    else
        r.cancel_gathering(gathering);
    const auto [row, group] = find_gathering(r, gathering);
    s.out() << row.title << " (" << group.name << "): " << to_string(row.status) << '\n';
}

void cmd_gathering_hold(Session& s) {
    set_gathering_status(s, lindra::GatheringStatus::held);
}
void cmd_gathering_cancel(Session& s) {
    set_gathering_status(s, lindra::GatheringStatus::cancelled);
}

// The user's writes waiting, and the field changes they carry (the words
// of docs/decisions.md, "Writes and changes").
void cmd_outbox(Session& s) {
    const auto entries = s.replica().outbox(std::numeric_limits<std::size_t>::max());
    std::int64_t changes = 0;
    for (const auto& e : entries) changes += static_cast<std::int64_t>(e.changes.size());
    s.out() << "outbox: " << writes_and_changes(static_cast<std::int64_t>(entries.size()), changes)
            << " waiting for the server\n";
}

// The id behind a name, e.g. for issuing a person's token.
void cmd_id(Session& s) {
    const std::string kind = s.operand(0);
    if (kind != "person" && kind != "group" && kind != "module" && kind != "gathering" && kind != "organization")
        throw UsageError("id wants person, group, module, gathering or organization, not \"" + kind + "\"");
    const std::string entity = kind == "group" ? "mentor_group" : kind;
    s.out() << resolve(s.replica(), entity, s.operand(1)).to_string() << '\n';
}

// How many rows of an entity the replica holds: reflections, say, which no
// other command lists; comparing two devices' counts shows what one lacks.
void cmd_count(Session& s) {
    const auto& name = s.operand(0);
    if (!lindra::find_entity(name)) {
        std::string known;
        for (const auto& e : lindra::entities()) known += (known.empty() ? "" : ", ") + std::string(e.name);
        throw UsageError("count: no entity \"" + name + "\"; the entities are " + known);
    }
    s.out() << s.replica().count(name) << '\n';
}

void cmd_gathering_rename(Session& s) {
    auto& r = s.replica();
    const Id gathering = resolve(r, "gathering", s.operand(0));
    r.update("gathering", gathering, {{"title", s.operand(1)}});
    s.out() << "gathering renamed to " << s.operand(1) << '\n';
}

// A refused write's value for people: text as typed, progress by name,
// people and groups by name where this device still has them.
std::string show_value(const lindra::Replica& r, const lindra::RefusedWrite& w, const lindra::FieldValue& v) {
    const auto* e = lindra::find_entity(w.entity);
    const auto* f = e ? e->field(v.field) : nullptr;
    const auto* n = std::get_if<std::int64_t>(&v.value);
    if (f && n && f->type == lindra::FieldType::progress) {
        const auto rank = static_cast<std::size_t>(lindra::progress_rank(*n));
        return (rank < f->values.size() ? std::string(f->values[rank]) : std::to_string(rank)) + ", attempt " +
               std::to_string(lindra::progress_attempt(*n));
    }
    if (f && n && f->type == lindra::FieldType::timestamp) return local_datetime(*n);
    if (const auto* text = std::get_if<std::string>(&v.value)) return *text;
    if (const auto* id = std::get_if<Id>(&v.value)) {
        std::optional<std::string> name;
        if (f && f->ref_entity == "person")
            if (const auto p = r.person(*id)) name = p->display_name;
        if (f && f->ref_entity == "mentor_group")
            if (const auto g = r.group(*id)) name = g->name;
        return name ? *name + " (" + id->to_string() + ")" : id->to_string();
    }
    if (std::holds_alternative<std::monostate>(v.value)) return "-";
    return to_string(v.value);
}

// What the server refused (or a purge discarded) of this user's writes,
// with what they wrote, until dismissed.
void cmd_refused(Session& s) {
    const auto& r = s.replica();
    const auto refused = r.refused_writes();
    if (refused.empty()) {
        s.out() << "no refused writes on this device\n";
        return;
    }
    s.out() << refused.size() << (refused.size() == 1 ? " refused write" : " refused writes")
            << " kept on this device (refused dismiss ID|--all forgets them):\n";
    for (const auto& w : refused) {
        s.out() << "\n#" << w.id << "  " << w.entity << " " << w.row.to_string() << ", written "
                << local_datetime(w.written_at) << ", refused " << local_datetime(w.refused_at) << '\n'
                << "  " << w.code << ": " << w.reason << '\n';
        Table t;
        for (const auto& v : w.values) t.add({std::string(v.field), show_value(r, w, v)});
        t.print(s.out(), 4);
    }
}

void cmd_refused_dismiss(Session& s) {
    const auto id = s.optional_operand(0);
    if (id.has_value() == s.flag("--all")) throw UsageError("refused dismiss wants an ID or --all, not both");
    auto& r = s.replica();
    if (!id) {
        const auto n = r.dismiss_all_refused();
        s.out() << "dismissed " << n << (n == 1 ? " refused write\n" : " refused writes\n");
        return;
    }
    const std::string digits = id->starts_with('#') ? id->substr(1) : *id;
    std::int64_t n = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
    if (ec != std::errc{} || end != digits.data() + digits.size() || digits.empty())
        throw UsageError("refused dismiss: \"" + *id +
                         "\" is not a refused write's number (see lindra-tablet refused)");
    if (!r.dismiss_refused(n))
        throw Error(Errc::not_found,
                    "no refused write #" + std::to_string(n) + " on this device (see lindra-tablet refused)");
    s.out() << "dismissed refused write #" << n << '\n';
}

}  // namespace

std::span<const Command> commands() {
    static const std::vector<Command> table = {
        {"init", "", {}, "create the replica (or open it) and print its device id", cmd_init, true},
        {"seed-demo", "", {}, "add a demo municipality, course and mentor group", seed_demo},
        {"import-registrations",
         "FILE",
         {},
         "register the people of a CSV registration list and add them to their groups:\n"
         "      all of it, or nothing (columns: group,display_name,role,profession,organization)",
         cmd_import_registrations},
        {"person add",
         "NAME",
         {"--profession P", "--organization ORG"},
         "register a person; P is assistant, health_care_worker, nurse or other",
         cmd_person_add},
        {"person rename",
         "PERSON NAME",
         {},
         "change a person's display name (the person, or a coordinator)",
         cmd_person_rename},
        {"member add",
         "GROUP PERSON",
         {"--role mentor|candidate"},
         "add PERSON to GROUP (again, after a withdrawal; or with another role)",
         cmd_member_add},
        {"member withdraw", "GROUP PERSON", {}, "withdraw PERSON from GROUP", cmd_member_withdraw},
        {"groups", "[PERSON]", {}, "the groups on this device, or PERSON's groups", cmd_groups},
        {"roster", "GROUP", {}, "members with modules, gatherings and confirmation", cmd_roster},
        {"show", "PERSON", {}, "PERSON's progress per module", cmd_show},
        {"report",
         "[GROUP]",
         {"--organization ORG", "--csv"},
         "the completion report: each candidate's modules, gatherings, confirmation and\n"
         "      certificate, and what is lacking (of GROUP, or of every group of ORG and the\n"
         "      organizations under it; --csv: RFC 4180 CSV for a spreadsheet)",
         cmd_report},

        {"progress",
         "PERSON MODULE start|complete",
         {"--score N", "--minutes N", "--group GROUP"},
         "record module progress; --score 0..100, --minutes adds time spent",
         cmd_progress},
        {"reflect",
         "PERSON TEXT",
         {"--module MODULE", "--group GROUP"},
         "save PERSON's written reflection",
         cmd_reflect},
        {"gathering plan",
         "GROUP TITLE",
         {"--ordinal N", "--module MODULE"},
         "plan a gathering a week after the group's last one",
         cmd_gathering_plan},
        {"gathering hold", "GATHERING", {}, "the mentor held the gathering", cmd_gathering_hold},
        {"gathering cancel", "GATHERING", {}, "the gathering is cancelled", cmd_gathering_cancel},
        {"attend",
         "GATHERING PERSON STATUS",
         {"--note TEXT"},
         "record attendance; STATUS is present, absent or excused",
         cmd_attend},
        {"confirm",
         "PERSON",
         {"--mentor MENTOR", "--statement TEXT", "--group GROUP"},
         "the mentor confirms PERSON's participation in the group",
         cmd_confirm},
        {"gathering rename", "GATHERING TITLE", {}, "give the gathering another title", cmd_gathering_rename},
        {"outbox",
         "",
         {},
         "how many of this device's writes wait for the server, and the field changes they carry",
         cmd_outbox},
        {"id", "person|group|module|gathering|organization NAME", {}, "print the id a name stands for", cmd_id},
        {"token-request",
         "PERSON candidate|mentor|coordinator",
         {"--organization ORG", "--user NAME", "--key FILE"},
         "the lindra-server issue-token command that gives PERSON a token, for the server's\n"
         "      operator (a coordinator's names PERSON's organization, or --organization ORG;\n"
         "      --user defaults to PERSON's id, --key to token.key)",
         cmd_token_request},
        {"count", "ENTITY", {}, "how many rows of ENTITY (gathering, reflection, ...) this device holds", cmd_count},
        {"certificate",
         "PERSON",
         {"--jws", "--revocation-list"},
         "PERSON's course certificates, verified on this device with no network\n"
         "      (--jws: the signed credentials only, one a line, for another verifier;\n"
         "      --revocation-list: the signed revocation list they are checked against)",
         cmd_certificate},
        {"verify",
         "FILE",
         {},
         "verify a certificate's signed credential (a JWS, - for stdin) with no network",
         cmd_verify},
        {"revoke",
         "PERSON",
         {"--reason TEXT", "--serial SERIAL"},
         "revoke PERSON's certificate (a coordinator; --serial picks one of several)",
         cmd_revoke},
        {"issuer-keys", "", {}, "the server's certificate keys this device holds, as a JWK Set", cmd_issuer_keys},
        {"refused", "", {}, "this user's writes the server refused, with what was written", cmd_refused},
        {"refused dismiss",
         "[ID]",
         {"--all"},
         "forget refused write ID (from refused), or all of them",
         cmd_refused_dismiss},
        {"sync",
         "",
         {"--server URL", "--token-file FILE", "--token TOKEN", "--ca FILE", "--extra-ca FILE...", "--proxy URL",
          "--pin sha256/BASE64...", "--insecure"},
         "push the outbox to the server and pull what others wrote, over TLS\n"
         "      (trusting --ca FILE, else the system's CAs; --pin a server key, repeatable;\n"
         "      --insecure: plain TCP, for local development only). The token: --token-file FILE,\n"
         "      or the environment variable LINDRA_TOKEN; --token TOKEN shows it to every user\n"
         "      of the machine (ps)",
         cmd_sync},
        {"sign-out",
         "",
         {"--server URL", "--token-file FILE", "--token TOKEN", "--ca FILE", "--extra-ca FILE...", "--proxy URL",
          "--pin sha256/BASE64...", "--insecure", "--force"},
         "push what is pending, then delete this replica's files (overwritten first);\n"
         "      the server and token as for sync;\n"
         "      if writes would be lost it deletes nothing and says so; --force deletes anyway",
         cmd_sign_out},
    };
    return table;
}

}  // namespace tablet
