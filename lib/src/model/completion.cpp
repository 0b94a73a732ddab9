#include "model/completion.hpp"

#include <lindra/replica.hpp>

#include <algorithm>

namespace lindra::model {
namespace {

const EntityDef& entity(std::string_view name) {
    return *find_entity(name);
}

}  // namespace

const Value& field_value(const EntityDef& e, const RowState& st, std::string_view field) {
    static const Value none;
    const FieldDef* f = e.field(field);
    return f && st.exists ? st.fields[e.index_of(*f)].value : none;
}

bool is_live(const EntityDef& e, const RowState& st) {
    return st.exists && field_value(e, st, kDeletedField) != Value{std::int64_t{1}};
}

Id issuer_key_id(std::string_view kid) {
    return Id::derive("issuer_key/" + std::string(kid), std::initializer_list<Id>{});
}

Id status_list_id() {
    return Id::derive("status_list", std::initializer_list<Id>{});
}

std::string urn(const Id& id) {
    return "urn:uuid:" + id.to_string();
}

std::size_t Completion::modules_passed() const {
    return static_cast<std::size_t>(std::count_if(modules.begin(), modules.end(), [](auto& m) { return m.passed; }));
}

std::size_t Completion::attended() const {
    return static_cast<std::size_t>(std::count_if(held.begin(), held.end(), [](auto& g) { return g.attended; }));
}

bool Completion::met() const {
    return member() && modules_passed() == modules.size() &&
           static_cast<std::int64_t>(attended()) >= required_gatherings && confirmed_by.has_value();
}

std::vector<std::string> Completion::lacking() const {
    std::vector<std::string> out;
    if (!member())
        out.push_back(membership_status.empty() ? "not a member of the group"
                                                : "the membership is " + membership_status);
    for (const auto& m : modules) {
        if (m.passed) continue;
        std::string line = "module " + std::to_string(m.ordinal) + " \"" + m.title + "\" not passed";
        if (m.pass_score && m.best_score)
            line += " (best score " + std::to_string(*m.best_score) + ", needs " + std::to_string(*m.pass_score) + ")";
        out.push_back(std::move(line));
    }
    if (static_cast<std::int64_t>(attended()) < required_gatherings)
        out.push_back("attended " + std::to_string(attended()) + " of " + std::to_string(held.size()) +
                      " gatherings held; the course asks for " + std::to_string(required_gatherings));
    if (!confirmed_by) out.push_back("no mentor has confirmed the participation");
    return out;
}

std::optional<Completion> completion(RowSource& rows, const Id& person, const Id& group) {
    const EntityDef& groups = entity("mentor_group");
    const auto g = rows.load(groups, group);
    if (!is_live(groups, g)) return std::nullopt;
    Completion c;
    c.person = person;
    c.group = group;
    c.course = field_as<Id>(groups, g, "course_id").value_or(Id{});

    const EntityDef& membership = entity("membership");
    const auto m = rows.load(membership, Id::derive("membership", {group, person}));
    if (is_live(membership, m)) c.membership_status = field_as<std::string>(membership, m, "status").value_or("");

    const EntityDef& course = entity("course");
    c.required_gatherings =
        field_as<std::int64_t>(course, rows.load(course, c.course), "required_gatherings").value_or(0);

    const EntityDef& modules = entity("module");
    const EntityDef& progress = entity("module_progress");
    for (const Id& id : rows.referring(modules, "course_id", c.course)) {
        const auto mod = rows.load(modules, id);
        if (!is_live(modules, mod) || field_as<Id>(modules, mod, "course_id") != c.course ||
            field_as<std::int64_t>(modules, mod, "required") != 1)
            continue;
        ModuleResult r{id,
                       field_as<std::int64_t>(modules, mod, "ordinal").value_or(0),
                       field_as<std::string>(modules, mod, "title").value_or(""),
                       field_as<std::int64_t>(modules, mod, "pass_score"),
                       std::nullopt,
                       false};
        const auto p = rows.load(progress, Id::derive("module_progress", {person, id, group}));
        if (is_live(progress, p)) {
            const auto rank = progress_rank(field_as<std::int64_t>(progress, p, "progress").value_or(0));
            r.best_score = field_as<std::int64_t>(progress, p, "best_score");
            const bool done = rank >= static_cast<int>(ProgressStatus::completed);
            r.passed = done && (!r.pass_score || (r.best_score && *r.best_score >= *r.pass_score));
        }
        c.modules.push_back(std::move(r));
    }
    std::sort(c.modules.begin(), c.modules.end(), [](auto& a, auto& b) { return a.ordinal < b.ordinal; });

    const EntityDef& gatherings = entity("gathering");
    const EntityDef& attendance = entity("attendance");
    for (const Id& id : rows.referring(gatherings, "group_id", group)) {
        const auto ga = rows.load(gatherings, id);
        if (!is_live(gatherings, ga) || field_as<Id>(gatherings, ga, "group_id") != group ||
            field_as<std::string>(gatherings, ga, "status") != "held")
            continue;
        GatheringResult r{id, field_as<std::int64_t>(gatherings, ga, "ordinal").value_or(0),
                          field_as<std::string>(gatherings, ga, "title").value_or(""),
                          field_as<std::int64_t>(gatherings, ga, "scheduled_at"), false};
        const auto a = rows.load(attendance, Id::derive("attendance", {id, person}));
        r.attended = is_live(attendance, a) && field_as<std::string>(attendance, a, "status") == "present";
        c.held.push_back(std::move(r));
    }
    std::sort(c.held.begin(), c.held.end(), [](auto& a, auto& b) { return a.ordinal < b.ordinal; });

    const EntityDef& confirmation = entity("mentor_confirmation");
    const auto conf = rows.load(confirmation, Id::derive("mentor_confirmation", {group, person}));
    if (is_live(confirmation, conf)) {
        c.confirmed_by = field_as<Id>(confirmation, conf, "mentor_id");
        c.confirmed_at = field_as<std::int64_t>(confirmation, conf, "confirmed_at").value_or(0);
    }
    return c;
}

std::string certificate_serial(const Id& certificate) {
    // Crockford's base32 of the first 60 bits: 12 characters, no I, L, O, U.
    static constexpr char digits[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = v << 8 | certificate.bytes[static_cast<std::size_t>(i)];
    std::string out;
    for (int i = 0; i < 12; ++i) {
        if (i == 4 || i == 8) out += '-';
        out += digits[(v >> (59 - 5 * i)) & 31];
    }
    return out;
}

}  // namespace lindra::model
