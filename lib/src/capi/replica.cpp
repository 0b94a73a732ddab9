// The C API of lindra::Replica: writes, batches and queries.
#include "capi/capi.hpp"
#include "capi/handles.hpp"

#include <lindra/replica.hpp>
#include <lindra/report.hpp>

using namespace lindra;
using namespace lindra::capi;

lindra::Writes& lindra_replica::writes() {
    // A batch's writes come from the thread that runs its callback; other
    // threads go to the replica and wait for the batch's lock.
    if (batch_thread.load() == std::this_thread::get_id()) return *batch;
    return replica;
}

// lindra.h's enums are the C++ ones in the same order: casts between them
// are safe while these hold.
static_assert(static_cast<int>(Errc::ambiguous) == LINDRA_ERR_AMBIGUOUS &&
              static_cast<int>(Errc::read_only) == LINDRA_ERR_READ_ONLY &&
              static_cast<int>(Errc::not_a_replica) == LINDRA_ERR_NOT_A_REPLICA &&
              static_cast<int>(Errc::unavailable) == LINDRA_ERR_UNAVAILABLE);
static_assert(static_cast<int>(OrganizationKind::care_unit) == LINDRA_ORGANIZATION_CARE_UNIT);
static_assert(static_cast<int>(Profession::other) == LINDRA_PROFESSION_OTHER);
static_assert(static_cast<int>(ModuleKind::practice) == LINDRA_MODULE_PRACTICE);
static_assert(static_cast<int>(CertificateStatus::not_yet_valid) == LINDRA_CERTIFICATE_NOT_YET_VALID &&
              static_cast<int>(CertificateStatus::bad_signature) == LINDRA_CERTIFICATE_BAD_SIGNATURE);
static_assert(static_cast<int>(GroupStatus::cancelled) == LINDRA_GROUP_CANCELLED);
static_assert(static_cast<int>(MemberRole::candidate) == LINDRA_ROLE_CANDIDATE);
static_assert(static_cast<int>(MemberStatus::completed) == LINDRA_MEMBER_COMPLETED);
static_assert(static_cast<int>(GatheringMode::digital) == LINDRA_GATHERING_DIGITAL);
static_assert(static_cast<int>(GatheringStatus::cancelled) == LINDRA_GATHERING_CANCELLED);
static_assert(static_cast<int>(AttendanceStatus::excused) == LINDRA_ATTENDANCE_EXCUSED);
static_assert(static_cast<int>(ProgressStatus::passed) == LINDRA_PROGRESS_PASSED);

