/* lindra.h — the C API of lindra, for tablet apps in Swift, Kotlin or C.
 *
 * A thin layer over the C++ API (lindra/replica.hpp, lindra/sync.hpp,
 * lindra/log.hpp); read those for what each operation means. Link
 * liblindra.so (CMake: lindra::c), which exports these functions only.
 *
 * Conventions
 * - Handles (lindra_replica, lindra_sync_client) are opaque.
 * - A function that can fail takes a `lindra_error*` last and returns bool
 *   (true: done) or a pointer (NULL: failed). On failure the error holds a
 *   code and a message; on success its code is LINDRA_OK. Passing NULL for
 *   the error is allowed. A failed call changed nothing.
 * - Every pointer a function returns or stores through an out-parameter is
 *   the caller's, freed with the lindra_*_free named beside it (free(NULL)
 *   is a no-op). Strings inside a returned struct live as long as it does.
 *   Pointers handed to callbacks are valid during the call only.
 *   lindra_*_name() return static strings, never freed.
 * - Strings are UTF-8 and NUL-terminated; NULL stands for "" where a text
 *   is optional. Ids are 16 bytes; the nil id (all zero) stands for "none"
 *   where an id is optional.
 * - No function throws or aborts on bad input; none keeps a pointer the
 *   caller passed in after it returns, except the callback context.
 * - The structs have no version field yet: build an app against the
 *   lindra.h of the liblindra.so it ships. Until lindra 1.0, fields are
 *   appended to result structs (lindra_sync_result gained writes_pushed,
 *   then purged); lindra_sign_out_result holds a lindra_sync_result, so
 *   its own fields move with each one.
 *
 * Thread-safety (each function says where it differs)
 * - A lindra_replica may be used from any thread; calls are serialised.
 *   Inside lindra_replica_batch(), the callback's writes go into the batch
 *   on the callback's thread; other threads wait for the batch to end.
 * - A lindra_sync_client may be used from any thread; one round runs at a
 *   time. Its callbacks run on the client's sync thread, except the first
 *   status of a round (connecting), which comes on the thread starting it.
 * - lindra_*_free: once, when no other thread uses the object.
 */
#ifndef LINDRA_H
#define LINDRA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LINDRA_API __attribute__((visibility("default")))
/* In C++ the enums are int-sized with every int a valid value, so a value
 * from C that is out of range is an error lindra reports, not undefined
 * behaviour. */
