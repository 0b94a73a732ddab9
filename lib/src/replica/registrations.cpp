// The coordinator's registration list: a CSV file of people and the groups
// they join, checked whole and then written in one batch
// (Replica::import_registrations; the dialect is core/csv.hpp's).
#include "core/case_fold.hpp"
#include "core/csv.hpp"
#include "replica/core.hpp"

#include <algorithm>
#include <array>
#include <map>
#include <set>

namespace lindra {

using detail::Core;

namespace {

enum Column : std::size_t { kGroup, kDisplayName, kRole, kProfession, kOrganization, kColumns };
constexpr std::array<std::string_view, kColumns> kColumnNames = {"group", "display_name", "role", "profession",
                                                                 "organization"};

std::string all_columns() {
    std::string out;
    for (const auto c : kColumnNames) out += (out.empty() ? "" : ",") + std::string(c);
    return out;
}

// As a column name or an enum value: "Display name" is display_name,
// "Health-care worker" health_care_worker.
std::string normalized(std::string_view text) {
    std::string out;
    for (const char c : text) out += c == ' ' || c == '-' ? '_' : c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c;
    return out;
}

Error line_error(Errc code, int line, std::string_view column, const std::string& what) {
    return Error(code, "line " + std::to_string(line) + ", " + std::string(column) + ": " + what, 0,
                 std::string(column));
}

// The columns' positions, from the header line.
struct Header {
    std::array<std::size_t, kColumns> at{};
    std::vector<std::string> names;  // by position, as normalized; "" for a column without a name