// put() and to_c() overload those of capi.hpp, so they live beside them.
namespace lindra::capi {

void put(Block& b, lindra_person& out, const Person& p) {
    out = {to_c(p.id), b.str(p.display_name), to_c_enum<lindra_profession>(p.profession), to_c(p.organization)};
}
void put(Block& b, lindra_module& out, const Module& m) {
    out = {to_c(m.id),
           to_c(m.course),
           m.ordinal,
           b.str(m.title),
           to_c_enum<lindra_module_kind>(m.kind),
           m.required,
           m.pass_score.has_value(),
           m.pass_score.value_or(0)};
}
void put(Block& b, lindra_group& out, const Group& g) {
    out = {to_c(g.id),
           to_c(g.course),
           to_c(g.organization),
           b.str(g.name),
           b.str(g.starts_on),
           b.str(g.ends_on),
           to_c_enum<lindra_group_status>(g.status)};
}
void put(Block& b, lindra_gathering& out, const Gathering& g) {
    out = {to_c(g.id),
           to_c(g.group),
           g.ordinal,
           b.str(g.title),
           g.scheduled_at.has_value(),
           g.scheduled_at.value_or(0),
           to_c_enum<lindra_gathering_mode>(g.mode),
           static_cast<lindra_gathering_status>(g.status),
           to_c(g.module)};
}
void put(Block& b, lindra_roster_entry& out, const RosterEntry& e) {
    out = {to_c(e.person),
           b.str(e.display_name),
           static_cast<lindra_member_role>(e.role),
           static_cast<lindra_member_status>(e.status),
           e.modules_completed,
           e.modules_required,
           e.gatherings_attended,
           e.gatherings_held,
           e.confirmed};
}
void put(Block& b, lindra_module_progress& out, const ModuleProgress& p) {
    out = {to_c(p.person),
           to_c(p.group),
           to_c(p.module),
           p.ordinal,
           b.str(p.module_title),
           p.required,
           p.attempt,
           static_cast<lindra_progress_status>(p.status),
           p.best_score.has_value(),
           p.best_score.value_or(0),
           p.time_spent_s,
           p.first_completed_at.has_value(),
           p.first_completed_at.value_or(0)};
}

void put(Block& b, lindra_refused_write& out, const RefusedWrite& w) {
    out = {w.id,          w.seq,           b.str(w.entity), to_c(w.row), w.values.size(), put_values(b, w.values),
           b.str(w.code), b.str(w.reason), w.written_at,    w.refused_at};
}

// Runs `fn(Writes&)` on the handle's current write target.
template <class F>
bool write(lindra_replica* r, lindra_error* error, F&& fn) noexcept {
    return try_catch(error, [&] { fn(need(r, "replica").writes()); });
}
// The same for writes that make a row: its id goes to `out` if not NULL.
template <class F>
bool create(lindra_replica* r, lindra_id* out, lindra_error* error, F&& fn) noexcept {
    return try_catch(error, [&] {
        const Id made = fn(need(r, "replica").writes());
        if (out) *out = to_c(made);
    });
}
// Runs a query; its result goes to `*out`.
template <class T, class F>
bool query(const lindra_replica* r, T* out, lindra_error* error, F&& fn) noexcept {
    return try_catch(error, [&] {
        auto& o = need(out, "out");
        o = fn(need(r, "replica").replica);
    });
}

std::vector<FieldValue> field_values(const lindra_field_value* fields, std::size_t count) {
    if (count > 0) need(fields, "fields");
    std::vector<FieldValue> out;
    for (std::size_t i = 0; i < count; ++i) {
        const auto& f = fields[i];
        FieldValue v{need(f.field, "field name"), {}};
        switch (f.kind) {
            case LINDRA_VALUE_NULL:
                break;
            case LINDRA_VALUE_INTEGER:
                v.value = f.integer;
                break;
            case LINDRA_VALUE_TEXT:
                v.value = need_text(f.text, "text value");
                break;
            case LINDRA_VALUE_ID:
                v.value = id(f.id);
                break;
            default:
                throw Error(Errc::invalid_argument, "unknown value kind " + std::to_string(f.kind));
        }
        out.push_back(std::move(v));
    }
    return out;
}

// The report of exactly one of `group` and `organization`, rendered.
template <class Render>
bool completion_report(const lindra_replica* replica, const lindra_id* group, const lindra_id* organization, char** out,
                       lindra_error* error, Render render) noexcept {
    return query(replica, out, error, [&](const Replica& r) {
        if ((group == nullptr) == (organization == nullptr))
            throw Error(Errc::invalid_argument, "give a group or an organization for the report, not both or neither");
        return owned_string(
            render(group ? r.completion_report(id(*group)) : r.completion_report_for_organization(id(*organization))));
    });
}

}  // namespace lindra::capi

