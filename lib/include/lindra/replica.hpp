// lindra::Replica — a device's local copy of the training data.
//
// A Replica is one SQLite file holding the domain tables (organization,
// person, course, ... see schema.hpp), each field's merge clock, and the
// outbox of local changes waiting for the server. Every write goes through
// the merge rules of DESIGN §3 and is one transaction together with its
// outbox entry: it happens completely or not at all.
//
// Thread-safety: a Replica is safe to use from any thread; calls are
// serialised by an internal mutex. Inside Replica::batch() use only the
// Writes& it hands you. Other processes may open the same file; SQLite's
// locking and lindra's per-transaction reload of its counters keep them
// consistent.
//
// Errors: every function throws lindra::Error (see error.hpp). Bad input
// names the field, and nothing is written.
#pragma once

#include <lindra/change.hpp>
#include <lindra/error.hpp>
#include <lindra/id.hpp>
#include <lindra/schema.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace lindra {

class Replica;
namespace detail {
class Core;
Core& core_of(Replica& replica) noexcept;  // for lindra's sync client
}  // namespace detail

// Typed enum values. Each enum's order is the order of its field's values in
// the schema table (tests/model_test.cpp checks it); to_string() gives the
// stored value.
enum class OrganizationKind { region, municipality, development_centre, care_unit };
enum class Profession { assistant, health_care_worker, nurse, other };
enum class ModuleKind { elearning, reflection, practice };
enum class GroupStatus { planned, active, completed, cancelled };
enum class MemberRole { mentor, candidate };
enum class MemberStatus { registered, active, withdrawn, completed };
enum class GatheringMode { in_person, digital };
enum class GatheringStatus { planned, held, cancelled };
enum class AttendanceStatus { present, absent, excused };
enum class ProgressStatus { not_started, in_progress, completed, passed };

std::string_view to_string(OrganizationKind v);
std::string_view to_string(Profession v);
std::string_view to_string(ModuleKind v);
std::string_view to_string(GroupStatus v);
std::string_view to_string(MemberRole v);
std::string_view to_string(MemberStatus v);
std::string_view to_string(GatheringMode v);
std::string_view to_string(GatheringStatus v);
std::string_view to_string(AttendanceStatus v);
std::string_view to_string(ProgressStatus v);

// Parses a stored value ("present", "in_progress", ...); nullopt if unknown.
template <class E>
std::optional<E> parse_enum(std::string_view text);
// The same, for text from a user: an unknown value throws
// Error(Errc::bad_enum_value) naming the field and the allowed values.
template <class E>
E to_enum(std::string_view text);

// Milliseconds since the Unix epoch.
using Timestamp = std::int64_t;

// ---- inputs -------------------------------------------------------------

// A field by name and its value: what create() and update() take, and what
// a RefusedWrite held (its names point into the static schema table).
struct FieldValue {
    std::string_view field{};
    Value value{};
};

struct NewModule {
    Id course{};
    int ordinal = 1;
    std::string title{};
    ModuleKind kind = ModuleKind::elearning;
    bool required = true;
    std::optional<int> pass_score{};  // 0..100; a completion at or above it is "passed"
};

struct NewGroup {
    Id course{};
    Id organization{};
    std::string name{};
    std::string starts_on{};  // YYYY-MM-DD, may be empty
    std::string ends_on{};
    GroupStatus status = GroupStatus::active;
};

struct NewGathering {
    Id group{};
    int ordinal = 1;
    std::string title{};
    std::optional<Timestamp> scheduled_at{};
    GatheringMode mode = GatheringMode::in_person;
    std::optional<Id> module{};  // the module the gathering discusses
};

// ---- query results ------------------------------------------------------

struct Person {
    Id id{};
    std::string display_name{};
    std::optional<Profession> profession{};
    std::optional<Id> organization{};
};

struct Module {
    Id id{};
    Id course{};
    int ordinal = 0;
    std::string title{};
    std::optional<ModuleKind> kind{};
    bool required = false;
    std::optional<int> pass_score{};
};

struct Group {
    Id id{};
    Id course{};
    Id organization{};
    std::string name{};
    std::string starts_on{};
    std::string ends_on{};
    std::optional<GroupStatus> status{};
};

struct Gathering {
    Id id{};
    Id group{};
    int ordinal = 0;
    std::string title{};
    std::optional<Timestamp> scheduled_at{};
    std::optional<GatheringMode> mode{};
    GatheringStatus status = GatheringStatus::planned;
    std::optional<Id> module{};
};