#ifdef __cplusplus
#define LINDRA_NOEXCEPT noexcept
#define LINDRA_ENUM : int
extern "C" {
#else
#define LINDRA_NOEXCEPT
#define LINDRA_ENUM
#endif

/* ---- errors ------------------------------------------------------------ */

typedef enum lindra_errc LINDRA_ENUM {
    LINDRA_OK = 0,
    /* Bad input; nothing was written. */
    LINDRA_ERR_INVALID_ARGUMENT = 1,
    LINDRA_ERR_UNKNOWN_ENTITY = 2,
    LINDRA_ERR_UNKNOWN_FIELD = 3,
    LINDRA_ERR_WRONG_TYPE = 4,
    LINDRA_ERR_BAD_ENUM_VALUE = 5,
    LINDRA_ERR_OUT_OF_RANGE = 6,
    LINDRA_ERR_TOO_LONG = 7,
    LINDRA_ERR_NOT_FOUND = 8,
    LINDRA_ERR_AMBIGUOUS = 9,
    /* Storage: retrying later may help, other input will not. */
    LINDRA_ERR_STORAGE = 100,
    LINDRA_ERR_BUSY = 101,
    LINDRA_ERR_CORRUPT = 102,
    LINDRA_ERR_SCHEMA_TOO_NEW = 103,
    LINDRA_ERR_READ_ONLY = 104,
    /* The file is another program's database or no database at all; it was
     * left as it was. Another path helps, retrying does not. */
    LINDRA_ERR_NOT_A_REPLICA = 105,
    /* The database server cannot be reached (a server's PostgreSQL). */
    LINDRA_ERR_UNAVAILABLE = 106,
    /* The batch callback returned false: the batch was rolled back. */
    LINDRA_ERR_ABORTED = 200,
    LINDRA_ERR_OUT_OF_MEMORY = 900,
    LINDRA_ERR_INTERNAL = 999
} lindra_errc;

typedef struct lindra_error {
    lindra_errc code;
    int sqlite_code;   /* SQLite's extended result code, 0 if not from SQLite */
    char field[64];    /* "entity.field" the error is about, or "" */
    char message[512]; /* for people; cut short if longer */
} lindra_error;

/* ---- ids --------------------------------------------------------------- */

typedef struct lindra_id {
    uint8_t bytes[16];
} lindra_id;

/* Parses the 36-character UUID form. */
LINDRA_API bool lindra_id_parse(const char* text, lindra_id* out, lindra_error* error) LINDRA_NOEXCEPT;
/* Writes the UUID form and a NUL into `out` (37 bytes). Any thread. */
LINDRA_API void lindra_id_format(const lindra_id* id, char out[37]) LINDRA_NOEXCEPT;
LINDRA_API bool lindra_id_is_nil(const lindra_id* id) LINDRA_NOEXCEPT;

/* ---- enums (the order of lindra/replica.hpp's) ---------------------------
 * Results use *_NONE where the row has no value. */

typedef enum lindra_organization_kind LINDRA_ENUM {
    LINDRA_ORGANIZATION_REGION,
    LINDRA_ORGANIZATION_MUNICIPALITY,
    LINDRA_ORGANIZATION_DEVELOPMENT_CENTRE,
    LINDRA_ORGANIZATION_CARE_UNIT
} lindra_organization_kind;
typedef enum lindra_profession LINDRA_ENUM {
    LINDRA_PROFESSION_NONE = -1,
    LINDRA_PROFESSION_ASSISTANT,
    LINDRA_PROFESSION_HEALTH_CARE_WORKER,
    LINDRA_PROFESSION_NURSE,
    LINDRA_PROFESSION_OTHER
} lindra_profession;
typedef enum lindra_module_kind LINDRA_ENUM {
    LINDRA_MODULE_KIND_NONE = -1,
    LINDRA_MODULE_ELEARNING,
    LINDRA_MODULE_REFLECTION,
    LINDRA_MODULE_PRACTICE
} lindra_module_kind;
typedef enum lindra_group_status LINDRA_ENUM {
    LINDRA_GROUP_STATUS_NONE = -1,
    LINDRA_GROUP_PLANNED,
    LINDRA_GROUP_ACTIVE,
    LINDRA_GROUP_COMPLETED,
    LINDRA_GROUP_CANCELLED
} lindra_group_status;
typedef enum lindra_member_role LINDRA_ENUM { LINDRA_ROLE_MENTOR, LINDRA_ROLE_CANDIDATE } lindra_member_role;
typedef enum lindra_member_status LINDRA_ENUM {
    LINDRA_MEMBER_REGISTERED,
    LINDRA_MEMBER_ACTIVE,
    LINDRA_MEMBER_WITHDRAWN,
    LINDRA_MEMBER_COMPLETED
} lindra_member_status;
typedef enum lindra_gathering_mode LINDRA_ENUM {
    LINDRA_GATHERING_MODE_NONE = -1,
    LINDRA_GATHERING_IN_PERSON,
    LINDRA_GATHERING_DIGITAL
} lindra_gathering_mode;
typedef enum lindra_gathering_status LINDRA_ENUM {
    LINDRA_GATHERING_PLANNED,
    LINDRA_GATHERING_HELD,
    LINDRA_GATHERING_CANCELLED
} lindra_gathering_status;
typedef enum lindra_attendance_status LINDRA_ENUM {
    LINDRA_ATTENDANCE_PRESENT,
    LINDRA_ATTENDANCE_ABSENT,
    LINDRA_ATTENDANCE_EXCUSED
} lindra_attendance_status;
typedef enum lindra_progress_status LINDRA_ENUM {
    LINDRA_PROGRESS_NOT_STARTED,
    LINDRA_PROGRESS_IN_PROGRESS,
    LINDRA_PROGRESS_COMPLETED,
    LINDRA_PROGRESS_PASSED
} lindra_progress_status;

/* ---- the replica -------------------------------------------------------- */

typedef struct lindra_replica lindra_replica;

/* Opens (creating if needed) the replica at `path`. A file that is not a
 * replica is refused with LINDRA_ERR_NOT_A_REPLICA and left as it was. Any
 * thread. */
LINDRA_API lindra_replica* lindra_replica_open(const char* path, lindra_error* error) LINDRA_NOEXCEPT;
/* Closes it. Free its sync clients first. */
LINDRA_API void lindra_replica_free(lindra_replica* replica) LINDRA_NOEXCEPT;
LINDRA_API void lindra_replica_device_id(const lindra_replica* replica, lindra_id* out) LINDRA_NOEXCEPT;

/* Runs `fn` in one transaction: every write it makes through `replica`
 * lands, or none does. `fn` returns false to roll back (the batch then
 * fails with LINDRA_ERR_ABORTED). A write in it that fails on bad input
 * changes nothing and the batch may go on; one that fails half way (a full
 * disk) fails the whole batch. Do not start a sync or another batch in it. */
LINDRA_API bool lindra_replica_batch(lindra_replica* replica, bool (*fn)(lindra_replica* replica, void* context),
                                     void* context, lindra_error* error) LINDRA_NOEXCEPT;

/* -- generic writes, by the schema's entity and field names -- */

typedef enum lindra_value_kind LINDRA_ENUM {
    LINDRA_VALUE_NULL,
    LINDRA_VALUE_INTEGER, /* integer, boolean (0/1), timestamp (ms), progress */
    LINDRA_VALUE_TEXT,    /* text, enum value ("present"), date ("YYYY-MM-DD") */
    LINDRA_VALUE_ID       /* ref */
} lindra_value_kind;

typedef struct lindra_field_value {
    const char* field;
    lindra_value_kind kind;
    int64_t integer;
    const char* text;
    lindra_id id;
} lindra_field_value;

LINDRA_API bool lindra_replica_create(lindra_replica* replica, const char* entity, const lindra_field_value* fields,
                                      size_t count, lindra_id* out_id, lindra_error* error) LINDRA_NOEXCEPT;
LINDRA_API bool lindra_replica_update(lindra_replica* replica, const char* entity, const lindra_id* row,
                                      const lindra_field_value* fields, size_t count,
                                      lindra_error* error) LINDRA_NOEXCEPT;
/* Adds `delta` (>= 0) to a counter field. */
LINDRA_API bool lindra_replica_add(lindra_replica* replica, const char* entity, const lindra_id* row,
                                   const char* field, int64_t delta, lindra_error* error) LINDRA_NOEXCEPT;
LINDRA_API bool lindra_replica_remove(lindra_replica* replica, const char* entity, const lindra_id* row,
                                      lindra_error* error) LINDRA_NOEXCEPT;

/* -- catalog and registration (coordinators) -- */

typedef struct lindra_new_module {
    lindra_id course;
    int ordinal; /* from 1 */
    const char* title;
    lindra_module_kind kind;
    bool required;
    bool has_pass_score;
    int pass_score; /* 0..100 */
} lindra_new_module;

typedef struct lindra_new_group {
    lindra_id course;
    lindra_id organization;
    const char* name;
    const char* starts_on; /* YYYY-MM-DD, or NULL */
    const char* ends_on;
    lindra_group_status status;
} lindra_new_group;

LINDRA_API bool lindra_replica_register_organization(lindra_replica* replica, const char* name,
                                                     lindra_organization_kind kind, const lindra_id* parent,
                                                     lindra_id* out_id, lindra_error* error) LINDRA_NOEXCEPT;
LINDRA_API bool lindra_replica_register_person(lindra_replica* replica, const char* display_name,
                                               lindra_profession profession, const lindra_id* organization,
                                               lindra_id* out_id, lindra_error* error) LINDRA_NOEXCEPT;
LINDRA_API bool lindra_replica_register_course(lindra_replica* replica, const char* title, const char* version,
                                               const char* language, int required_gatherings, lindra_id* out_id,
                                               lindra_error* error) LINDRA_NOEXCEPT;
LINDRA_API bool lindra_replica_register_module(lindra_replica* replica, const lindra_new_module* module,
                                               lindra_id* out_id, lindra_error* error) LINDRA_NOEXCEPT;
LINDRA_API bool lindra_replica_create_group(lindra_replica* replica, const lindra_new_group* group,
                                            lindra_id* out_id, lindra_error* error) LINDRA_NOEXCEPT;
/* `out_id` gets the membership's id (derived from group and person). */
LINDRA_API bool lindra_replica_add_member(lindra_replica* replica, const lindra_id* group, const lindra_id* person,
                                          lindra_member_role role, lindra_id* out_id,
                                          lindra_error* error) LINDRA_NOEXCEPT;
LINDRA_API bool lindra_replica_withdraw_member(lindra_replica* replica, const lindra_id* group,
                                               const lindra_id* person, lindra_error* error) LINDRA_NOEXCEPT;

/* -- module progress (the candidate); progress never goes backwards -- */

LINDRA_API bool lindra_replica_start_module(lindra_replica* replica, const lindra_id* person, const lindra_id* module,
                                            const lindra_id* group, lindra_error* error) LINDRA_NOEXCEPT;
/* `score` may be NULL (no score). */
LINDRA_API bool lindra_replica_complete_module(lindra_replica* replica, const lindra_id* person,
                                               const lindra_id* module, const lindra_id* group, const int* score,
                                               int64_t seconds_spent, lindra_error* error) LINDRA_NOEXCEPT;
LINDRA_API bool lindra_replica_record_score(lindra_replica* replica, const lindra_id* person, const lindra_id* module,
                                            const lindra_id* group, int score, lindra_error* error) LINDRA_NOEXCEPT;
LINDRA_API bool lindra_replica_add_time_spent(lindra_replica* replica, const lindra_id* person,
                                              const lindra_id* module, const lindra_id* group, int64_t seconds,
                                              lindra_error* error) LINDRA_NOEXCEPT;
/* A new attempt, not started: the person's own, like all their progress. */
LINDRA_API bool lindra_replica_reset_module(lindra_replica* replica, const lindra_id* person, const lindra_id* module,
                                            const lindra_id* group, lindra_error* error) LINDRA_NOEXCEPT;

/* -- gatherings and attendance (the mentor) -- */

typedef struct lindra_new_gathering {
    lindra_id group;
    int ordinal; /* from 1 */
    const char* title;
    bool has_scheduled_at;
    int64_t scheduled_at; /* ms since the Unix epoch */
    lindra_gathering_mode mode;
    lindra_id module; /* the module it discusses; nil: none */
} lindra_new_gathering;

LINDRA_API bool lindra_replica_plan_gathering(lindra_replica* replica, const lindra_new_gathering* gathering,
                                              lindra_id* out_id, lindra_error* error) LINDRA_NOEXCEPT;
LINDRA_API bool lindra_replica_hold_gathering(lindra_replica* replica, const lindra_id* gathering,
                                              lindra_error* error) LINDRA_NOEXCEPT;
LINDRA_API bool lindra_replica_cancel_gathering(lindra_replica* replica, const lindra_id* gathering,
                                                lindra_error* error) LINDRA_NOEXCEPT;
LINDRA_API bool lindra_replica_record_attendance(lindra_replica* replica, const lindra_id* gathering,
                                                 const lindra_id* person, lindra_attendance_status status,
                                                 const char* note, lindra_error* error) LINDRA_NOEXCEPT;
LINDRA_API bool lindra_replica_confirm_candidate(lindra_replica* replica, const lindra_id* group,
                                                 const lindra_id* person, const lindra_id* mentor,
                                                 const char* statement, lindra_error* error) LINDRA_NOEXCEPT;

/* -- reflections (the candidate); `module` may be NULL -- */

LINDRA_API bool lindra_replica_write_reflection(lindra_replica* replica, const lindra_id* person,
                                                const lindra_id* group, const lindra_id* module, const char* text,
                                                lindra_id* out_id, lindra_error* error) LINDRA_NOEXCEPT;

/* -- queries (deleted rows are never returned) -- */

typedef struct lindra_person {
    lindra_id id;
    const char* display_name;
    lindra_profession profession;
    lindra_id organization; /* nil: none */
} lindra_person;

typedef struct lindra_module {
    lindra_id id;
    lindra_id course;
    int ordinal;
    const char* title;
    lindra_module_kind kind;
    bool required;
    bool has_pass_score;
    int pass_score;
} lindra_module;
typedef struct lindra_module_list {
    size_t count;
    lindra_module* items;
} lindra_module_list;

typedef struct lindra_group {
    lindra_id id;
    lindra_id course;
    lindra_id organization;
    const char* name;
    const char* starts_on;
    const char* ends_on;
    lindra_group_status status;
} lindra_group;
typedef struct lindra_group_list {
    size_t count;
    lindra_group* items;
} lindra_group_list;

typedef struct lindra_gathering {
    lindra_id id;
    lindra_id group;
    int ordinal;
    const char* title;
    bool has_scheduled_at;
    int64_t scheduled_at;
    lindra_gathering_mode mode;
    lindra_gathering_status status;
    lindra_id module; /* nil: none */
} lindra_gathering;
typedef struct lindra_gathering_list {
    size_t count;
    lindra_gathering* items;
} lindra_gathering_list;

typedef struct lindra_roster_entry {
    lindra_id person;
    const char* display_name; /* "" if this device does not hold it: see lindra_member_name */
    lindra_member_role role;
    lindra_member_status status;
    int modules_completed;
    int modules_required;
    int gatherings_attended;
    int gatherings_held;
    bool confirmed;
} lindra_roster_entry;
typedef struct lindra_roster {
    lindra_group group;
    const char* course_title;
    int required_gatherings;
    size_t count; /* members: mentors first, then by name */
    lindra_roster_entry* members;
} lindra_roster;

typedef struct lindra_module_progress {
    lindra_id person;
    lindra_id group;
    lindra_id module;
    int ordinal;
    const char* module_title;
    bool required;
    int64_t attempt;
    lindra_progress_status status;
    bool has_best_score;
    int best_score;
    int64_t time_spent_s;
    bool has_first_completed_at;
    int64_t first_completed_at; /* ms since the Unix epoch */
} lindra_module_progress;
typedef struct lindra_progress_list {
    size_t count;
    lindra_module_progress* items;
} lindra_progress_list;

/* How many rows of `entity` this device holds. */
LINDRA_API bool lindra_replica_count(const lindra_replica* replica, const char* entity, int64_t* out,
                                     lindra_error* error) LINDRA_NOEXCEPT;
/* Single rows: *out is NULL (and the call succeeds) if there is none. */
LINDRA_API bool lindra_replica_person(const lindra_replica* replica, const lindra_id* id, lindra_person** out,
                                      lindra_error* error) LINDRA_NOEXCEPT;
LINDRA_API bool lindra_replica_group(const lindra_replica* replica, const lindra_id* id, lindra_group** out,
                                     lindra_error* error) LINDRA_NOEXCEPT;
LINDRA_API bool lindra_replica_gathering(const lindra_replica* replica, const lindra_id* id, lindra_gathering** out,
                                         lindra_error* error) LINDRA_NOEXCEPT;
LINDRA_API bool lindra_replica_roster(const lindra_replica* replica, const lindra_id* group, lindra_roster** out,
                                      lindra_error* error) LINDRA_NOEXCEPT;
/* A member as people read them (lindra::member_name): the entry's
 * display_name, or "a withdrawn member" when a withdrawal purged it from
 * this device, or what says it has not synced yet; never a bare id. Lives
 * as long as the entry; "" for NULL. */
LINDRA_API const char* lindra_member_name(const lindra_roster_entry* entry) LINDRA_NOEXCEPT;
/* Lists: an empty list is a list of count 0, never NULL. */
LINDRA_API bool lindra_replica_modules(const lindra_replica* replica, const lindra_id* course,
                                       lindra_module_list** out, lindra_error* error) LINDRA_NOEXCEPT;
LINDRA_API bool lindra_replica_groups(const lindra_replica* replica, lindra_group_list** out,
                                      lindra_error* error) LINDRA_NOEXCEPT;
/* Groups where `person` is a member who has not withdrawn. */
LINDRA_API bool lindra_replica_groups_of(const lindra_replica* replica, const lindra_id* person,
                                         lindra_group_list** out, lindra_error* error) LINDRA_NOEXCEPT;
LINDRA_API bool lindra_replica_gatherings(const lindra_replica* replica, const lindra_id* group,
                                          lindra_gathering_list** out, lindra_error* error) LINDRA_NOEXCEPT;
LINDRA_API bool lindra_replica_progress_of(const lindra_replica* replica, const lindra_id* person,
                                           lindra_progress_list** out, lindra_error* error) LINDRA_NOEXCEPT;
/* A row by its id in text form or its human name (lindra::Replica::find):
 * *found is false if none matches; several matches: LINDRA_ERR_AMBIGUOUS. */
LINDRA_API bool lindra_replica_find(const lindra_replica* replica, const char* entity, const char* name,
                                    lindra_id* out, bool* found, lindra_error* error) LINDRA_NOEXCEPT;
/* Local writes waiting for the server. */
LINDRA_API bool lindra_replica_outbox_size(const lindra_replica* replica, int64_t* out,
                                           lindra_error* error) LINDRA_NOEXCEPT;

/* -- refused writes (lindra::RefusedWrite) --
 * A write of this device the server refused, or one discarded with a row
 * the user may no longer see: the row is rolled back, and what the user
 * wrote is kept on this device until the app dismisses it, so the app can
 * show it, let the user copy it, or make it again where that is allowed. */

typedef struct lindra_refused_write {
    int64_t id;  /* for lindra_replica_dismiss_refused; never reused */
    int64_t seq; /* its outbox seq, as lindra_sync_rejection's */
    const char* entity;
    lindra_id row;
    /* The fields it set, as written: `text` is NULL unless `kind` is
     * LINDRA_VALUE_TEXT. A counter holds this device's running total, a
     * progress field its packed value (attempt * 256 + status). */
    size_t value_count;
    const lindra_field_value* values;
    const char* code;   /* "permission_denied" or "invalid_argument" */
    const char* reason; /* which rule refused it */
    int64_t written_at; /* ms since the Unix epoch */
    int64_t refused_at; /* when this device heard of it, by its clock */
} lindra_refused_write;
typedef struct lindra_refused_list {
    size_t count;
    lindra_refused_write* items; /* oldest first */
} lindra_refused_list;

LINDRA_API bool lindra_replica_refused_writes(const lindra_replica* replica, lindra_refused_list** out,
                                              lindra_error* error) LINDRA_NOEXCEPT;
/* Forgets refused write `id` for good; *found (may be NULL) says whether it was there. */
LINDRA_API bool lindra_replica_dismiss_refused(lindra_replica* replica, int64_t id, bool* found,
                                               lindra_error* error) LINDRA_NOEXCEPT;
/* Forgets them all; *count (may be NULL) gets how many there were. */
LINDRA_API bool lindra_replica_dismiss_all_refused(lindra_replica* replica, int64_t* count,
                                                   lindra_error* error) LINDRA_NOEXCEPT;

/* -- the coordinator's registration list (lindra::Replica::import_registrations) -- */

typedef struct lindra_registration_import {
    int64_t lines;                 /* registration lines read (not the header, not blank lines) */
    int64_t people_created;        /* people registered by this import */
    int64_t people_existing;       /* already registered: same display name, same organization */
    int64_t memberships_added;     /* people added to a group */
    int64_t memberships_unchanged; /* already members with that role: nothing written */
    int64_t memberships_withdrawn; /* listed, but withdrawn since: left withdrawn */
} lindra_registration_import;

/* Imports a registration list: `csv` (`size` bytes, UTF-8, need not end in
 * a NUL) with a header line naming the columns group, display_name, role,
 * profession and organization, in any order; the dialect and the rules are
 * lindra::Replica::import_registrations's (README, "Registering a course's
 * people"). All of it is written in one transaction, or, if any line is
 * wrong, nothing: the error's message then starts "line N, COLUMN:" and its
 * field is the column. Importing the same list again writes nothing.
 * `summary` (may be NULL) gets the counts. Not inside lindra_replica_batch. */
LINDRA_API bool lindra_replica_import_registrations(lindra_replica* replica, const char* csv, size_t size,
                                                    lindra_registration_import* summary,
                                                    lindra_error* error) LINDRA_NOEXCEPT;

/* -- course certificates (lindra::Replica::verify_certificate) -- */

typedef enum lindra_certificate_status {
    LINDRA_CERTIFICATE_VALID = 0,
    LINDRA_CERTIFICATE_REVOKED = 1,
    LINDRA_CERTIFICATE_BAD_SIGNATURE = 2, /* the credential or the row was changed, or is none */
    LINDRA_CERTIFICATE_UNKNOWN_KEY = 3,   /* signed with a key this device has not received */
    LINDRA_CERTIFICATE_NOT_YET_VALID = 4
} lindra_certificate_status;

typedef struct lindra_certificate_check {
    lindra_certificate_status status;
    const char* reason; /* the status in words */
    /* What the signed credential says ("" unless its signature verified). */
    const char* serial;
    const char* person_name;
    const char* course_title;
    const char* issuer;
    const char* kid;
    int64_t valid_from; /* ms since the Unix epoch */
    bool has_revocation_list;
    int64_t revocation_list_age_ms; /* how long ago the server signed this device's list */
    const char* credential;         /* the compact JWS, for verifying elsewhere */
    const char* revocation_list;    /* the signed revocation list as a compact JWS, "" if none */
} lindra_certificate_check;

typedef struct lindra_id_list {
    size_t count;
    lindra_id* items;
} lindra_id_list;

/* The certificates this device holds for `person`, oldest first. */
LINDRA_API bool lindra_replica_certificates_of(const lindra_replica* replica, const lindra_id* person,
                                               lindra_id_list** out, lindra_error* error) LINDRA_NOEXCEPT;
/* Checks a certificate with no network; LINDRA_ERR_NOT_FOUND if the device
 * holds no such certificate. */
LINDRA_API bool lindra_replica_verify_certificate(const lindra_replica* replica, const lindra_id* certificate,
                                                  lindra_certificate_check** out,
                                                  lindra_error* error) LINDRA_NOEXCEPT;
/* The same checks for a credential given as a compact JWS (NUL-terminated),
 * say one a candidate shows from another device. */
LINDRA_API bool lindra_replica_verify_credential(const lindra_replica* replica, const char* credential,
                                                 lindra_certificate_check** out,
                                                 lindra_error* error) LINDRA_NOEXCEPT;
/* Revokes a certificate with a reason (a coordinator of the group's
 * organization; the server refuses anyone else). Final: a later call
 * changes only the reason. LINDRA_ERR_NOT_FOUND if the device holds no
 * such certificate, LINDRA_ERR_INVALID_ARGUMENT for a blank reason. */
LINDRA_API bool lindra_replica_revoke_certificate(lindra_replica* replica, const lindra_id* certificate,
                                                  const char* reason, lindra_error* error) LINDRA_NOEXCEPT;

/* -- the coordinator's completion report (lindra::Replica::completion_report) -- */

/* The completion report of `group`, or, with `group` NULL, of every group of
 * `organization` and of the organizations under it (exactly one of the two
 * is given; both or neither is LINDRA_ERR_INVALID_ARGUMENT): per candidate,
 * modules passed of required, gatherings attended of held, the mentor's
 * confirmation, and the certificate (issued, revoked, or missing with what
 * is lacking), by the server's own rule over what this device holds.
 * _csv: RFC 4180 CSV with a header line and CRLF line ends (columns as in
 * lindra/report.hpp); _table: aligned text for a terminal. *out gets a
 * NUL-terminated UTF-8 string, freed with lindra_string_free.
 * LINDRA_ERR_NOT_FOUND if the device holds no such group or organization. */
LINDRA_API bool lindra_replica_completion_report_csv(const lindra_replica* replica, const lindra_id* group,
                                                     const lindra_id* organization, char** out,
                                                     lindra_error* error) LINDRA_NOEXCEPT;
LINDRA_API bool lindra_replica_completion_report_table(const lindra_replica* replica, const lindra_id* group,
                                                       const lindra_id* organization, char** out,
                                                       lindra_error* error) LINDRA_NOEXCEPT;

/* Frees a string the C API returned (NULL is a no-op). */
LINDRA_API void lindra_string_free(char* text) LINDRA_NOEXCEPT;
LINDRA_API void lindra_person_free(lindra_person* person) LINDRA_NOEXCEPT;
LINDRA_API void lindra_group_free(lindra_group* group) LINDRA_NOEXCEPT;
LINDRA_API void lindra_gathering_free(lindra_gathering* gathering) LINDRA_NOEXCEPT;
LINDRA_API void lindra_roster_free(lindra_roster* roster) LINDRA_NOEXCEPT;
LINDRA_API void lindra_module_list_free(lindra_module_list* list) LINDRA_NOEXCEPT;
LINDRA_API void lindra_group_list_free(lindra_group_list* list) LINDRA_NOEXCEPT;
LINDRA_API void lindra_gathering_list_free(lindra_gathering_list* list) LINDRA_NOEXCEPT;
LINDRA_API void lindra_progress_list_free(lindra_progress_list* list) LINDRA_NOEXCEPT;
LINDRA_API void lindra_refused_list_free(lindra_refused_list* list) LINDRA_NOEXCEPT;
LINDRA_API void lindra_id_list_free(lindra_id_list* list) LINDRA_NOEXCEPT;
LINDRA_API void lindra_certificate_check_free(lindra_certificate_check* check) LINDRA_NOEXCEPT;

/* ---- sync ----------------------------------------------------------------- */

typedef enum lindra_sync_phase LINDRA_ENUM {
    LINDRA_PHASE_CONNECTING,
    LINDRA_PHASE_PUSHING,
    LINDRA_PHASE_PULLING,
    LINDRA_PHASE_DONE
} lindra_sync_phase;

typedef enum lindra_sync_state LINDRA_ENUM {
    LINDRA_SYNC_IDLE,
    LINDRA_SYNC_CONNECTING,
    LINDRA_SYNC_PUSHING,
    LINDRA_SYNC_PULLING,
    LINDRA_SYNC_OFFLINE, /* no server, or lost it: retry later */
    LINDRA_SYNC_ERROR    /* failed otherwise: see error_code, message */
} lindra_sync_state;

typedef enum lindra_sync_outcome LINDRA_ENUM {
    LINDRA_OUTCOME_OK,
    LINDRA_OUTCOME_OFFLINE, /* no connection, or it broke: try again later */
    LINDRA_OUTCOME_AUTH_FAILED,
    LINDRA_OUTCOME_TLS_FAILED, /* never retry blindly */
    LINDRA_OUTCOME_SERVER_ERROR,
    LINDRA_OUTCOME_PROTOCOL_ERROR,
    LINDRA_OUTCOME_CANCELLED,
    LINDRA_OUTCOME_LOCAL_ERROR,
    LINDRA_OUTCOME_TIMED_OUT
} lindra_sync_outcome;
LINDRA_API const char* lindra_sync_outcome_name(lindra_sync_outcome outcome) LINDRA_NOEXCEPT;
LINDRA_API const char* lindra_sync_state_name(lindra_sync_state state) LINDRA_NOEXCEPT;

/* Done so far, and what is left where it is known (lindra::SyncProgress). */
typedef struct lindra_sync_progress {
    lindra_sync_phase phase;
    int64_t changes_pushed;
    int64_t changes_pulled;
    uint64_t bytes_sent;
    uint64_t bytes_received;
    uint64_t push_remaining; /* local writes not yet acknowledged */
    uint64_t pull_remaining; /* server log entries left, once the server said */
    int64_t writes_pushed;   /* local writes (outbox entries) acknowledged; they carry changes_pushed */
} lindra_sync_progress;

typedef struct lindra_sync_status {
    lindra_sync_state state;
    const char* error_code; /* offline or error: the server's code, or "" */
    const char* message;    /* offline or error: why, or "" */
    bool has_last_synced;
    int64_t last_synced_ms; /* the last round that succeeded, ms since the epoch */
    int64_t pending;        /* local writes waiting for the server */
} lindra_sync_status;

/* A pushed change the server refused (or a local one discarded with a row
 * the user may no longer see), already rolled back here; what it wrote is
 * in `values` and kept as refused write `refused_id` until dismissed. */
typedef struct lindra_sync_rejection {
    int64_t seq;
    const char* code;   /* "permission_denied" or "invalid_argument" */
    const char* reason; /* which rule refused it */
    const char* entity;
    lindra_id row;
    size_t field_count;
    const char* const* fields;
    bool row_removed;
    /* As lindra_refused_write's; none, and refused_id 0, if this device no
     * longer held the write. */
    size_t value_count;
    const lindra_field_value* values;
    int64_t refused_id;
} lindra_sync_rejection;

/* What a round's purge deleted: rows this user may no longer see, of one
 * scope (lindra::PurgedScope). */
typedef enum lindra_purge_kind {
    LINDRA_PURGE_UNKNOWN = 0,         /* an older server did not say */
    LINDRA_PURGE_GROUP = 1,           /* a group the user is no longer in, with its rows */
    LINDRA_PURGE_PERSON = 2,          /* a person the user no longer shares a group with */
    LINDRA_PURGE_PERSON_IN_GROUP = 3, /* a person's progress and certificates in a group */
    LINDRA_PURGE_PERSONAL = 4,        /* a person's reflections in a group */
} lindra_purge_kind;

typedef struct lindra_purged_scope {
    lindra_purge_kind kind;
    lindra_id group;  /* all zero where the kind has none */
    lindra_id person; /* all zero where the kind has none */
    /* As this device held them just before the purge; "" if it did not. */
    const char* group_name;
    const char* person_name;
    int64_t rows; /* counted in lindra_sync_result.rows_purged */
} lindra_purged_scope;

typedef struct lindra_sync_result {
    lindra_sync_outcome outcome;
    const char* message;
    const char* error_code; /* the server's, or "" */
    uint32_t retry_after_ms;
    int64_t changes_pushed;
    int64_t changes_pulled;
    int64_t rows_purged;
    uint64_t bytes_sent;
    uint64_t bytes_received;
    /* This device's writes refused in this round, whatever its outcome: an
     * OK round with any is not clean (the user has writes to look at). */
    size_t rejected_count;
    lindra_sync_rejection* rejected;
    int64_t writes_pushed; /* local writes (outbox entries) acknowledged; they carry changes_pushed */
    /* What rows_purged deleted, by scope: which groups the user left. */
    size_t purged_count;
    lindra_purged_scope* purged;
} lindra_sync_result;

typedef struct lindra_sync_options {
    const char* host; /* NULL: 127.0.0.1 */
    uint16_t port;
    const char* token;
    const char* ca_pem;      /* CAs to trust, PEM; NULL: the system's */
    const char* server_name; /* NULL: host */
    const char* const* pins; /* "sha256/BASE64" SPKI digests; may be NULL */
    size_t pin_count;
    bool insecure; /* plain TCP: local development and tests only */
    const char* app; /* "name/version"; NULL: "lindra" */
    uint32_t connect_timeout_ms; /* 0: 10 s */
    uint32_t io_timeout_ms;      /* 0: 30 s per frame */
    /* Called on the sync thread; the pointer lives during the call only. */
    void (*on_progress)(const lindra_sync_progress* progress, void* context);
    void (*on_status)(const lindra_sync_status* status, void* context);
    void (*on_rejected)(const lindra_sync_rejection* rejection, void* context);
    void* context; /* handed to the three callbacks */
    /* The server's URL, instead of host and port: "wss://host[:port][/path]",
     * "tls://host:port" or "host:port" (lindra::parse_server_url). NULL: host
     * and port. A bad URL fails lindra_sync_client_new. */
    const char* url;
    /* An HTTP CONNECT proxy, "http://[user:password@]host[:port]". NULL: the
     * https_proxy environment variable unless no_proxy names the server;
     * "": none. */
    const char* proxy;
    /* More CAs to trust beside ca_pem (or the system's), PEM each: a
     * TLS-inspecting proxy's. May be NULL. */
    const char* const* extra_ca_pems;
    size_t extra_ca_count;
} lindra_sync_options;

typedef struct lindra_sync_client lindra_sync_client;

/* A client syncing `replica` on a thread of its own. The options are copied.
 * The replica must outlive the client. Any thread. */
LINDRA_API lindra_sync_client* lindra_sync_client_new(lindra_replica* replica, const lindra_sync_options* options,
                                                      lindra_error* error) LINDRA_NOEXCEPT;
/* Cancels a running round and waits for it. Not from a callback. */
LINDRA_API void lindra_sync_client_free(lindra_sync_client* client) LINDRA_NOEXCEPT;
/* One round; blocks until it ends. The result says how it went: a failed
 * round, or one refused because another runs (LINDRA_OUTCOME_LOCAL_ERROR),
 * is a result, not an error; NULL only for a NULL client or no memory.
 * Not from a callback. */
LINDRA_API lindra_sync_result* lindra_sync_client_sync(lindra_sync_client* client,
                                                       lindra_error* error) LINDRA_NOEXCEPT;
/* One round in the background: `done` runs on the sync thread when it ends
 * and owns the result (free it with lindra_sync_result_free; NULL only if
 * memory ran out). If no round can start (one already runs, bad TLS
 * options), `done` runs at once, on this thread, before this returns.
 * `done` may start the next round; it must not free the client. */
LINDRA_API bool lindra_sync_client_sync_async(lindra_sync_client* client,
                                              void (*done)(lindra_sync_result* result, void* context),
                                              void* context, lindra_error* error) LINDRA_NOEXCEPT;
/* Rounds until the outbox is empty and the last pull reached the server's
 * head, a round fails in a way waiting cannot mend, or `timeout_ms` passes
 * (LINDRA_OUTCOME_TIMED_OUT). Blocks like lindra_sync_client_sync. */
LINDRA_API lindra_sync_result* lindra_sync_client_wait_until_synced(lindra_sync_client* client, uint32_t timeout_ms,
                                                                    lindra_error* error) LINDRA_NOEXCEPT;
/* Ends a running round soon with LINDRA_OUTCOME_CANCELLED; what was
 * acknowledged or applied stays. Any thread, callbacks included. */
LINDRA_API void lindra_sync_client_cancel(lindra_sync_client* client) LINDRA_NOEXCEPT;
/* Where the client is now. Any thread. */
LINDRA_API lindra_sync_status* lindra_sync_client_status(const lindra_sync_client* client,
                                                         lindra_error* error) LINDRA_NOEXCEPT;

LINDRA_API void lindra_sync_result_free(lindra_sync_result* result) LINDRA_NOEXCEPT;
LINDRA_API void lindra_sync_status_free(lindra_sync_status* status) LINDRA_NOEXCEPT;

/* ---- shared tablets (lindra/sync.hpp; README, "Shared tablets") ---------- */

/* Writes the replica file of `user` in `directory` (lindra::user_replica_path:
 * the same file for the same user, no user id in clear) into `out`, NUL
 * included; LINDRA_ERR_TOO_LONG if it needs more than `size` bytes,
 * LINDRA_ERR_INVALID_ARGUMENT for an empty user. Any thread. */
LINDRA_API bool lindra_user_replica_path(const char* directory, const char* user, char* out, size_t size,
                                         lindra_error* error) LINDRA_NOEXCEPT;

typedef enum lindra_sign_out_status LINDRA_ENUM {
    LINDRA_SIGNED_OUT,      /* everything reached the server; files deleted */
    LINDRA_SIGN_OUT_KEPT,   /* something would have been lost: nothing deleted */
    LINDRA_SIGN_OUT_FORCED  /* deleted although something was lost */
} lindra_sign_out_status;
LINDRA_API const char* lindra_sign_out_status_name(lindra_sign_out_status status) LINDRA_NOEXCEPT;

typedef struct lindra_sign_out_result {
    lindra_sign_out_status status;
    lindra_sync_result sync; /* the round that pushed what was pending */
    /* Not on the server after the round, lost once deleted: writes still in
     * the outbox, and refused writes kept on the device. */
    int64_t pending_writes;
    int64_t refused_writes;
    size_t deleted_file_count;
    const char** deleted_files; /* overwritten with zeros, synced, removed */
} lindra_sign_out_result;

/* Signs the user of `*replica` out of this device (lindra::sign_out): one
 * sync round with `options`, then, if everything reached the server (or
 * `force`), closes the replica, overwrites its file and its -wal, -shm and
 * -journal siblings with zeros, syncs and removes them, and sets *replica
 * to NULL. Otherwise (status LINDRA_SIGN_OUT_KEPT) nothing is deleted,
 * *replica stays open and the result says what would be lost: ask the
 * user, then call again with `force`. Free the replica's sync clients
 * first; no other handle or process may have the file open. On an error
 * *replica is closed and set to NULL (open it again to go on). Blocks like
 * lindra_sync_client_sync. Free the result with lindra_sign_out_result_free. */
LINDRA_API lindra_sign_out_result* lindra_sign_out(lindra_replica** replica, const lindra_sync_options* options,
                                                   bool force, lindra_error* error) LINDRA_NOEXCEPT;
LINDRA_API void lindra_sign_out_result_free(lindra_sign_out_result* result) LINDRA_NOEXCEPT;

/* ---- logging ------------------------------------------------------------- */

typedef enum lindra_log_level LINDRA_ENUM {
    LINDRA_LOG_DEBUG,
    LINDRA_LOG_INFO,
    LINDRA_LOG_WARNING,
    LINDRA_LOG_ERROR,
    LINDRA_LOG_OFF
} lindra_log_level;

/* Sends lindra's log at `min` and above to `fn` (NULL: silence), process
 * wide, replacing the callback set before. Never tokens, names, free text
 * or paths (lindra/log.hpp). `fn` runs on the thread that logs, possibly
 * several at once. This waits for calls of the callback it replaces, so
 * once it returns the old `fn` and `context` are done with for good; `fn`
 * must not call it. Any thread. */
LINDRA_API void lindra_log_set_callback(void (*fn)(lindra_log_level level, const char* domain, const char* message,
                                                   void* context),
                                        lindra_log_level min, void* context) LINDRA_NOEXCEPT;

#ifdef __cplusplus
}
#endif

#endif /* LINDRA_H */