extern "C" {

bool lindra_id_parse(const char* text, lindra_id* out, lindra_error* error) noexcept {
    return try_catch(error, [&] {
        const auto parsed = Id::parse(need(text, "text"));
        if (!parsed) throw Error(Errc::invalid_argument, "not an id: expected the 36-character UUID form");
        need(out, "out") = to_c(*parsed);
    });
}

void lindra_id_format(const lindra_id* id, char out[37]) noexcept {
    if (id && out) capi::id(*id).format(out);
}

bool lindra_id_is_nil(const lindra_id* id) noexcept {
    return !id || capi::id(*id).is_nil();
}

lindra_replica* lindra_replica_open(const char* path, lindra_error* error) noexcept {
    lindra_replica* out = nullptr;
    try_catch(error, [&] { out = new lindra_replica{Replica(need_text(path, "path"))}; });
    return out;
}

void lindra_replica_free(lindra_replica* replica) noexcept {
    delete replica;
}

void lindra_replica_device_id(const lindra_replica* replica, lindra_id* out) noexcept {
    if (replica && out) *out = to_c(replica->replica.device_id());
}

bool lindra_replica_batch(lindra_replica* replica, bool (*fn)(lindra_replica*, void*), void* context,
                          lindra_error* error) noexcept {
    struct RolledBack {};
    bool kept = true;
    const bool ran = try_catch(error, [&] {
        auto& r = need(replica, "replica");
        need(fn, "fn");
        if (r.batch_thread.load() == std::this_thread::get_id())
            throw Error(Errc::invalid_argument, "a batch is already open on this thread");
        try {
            r.replica.batch([&](Writes& w) {
                r.batch = &w;
                r.batch_thread = std::this_thread::get_id();
                // However fn leaves (a C++ callback may throw), the batch's
                // writes are gone once this returns.
                struct Reset {
                    lindra_replica& r;
                    ~Reset() {
                        r.batch_thread = std::thread::id();
                        r.batch = nullptr;
                    }
                } reset{r};
                kept = fn(&r, context);
                if (!kept) throw RolledBack{};  // Replica::batch rolls back on any exception
            });
        } catch (const RolledBack&) {
        }
    });
    if (ran && !kept) set_error(error, LINDRA_ERR_ABORTED, "the batch's callback returned false: nothing was written");
    return ran && kept;
}

bool lindra_replica_create(lindra_replica* replica, const char* entity, const lindra_field_value* fields, size_t count,
                           lindra_id* out_id, lindra_error* error) noexcept {
    return create(replica, out_id, error,
                  [&](Writes& w) { return w.create(need(entity, "entity"), field_values(fields, count)); });
}

bool lindra_replica_update(lindra_replica* replica, const char* entity, const lindra_id* row,
                           const lindra_field_value* fields, size_t count, lindra_error* error) noexcept {
    return write(replica, error,
                 [&](Writes& w) { w.update(need(entity, "entity"), id(row, "row"), field_values(fields, count)); });
}

bool lindra_replica_add(lindra_replica* replica, const char* entity, const lindra_id* row, const char* field,
                        int64_t delta, lindra_error* error) noexcept {
    return write(replica, error,
                 [&](Writes& w) { w.add(need(entity, "entity"), id(row, "row"), need(field, "field"), delta); });
}

bool lindra_replica_remove(lindra_replica* replica, const char* entity, const lindra_id* row,
                           lindra_error* error) noexcept {
    return write(replica, error, [&](Writes& w) { w.remove(need(entity, "entity"), id(row, "row")); });
}

bool lindra_replica_register_organization(lindra_replica* replica, const char* name, lindra_organization_kind kind,
                                          const lindra_id* parent, lindra_id* out_id, lindra_error* error) noexcept {
    return create(replica, out_id, error, [&](Writes& w) {
        return w.register_organization(
            text(name), to_enum<OrganizationKind>(kind, LINDRA_ORGANIZATION_CARE_UNIT + 1, "organization kind"),
            optional_id(parent));
    });
}

bool lindra_replica_register_person(lindra_replica* replica, const char* display_name, lindra_profession profession,
                                    const lindra_id* organization, lindra_id* out_id, lindra_error* error) noexcept {
    return create(replica, out_id, error, [&](Writes& w) {
        return w.register_person(text(display_name),
                                 to_enum<Profession>(profession, LINDRA_PROFESSION_OTHER + 1, "profession"),
                                 optional_id(organization));
    });
}

bool lindra_replica_register_course(lindra_replica* replica, const char* title, const char* version,
                                    const char* language, int required_gatherings, lindra_id* out_id,
                                    lindra_error* error) noexcept {
    return create(replica, out_id, error, [&](Writes& w) {
        return w.register_course(text(title), text(version), text(language), required_gatherings);
    });
}

bool lindra_replica_register_module(lindra_replica* replica, const lindra_new_module* module, lindra_id* out_id,
                                    lindra_error* error) noexcept {
    return create(replica, out_id, error, [&](Writes& w) {
        const auto& m = need(module, "module");
        return w.register_module({id(m.course), m.ordinal, text(m.title),
                                  to_enum<ModuleKind>(m.kind, LINDRA_MODULE_PRACTICE + 1, "module kind"), m.required,
                                  m.has_pass_score ? std::optional<int>(m.pass_score) : std::nullopt});
    });
}

bool lindra_replica_create_group(lindra_replica* replica, const lindra_new_group* group, lindra_id* out_id,
                                 lindra_error* error) noexcept {
    return create(replica, out_id, error, [&](Writes& w) {
        const auto& g = need(group, "group");
        return w.create_group({id(g.course), id(g.organization), text(g.name), text(g.starts_on), text(g.ends_on),
                               to_enum<GroupStatus>(g.status, LINDRA_GROUP_CANCELLED + 1, "group status")});
    });
}

bool lindra_replica_add_member(lindra_replica* replica, const lindra_id* group, const lindra_id* person,
                               lindra_member_role role, lindra_id* out_id, lindra_error* error) noexcept {
    return create(replica, out_id, error, [&](Writes& w) {
        return w.add_member(id(group, "group"), id(person, "person"),
                            to_enum<MemberRole>(role, LINDRA_ROLE_CANDIDATE + 1, "member role"));
    });
}

bool lindra_replica_withdraw_member(lindra_replica* replica, const lindra_id* group, const lindra_id* person,
                                    lindra_error* error) noexcept {
    return write(replica, error, [&](Writes& w) { w.withdraw_member(id(group, "group"), id(person, "person")); });
}

bool lindra_replica_start_module(lindra_replica* replica, const lindra_id* person, const lindra_id* module,
                                 const lindra_id* group, lindra_error* error) noexcept {
    return write(replica, error,
                 [&](Writes& w) { w.start_module(id(person, "person"), id(module, "module"), id(group, "group")); });
}

bool lindra_replica_complete_module(lindra_replica* replica, const lindra_id* person, const lindra_id* module,
                                    const lindra_id* group, const int* score, int64_t seconds_spent,
                                    lindra_error* error) noexcept {
    return write(replica, error, [&](Writes& w) {
        w.complete_module(id(person, "person"), id(module, "module"), id(group, "group"),
                          score ? std::optional<int>(*score) : std::nullopt, seconds_spent);
    });
}

bool lindra_replica_record_score(lindra_replica* replica, const lindra_id* person, const lindra_id* module,
                                 const lindra_id* group, int score, lindra_error* error) noexcept {
    return write(replica, error, [&](Writes& w) {
        w.record_score(id(person, "person"), id(module, "module"), id(group, "group"), score);
    });
}

bool lindra_replica_add_time_spent(lindra_replica* replica, const lindra_id* person, const lindra_id* module,
                                   const lindra_id* group, int64_t seconds, lindra_error* error) noexcept {
    return write(replica, error, [&](Writes& w) {
        w.add_time_spent(id(person, "person"), id(module, "module"), id(group, "group"), seconds);
    });
}

bool lindra_replica_reset_module(lindra_replica* replica, const lindra_id* person, const lindra_id* module,
                                 const lindra_id* group, lindra_error* error) noexcept {
    return write(replica, error,
                 [&](Writes& w) { w.reset_module(id(person, "person"), id(module, "module"), id(group, "group")); });
}

bool lindra_replica_plan_gathering(lindra_replica* replica, const lindra_new_gathering* gathering, lindra_id* out_id,
                                   lindra_error* error) noexcept {
    return create(replica, out_id, error, [&](Writes& w) {
        const auto& g = need(gathering, "gathering");
        return w.plan_gathering({id(g.group), g.ordinal, text(g.title),
                                 g.has_scheduled_at ? std::optional<Timestamp>(g.scheduled_at) : std::nullopt,
                                 to_enum<GatheringMode>(g.mode, LINDRA_GATHERING_DIGITAL + 1, "gathering mode"),
                                 optional_id(&g.module)});
    });
}

bool lindra_replica_hold_gathering(lindra_replica* replica, const lindra_id* gathering, lindra_error* error) noexcept {
    return write(replica, error, [&](Writes& w) { w.hold_gathering(id(gathering, "gathering")); });
}

bool lindra_replica_cancel_gathering(lindra_replica* replica, const lindra_id* gathering,
                                     lindra_error* error) noexcept {
    return write(replica, error, [&](Writes& w) { w.cancel_gathering(id(gathering, "gathering")); });
}

bool lindra_replica_record_attendance(lindra_replica* replica, const lindra_id* gathering, const lindra_id* person,
                                      lindra_attendance_status status, const char* note, lindra_error* error) noexcept {
    return write(replica, error, [&](Writes& w) {
        w.record_attendance(id(gathering, "gathering"), id(person, "person"),
                            to_enum<AttendanceStatus>(status, LINDRA_ATTENDANCE_EXCUSED + 1, "attendance status"),
                            text(note));
    });
}

bool lindra_replica_confirm_candidate(lindra_replica* replica, const lindra_id* group, const lindra_id* person,
                                      const lindra_id* mentor, const char* statement, lindra_error* error) noexcept {
    return write(replica, error, [&](Writes& w) {
        w.confirm_candidate(id(group, "group"), id(person, "person"), id(mentor, "mentor"), text(statement));
    });
}

bool lindra_replica_revoke_certificate(lindra_replica* replica, const lindra_id* certificate, const char* reason,
                                       lindra_error* error) noexcept {
    return write(replica, error,
                 [&](Writes& w) { w.revoke_certificate(id(certificate, "certificate"), text(reason)); });
}

bool lindra_replica_write_reflection(lindra_replica* replica, const lindra_id* person, const lindra_id* group,
                                     const lindra_id* module, const char* text_, lindra_id* out_id,
                                     lindra_error* error) noexcept {
    return create(replica, out_id, error, [&](Writes& w) {
        return w.write_reflection(id(person, "person"), id(group, "group"), optional_id(module), text(text_));
    });
}

bool lindra_replica_count(const lindra_replica* replica, const char* entity, int64_t* out,
                          lindra_error* error) noexcept {
    return query(replica, out, error, [&](const Replica& r) { return r.count(need(entity, "entity")); });
}

bool lindra_replica_person(const lindra_replica* replica, const lindra_id* id_, lindra_person** out,
                           lindra_error* error) noexcept {
    return query(replica, out, error,
                 [&](const Replica& r) { return build_one<lindra_person>(r.person(id(id_, "id"))); });
}

bool lindra_replica_group(const lindra_replica* replica, const lindra_id* id_, lindra_group** out,
                          lindra_error* error) noexcept {
    return query(replica, out, error,
                 [&](const Replica& r) { return build_one<lindra_group>(r.group(id(id_, "id"))); });
}

bool lindra_replica_gathering(const lindra_replica* replica, const lindra_id* id_, lindra_gathering** out,
                              lindra_error* error) noexcept {
    return query(replica, out, error,
                 [&](const Replica& r) { return build_one<lindra_gathering>(r.gathering(id(id_, "id"))); });
}

bool lindra_replica_roster(const lindra_replica* replica, const lindra_id* group, lindra_roster** out,
                           lindra_error* error) noexcept {
    return query(replica, out, error, [&](const Replica& r) {
        const Roster roster = r.roster(id(group, "group"));
        return build([&](Block& b) {
            auto* o = b.alloc<lindra_roster>(1);
            put(b, o->group, roster.group);
            o->course_title = b.str(roster.course_title);
            o->required_gatherings = roster.required_gatherings;
            o->count = roster.members.size();
            o->members = b.alloc<lindra_roster_entry>(roster.members.size());
            for (std::size_t i = 0; i < roster.members.size(); ++i) put(b, o->members[i], roster.members[i]);
            return o;
        });
    });
}

const char* lindra_member_name(const lindra_roster_entry* entry) noexcept {
    if (!entry) return "";
    const bool withdrawn = entry->status == LINDRA_MEMBER_WITHDRAWN;
    const auto shown = member_name(entry->display_name ? entry->display_name : "",
                                   withdrawn ? MemberStatus::withdrawn : MemberStatus::active);
    // A view of the entry's own string, or of a constant: NUL-terminated either way.
    return shown.data();
}

bool lindra_replica_modules(const lindra_replica* replica, const lindra_id* course, lindra_module_list** out,
                            lindra_error* error) noexcept {
    return query(replica, out, error,
                 [&](const Replica& r) { return build_list<lindra_module_list>(r.modules(id(course, "course"))); });
}

bool lindra_replica_groups(const lindra_replica* replica, lindra_group_list** out, lindra_error* error) noexcept {
    return query(replica, out, error, [&](const Replica& r) { return build_list<lindra_group_list>(r.groups()); });
}

bool lindra_replica_groups_of(const lindra_replica* replica, const lindra_id* person, lindra_group_list** out,
                              lindra_error* error) noexcept {
    return query(replica, out, error,
                 [&](const Replica& r) { return build_list<lindra_group_list>(r.groups_of(id(person, "person"))); });
}

bool lindra_replica_gatherings(const lindra_replica* replica, const lindra_id* group, lindra_gathering_list** out,
                               lindra_error* error) noexcept {
    return query(replica, out, error,
                 [&](const Replica& r) { return build_list<lindra_gathering_list>(r.gatherings(id(group, "group"))); });
}

bool lindra_replica_progress_of(const lindra_replica* replica, const lindra_id* person, lindra_progress_list** out,
                                lindra_error* error) noexcept {
    return query(replica, out, error, [&](const Replica& r) {
        return build_list<lindra_progress_list>(r.progress_of(id(person, "person")));
    });
}

bool lindra_replica_find(const lindra_replica* replica, const char* entity, const char* name, lindra_id* out,
                         bool* found, lindra_error* error) noexcept {
    return query(replica, found, error, [&](const Replica& r) {
        const auto hit = r.find(need(entity, "entity"), need(name, "name"));
        if (hit) need(out, "out") = to_c(*hit);
        return hit.has_value();
    });
}

bool lindra_replica_outbox_size(const lindra_replica* replica, int64_t* out, lindra_error* error) noexcept {
    return query(replica, out, error, [&](const Replica& r) { return r.outbox_size(); });
}

bool lindra_replica_refused_writes(const lindra_replica* replica, lindra_refused_list** out,
                                   lindra_error* error) noexcept {
    return query(replica, out, error,
                 [&](const Replica& r) { return build_list<lindra_refused_list>(r.refused_writes()); });
}

bool lindra_replica_import_registrations(lindra_replica* replica, const char* csv, size_t size,
                                         lindra_registration_import* summary, lindra_error* error) noexcept {
    return try_catch(error, [&] {
        if (size > 0) need(csv, "csv");
        auto& r = need(replica, "replica");
        // Its own batch: it cannot join the one this thread runs.
        if (r.batch_thread.load() == std::this_thread::get_id())
            throw Error(Errc::invalid_argument, "a registration list cannot be imported inside a batch");
        const auto s = r.replica.import_registrations({csv ? csv : "", size});
        if (summary)
            *summary = {s.lines,
                        s.people_created,
                        s.people_existing,
                        s.memberships_added,
                        s.memberships_unchanged,
                        static_cast<int64_t>(s.withdrawn_lines.size())};
    });
}

bool lindra_replica_certificates_of(const lindra_replica* replica, const lindra_id* person, lindra_id_list** out,
                                    lindra_error* error) noexcept {
    return query(replica, out, error, [&](const Replica& r) {
        const auto ids = r.certificates_of(id(person, "person"));
        return build([&](Block& b) {
            auto* o = b.alloc<lindra_id_list>(1);
            o->count = ids.size();
            o->items = b.alloc<lindra_id>(ids.size());
            for (std::size_t i = 0; i < ids.size(); ++i) o->items[i] = to_c(ids[i]);
            return o;
        });
    });
}

namespace {

lindra_certificate_check* to_c(const CertificateCheck& c) {
    return build([&](Block& b) {
        auto* o = b.alloc<lindra_certificate_check>(1);
        *o = {static_cast<lindra_certificate_status>(c.status),
              b.str(c.reason),
              b.str(c.serial),
              b.str(c.person_name),
              b.str(c.course_title),
              b.str(c.issuer),
              b.str(c.kid),
              c.valid_from_ms,
              c.revocation_list_age_ms.has_value(),
              c.revocation_list_age_ms.value_or(0),
              b.str(c.credential),
              b.str(c.revocation_list)};
        return o;
    });
}

}  // namespace

bool lindra_replica_verify_certificate(const lindra_replica* replica, const lindra_id* certificate,
                                       lindra_certificate_check** out, lindra_error* error) noexcept {
    return query(replica, out, error,
                 [&](const Replica& r) { return to_c(r.verify_certificate(id(certificate, "certificate"))); });
}

bool lindra_replica_verify_credential(const lindra_replica* replica, const char* credential,
                                      lindra_certificate_check** out, lindra_error* error) noexcept {
    return query(replica, out, error,
                 [&](const Replica& r) { return to_c(r.verify_credential(need(credential, "credential"))); });
}

bool lindra_replica_dismiss_refused(lindra_replica* replica, int64_t id, bool* found, lindra_error* error) noexcept {
    return try_catch(error, [&] {
        const bool was = need(replica, "replica").replica.dismiss_refused(id);
        if (found) *found = was;
    });
}

bool lindra_replica_dismiss_all_refused(lindra_replica* replica, int64_t* count, lindra_error* error) noexcept {
    return try_catch(error, [&] {
        const std::int64_t n = need(replica, "replica").replica.dismiss_all_refused();
        if (count) *count = n;
    });
}

bool lindra_replica_completion_report_csv(const lindra_replica* replica, const lindra_id* group,
                                          const lindra_id* organization, char** out, lindra_error* error) noexcept {
    return completion_report(replica, group, organization, out, error, completion_report_csv);
}

bool lindra_replica_completion_report_table(const lindra_replica* replica, const lindra_id* group,
                                            const lindra_id* organization, char** out, lindra_error* error) noexcept {
    return completion_report(replica, group, organization, out, error, completion_report_table);
}

// Each result is one block (capi.hpp): freeing its root frees it all.
void lindra_person_free(lindra_person* p) noexcept {
    std::free(p);
}
void lindra_group_free(lindra_group* p) noexcept {
    std::free(p);
}
void lindra_gathering_free(lindra_gathering* p) noexcept {
    std::free(p);
}
void lindra_string_free(char* text) noexcept {
    std::free(text);
}
void lindra_roster_free(lindra_roster* p) noexcept {
    std::free(p);
}
void lindra_module_list_free(lindra_module_list* p) noexcept {
    std::free(p);
}
void lindra_group_list_free(lindra_group_list* p) noexcept {
    std::free(p);
}
void lindra_gathering_list_free(lindra_gathering_list* p) noexcept {
    std::free(p);
}
void lindra_progress_list_free(lindra_progress_list* p) noexcept {
    std::free(p);
}
void lindra_id_list_free(lindra_id_list* p) noexcept {
    std::free(p);
}
void lindra_certificate_check_free(lindra_certificate_check* p) noexcept {
    std::free(p);
}
void lindra_refused_list_free(lindra_refused_list* p) noexcept {
    std::free(p);
}

}  // extern "C"
