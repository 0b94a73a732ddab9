// THE schema table: every replicated entity of lindra, declared once.
//
// Tags are wire identifiers. Never renumber or reuse one; add new entities and
// fields at the end with `since` set to the new schema version and a
// migration step is derived from it (model/ddl.cpp).
#include <lindra/schema.hpp>

#include <algorithm>

namespace lindra {
namespace {

using T = FieldType;
using R = MergeRule;

// Limits, documented in the README ("Data model").
constexpr std::int64_t kNameMax = 200;   // names and titles, code points
constexpr std::int64_t kNoteMax = 2000;  // attendance notes, confirmation statements
constexpr std::int64_t kReflectionMax = 4000;
constexpr std::int64_t kTimestampMax = std::int64_t{1} << 47;  // ms, year 6429
constexpr std::int64_t kSecondsMax = 1'000'000'000;
constexpr std::int64_t kCredentialMax = 64 * 1024;  // a signed credential, ASCII
constexpr std::int64_t kStatusListBits = 1 << 20;  // 128 KiB of bits, a few hundred bytes compressed

// Field builders keep the table below one line per field.
constexpr FieldDef deleted() {
    return {1, kDeletedField, T::boolean, R::tombstone, false, false, false, 0, 1};
}
constexpr FieldDef text(std::uint16_t tag, std::string_view name, std::int64_t max) {
    return {tag, name, T::text, R::lww, false, true, false, 0, max};
}
constexpr FieldDef integer(std::uint16_t tag, std::string_view name, std::int64_t min, std::int64_t max,
                           R rule = R::lww) {
    return {tag, name, T::integer, rule, false, true, false, min, max};
}
constexpr FieldDef boolean(std::uint16_t tag, std::string_view name) {
    return {tag, name, T::boolean, R::lww, false, true, false, 0, 1};
}
constexpr FieldDef timestamp(std::uint16_t tag, std::string_view name, R rule = R::lww) {
    return {tag, name, T::timestamp, rule, false, true, false, 0, kTimestampMax};
}
constexpr FieldDef date(std::uint16_t tag, std::string_view name) {
    return {tag, name, T::date, R::lww, false, true, false};
}
constexpr FieldDef enumeration(std::uint16_t tag, std::string_view name, std::span<const std::string_view> values,
                               R rule = R::lww) {
    return {tag, name, T::enumeration, rule, false, true, false, 0, 0, values};
}
constexpr FieldDef ref(std::uint16_t tag, std::string_view name, std::string_view entity) {
    return {tag, name, T::ref, R::lww, false, true, false, 0, 0, {}, entity};
}
constexpr FieldDef required(FieldDef f) {
    f.nullable = false;
    return f;
}
constexpr FieldDef indexed(FieldDef f) {
    f.indexed = true;
    return f;
}
constexpr FieldDef self_writable(FieldDef f) {
    f.self_writable = true;
    return f;
}
// Part of the derived row id: required and never changed.
constexpr FieldDef key(FieldDef f) {
    f.key = true;
    f.nullable = false;
    return f;
}

constexpr std::string_view kOrganizationKinds[] = {"region", "municipality", "development_centre", "care_unit"};
constexpr std::string_view kProfessions[] = {"assistant", "health_care_worker", "nurse", "other"};
constexpr std::string_view kModuleKinds[] = {"elearning", "reflection", "practice"};
constexpr std::string_view kGroupStatuses[] = {"planned", "active", "completed", "cancelled"};
constexpr std::string_view kMemberRoles[] = {"mentor", "candidate"};
// add_wins treats every value but "withdrawn" as an add.
constexpr std::string_view kMemberStatuses[] = {"registered", "active", "withdrawn", "completed"};
constexpr std::string_view kGatheringModes[] = {"in_person", "digital"};
constexpr std::string_view kGatheringStatuses[] = {"planned", "held", "cancelled"};
constexpr std::string_view kAttendanceStatuses[] = {"present", "absent", "excused"};
// Lattice order: a later value never gives way to an earlier one.
constexpr std::string_view kProgressStatuses[] = {"not_started", "in_progress", "completed", "passed"};

constexpr FieldDef kOrganization[] = {
    deleted(),
    required(text(2, "name", kNameMax)),
    enumeration(3, "kind", kOrganizationKinds),
    ref(4, "parent_id", "organization"),
};
constexpr FieldDef kPerson[] = {
    deleted(),
    self_writable(required(text(2, "display_name", kNameMax))),
    enumeration(3, "profession", kProfessions),
    ref(4, "organization_id", "organization"),
};
constexpr FieldDef kCourse[] = {
    deleted(),
    required(text(2, "title", kNameMax)),
    text(3, "version", 32),
    text(4, "language", 35),  // BCP 47 tag
    integer(5, "required_gatherings", 0, 100),
};
constexpr FieldDef kModule[] = {
    deleted(),
    indexed(required(ref(2, "course_id", "course"))),
    required(integer(3, "ordinal", 1, 1000)),
    required(text(4, "title", kNameMax)),
    enumeration(5, "kind", kModuleKinds),
    boolean(6, "required"),
    integer(7, "pass_score", 0, 100),
};
constexpr FieldDef kMentorGroup[] = {
    deleted(),
    required(ref(2, "course_id", "course")),
    required(ref(3, "organization_id", "organization")),
    required(text(4, "name", kNameMax)),
    date(5, "starts_on"),
    date(6, "ends_on"),
    enumeration(7, "status", kGroupStatuses),
};
constexpr FieldDef kMembership[] = {
    deleted(),
    indexed(key(ref(2, "group_id", "mentor_group"))),
    indexed(key(ref(3, "person_id", "person"))),
    required(enumeration(4, "role", kMemberRoles)),
    required(enumeration(5, "status", kMemberStatuses, R::add_wins)),
};
constexpr FieldDef kGathering[] = {
    deleted(),
    indexed(required(ref(2, "group_id", "mentor_group"))),
    required(integer(3, "ordinal", 1, 1000)),
    required(text(4, "title", kNameMax)),
    timestamp(5, "scheduled_at"),
    enumeration(6, "mode", kGatheringModes),
    required(enumeration(7, "status", kGatheringStatuses)),
    ref(8, "module_id", "module"),
};
constexpr FieldDef kAttendance[] = {
    deleted(),
    indexed(key(ref(2, "gathering_id", "gathering"))),
    key(ref(3, "person_id", "person")),
    required(ref(4, "group_id", "mentor_group")),  // the gathering's group, for scoping
    required(enumeration(5, "status", kAttendanceStatuses)),
    text(6, "note", kNoteMax),
};
constexpr FieldDef kModuleProgress[] = {
    deleted(),
    indexed(key(ref(2, "person_id", "person"))),
    key(ref(3, "module_id", "module")),
    key(ref(4, "group_id", "mentor_group")),
    {5, "progress", T::progress, R::progress, false, false, false, 0, 0xFFFF, kProgressStatuses},
    integer(6, "best_score", 0, 100, R::max),
    integer(7, "time_spent_s", 0, kSecondsMax, R::counter),
    timestamp(8, "first_completed_at", R::min),
};
constexpr FieldDef kReflection[] = {
    deleted(),
    indexed(required(ref(2, "person_id", "person"))),
    required(ref(3, "group_id", "mentor_group")),
    ref(4, "module_id", "module"),
    ref(5, "gathering_id", "gathering"),
    required(text(6, "text", kReflectionMax)),
};
constexpr FieldDef kMentorConfirmation[] = {
    deleted(),
    key(ref(2, "group_id", "mentor_group")),
    key(ref(3, "person_id", "person")),
    required(ref(4, "mentor_id", "person")),
    required(timestamp(5, "confirmed_at")),
    text(6, "statement", kNoteMax),
};
constexpr FieldDef since(std::uint16_t version, FieldDef f) {
    f.since = version;
    return f;
}
constexpr FieldDef kCertificate[] = {
    deleted(),
    key(ref(2, "person_id", "person")),
    key(ref(3, "course_id", "course")),
    key(ref(4, "group_id", "mentor_group")),
    required(timestamp(5, "issued_at")),
    required(text(6, "serial", 64)),
    text(7, "signature", 1024),  // unused: the signature is the credential's
    // The Open Badges 3.0 credential as a compact JWS (README, "Course
    // completion and certificates").
    since(2, text(8, "credential", kCredentialMax)),
    since(2, integer(9, "status_index", 0, kStatusListBits - 1)),  // its bit in the revocation list
    since(2, timestamp(10, "revoked_at")),
    since(2, text(11, "revocation_reason", kNoteMax)),
};
// The server's public keys for certificates, by kid (the row's id).
constexpr FieldDef kIssuerKey[] = {
    deleted(),
    since(2, required(text(2, "kid", 64))),  // its JWK thumbprint (RFC 7638)
    since(2, required(text(3, "public_jwk", 1000))),  // an Ed25519 JWK (RFC 8037)
    since(2, required(timestamp(4, "added_at"))),
};
// The signed revocation list (W3C Bitstring Status List), one per server.
constexpr FieldDef kStatusList[] = {
    deleted(),
    since(2, text(2, "credential", kCredentialMax)),
    since(2, timestamp(3, "issued_at")),
    since(2, integer(4, "allocated", 0, kStatusListBits)),  // the bits certificates hold so far
};

// A coordinator's revocation of a certificate, with the reason; the server
// then marks the certificate revoked and flips its bit in the status list.
// One per certificate, never deleted: a revocation is final.
constexpr FieldDef kRevocation[] = {
    deleted(),
    since(3, key(ref(2, "certificate_id", "certificate"))),
    since(3, required(ref(3, "group_id", "mentor_group"))),  // the certificate's, for scoping
    since(3, required(ref(4, "person_id", "person"))),
    since(3, required(text(5, "reason", kNoteMax))),
};

using S = ScopeKind;
using W = Writer;
// tag, name, scope, writer, fields, label, group field, person field, derived id
constexpr EntityDef kEntities[] = {
    {1, "organization", S::catalog, W::coordinator, kOrganization, "name"},
    {2, "person", S::person, W::coordinator, kPerson, "display_name"},
    {3, "course", S::catalog, W::coordinator, kCourse, "title"},
    {4, "module", S::catalog, W::coordinator, kModule, "title"},
    {5, "mentor_group", S::group, W::coordinator, kMentorGroup, "name"},
    {6, "membership", S::group, W::coordinator, kMembership, {}, "group_id", "person_id", true},
    {7, "gathering", S::group, W::group_mentor, kGathering, "title", "group_id"},
    {8, "attendance", S::group, W::group_mentor, kAttendance, {}, "group_id", "person_id", true},
    {9, "module_progress", S::person_in_group, W::self, kModuleProgress, {}, "group_id", "person_id", true},
    {10, "reflection", S::personal, W::self, kReflection, {}, "group_id", "person_id"},
    {11, "mentor_confirmation", S::group, W::group_mentor, kMentorConfirmation, {}, "group_id", "person_id", true},
    {12, "certificate", S::person_in_group, W::server, kCertificate, {}, "group_id", "person_id", true},
    {13, "issuer_key", S::catalog, W::server, kIssuerKey, {}, {}, {}, false, 2},
    {14, "status_list", S::catalog, W::server, kStatusList, {}, {}, {}, false, 2},
    {15, "revocation", S::person_in_group, W::coordinator, kRevocation, {}, "group_id", "person_id", true, 3},
};

}  // namespace

int FieldDef::value_index(std::string_view v) const noexcept {
    const auto it = std::find(values.begin(), values.end(), v);
    return it == values.end() ? -1 : static_cast<int>(it - values.begin());
}

const FieldDef* EntityDef::field(std::string_view n) const noexcept {
    for (const auto& f : fields)
        if (f.name == n) return &f;
    return nullptr;
}

const FieldDef* EntityDef::field(std::uint16_t t) const noexcept {
    for (const auto& f : fields)
        if (f.tag == t) return &f;
    return nullptr;
}

std::uint16_t schema_version() noexcept {
    return 3;
}

std::span<const EntityDef> entities() noexcept {
    return kEntities;
}

const EntityDef* find_entity(std::string_view name) noexcept {
    for (const auto& e : kEntities)
        if (e.name == name) return &e;
    return nullptr;
}

const EntityDef* find_entity(std::uint16_t tag) noexcept {
    for (const auto& e : kEntities)
        if (e.tag == tag) return &e;
    return nullptr;
}

}  // namespace lindra
