/* The C API from plain C, as a tablet app would use it: a coordinator's
 * device registers a course and a group, Ola's tablet pulls them, works
 * offline, and syncs when the server is back (asynchronously, with status,
 * progress, refusal and log callbacks); bad input, a rolled-back batch, a
 * lost acknowledgement and an empty list are checked on the way. Against
 * the MockServer of lindra/testing/mock_server.h, over TLS. */
#define _XOPEN_SOURCE 700
#include <lindra/lindra.h>
#include <lindra/testing/mock_server.h>

#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int failures = 0;
#define CHECK(cond)                                                      \
    do {                                                                 \
        if (!(cond)) {                                                   \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            ++failures;                                                  \
        }                                                                \
    } while (0)
/* A call that must succeed: on failure, say why and stop. */
#define MUST(call)                                                                          \
    do {                                                                                    \
        if (!(call)) {                                                                      \
            fprintf(stderr, "%s:%d: %s failed: %d %s\n", __FILE__, __LINE__, #call, err.code, \
                    err.message);                                                           \
            exit(1);                                                                        \
        }                                                                                   \
    } while (0)

static lindra_error err;

/* ---- callbacks, and what they saw ---- */

typedef struct seen {
    atomic_int done;
    lindra_sync_result* result;
    atomic_int progress_calls;
    atomic_ullong max_push_remaining;
    atomic_int states[LINDRA_SYNC_ERROR + 1];
    atomic_int rejected;
    char rejected_entity[32];
    char rejected_name[32]; /* the refused write's display_name, as typed */
    atomic_llong rejected_id;
} seen;

/* The text value of `field` among a refused write's values, or NULL. */
static const char* text_of(const lindra_field_value* values, size_t count, const char* field) {
    for (size_t i = 0; i < count; ++i)
        if (strcmp(values[i].field, field) == 0 && values[i].kind == LINDRA_VALUE_TEXT) return values[i].text;
    return NULL;
}

static void on_done(lindra_sync_result* result, void* context) {
    seen* s = context;
    s->result = result;
    atomic_store(&s->done, 1);
}

static void on_progress(const lindra_sync_progress* p, void* context) {
    seen* s = context;
    atomic_fetch_add(&s->progress_calls, 1);
    if (p->push_remaining > atomic_load(&s->max_push_remaining)) atomic_store(&s->max_push_remaining, p->push_remaining);
}

static void on_status(const lindra_sync_status* status, void* context) {
    seen* s = context;
    if (status->state >= LINDRA_SYNC_IDLE && status->state <= LINDRA_SYNC_ERROR) atomic_fetch_add(&s->states[status->state], 1);
}

static void on_rejected(const lindra_sync_rejection* r, void* context) {
    seen* s = context;
    atomic_fetch_add(&s->rejected, 1);
    snprintf(s->rejected_entity, sizeof s->rejected_entity, "%s", r->entity);
    const char* name = text_of(r->values, r->value_count, "display_name");
    snprintf(s->rejected_name, sizeof s->rejected_name, "%s", name ? name : "");
    atomic_store(&s->rejected_id, r->refused_id);
}

/* lindra logs from the sync's and the server's threads at once. */
static pthread_mutex_t log_mutex = PTHREAD_MUTEX_INITIALIZER;
static char log_text[256 * 1024];
static atomic_int log_lines;
static void on_log(lindra_log_level level, const char* domain, const char* message, void* context) {
    (void)level;
    (void)context;
    atomic_fetch_add(&log_lines, 1);
    pthread_mutex_lock(&log_mutex);
    size_t used = strlen(log_text);
    snprintf(log_text + used, sizeof log_text - used, "%s: %s\n", domain, message);
    pthread_mutex_unlock(&log_mutex);
}

static bool keep_none(lindra_replica* r, void* context) {
    lindra_id* ola = context;
    lindra_id org;
    CHECK(lindra_replica_register_organization(r, "Never", LINDRA_ORGANIZATION_CARE_UNIT, NULL, &org, &err));
    (void)ola;
    return false; /* roll it all back */
}

typedef struct ola_work {
    lindra_id ola, module, group, reflection;
} ola_work;