struct RosterEntry {
    Id person{};
    std::string display_name{};  // empty if this device does not hold it: see member_name
    MemberRole role = MemberRole::candidate;
    MemberStatus status = MemberStatus::registered;
    int modules_completed = 0;  // required modules completed or passed, in this group
    int modules_required = 0;
    int gatherings_attended = 0;  // held gatherings of the group marked present
    int gatherings_held = 0;
    bool confirmed = false;  // has a mentor confirmation
};

struct Roster {
    Group group{};
    std::string course_title{};
    int required_gatherings = 0;
    std::vector<RosterEntry> members{};  // mentors first, then by name
};

// A member as people read them: their name, or, where this device does not
// hold it, why. A withdrawn member's name goes from the tablets of the
// group's other candidates and mentors with the purge (README, "Who sees
// what"): "a withdrawn member"; anyone else's has not arrived yet. Never a
// bare id. The view is of `display_name` or of a constant: keep the
// string it was given alive as long as the view.
std::string_view member_name(std::string_view display_name, MemberStatus status);

struct ModuleProgress {
    Id person{};
    Id group{};
    Id module{};
    int ordinal = 0;
    std::string module_title{};
    bool required = false;
    std::int64_t attempt = 0;
    ProgressStatus status = ProgressStatus::not_started;
    std::optional<int> best_score{};
    std::int64_t time_spent_s = 0;
    std::optional<Timestamp> first_completed_at{};
};

// Local changes of one write, waiting for the server.
struct OutboxEntry {
    std::int64_t seq = 0;
    std::vector<Change> changes{};
};

// A write of this device that the server refused, or that was discarded
// with a row this user may no longer see: the row has been rolled back, and
// what the user wrote is kept here, on this device only, until the app
// dismisses it (Replica::dismiss_refused). The app can show it, let the
// user copy it, or make it again as a new write where that is allowed.
struct RefusedWrite {
    std::int64_t id = 0;   // for dismiss_refused(); never reused
    std::int64_t seq = 0;  // its outbox seq, as in SyncRejection::seq
    std::string entity{};
    Id row{};
    // The fields this write set and their values, as it set them (field
    // names are the schema's). A counter holds this device's running total
    // after the write, a progress field its packed value (progress_value()).
    std::vector<FieldValue> values{};
    std::string code{};        // "permission_denied" or "invalid_argument"
    std::string reason{};      // which rule refused it
    Timestamp written_at = 0;  // when it was written (its hybrid-logical time, in ms)
    Timestamp refused_at = 0;  // when this device heard of the refusal (its own clock)
};

// ---- writes -------------------------------------------------------------

// The write API, shared by Replica (each call is its own transaction) and
// the Writes& of Replica::batch() (all calls share one transaction).
class Writes {
  public:
    // Generic writes by entity and field name, validated against the schema
    // table. create() returns the new row's id: random, or derived from the
    // key fields for entities with derived ids (membership, attendance, ...).
    Id create(std::string_view entity, const std::vector<FieldValue>& fields);
    void update(std::string_view entity, const Id& row, const std::vector<FieldValue>& fields);
    // Adds `delta` (>= 0) to a counter field.
    void add(std::string_view entity, const Id& row, std::string_view field, std::int64_t delta);
    // Deletes the row for good (tombstone): it disappears from queries
    // everywhere. Rows identified by other rows (membership, attendance,
    // module_progress, ...) cannot be deleted: withdraw or change status.
    void remove(std::string_view entity, const Id& row);

    // Catalog and registration (coordinators).
    Id register_organization(const std::string& name, OrganizationKind kind, std::optional<Id> parent = {});
    Id register_person(const std::string& display_name, Profession profession, std::optional<Id> organization = {});
    Id register_course(const std::string& title, const std::string& version, const std::string& language,
                       int required_gatherings);
    Id register_module(const NewModule& module);
    Id create_group(const NewGroup& group);
    // Returns the membership id (derived from group and person).
    Id add_member(const Id& group, const Id& person, MemberRole role);
    void withdraw_member(const Id& group, const Id& person);