    std::string name(std::size_t i) const { return names[i].empty() ? "field " + std::to_string(i + 1) : names[i]; }
};

Header read_header(const csv::Record& r) {
    Header h;
    std::array<bool, kColumns> seen{};
    std::vector<std::string> unknown;
    for (std::size_t i = 0; i < r.fields.size(); ++i) {
        h.names.push_back(normalized(r.fields[i]));
        // A spreadsheet may add empty columns at the end: nameless, ignored.
        if (h.names.back().empty()) continue;
        const auto it = std::find(kColumnNames.begin(), kColumnNames.end(), h.names.back());
        if (it == kColumnNames.end()) {
            unknown.push_back("\"" + r.fields[i] + "\"");
            continue;
        }
        const auto c = static_cast<std::size_t>(it - kColumnNames.begin());
        if (seen[c]) throw line_error(Errc::invalid_argument, r.line, *it, "the header names this column twice");
        seen[c] = true;
        h.at[c] = i;
    }
    std::string missing;
    std::string_view first_missing;
    for (std::size_t c = 0; c < kColumns; ++c) {
        if (seen[c]) continue;
        missing += (missing.empty() ? "" : ", ") + std::string(kColumnNames[c]);
        if (first_missing.empty()) first_missing = kColumnNames[c];
    }
    if (std::none_of(seen.begin(), seen.end(), [](bool b) { return b; }))
        throw Error(Errc::invalid_argument,
                    "line " + std::to_string(r.line) +
                        ": the first line must be a header naming the columns: " + all_columns());
    std::string what;
    for (const auto& u : unknown) what += (what.empty() ? "unknown column " : ", ") + u;
    if (!missing.empty()) what += (what.empty() ? "" : "; ") + ("missing column " + missing);
    if (!what.empty())
        throw Error(Errc::invalid_argument,
                    "line " + std::to_string(r.line) + " (the header): " + what + "; the columns are " + all_columns(),
                    0, unknown.empty() ? std::string(first_missing) : std::string());
    return h;
}

// One registration line, its values checked.
struct Line {
    int line = 0;
    std::array<std::string, kColumns> value{};
    MemberRole role{};
    Profession profession{};
};

std::string allowed(std::string_view entity, std::string_view field) {
    std::string out;
    for (const auto v : detail::field(detail::entity(entity), field).values)
        out += (out.empty() ? "" : ", ") + std::string(v);
    return out;
}

template <class E>
E enum_value(const Line& l, Column c, std::string_view entity, std::string_view field) {
    if (const auto v = parse_enum<E>(normalized(l.value[c]))) return *v;
    throw line_error(Errc::bad_enum_value, l.line, kColumnNames[c],
                     "\"" + l.value[c] + "\" is not one of: " + allowed(entity, field));
}

Line read_line(const Header& h, const csv::Record& r) {
    const auto n = r.fields.size(), want = h.names.size();
    if (n < want)
        throw line_error(Errc::invalid_argument, r.line, h.name(n),
                         std::to_string(n) + " fields where the header has " + std::to_string(want) + ": no " +
                             h.name(n) + " field");
    if (n > want)
        throw Error(Errc::invalid_argument, "line " + std::to_string(r.line) + ": " + std::to_string(n) +
                                                " fields where the header has " + std::to_string(want) +
                                                "; put a value holding a comma in quotes (\"Nordmann, Ola\")");
    Line l;
    l.line = r.line;
    for (std::size_t c = 0; c < kColumns; ++c) {
        auto& v = l.value[c] = r.fields[h.at[c]];
        if (v.empty())
            throw line_error(Errc::invalid_argument, r.line, kColumnNames[c], "empty; every column needs a value");
        if (std::any_of(v.begin(), v.end(),
                        [](char ch) { return static_cast<unsigned char>(ch) < 0x20 || ch == 0x7F; }))
            throw line_error(Errc::invalid_argument, r.line, kColumnNames[c],
                             "holds a line break or another control character");
    }
    l.role = enum_value<MemberRole>(l, kRole, "membership", "role");
    l.profession = enum_value<Profession>(l, kProfession, "person", "profession");
    return l;
}

std::vector<Line> read_lines(std::string_view text) {
    csv::Reader reader(text);
    std::optional<Header> header;
    const auto next = [&] {
        try {
            return reader.next();
        } catch (const csv::SyntaxError& e) {
            if (!header || e.field == 0 || e.field > header->names.size()) throw;
            throw line_error(Errc::invalid_argument, e.line, header->name(e.field - 1), e.what_alone);
        }
    };
    const auto first = next();
    if (!first)
        throw Error(
            Errc::invalid_argument,
            "the registration list is empty; its first line must be a header naming the columns: " + all_columns());
    header = read_header(*first);
    std::vector<Line> lines;
    while (const auto r = next()) lines.push_back(read_line(*header, *r));
    return lines;
}

}  // namespace

RegistrationImport Replica::import_registrations(std::string_view text) {
    // Everything the file alone can get wrong is found before the batch.
    const auto lines = read_lines(text);
    RegistrationImport summary;
    summary.lines = static_cast<int>(lines.size());

    batch([&](Writes& w) {
        Core& c = *core_;
        const auto& membership = detail::entity("membership");
        // Lookups by the text in the file, once per distinct name.
        std::map<std::pair<std::string_view, std::string>, Id> named;
        // The people of an organization by their folded display name.
        std::map<Id, std::multimap<std::string, Id>> people_of;
        std::set<Id> counted;
        std::map<Id, int> listed;  // membership -> its line

        // A group or organization by its whole name (any case) or id.
        const auto resolve = [&](const Line& l, Column column, std::string_view entity) {
            const auto& text = l.value[column];
            const auto noun = kColumnNames[column];
            if (const auto it = named.find({entity, text}); it != named.end()) return it->second;
            std::optional<Id> id;
            try {
                id = find(entity, text);
            } catch (const Error& e) {
                if (e.storage_failure()) throw;
                throw line_error(e.errc(), l.line, noun, e.what());
            }
            if (!id)
                throw line_error(Errc::not_found, l.line, noun,
                                 "no " + std::string(noun) + " named \"" + text +
                                     "\" on this device (the import makes no " + std::string(noun) +
                                     "s; sync first, or check the name)");
            const auto& e = detail::entity(entity);
            const auto label = c.get(e, *id, e.label_field);
            const auto* name = std::get_if<std::string>(&label);
            // find() also takes the first words of a name; a list must say
            // which group it means, or a new group could take its people.
            if (!Id::parse(text) && name && fold_case(*name) != fold_case(text))
                throw line_error(Errc::not_found, l.line, noun,
                                 "no " + std::string(noun) + " named \"" + text + "\" on this device; write the whole" +
                                     " name (\"" + *name + "\"?) or its id");
            named.emplace(std::pair{entity, text}, *id);
            return *id;
        };

        // The person of this line: the one registered with that name in the
        // organization, or a new one.
        const auto person_of = [&](const Line& l, const Id& organization) {
            auto [people, first] = people_of.try_emplace(organization);
            if (first) {
                auto s = c.db.cached("SELECT id, display_name FROM person WHERE organization_id = ? AND deleted = 0");
                s->bind(1, organization);
                while (s->step()) people->second.emplace(fold_case(s->text(1)), s->id(0));
            }
            const auto& name = l.value[kDisplayName];
            const auto key = fold_case(name);
            const auto n = people->second.count(key);
            if (n > 1)
                throw line_error(Errc::ambiguous, l.line, kColumnNames[kDisplayName],
                                 std::to_string(n) + " people named \"" + name + "\" in " + l.value[kOrganization] +
                                     " on this device, and a line cannot say which; add this one to the group by" +
                                     " the person's id (add_member; lindra-tablet member add)");
            if (n == 1) {
                const Id person = people->second.find(key)->second;
                if (counted.insert(person).second) ++summary.people_existing;
                return person;
            }
            Id person;
            try {
                person = w.register_person(name, l.profession, organization);
            } catch (const Error& e) {
                if (e.storage_failure()) throw;
                throw line_error(e.errc(), l.line, kColumnNames[kDisplayName], e.what());
            }
            people->second.emplace(key, person);
            counted.insert(person);
            ++summary.people_created;
            return person;
        };

        for (const auto& l : lines) {
            const Id group = resolve(l, kGroup, "mentor_group");
            const Id organization = resolve(l, kOrganization, "organization");
            const Id person = person_of(l, organization);
            const Id id = Id::derive(membership.name, {group, person});
            if (const auto [it, first] = listed.emplace(id, l.line); !first)
                throw line_error(Errc::invalid_argument, l.line, kColumnNames[kDisplayName],
                                 l.value[kDisplayName] + " is in " + l.value[kGroup] + " on line " +
                                     std::to_string(it->second) + " already; list each member of a group once");
            const auto role = c.get(membership, id, "role");
            if (std::holds_alternative<std::monostate>(role)) {
                w.add_member(group, person, l.role);
                ++summary.memberships_added;
                continue;
            }
            if (c.get(membership, id, "status") == Value{std::string(to_string(MemberStatus::withdrawn))}) {
                summary.withdrawn_lines.push_back(l.line);
                continue;
            }
            if (role != Value{std::string(to_string(l.role))})
                throw line_error(Errc::invalid_argument, l.line, kColumnNames[kRole],
                                 l.value[kDisplayName] + " is a " + std::get<std::string>(role) + " in " +
                                     l.value[kGroup] +
                                     " already; the import does not change roles: correct the line, or change the" +
                                     " role with add_member (lindra-tablet member add)");
            ++summary.memberships_unchanged;
        }
    });
    return summary;
}

}  // namespace lindra