static bool offline_work(lindra_replica* r, void* context) {
    ola_work* w = context;
    int score = 90;
    MUST(lindra_replica_start_module(r, &w->ola, &w->module, &w->group, &err));
    MUST(lindra_replica_complete_module(r, &w->ola, &w->module, &w->group, &score, 600, &err));
    MUST(lindra_replica_write_reflection(r, &w->ola, &w->group, &w->module, "I sat with Kari all night", &w->reflection, &err));
    /* A query inside the batch sees its writes. */
    lindra_progress_list* progress = NULL;
    MUST(lindra_replica_progress_of(r, &w->ola, &progress, &err));
    CHECK(progress->count == 1 && progress->items[0].status == LINDRA_PROGRESS_PASSED);
    lindra_progress_list_free(progress);
    return true;
}

static int remove_entry(const char* path, const struct stat* st, int flag, struct FTW* ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void sleep_ms(long ms) {
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

int main(void) {
    char dir[] = "/tmp/lindra-capi-XXXXXX";
    if (!mkdtemp(dir)) return 1;
    char office_path[256], ola_path[256];
    snprintf(office_path, sizeof office_path, "%s/office.db", dir);
    snprintf(ola_path, sizeof ola_path, "%s/ola.db", dir);
    lindra_log_set_callback(on_log, LINDRA_LOG_DEBUG, NULL);

    lindra_mock_server* mock = lindra_mock_server_new(true, &err);
    MUST(mock);

    /* ---- the coordinator's office registers the course and the group ---- */
    lindra_replica* office = lindra_replica_open(office_path, &err);
    MUST(office);
    lindra_id org, course, module, ola, mia, group, gathering, membership;
    MUST(lindra_replica_register_organization(office, "Fjordvik", LINDRA_ORGANIZATION_MUNICIPALITY, NULL, &org, &err));
    MUST(lindra_replica_register_course(office, "Palliative care", "2026", "nb", 4, &course, &err));
    lindra_new_module m = {.course = course, .ordinal = 1, .title = "M1: Basics", .kind = LINDRA_MODULE_ELEARNING,
                           .required = true, .has_pass_score = true, .pass_score = 80};
    MUST(lindra_replica_register_module(office, &m, &module, &err));
    MUST(lindra_replica_register_person(office, "Ola Nordmann", LINDRA_PROFESSION_ASSISTANT, &org, &ola, &err));
    MUST(lindra_replica_register_person(office, "Mia Mentor", LINDRA_PROFESSION_NURSE, &org, &mia, &err));
    lindra_new_group g = {.course = course, .organization = org, .name = "Fjordvik spring", .starts_on = "2026-03-01",
                          .status = LINDRA_GROUP_ACTIVE};
    MUST(lindra_replica_create_group(office, &g, &group, &err));
    MUST(lindra_replica_add_member(office, &group, &ola, LINDRA_ROLE_CANDIDATE, &membership, &err));
    MUST(lindra_replica_add_member(office, &group, &mia, LINDRA_ROLE_MENTOR, NULL, &err));
    lindra_new_gathering gat = {.group = group, .ordinal = 1, .title = "First meeting", .has_scheduled_at = true,
                                .scheduled_at = 1772000000000, .mode = LINDRA_GATHERING_IN_PERSON};
    MUST(lindra_replica_plan_gathering(office, &gat, &gathering, &err));

    char* admin = lindra_mock_server_token(mock, "office", LINDRA_TOKEN_ADMIN, NULL, NULL, &err);
    MUST(admin);
    lindra_sync_options office_options;
    lindra_mock_server_client_options(mock, admin, &office_options);
    lindra_sync_client* office_sync = lindra_sync_client_new(office, &office_options, &err);
    MUST(office_sync);
    lindra_sync_result* r = lindra_sync_client_wait_until_synced(office_sync, 20000, &err);
    MUST(r);
    CHECK(r->outcome == LINDRA_OUTCOME_OK);
    CHECK(r->changes_pushed > 0);
    lindra_sync_result_free(r);
    int64_t n = 0;
    MUST(lindra_mock_server_count(mock, "person", &n, &err));
    CHECK(n == 2);

    /* ---- Ola's tablet pulls her group ---- */
    lindra_replica* tablet = lindra_replica_open(ola_path, &err);
    MUST(tablet);
    char* token = lindra_mock_server_token(mock, "ola", LINDRA_TOKEN_CANDIDATE, &ola, NULL, &err);
    MUST(token);
    seen s = {0};
    lindra_sync_options options;
    lindra_mock_server_client_options(mock, token, &options);
    options.app = "capi-test/1.0";
    options.on_progress = on_progress;
    options.on_status = on_status;
    options.on_rejected = on_rejected;
    options.context = &s;
    lindra_sync_client* sync = lindra_sync_client_new(tablet, &options, &err);
    MUST(sync);
    r = lindra_sync_client_sync(sync, &err);
    MUST(r);
    CHECK(r->outcome == LINDRA_OUTCOME_OK);
    CHECK(r->changes_pulled > 0);
    lindra_sync_result_free(r);

    /* The same over wss://, by URL; a bad URL is refused at once. */
    {
        char url[64];
        snprintf(url, sizeof url, "wss://127.0.0.1:%u/lindra", (unsigned)options.port);
        lindra_sync_options by_url = options;
        by_url.host = NULL;
        by_url.port = 0;
        by_url.url = url;
        lindra_sync_client* ws = lindra_sync_client_new(tablet, &by_url, &err);
        MUST(ws);
        r = lindra_sync_client_sync(ws, &err);
        MUST(r);
        CHECK(r->outcome == LINDRA_OUTCOME_OK);
        lindra_sync_result_free(r);
        lindra_sync_client_free(ws);
        /* No proxy whatever the environment says; the CA once more as an extra one. */
        const char* extra[] = {by_url.ca_pem};
        by_url.proxy = "";
        by_url.extra_ca_pems = extra;
        by_url.extra_ca_count = 1;
        ws = lindra_sync_client_new(tablet, &by_url, &err);
        MUST(ws);
        r = lindra_sync_client_sync(ws, &err);
        MUST(r);
        CHECK(r->outcome == LINDRA_OUTCOME_OK);
        lindra_sync_result_free(r);
        lindra_sync_client_free(ws);
        by_url.extra_ca_pems = NULL;
        CHECK(lindra_sync_client_new(tablet, &by_url, &err) == NULL);
        CHECK(err.code == LINDRA_ERR_INVALID_ARGUMENT);
        by_url.extra_ca_count = 0;
        by_url.url = "https://127.0.0.1";
        CHECK(lindra_sync_client_new(tablet, &by_url, &err) == NULL);
        CHECK(err.code == LINDRA_ERR_INVALID_ARGUMENT);
        CHECK(strstr(err.message, "unknown scheme") != NULL);
    }

    lindra_group_list* groups = NULL;
    MUST(lindra_replica_groups_of(tablet, &ola, &groups, &err));
    CHECK(groups->count == 1);
    CHECK(groups->count == 1 && strcmp(groups->items[0].name, "Fjordvik spring") == 0);
    CHECK(groups->count == 1 && groups->items[0].status == LINDRA_GROUP_ACTIVE);
    lindra_group_list_free(groups);
    lindra_roster* roster = NULL;
    MUST(lindra_replica_roster(tablet, &group, &roster, &err));
    CHECK(roster->count == 2);
    CHECK(strcmp(roster->course_title, "Palliative care") == 0);
    CHECK(roster->count == 2 && roster->members[0].role == LINDRA_ROLE_MENTOR);
    lindra_roster_free(roster);
    /* A member whose name this device does not hold is never a bare id. */
    lindra_roster_entry nameless = {.display_name = "", .status = LINDRA_MEMBER_WITHDRAWN};
    CHECK(strcmp(lindra_member_name(&nameless), "a withdrawn member") == 0);
    nameless.status = LINDRA_MEMBER_ACTIVE;
    CHECK(strstr(lindra_member_name(&nameless), "not synced yet") != NULL);
    nameless.display_name = "Kari Lie";
    CHECK(strcmp(lindra_member_name(&nameless), "Kari Lie") == 0);
    CHECK(strcmp(lindra_member_name(NULL), "") == 0);
    lindra_module_list* modules = NULL;
    MUST(lindra_replica_modules(tablet, &course, &modules, &err));
    CHECK(modules->count == 1 && modules->items[0].has_pass_score && modules->items[0].pass_score == 80);
    lindra_module_list_free(modules);
    lindra_gathering_list* gatherings = NULL;
    MUST(lindra_replica_gatherings(tablet, &group, &gatherings, &err));
    CHECK(gatherings->count == 1 && gatherings->items[0].scheduled_at == 1772000000000 &&
          lindra_id_is_nil(&gatherings->items[0].module));
    lindra_gathering_list_free(gatherings);
    lindra_person* person = NULL;
    MUST(lindra_replica_person(tablet, &ola, &person, &err));
    CHECK(person && strcmp(person->display_name, "Ola Nordmann") == 0 && person->profession == LINDRA_PROFESSION_ASSISTANT);
    lindra_person_free(person);
    lindra_id found;
    bool hit = false;
    MUST(lindra_replica_find(tablet, "person", "mia", &found, &hit, &err));
    CHECK(hit && memcmp(found.bytes, mia.bytes, 16) == 0);
    /* An id this tablet does not hold: no row, no error. */
    lindra_id unknown = {{0}};
    unknown.bytes[0] = 7;
    MUST(lindra_replica_person(tablet, &unknown, &person, &err));
    CHECK(person == NULL);
    /* No certificate yet: an empty list, and a clear not-found. */
    lindra_id_list* certificates = NULL;
    MUST(lindra_replica_certificates_of(tablet, &ola, &certificates, &err));
    CHECK(certificates && certificates->count == 0);
    lindra_id_list_free(certificates);
    lindra_certificate_check* check = NULL;
    CHECK(!lindra_replica_verify_certificate(tablet, &unknown, &check, &err));
    CHECK(err.code == LINDRA_ERR_NOT_FOUND && check == NULL);
    /* A credential from elsewhere that is not one: an answer, not an error. */
    MUST(lindra_replica_verify_credential(tablet, "not.a.credential", &check, &err));
    CHECK(check->status == LINDRA_CERTIFICATE_BAD_SIGNATURE && strlen(check->reason) > 0);
    lindra_certificate_check_free(check);
    check = NULL;
    CHECK(!lindra_replica_verify_credential(tablet, NULL, &check, &err) && err.code == LINDRA_ERR_INVALID_ARGUMENT);
    CHECK(!lindra_replica_revoke_certificate(tablet, &unknown, "issued in error", &err) &&
          err.code == LINDRA_ERR_NOT_FOUND);
    /* The coordinator's completion report: Ola has not passed M1 yet. */
    char* csv = NULL;
    MUST(lindra_replica_completion_report_csv(office, &group, NULL, &csv, &err));
    CHECK(strncmp(csv, "organization,group,course,person,person_id,membership,", 54) == 0);
    CHECK(strstr(csv, "\r\nFjordvik,Fjordvik spring,Palliative care,Ola Nordmann,") != NULL);
    CHECK(strstr(csv, ",missing,,,,,\"module 1 \"\"M1: Basics\"\" not passed;") != NULL);
    CHECK(strstr(csv, "Mia Mentor,") == NULL); /* mentors are not candidates */
    lindra_string_free(csv);
    char* table = NULL;
    MUST(lindra_replica_completion_report_table(office, NULL, &org, &table, &err));
    CHECK(strncmp(table, "Fjordvik spring - Palliative care, Fjordvik\n", 44) == 0);
    CHECK(strstr(table, "  Ola Nordmann  0/1 ") != NULL);
    lindra_string_free(table);
    csv = NULL;
    CHECK(!lindra_replica_completion_report_csv(office, &unknown, NULL, &csv, &err));
    CHECK(err.code == LINDRA_ERR_NOT_FOUND && csv == NULL);
    CHECK(!lindra_replica_completion_report_table(office, &group, &org, &table, &err));
    CHECK(err.code == LINDRA_ERR_INVALID_ARGUMENT);
    CHECK(!lindra_replica_completion_report_csv(office, NULL, NULL, &csv, &err));
    CHECK(err.code == LINDRA_ERR_INVALID_ARGUMENT && csv == NULL);
    char text[37];
    lindra_id parsed;
    lindra_id_format(&ola, text);
    MUST(lindra_id_parse(text, &parsed, &err));
    CHECK(memcmp(parsed.bytes, ola.bytes, 16) == 0);

    /* ---- offline: the server is gone, Ola works on ---- */
    lindra_mock_server_stop(mock);
    ola_work work = {.ola = ola, .module = module, .group = group};
    MUST(lindra_replica_batch(tablet, offline_work, &work, &err));
    int64_t pending = 0;
    MUST(lindra_replica_outbox_size(tablet, &pending, &err));
    CHECK(pending > 0);

    /* Bad input: a clear error, and nothing written. */
    CHECK(!lindra_replica_record_score(tablet, &ola, &module, &group, 150, &err));
    CHECK(err.code == LINDRA_ERR_OUT_OF_RANGE);
    CHECK(strcmp(err.field, "module_progress.best_score") == 0);
    lindra_field_value fv = {.field = "name", .kind = LINDRA_VALUE_TEXT, .text = "x"};
    CHECK(!lindra_replica_create(tablet, "no_such_entity", &fv, 1, NULL, &err));
    CHECK(err.code == LINDRA_ERR_UNKNOWN_ENTITY);
    CHECK(!lindra_replica_register_person(tablet, "Bad", (lindra_profession)42, NULL, NULL, &err));
    CHECK(err.code == LINDRA_ERR_BAD_ENUM_VALUE);
    CHECK(!lindra_replica_start_module(tablet, NULL, &module, &group, &err));
    CHECK(err.code == LINDRA_ERR_INVALID_ARGUMENT);
    CHECK(!lindra_id_parse("not-an-id", &parsed, &err));
    CHECK(err.code == LINDRA_ERR_INVALID_ARGUMENT);
    CHECK(!lindra_replica_batch(tablet, keep_none, &ola, &err));
    CHECK(err.code == LINDRA_ERR_ABORTED);
    int64_t after = 0;
    MUST(lindra_replica_outbox_size(tablet, &after, &err));
    CHECK(after == pending);

    /* A file that is not a replica: refused by its own code, named, left as it was. */
    char notes_path[256], notes[64] = {0};
    snprintf(notes_path, sizeof notes_path, "%s/notes.txt", dir);
    FILE* f = fopen(notes_path, "w");
    MUST(f);
    fputs("not a database\n", f);
    fclose(f);
    CHECK(lindra_replica_open(notes_path, &err) == NULL);
    CHECK(err.code == LINDRA_ERR_NOT_A_REPLICA);
    CHECK(strstr(err.message, notes_path) != NULL);
    f = fopen(notes_path, "r");
    MUST(f);
    CHECK(fread(notes, 1, sizeof notes - 1, f) == 15 && strcmp(notes, "not a database\n") == 0);
    fclose(f);
    MUST(lindra_replica_count(tablet, "organization", &n, &err));
    CHECK(n == 1);

    r = lindra_sync_client_sync(sync, &err);
    MUST(r);
    CHECK(r->outcome == LINDRA_OUTCOME_OFFLINE);
    CHECK(strcmp(lindra_sync_outcome_name(r->outcome), "offline") == 0);
    lindra_sync_result_free(r);
    lindra_sync_status* status = lindra_sync_client_status(sync, &err);
    MUST(status);
    CHECK(status->state == LINDRA_SYNC_OFFLINE);
    CHECK(status->message[0] != '\0');
    CHECK(status->has_last_synced);
    CHECK(status->pending == pending);
    lindra_sync_status_free(status);

    /* ---- back online: an asynchronous round, and a refused write ---- */
    MUST(lindra_mock_server_start(mock, &err));
    lindra_id stranger;
    MUST(lindra_replica_register_person(tablet, "Kari Haugen", LINDRA_PROFESSION_NURSE, &org, &stranger, &err));
    MUST(lindra_sync_client_sync_async(sync, on_done, &s, &err));
    for (int i = 0; i < 2000 && !atomic_load(&s.done); ++i) sleep_ms(10);
    CHECK(atomic_load(&s.done));
    MUST(s.result);
    CHECK(s.result->outcome == LINDRA_OUTCOME_OK);
    CHECK(s.result->rejected_count == 1);
    if (s.result->rejected_count == 1) {
        CHECK(strcmp(s.result->rejected[0].code, "permission_denied") == 0);
        CHECK(strcmp(s.result->rejected[0].entity, "person") == 0);
        CHECK(s.result->rejected[0].row_removed);
        CHECK(memcmp(s.result->rejected[0].row.bytes, stranger.bytes, 16) == 0);
        CHECK(s.result->rejected[0].field_count > 0);
        /* What Ola typed comes back with the refusal... */
        const char* name = text_of(s.result->rejected[0].values, s.result->rejected[0].value_count, "display_name");
        CHECK(name && strcmp(name, "Kari Haugen") == 0);
        CHECK(s.result->rejected[0].refused_id > 0);
    }
    lindra_sync_result_free(s.result);
    CHECK(atomic_load(&s.rejected) == 1);
    CHECK(strcmp(s.rejected_entity, "person") == 0);
    CHECK(strcmp(s.rejected_name, "Kari Haugen") == 0);
    /* ...and stays on the tablet until the app dismisses it. */
    lindra_refused_list* refused = NULL;
    MUST(lindra_replica_refused_writes(tablet, &refused, &err));
    CHECK(refused->count == 1);
    if (refused->count == 1) {
        const lindra_refused_write* w = &refused->items[0];
        CHECK(w->id == atomic_load(&s.rejected_id));
        CHECK(strcmp(w->entity, "person") == 0 && memcmp(w->row.bytes, stranger.bytes, 16) == 0);
        CHECK(strcmp(w->code, "permission_denied") == 0 && w->reason[0] != '\0');
        const char* name = text_of(w->values, w->value_count, "display_name");
        CHECK(name && strcmp(name, "Kari Haugen") == 0);
        for (size_t i = 0; i < w->value_count; ++i)
            if (strcmp(w->values[i].field, "organization") == 0)
                CHECK(w->values[i].kind == LINDRA_VALUE_ID && memcmp(w->values[i].id.bytes, org.bytes, 16) == 0);
        CHECK(w->written_at > 0 && w->refused_at >= w->written_at - 1000);
    }
    lindra_refused_list_free(refused);
    bool dismissed = true;
    MUST(lindra_replica_dismiss_refused(tablet, atomic_load(&s.rejected_id) + 1, &dismissed, &err));
    CHECK(!dismissed);
    MUST(lindra_replica_dismiss_refused(tablet, atomic_load(&s.rejected_id), &dismissed, &err));
    CHECK(dismissed);
    MUST(lindra_replica_refused_writes(tablet, &refused, &err));
    CHECK(refused != NULL && refused->count == 0);
    lindra_refused_list_free(refused);
    int64_t all = -1;
    MUST(lindra_replica_dismiss_all_refused(tablet, &all, &err));
    CHECK(all == 0);
    CHECK(!lindra_replica_refused_writes(tablet, NULL, &err) && err.code == LINDRA_ERR_INVALID_ARGUMENT);
    CHECK(atomic_load(&s.progress_calls) > 0);
    CHECK(atomic_load(&s.max_push_remaining) >= (unsigned long long)pending);
    CHECK(atomic_load(&s.states[LINDRA_SYNC_CONNECTING]) > 0);
    CHECK(atomic_load(&s.states[LINDRA_SYNC_PUSHING]) > 0);
    CHECK(atomic_load(&s.states[LINDRA_SYNC_OFFLINE]) > 0);
    CHECK(atomic_load(&s.states[LINDRA_SYNC_IDLE]) > 0);
    MUST(lindra_replica_outbox_size(tablet, &n, &err));
    CHECK(n == 0);
    MUST(lindra_replica_person(tablet, &stranger, &person, &err));
    CHECK(person == NULL); /* rolled back */
    MUST(lindra_mock_server_count(mock, "reflection", &n, &err));
    CHECK(n == 1);

    /* ---- a lost acknowledgement: the retry counts once ---- */
    MUST(lindra_replica_add_time_spent(tablet, &ola, &module, &group, 30, &err));
    lindra_mock_server_lose_push_ack(mock, 1);
    r = lindra_sync_client_sync(sync, &err);
    MUST(r);
    CHECK(r->outcome == LINDRA_OUTCOME_OFFLINE);
    lindra_sync_result_free(r);
    lindra_mock_server_refuse_connections(mock, 1);
    r = lindra_sync_client_wait_until_synced(sync, 20000, &err);
    MUST(r);
    CHECK(r->outcome == LINDRA_OUTCOME_OK);
    lindra_sync_result_free(r);
    lindra_sync_client_cancel(sync); /* nothing runs: no-op */

    /* ---- cancel a slow round: it ends soon, and the write waits ---- */
    MUST(lindra_replica_add_time_spent(tablet, &ola, &module, &group, 5, &err));
    lindra_mock_server_delay_push_ack(mock, 3000, 1);
    seen c = {0};
    const int pushing = atomic_load(&s.states[LINDRA_SYNC_PUSHING]);
    MUST(lindra_sync_client_sync_async(sync, on_done, &c, &err));
    for (int i = 0; i < 500 && atomic_load(&s.states[LINDRA_SYNC_PUSHING]) == pushing; ++i) sleep_ms(10);
    CHECK(atomic_load(&s.states[LINDRA_SYNC_PUSHING]) > pushing); /* this round is pushing */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    lindra_sync_client_cancel(sync);
    for (int i = 0; i < 2000 && !atomic_load(&c.done); ++i) sleep_ms(5);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    CHECK(atomic_load(&c.done));
    CHECK((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 < 2000); /* not the 3 s delay */
    MUST(c.result);
    CHECK(c.result->outcome == LINDRA_OUTCOME_CANCELLED);
    lindra_sync_result_free(c.result);
    r = lindra_sync_client_wait_until_synced(sync, 20000, &err);
    MUST(r);
    CHECK(r->outcome == LINDRA_OUTCOME_OK);
    lindra_sync_result_free(r);

    /* The office sees Ola's progress as her tablet wrote it. */
    r = lindra_sync_client_sync(office_sync, &err);
    MUST(r);
    CHECK(r->outcome == LINDRA_OUTCOME_OK);
    lindra_sync_result_free(r);
    lindra_progress_list* progress = NULL;
    MUST(lindra_replica_progress_of(office, &ola, &progress, &err));
    CHECK(progress->count == 1);
    if (progress->count == 1) {
        CHECK(progress->items[0].status == LINDRA_PROGRESS_PASSED);
        CHECK(progress->items[0].has_best_score && progress->items[0].best_score == 90);
        CHECK(progress->items[0].time_spent_s == 635);
        CHECK(progress->items[0].has_first_completed_at);
    }
    lindra_progress_list_free(progress);
    /* An empty list is a list. */
    MUST(lindra_replica_groups_of(office, &unknown, &groups, &err));
    CHECK(groups != NULL && groups->count == 0);
    lindra_group_list_free(groups);

    /* ---- the coordinator imports a registration list: all of it or nothing ---- */
    const char list[] = "\xEF\xBB\xBFgroup,display_name,role,profession,organization\r\n"
                        "Fjordvik spring,\"Lie, Kari\",candidate,nurse,Fjordvik\r\n"
                        "Fjordvik spring,Ola Nordmann,candidate,assistant,Fjordvik\r\n";
    lindra_registration_import summary = {0};
    MUST(lindra_replica_import_registrations(office, list, sizeof list - 1, &summary, &err));
    CHECK(summary.lines == 2 && summary.people_created == 1 && summary.people_existing == 1);
    CHECK(summary.memberships_added == 1 && summary.memberships_unchanged == 1 && summary.memberships_withdrawn == 0);
    int64_t listed = 0, relisted = 0;
    MUST(lindra_replica_outbox_size(office, &listed, &err));
    MUST(lindra_replica_import_registrations(office, list, sizeof list - 1, &summary, &err));
    CHECK(summary.people_created == 0 && summary.memberships_added == 0 && summary.memberships_unchanged == 2);
    MUST(lindra_replica_outbox_size(office, &relisted, &err));
    CHECK(relisted == listed); /* again: nothing written */
    const char bad[] = "group,display_name,role,profession,organization\n"
                       "Fjordvik spring,Per Dahl,candidate,nurse,Fjordvik\n"
                       "Fjordvik spring,Siri Berg,boss,nurse,Fjordvik\n";
    CHECK(!lindra_replica_import_registrations(office, bad, sizeof bad - 1, NULL, &err));
    CHECK(err.code == LINDRA_ERR_BAD_ENUM_VALUE && strcmp(err.field, "role") == 0);
    CHECK(strncmp(err.message, "line 3, role: ", 14) == 0);
    MUST(lindra_replica_outbox_size(office, &relisted, &err));
    CHECK(relisted == listed); /* Per Dahl's line was good, and is not written either */
    CHECK(!lindra_replica_import_registrations(office, NULL, 4, NULL, &err));
    CHECK(err.code == LINDRA_ERR_INVALID_ARGUMENT);
    /* ---- a shared tablet: Ola's own file, and signing out of it ---- */
    char shared_path[512];
    CHECK(!lindra_user_replica_path(dir, "ola", shared_path, 8, &err) && err.code == LINDRA_ERR_TOO_LONG);
    CHECK(!lindra_user_replica_path(dir, "", shared_path, sizeof shared_path, &err) &&
          err.code == LINDRA_ERR_INVALID_ARGUMENT);
    MUST(lindra_user_replica_path(dir, "ola", shared_path, sizeof shared_path, &err));
    CHECK(strncmp(shared_path, dir, strlen(dir)) == 0 && strstr(shared_path + strlen(dir), "ola") == NULL);
    lindra_replica* shared = lindra_replica_open(shared_path, &err);
    MUST(shared);
    MUST(lindra_replica_add_time_spent(shared, &ola, &module, &group, 7, &err));
    lindra_sync_options sign_out_options;
    lindra_mock_server_client_options(mock, token, &sign_out_options);
    lindra_mock_server_stop(mock);
    lindra_sign_out_result* out = lindra_sign_out(&shared, &sign_out_options, false, &err);
    MUST(out);
    CHECK(out->status == LINDRA_SIGN_OUT_KEPT);
    CHECK(strcmp(lindra_sign_out_status_name(out->status), "kept") == 0);
    CHECK(out->sync.outcome == LINDRA_OUTCOME_OFFLINE);
    CHECK(out->pending_writes == 1 && out->refused_writes == 0 && out->deleted_file_count == 0);
    lindra_sign_out_result_free(out);
    CHECK(shared != NULL && access(shared_path, F_OK) == 0); /* kept, and still open */
    MUST(lindra_replica_outbox_size(shared, &n, &err));
    CHECK(n == 1);
    MUST(lindra_mock_server_start(mock, &err));
    out = lindra_sign_out(&shared, &sign_out_options, false, &err);
    MUST(out);
    CHECK(out->status == LINDRA_SIGNED_OUT);
    CHECK(out->sync.outcome == LINDRA_OUTCOME_OK && out->pending_writes == 0);
    CHECK(out->deleted_file_count >= 1 && strcmp(out->deleted_files[out->deleted_file_count - 1], shared_path) == 0);
    lindra_sign_out_result_free(out);
    CHECK(shared == NULL && access(shared_path, F_OK) != 0);
    CHECK(lindra_sign_out(&shared, &sign_out_options, false, &err) == NULL && err.code == LINDRA_ERR_INVALID_ARGUMENT);

    /* ---- Ola is withdrawn: her tablet says which group she left ---- */
    MUST(lindra_replica_withdraw_member(office, &group, &ola, &err));
    r = lindra_sync_client_sync(office_sync, &err);
    MUST(r);
    CHECK(r->outcome == LINDRA_OUTCOME_OK);
    lindra_sync_result_free(r);
    r = lindra_sync_client_sync(sync, &err);
    MUST(r);
    CHECK(r->outcome == LINDRA_OUTCOME_OK);
    CHECK(r->rows_purged > 0 && r->purged_count > 0);
    int64_t purged_rows = 0;
    const lindra_purged_scope* left = NULL;
    for (size_t i = 0; i < r->purged_count; ++i) {
        purged_rows += r->purged[i].rows;
        if (r->purged[i].kind == LINDRA_PURGE_GROUP) left = &r->purged[i];
    }
    CHECK(purged_rows == r->rows_purged);
    CHECK(left != NULL);
    if (left) {
        CHECK(memcmp(left->group.bytes, group.bytes, 16) == 0 && lindra_id_is_nil(&left->person));
        CHECK(strcmp(left->group_name, "Fjordvik spring") == 0 && strcmp(left->person_name, "") == 0);
    }
    lindra_sync_result_free(r);
    MUST(lindra_replica_groups_of(tablet, &ola, &groups, &err));
    CHECK(groups->count == 0);
    lindra_group_list_free(groups);

    /* ---- the log heard it all, and nothing personal ---- */
    lindra_log_set_callback(NULL, LINDRA_LOG_OFF, NULL);
    CHECK(atomic_load(&log_lines) > 10);
    CHECK(strstr(log_text, "round ok") != NULL);
    CHECK(strstr(log_text, token) == NULL);
    CHECK(strstr(log_text, admin) == NULL);
    CHECK(strstr(log_text, "Ola") == NULL);
    CHECK(strstr(log_text, "Kari") == NULL);
    CHECK(strstr(log_text, dir) == NULL);

    lindra_sync_client_free(sync);
    lindra_sync_client_free(office_sync);
    lindra_replica_free(tablet);
    lindra_replica_free(office);
    lindra_string_free(token);
    lindra_string_free(admin);
    lindra_mock_server_free(mock);
    nftw(dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
    if (failures) {
        fprintf(stderr, "%d checks failed\n", failures);
        return 1;
    }
    puts("capi_test: all checks passed");
    return 0;
}