    // Module progress (the candidate). Progress never goes backwards: the
    // lattice keeps the highest (attempt, status) any device wrote.
    void start_module(const Id& person, const Id& module, const Id& group);
    // Completed, or passed when the module has a pass score and `score`
    // reaches it. Records the score, the first completion time and, in the
    // same write, `seconds_spent` more time on the module.
    void complete_module(const Id& person, const Id& module, const Id& group, std::optional<int> score = {},
                         std::int64_t seconds_spent = 0);
    void record_score(const Id& person, const Id& module, const Id& group, int score);
    void add_time_spent(const Id& person, const Id& module, const Id& group, std::int64_t seconds);
    // A new attempt, not started: the person's own decision, like all their
    // module progress (the server refuses anyone else's, a coordinator's
    // included). A certificate already issued stays.
    void reset_module(const Id& person, const Id& module, const Id& group);

    // Gatherings and attendance (the mentor).
    Id plan_gathering(const NewGathering& gathering);
    void hold_gathering(const Id& gathering);
    void cancel_gathering(const Id& gathering);
    void record_attendance(const Id& gathering, const Id& person, AttendanceStatus status,
                           const std::string& note = {});
    void confirm_candidate(const Id& group, const Id& person, const Id& mentor, const std::string& statement = {});

    // Reflections (the candidate); returns the reflection's id.
    Id write_reflection(const Id& person, const Id& group, std::optional<Id> module, const std::string& text);

    // Revokes a course certificate, saying why (a coordinator of the
    // organization the certificate's group belongs to; the server refuses
    // anyone else). The server marks the certificate revoked and sets its
    // bit in the signed revocation list every tablet pulls. Final: the
    // certificate stays, revoked; a later call changes only the reason.
    // Errc::not_found if the device holds no such certificate,
    // invalid_argument if `reason` is blank.
    void revoke_certificate(const Id& certificate, const std::string& reason);

  protected:
    Writes(detail::Core* core, bool own_transaction) noexcept : core_(core), own_transaction_(own_transaction) {}
    ~Writes() = default;
    Writes(const Writes&) = default;
    Writes& operator=(const Writes&) = default;
    detail::Core* core_;

  private:
    template <class F>
    auto run(F&& f);
    bool own_transaction_;
};

struct ReplicaOptions {
    // Wall clock for the hybrid logical clock; tests inject a virtual one.
    std::function<Timestamp()> wall_clock_ms{};
    int busy_timeout_ms = 5000;
};

// What a tablet makes of a course certificate with no network
// (Replica::verify_certificate; README, "Course completion and
// certificates").
enum class CertificateStatus {
    valid,          // signed by a key of the server's, for this row, in force
    revoked,        // valid, but the server has revoked it
    bad_signature,  // the credential or the row was changed, or is not a credential at all
    unknown_key,    // signed by a key this tablet has not received
    not_yet_valid,  // its validFrom lies ahead of this tablet's clock
};
std::string_view to_string(CertificateStatus v);

// Where a candidate's course certificate stands, on this device.
enum class CertificateState {
    issued,   // the server issued it
    revoked,  // the server issued it, and it has been revoked since
    missing,  // none on this device: the rule is not met, or the server has not issued it yet
};
std::string_view to_string(CertificateState v);

// One candidate of one group in the coordinator's completion report
// (Replica::completion_report): how far they are by the certificate's rule
// (README, "Course completion and certificates") and their certificate.
struct CompletionReportRow {
    Id group{};
    std::string group_name{};
    std::string organization_name{};  // the group's organization
    std::string course_title{};
    Id person{};
    std::string display_name{};  // empty if this device does not hold it: see member_name
    MemberStatus status = MemberStatus::registered;
    int modules_passed = 0;  // required modules passed (at or above the pass score where there is one)
    int modules_required = 0;
    int gatherings_attended = 0;  // held gatherings of the group attended (present)
    int gatherings_held = 0;
    int gatherings_required = 0;  // the course's required_gatherings
    bool confirmed = false;       // a mentor has confirmed the participation
    std::optional<Id> confirmed_by{};
    std::string confirmed_by_name{};  // the mentor's display name, if this device holds it
    std::optional<Timestamp> confirmed_at{};
    bool met = false;  // the rule is met by what this device holds
    CertificateState certificate = CertificateState::missing;
    std::string serial{};  // issued or revoked: the certificate's serial
    std::optional<Timestamp> issued_at{};
    std::optional<Timestamp> revoked_at{};
    std::string revocation_reason{};
    // A missing certificate: what keeps the rule from being met, one item
    // each ("module 2 \"M2: Pain and symptoms\" not passed", ...). Empty when
    // the rule is met (the server issues once it has these records) and
    // for an issued or revoked certificate.
    std::vector<std::string> lacking{};
};

