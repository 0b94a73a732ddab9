// The replicated data model, declared once.
//
// One table (lib/src/model/schema.cpp) lists every entity with its fields,
// field types, allowed enum values, merge rules and scope. The SQLite DDL,
// validation, the generic write path and apply_remote are all driven by it.
// Apps may read it (e.g. to build generic admin screens); it is immutable.
//
// Tags are wire identifiers: they are never reused or renumbered. New
// entities and fields get new tags and a `since` schema version.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace lindra {

enum class FieldType : std::uint8_t {
    text,         // UTF-8, at most `max` code points, no NUL
    integer,      // int64 in [min, max]
    boolean,      // 0 or 1
    enumeration,  // one of `values`
    ref,          // the Id of a row of `ref_entity`
    timestamp,    // milliseconds since the Unix epoch
    date,         // "YYYY-MM-DD"
    progress,     // (attempt, status) lattice packed by progress_value();
                  // stored in two columns, `attempt` and `status`
};

enum class MergeRule : std::uint8_t {
    lww,        // highest (hlc, origin) wins
    progress,   // lattice max of (attempt, status rank)
    max,        // numeric max
    min,        // numeric min (earliest)
    counter,    // per-origin running totals, value = sum
    tombstone,  // deleted is final
    add_wins,   // lww; on equal hlc an add beats a withdraw
};

// Who receives a row (README, "Security model"). Coordinators read every
// scope of their organization except `personal`.
enum class ScopeKind : std::uint8_t {
    catalog,          // everyone reads it
    group,            // members of the group in `group_field`
    person,           // the person, and the members of the groups they are in
    person_in_group,  // the person in `person_field` and the mentors of `group_field`
    personal,         // as person_in_group, but never coordinators (reflections)
};

// Who may write a row, checked by the server for every pushed change.
enum class Writer : std::uint8_t {
    coordinator,   // a coordinator of the row's organization (courses, modules: any)
    group_mentor,  // a mentor of the row's group
    self,          // the person in `person_field`, while a member of the group
    server,        // the server only (certificates)
};

struct FieldDef {
    std::uint16_t tag;
    std::string_view name;
    FieldType type;
    MergeRule rule;
    bool key = false;  // part of the row's derived id; never changes
    // May be written as "no value". A non-nullable lww/add_wins field must be
    // given when a row is created; the other rules have a natural default
    // (0, not_started, not deleted) and never take "no value".
    bool nullable = true;
    bool indexed = false;                           // the domain table has an index on this column
    std::int64_t min = 0;                           // integer range; text: unused
    std::int64_t max = 0;                           // integer range; text: max length in code points
    std::span<const std::string_view> values = {};  // enumeration/progress values, in order
    std::string_view ref_entity = {};
    std::uint16_t since = 1;  // schema version that added the field
    bool self_writable = false;  // the person the row is may write it too (their display name)

    // The value's position in `values`, or -1.
    int value_index(std::string_view v) const noexcept;
};

struct EntityDef {
    std::uint16_t tag;
    std::string_view name;  // also the SQL table name
    ScopeKind scope;
    Writer writer;
    std::span<const FieldDef> fields;
    std::string_view label_field = {};   // the human name apps address rows by
    std::string_view group_field = {};   // the group that scopes the row (empty: the row is the group)
    std::string_view person_field = {};  // the person that scopes the row (empty: the row is the person)
    bool derived_id = false;             // id = Id::derive(name, key fields)
    std::uint16_t since = 1;

    const FieldDef* field(std::string_view name) const noexcept;
    const FieldDef* field(std::uint16_t tag) const noexcept;
    // Position of `f` in `fields`.
    std::size_t index_of(const FieldDef& f) const noexcept { return static_cast<std::size_t>(&f - fields.data()); }
};

// Every entity field list starts with this tombstone field.
inline constexpr std::string_view kDeletedField = "deleted";

// The schema version this build of lindra writes (PRAGMA user_version of the
// domain tables).
std::uint16_t schema_version() noexcept;
std::span<const EntityDef> entities() noexcept;
const EntityDef* find_entity(std::string_view name) noexcept;
const EntityDef* find_entity(std::uint16_t tag) noexcept;

}  // namespace lindra
