// The coordinator's completion report: who of a group's (or an
// organization's) candidates met the certificate's rule, and what is still
// lacking. The rule is model::completion, the server's own; this file only
// chooses the groups and candidates and reads their certificates.
#include "model/completion.hpp"
#include "replica/core.hpp"
#include "replica/rows.hpp"

#include <map>
#include <tuple>

namespace lindra {

using detail::Core;

namespace {

using model::field_as;

// The rows a report reads for every candidate of a group (the course, its
// modules, the group and its gatherings) read once: a municipality's
// report judges thousands of candidates under the replica's lock, and these
// make half of its reads. Lives for one report, under the Core's mutex, so
// nothing changes under it.
class SharedRows final : public model::RowSource {
  public:
    explicit SharedRows(store::Database& db) : rows_(db) {}

    model::RowState load(const EntityDef& e, const Id& row) override {
        if (e.scope != ScopeKind::catalog && e.name != "mentor_group" && e.name != "gathering")
            return rows_.load(e, row);
        auto [it, added] = loaded_.try_emplace({e.tag, row});
        if (added) it->second = rows_.load(e, row);
        return it->second;
    }
    std::vector<Id> referring(const EntityDef& e, std::string_view field, const Id& target) override {
        auto [it, added] = referring_.try_emplace({e.tag, std::string(field), target});
        if (added) it->second = rows_.referring(e, field, target);
        return it->second;
    }

  private:
    detail::Rows rows_;
    std::map<std::pair<std::uint16_t, Id>, model::RowState> loaded_;
    std::map<std::tuple<std::uint16_t, std::string, Id>, std::vector<Id>> referring_;
};

struct GroupInfo {
    Id id;
    std::string name, organization, course_title;
};

void add_group(Core& c, SharedRows& rows, const GroupInfo& g, CompletionReport& out) {
    const EntityDef& people = detail::entity("person");
    const EntityDef& certificates = detail::entity("certificate");
    std::vector<std::pair<Id, std::string>> candidates;
    {
        auto s = c.db.cached(
            "SELECT m.person_id, p.display_name FROM membership m"
            " LEFT JOIN person p ON p.id = m.person_id AND p.deleted = 0"
            " WHERE m.group_id = ? AND m.role = ? AND m.deleted = 0 ORDER BY p.display_name, m.person_id");
        s->bind(1, g.id).bind(2, to_string(MemberRole::candidate));
        while (s->step()) candidates.emplace_back(s->id(0), s->text(1));
    }
    for (const auto& [person, name] : candidates) {
        const auto done = model::completion(rows, person, g.id);
        if (!done) continue;  // the group is live: cannot happen
        CompletionReportRow r;
        r.group = g.id;
        r.group_name = g.name;
        r.organization_name = g.organization;
        r.course_title = g.course_title;
        r.person = person;
        r.display_name = name;
        r.status = parse_enum<MemberStatus>(done->membership_status).value_or(MemberStatus::registered);
        r.modules_passed = static_cast<int>(done->modules_passed());
        r.modules_required = static_cast<int>(done->modules.size());
        r.gatherings_attended = static_cast<int>(done->attended());
        r.gatherings_held = static_cast<int>(done->held.size());
        r.gatherings_required = static_cast<int>(done->required_gatherings);
        r.confirmed = done->confirmed_by.has_value();
        if (done->confirmed_by) {
            r.confirmed_by = done->confirmed_by;
            r.confirmed_at = done->confirmed_at;
            const auto mentor = rows.load(people, *done->confirmed_by);
            if (model::is_live(people, mentor))
                r.confirmed_by_name = field_as<std::string>(people, mentor, "display_name").value_or("");
        }
        r.met = done->met();
        const auto cert = rows.load(certificates, Id::derive("certificate", {person, done->course, g.id}));
        if (model::is_live(certificates, cert)) {
            r.serial = field_as<std::string>(certificates, cert, "serial").value_or("");
            r.issued_at = field_as<std::int64_t>(certificates, cert, "issued_at");
            r.revoked_at = field_as<std::int64_t>(certificates, cert, "revoked_at");
            r.revocation_reason = field_as<std::string>(certificates, cert, "revocation_reason").value_or("");
            r.certificate = r.revoked_at ? CertificateState::revoked : CertificateState::issued;
        } else {
            r.lacking = done->lacking();
        }
        out.rows.push_back(std::move(r));
    }
}

// The groups a query selects, with the names a report shows; in report order.
std::vector<GroupInfo> groups_where(Core& c, const std::string& where, const Id& id) {
    auto s = c.db.cached(
        "SELECT g.id, g.name, coalesce(o.name, ''), coalesce(co.title, '') FROM mentor_group g"
        " LEFT JOIN organization o ON o.id = g.organization_id AND o.deleted = 0"
        " LEFT JOIN course co ON co.id = g.course_id AND co.deleted = 0"
        " WHERE g.deleted = 0 AND " +
        where + " ORDER BY o.name, g.name, g.id");
    s->bind(1, id);
    std::vector<GroupInfo> out;
    while (s->step()) out.push_back({s->id(0), s->text(1), s->text(2), s->text(3)});
    return out;
}

}  // namespace

std::string_view to_string(CertificateState v) {
    switch (v) {
        case CertificateState::issued:
            return "issued";
        case CertificateState::revoked:
            return "revoked";
        case CertificateState::missing:
            return "missing";
    }
    return "?";
}

CompletionReport Replica::completion_report(const Id& group) const {
    std::lock_guard lock(core_->mutex);
    const auto groups = groups_where(*core_, "g.id = ?", group);
    if (groups.empty()) throw Error(Errc::not_found, "group " + group.to_string() + " is not on this device");
    CompletionReport out;
    out.scope = groups.front().name;
    SharedRows rows(core_->db);
    add_group(*core_, rows, groups.front(), out);
    return out;
}

CompletionReport Replica::completion_report_for_organization(const Id& organization) const {
    std::lock_guard lock(core_->mutex);
    CompletionReport out;
    {
        auto s = core_->db.cached("SELECT name FROM organization WHERE id = ? AND deleted = 0");
        s->bind(1, organization);
        if (!s->step())
            throw Error(Errc::not_found, "organization " + organization.to_string() + " is not on this device");
        out.scope = s->text(0);
    }
    // The organization and those under it; UNION (not UNION ALL) ends a
    // cycle of parents.
    const auto groups = groups_where(*core_,
                                     "g.organization_id IN (WITH RECURSIVE under(id) AS (SELECT ?1 UNION"
                                     " SELECT o.id FROM organization o JOIN under ON o.parent_id = under.id"
                                     " WHERE o.deleted = 0) SELECT id FROM under)",
                                     organization);
    SharedRows rows(core_->db);
    for (const auto& g : groups) add_group(*core_, rows, g, out);
    return out;
}

}  // namespace lindra