struct CompletionReport {
    std::string scope{};  // the group's or the organization's name
    // Candidates, by organization name, group name, then display name.
    // Mentors are not listed: they are not candidates for the certificate.
    std::vector<CompletionReportRow> rows{};
};

struct CertificateCheck {
    CertificateStatus status = CertificateStatus::bad_signature;
    std::string reason{};  // the status in words, with what was wrong
    // What the signed credential says (empty unless its signature verified).
    std::string serial{}, person_name{}, course_title{}, issuer{}, kid{};
    std::string credential{};  // the compact JWS as the device holds it, for verifying elsewhere
    std::int64_t valid_from_ms = 0;
    // How long ago the server signed this tablet's revocation list; nothing
    // if the tablet has none yet, or none whose signature holds (it cannot
    // know of a revocation).
    std::optional<std::int64_t> revocation_list_age_ms{};
    // That list, a W3C BitstringStatusListCredential as a compact JWS, for
    // checking the revocation elsewhere (empty if none).
    std::string revocation_list{};
};

// What Replica::import_registrations did.
struct RegistrationImport {
    int lines = 0;                  // registration lines read (not the header, not blank lines)
    int people_created = 0;         // people registered by this import
    int people_existing = 0;        // people already registered (same display name, same organization)
    int memberships_added = 0;      // people added to a group
    int memberships_unchanged = 0;  // already members of the group with that role: nothing written
    // Listed, but withdrawn from the group since: left withdrawn, nothing
    // written (add them again one by one, Writes::add_member). Their lines.
    std::vector<int> withdrawn_lines{};
};

class Replica : public Writes {
  public:
    // Opens (creating if needed) the replica at `path`, runs forward
    // migrations, and creates and persists a device id on first open.
    // A file that is not a replica (another program's SQLite database, a
    // text file) is refused with Errc::not_a_replica and left as it was.
    explicit Replica(const std::string& path, ReplicaOptions options = {});
    ~Replica();
    Replica(Replica&&) noexcept;
    Replica& operator=(Replica&&) noexcept;

    const Id& device_id() const noexcept;
    const std::string& path() const noexcept;

    // Runs `fn` in one transaction: all its writes land together or, if it
    // throws, none does (the exception propagates). A write that fails on
    // bad input changes nothing and the batch may go on; a write that fails
    // half way (a full disk) rolls back the whole batch, even if `fn` caught
    // the error. Use the Writes& on the calling thread, inside `fn` only.
    void batch(const std::function<void(Writes&)>& fn);

    // ---- queries (deleted rows are never returned) ----
    // How many rows of `entity` this device holds.
    std::int64_t count(std::string_view entity) const;
    std::optional<Person> person(const Id& id) const;
    std::vector<Module> modules(const Id& course) const;
    std::optional<Group> group(const Id& id) const;
    std::vector<Group> groups() const;
    // Groups where `person` is a member who has not withdrawn.
    std::vector<Group> groups_of(const Id& person) const;
    std::optional<Gathering> gathering(const Id& id) const;
    std::vector<Gathering> gatherings(const Id& group) const;
    Roster roster(const Id& group) const;
    std::vector<ModuleProgress> progress_of(const Id& person) const;
    // A row of `entity` by its id in text form or its human name (the
    // entity's label field): an exact case-insensitive match, else a unique
    // match of the name's first words ("mia" finds "Mia Mentor", "m1" finds
    // "M1: Basics" but not "M10: ..."), else a unique match of later whole
    // words ("nordmann" finds "Ola Nordmann"). nullopt if none;
    // Errc::ambiguous if several match at the first level that has any.
    std::optional<Id> find(std::string_view entity, std::string_view name) const;

