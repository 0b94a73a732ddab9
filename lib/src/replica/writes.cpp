// The typed write API: each call becomes one Core::write of schema-named
// fields, so validation, merging and the outbox stay in one place.
#include "replica/core.hpp"

namespace lindra {

using detail::Core;
using detail::entity;
using detail::Intent;

namespace {

void require_row(Core& c, const EntityDef& e, const Id& row) {
    if (!c.load(e, row).exists)
        throw Error(Errc::not_found, std::string(e.name) + " " + row.to_string() + " is not on this device");
}

template <class T>
Value opt(const std::optional<T>& v) {
    if (!v) return std::monostate{};
    if constexpr (std::is_same_v<T, Id>)
        return *v;
    else
        return static_cast<std::int64_t>(*v);
}

Value text_or_null(const std::string& s) {
    return s.empty() ? Value{} : Value{s};
}
Value str(std::string_view s) {
    return std::string(s);
}

std::vector<Intent> to_intents(const std::vector<FieldValue>& fields) {
    std::vector<Intent> out;
    out.reserve(fields.size());
    for (const auto& f : fields) out.push_back({f.field, f.value});
    return out;
}

Id progress_row(const Id& person, const Id& module, const Id& group) {
    return Id::derive("module_progress", {person, module, group});
}

// Key fields first, so a new row gets its identity with its first change.
void write_progress(Core& c, const Id& person, const Id& module, const Id& group, std::vector<Intent> fields) {
    std::vector<Intent> in = {{"person_id", person}, {"module_id", module}, {"group_id", group}};
    in.insert(in.end(), std::make_move_iterator(fields.begin()), std::make_move_iterator(fields.end()));
    c.write(entity("module_progress"), progress_row(person, module, group), in);
}

Id gathering_group(Core& c, const Id& gathering) {
    const auto v = c.get(entity("gathering"), gathering, "group_id");
    if (const auto* g = std::get_if<Id>(&v)) return *g;
    throw Error(Errc::not_found, "gathering " + gathering.to_string() + " is not on this device");
}

}  // namespace

template <class F>
auto Writes::run(F&& f) {
    if (!own_transaction_) return f(*core_);
    std::lock_guard lock(core_->mutex);
    Core::WriteTransaction txn(*core_);
    if constexpr (std::is_void_v<decltype(f(*core_))>) {
        f(*core_);
        txn.commit();
    } else {
        auto result = f(*core_);
        txn.commit();
        return result;
    }
}

Id Writes::create(std::string_view name, const std::vector<FieldValue>& fields) {
    return run([&](Core& c) {
        const auto& e = entity(name);
        const auto in = to_intents(fields);
        const Id id = c.new_row_id(e, in);
        if (c.load(e, id).exists)
            throw Error(Errc::invalid_argument, std::string(name) + " " + id.to_string() + " already exists");
        c.write(e, id, in);
        return id;
    });
}

void Writes::update(std::string_view name, const Id& row, const std::vector<FieldValue>& fields) {
    run([&](Core& c) {
        const auto& e = entity(name);
        require_row(c, e, row);
        c.write(e, row, to_intents(fields));
    });
}

void Writes::add(std::string_view name, const Id& row, std::string_view field, std::int64_t delta) {
    run([&](Core& c) {
        const auto& e = entity(name);
        require_row(c, e, row);
        const Intent in{field, delta, Intent::Op::add};
        c.write(e, row, {&in, 1});
    });
}

void Writes::remove(std::string_view name, const Id& row) {
    model::check_deletable(entity(name));
    update(name, row, {{kDeletedField, std::int64_t{1}}});
}

Id Writes::register_organization(const std::string& name, OrganizationKind kind, std::optional<Id> parent) {
    return create("organization", {{"name", name}, {"kind", str(to_string(kind))}, {"parent_id", opt(parent)}});
}

Id Writes::register_person(const std::string& display_name, Profession profession, std::optional<Id> organization) {
    return create("person", {{"display_name", display_name},
                             {"profession", str(to_string(profession))},
                             {"organization_id", opt(organization)}});
}

Id Writes::register_course(const std::string& title, const std::string& version, const std::string& language,
                           int required_gatherings) {
    return create("course", {{"title", title},
                             {"version", text_or_null(version)},
                             {"language", text_or_null(language)},
                             {"required_gatherings", std::int64_t{required_gatherings}}});
}

Id Writes::register_module(const NewModule& m) {
    return create("module", {{"course_id", m.course},
                             {"ordinal", std::int64_t{m.ordinal}},
                             {"title", m.title},
                             {"kind", str(to_string(m.kind))},
                             {"required", std::int64_t{m.required}},
                             {"pass_score", opt(m.pass_score)}});
}

Id Writes::create_group(const NewGroup& g) {
    return create("mentor_group", {{"course_id", g.course},
                                   {"organization_id", g.organization},
                                   {"name", g.name},
                                   {"starts_on", text_or_null(g.starts_on)},
                                   {"ends_on", text_or_null(g.ends_on)},
                                   {"status", str(to_string(g.status))}});
}

Id Writes::add_member(const Id& group, const Id& person, MemberRole role) {
    return run([&](Core& c) {
        const Intent in[] = {{"group_id", group},
                             {"person_id", person},
                             {"role", str(to_string(role))},
                             {"status", str(to_string(MemberStatus::active))}};
        const auto& e = entity("membership");
        const Id id = c.new_row_id(e, in);
        c.write(e, id, in);
        return id;
    });
}

void Writes::withdraw_member(const Id& group, const Id& person) {
    run([&](Core& c) {
        const auto& e = entity("membership");
        const Id id = Id::derive(e.name, {group, person});
        require_row(c, e, id);
        const Intent in{"status", str(to_string(MemberStatus::withdrawn))};
        c.write(e, id, {&in, 1});
    });
}

void Writes::start_module(const Id& person, const Id& module, const Id& group) {
    run([&](Core& c) {
        write_progress(
            c, person, module, group,
            {{"progress", std::int64_t{static_cast<int>(ProgressStatus::in_progress)}, Intent::Op::advance}});
    });
}

void Writes::complete_module(const Id& person, const Id& module, const Id& group, std::optional<int> score,
                             std::int64_t seconds_spent) {
    run([&](Core& c) {
        const auto pass = c.get(entity("module"), module, "pass_score");
        const auto* pass_score = std::get_if<std::int64_t>(&pass);
        const bool passed = pass_score && score && *score >= *pass_score;
        const auto status = passed ? ProgressStatus::passed : ProgressStatus::completed;
        std::vector<Intent> in = {{"progress", std::int64_t{static_cast<int>(status)}, Intent::Op::advance},
                                  {"first_completed_at", c.clock.now_ms()}};
        if (score) in.push_back({"best_score", std::int64_t{*score}});
        if (seconds_spent != 0) in.push_back({"time_spent_s", seconds_spent, Intent::Op::add});
        write_progress(c, person, module, group, std::move(in));
    });
}

void Writes::record_score(const Id& person, const Id& module, const Id& group, int score) {
    run([&](Core& c) { write_progress(c, person, module, group, {{"best_score", std::int64_t{score}}}); });
}

void Writes::add_time_spent(const Id& person, const Id& module, const Id& group, std::int64_t seconds) {
    run([&](Core& c) { write_progress(c, person, module, group, {{"time_spent_s", seconds, Intent::Op::add}}); });
}

void Writes::reset_module(const Id& person, const Id& module, const Id& group) {
    run([&](Core& c) {
        const auto cur = c.get(entity("module_progress"), progress_row(person, module, group), "progress");
        const auto attempt =
            progress_attempt(std::holds_alternative<std::int64_t>(cur) ? std::get<std::int64_t>(cur) : 0);
        write_progress(c, person, module, group,
                       {{"progress", progress_value(attempt + 1, static_cast<int>(ProgressStatus::not_started))}});
    });
}

Id Writes::plan_gathering(const NewGathering& g) {
    return create("gathering", {{"group_id", g.group},
                                {"ordinal", std::int64_t{g.ordinal}},
                                {"title", g.title},
                                {"scheduled_at", opt(g.scheduled_at)},
                                {"mode", str(to_string(g.mode))},
                                {"status", str(to_string(GatheringStatus::planned))},
                                {"module_id", opt(g.module)}});
}

void Writes::hold_gathering(const Id& gathering) {
    update("gathering", gathering, {{"status", str(to_string(GatheringStatus::held))}});
}

void Writes::cancel_gathering(const Id& gathering) {
    update("gathering", gathering, {{"status", str(to_string(GatheringStatus::cancelled))}});
}

void Writes::record_attendance(const Id& gathering, const Id& person, AttendanceStatus status,
                               const std::string& note) {
    run([&](Core& c) {
        const Intent in[] = {{"gathering_id", gathering},
                             {"person_id", person},
                             {"group_id", gathering_group(c, gathering)},
                             {"status", str(to_string(status))},
                             {"note", text_or_null(note)}};
        const auto& e = entity("attendance");
        c.write(e, c.new_row_id(e, in), in);
    });
}

void Writes::confirm_candidate(const Id& group, const Id& person, const Id& mentor, const std::string& statement) {
    run([&](Core& c) {
        const Intent in[] = {{"group_id", group},
                             {"person_id", person},
                             {"mentor_id", mentor},
                             {"confirmed_at", c.clock.now_ms()},
                             {"statement", text_or_null(statement)}};
        const auto& e = entity("mentor_confirmation");
        c.write(e, c.new_row_id(e, in), in);
    });
}

void Writes::revoke_certificate(const Id& certificate, const std::string& reason) {
    if (reason.find_first_not_of(" \t\r\n") == std::string::npos)
        throw Error(Errc::invalid_argument, "revocation.reason: say why the certificate is revoked", 0,
                    "revocation.reason");
    run([&](Core& c) {
        const auto& certificates = entity("certificate");
        const auto group = c.get(certificates, certificate, "group_id");
        const auto person = c.get(certificates, certificate, "person_id");
        if (!std::holds_alternative<Id>(group) || !std::holds_alternative<Id>(person))
            throw Error(Errc::not_found, "certificate " + certificate.to_string() + " is not on this device");
        const Intent in[] = {
            {"certificate_id", certificate}, {"group_id", group}, {"person_id", person}, {"reason", reason}};
        const auto& e = entity("revocation");
        c.write(e, c.new_row_id(e, in), in);
    });
}

Id Writes::write_reflection(const Id& person, const Id& group, std::optional<Id> module, const std::string& text) {
    return create("reflection",
                  {{"person_id", person}, {"group_id", group}, {"module_id", opt(module)}, {"text", text}});
}

}  // namespace lindra