    // ---- the coordinator's registration list ----
    // Registers the people of a registration list ("påmeldingsliste") and
    // adds them to their groups, in one batch: every line is written, or,
    // if one is wrong, nothing at all. `csv` is the file's text:
    //
    //     group,display_name,role,profession,organization
    //     Fjellvik group 1,Mia Haugen,mentor,nurse,Fjellvik kommune
    //     Fjellvik group 1,"Nordmann, Ola",candidate,health_care_worker,Fjellvik kommune
    //
    // - A header line names the columns, in any order (case, spaces and
    //   hyphens do not matter: "Display name" is display_name); a missing,
    //   unknown or repeated column is refused, naming it. Columns without
    //   a name (a spreadsheet's empty ones) are ignored.
    // - The CSV dialect (RFC 4180): UTF-8 with or without a byte order
    //   mark; CRLF or LF; fields holding a comma, a quote or a line break
    //   in double quotes, a quote in them doubled (""); spaces around a
    //   field dropped; blank lines (and lines of empty fields) skipped; a
    //   semicolon instead of the comma when the header has semicolons and
    //   no comma. Every value is required.
    // - group and organization: a group and an organization on this
    //   device, by their whole name (any case) or id. The import never
    //   creates either.
    // - role: mentor or candidate; profession: assistant,
    //   health_care_worker, nurse or other (any case; "Health care worker"
    //   is health_care_worker).
    // - A person is the same person as one already registered when the
    //   display name (any case) and the organization are the same; they
    //   are not registered again and keep their profession. Two people of
    //   that name there is an error: the line cannot say which one.
    // - A member already in the group with that role is left as is, one
    //   withdrawn since is left withdrawn (withdrawn_lines); one with the
    //   other role is an error (change a role with Writes::add_member).
    // So importing the same file again writes nothing.
    //
    // Errors: lindra::Error whose message starts "line N, COLUMN:" and
    // says what is allowed, with field() the column: invalid_argument
    // (the CSV, a missing value, the header), bad_enum_value (role,
    // profession), not_found (no such group or organization), ambiguous
    // (the name fits several). Nothing is written. Not inside batch().
    RegistrationImport import_registrations(std::string_view csv);

    // ---- certificates ----
    // The certificates this device holds for `person`, oldest first.
    std::vector<Id> certificates_of(const Id& person) const;
    // Checks the certificate's signed credential against the server's keys
    // this device holds, with no network: the signature, that it is this
    // row's (its person, course and group), its validFrom, and revocation.
    // Errc::not_found if the device holds no such certificate.
    CertificateCheck verify_certificate(const Id& certificate) const;
    // The same checks for a credential given as a compact JWS (one a
    // candidate shows, say, from another device): its signature, validFrom
    // and revocation, against what this device holds. A credential that is
    // not one verifies as bad_signature; nothing throws for its content.
    CertificateCheck verify_credential(std::string_view credential) const;
    // The coordinator's completion report for `group`: every candidate
    // (withdrawn ones too) with modules passed of required, gatherings
    // attended of held, the mentor's confirmation, and the certificate:
    // issued, revoked or missing, and for a missing one what is lacking.
    // Judged by the server's own rule (model/completion.hpp) over what this
    // device holds, so it is as current as its last sync. Render it with
    // lindra/report.hpp. Errc::not_found if the group is not on this device.
    CompletionReport completion_report(const Id& group) const;
    // The same for every group of `organization` and of the organizations
    // under it (by parent), as far as this device holds them. Errc::not_found
    // if the organization is not on this device. Other calls on this replica
    // wait while it reads: 2,700 candidates in 300 groups (20 modules, 10
    // gatherings) take about 1.5 s on a 2-core machine.
    CompletionReport completion_report_for_organization(const Id& organization) const;
    // The server's certificate keys this device holds, as a JWK Set
    // (RFC 7517): what any JOSE library verifies a credential with.
    std::string issuer_jwks() const;

    // ---- refused writes (see RefusedWrite) ----
    // Every refused write kept on this device, oldest first.
    std::vector<RefusedWrite> refused_writes() const;
    // Forgets the refused write `id` for good; false if none has that id.
    bool dismiss_refused(std::int64_t id);
    // Forgets every refused write; returns how many there were.
    std::int64_t dismiss_all_refused();

    // ---- sync plumbing (used by the sync client; public for tests) ----
    std::int64_t outbox_size() const;
    // The oldest `max_entries` outbox entries, in seq order.
    std::vector<OutboxEntry> outbox(std::size_t max_entries) const;
    // The server has applied everything up to `seq` (a seq this replica
    // issued): drop those entries.
    void acknowledge(std::int64_t seq);
    // Merges changes from other replicas, all or nothing.
    void apply_remote(std::span<const Change> changes);
    // The last hybrid logical time this replica issued or saw; a sync brings
    // it back to the server's time if the device's clock ran ahead.
    std::uint64_t hlc() const;

  private:
    friend detail::Core& detail::core_of(Replica& replica) noexcept;
    std::unique_ptr<detail::Core> owned_;
};

}  // namespace lindra
