// The C API of lindra::SyncClient and of lindra's log.
#include "capi/capi.hpp"
#include "capi/handles.hpp"

#include <lindra/log.hpp>
#include <lindra/sync.hpp>

#include <chrono>
#include <cstring>
#include <memory>
#include <thread>

using namespace lindra;
using namespace lindra::capi;

static_assert(static_cast<int>(SyncPhase::done) == LINDRA_PHASE_DONE);
static_assert(static_cast<int>(SyncState::error) == LINDRA_SYNC_ERROR);
static_assert(static_cast<int>(SyncOutcome::timed_out) == LINDRA_OUTCOME_TIMED_OUT);
static_assert(static_cast<int>(LogLevel::off) == LINDRA_LOG_OFF);
static_assert(static_cast<int>(SignOutStatus::forced) == LINDRA_SIGN_OUT_FORCED);

struct lindra_sync_client {
    std::unique_ptr<SyncClient> client;
};

// put() and to_c() overload those of capi.hpp, so they live beside them.
namespace lindra::capi {

std::int64_t epoch_ms(std::chrono::system_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

lindra_sync_progress to_c(const SyncProgress& p) {
    return {static_cast<lindra_sync_phase>(p.phase),
            p.changes_pushed,
            p.changes_pulled,
            p.bytes_sent,
            p.bytes_received,
            p.push_remaining,
            p.pull_remaining,
            p.writes_pushed};
}

// Strings of `status` are borrowed from it, as `keep` says: a Block's
// copies for a result, or the C++ object's own for a callback.
template <class Keep>
lindra_sync_status to_c(const SyncStatus& s, Keep&& keep) {
    return {
        static_cast<lindra_sync_state>(s.state),      keep(s.error_code), keep(s.message), s.last_synced.has_value(),
        s.last_synced ? epoch_ms(*s.last_synced) : 0, s.pending};
}

void put(Block& b, lindra_sync_rejection& out, const SyncRejection& r) {
    auto** fields = b.alloc<const char*>(r.fields.size());
    for (std::size_t i = 0; i < r.fields.size(); ++i) fields[i] = b.str(r.fields[i]);
    out = {r.seq,  b.str(r.code), b.str(r.reason), b.str(r.entity),         to_c(r.row), r.fields.size(),
           fields, r.row_removed, r.values.size(), put_values(b, r.values), r.refused_id};
}

void put(Block& b, lindra_purged_scope& out, const PurgedScope& p) {
    // ScopeKind numbers its purgeable kinds as C does (catalog, 0, is never purged).
    static_assert(static_cast<int>(ScopeKind::group) == LINDRA_PURGE_GROUP &&
                  static_cast<int>(ScopeKind::person) == LINDRA_PURGE_PERSON &&
                  static_cast<int>(ScopeKind::person_in_group) == LINDRA_PURGE_PERSON_IN_GROUP &&
                  static_cast<int>(ScopeKind::personal) == LINDRA_PURGE_PERSONAL);
    out = {p.kind ? static_cast<lindra_purge_kind>(*p.kind) : LINDRA_PURGE_UNKNOWN,
           to_c(p.group),
           to_c(p.person),
           b.str(p.group_name),
           b.str(p.person_name),
           p.rows};
}

void put(Block& b, lindra_sync_result& o, const SyncResult& r) {
    o = {static_cast<lindra_sync_outcome>(r.outcome),
         b.str(r.message),
         b.str(r.error_code),
         r.retry_after_ms,
         r.changes_pushed,
         r.changes_pulled,
         r.rows_purged,
         r.bytes_sent,
         r.bytes_received,
         r.rejected.size(),
         b.alloc<lindra_sync_rejection>(r.rejected.size()),
         r.writes_pushed,
         r.purged.size(),
         b.alloc<lindra_purged_scope>(r.purged.size())};
    for (std::size_t i = 0; i < r.rejected.size(); ++i) put(b, o.rejected[i], r.rejected[i]);
    for (std::size_t i = 0; i < r.purged.size(); ++i) put(b, o.purged[i], r.purged[i]);
}

lindra_sync_result* build_result(const SyncResult& r) {
    return build([&](Block& b) {
        auto* o = b.alloc<lindra_sync_result>(1);
        put(b, *o, r);
        return o;
    });
}

SyncOptions options_from(const lindra_sync_options& c) {
    SyncOptions o;
    if (c.url) {
        o.url = c.url;
        (void)parse_server_url(o.url);  // a bad URL is the caller's error now, not a failed round later
    }
    if (c.host) o.host = c.host;
    o.port = c.port;
    o.token = text(c.token);
    o.tls.ca_pem = text(c.ca_pem);
    o.tls.server_name = text(c.server_name);
    if (c.extra_ca_count > 0) need(c.extra_ca_pems, "extra_ca_pems");
    for (std::size_t i = 0; i < c.extra_ca_count; ++i)
        o.tls.extra_ca_pems.push_back(need_text(c.extra_ca_pems[i], "extra CA"));
    if (c.proxy) o.proxy = std::string(c.proxy);
    if (c.pin_count > 0) need(c.pins, "pins");
    for (std::size_t i = 0; i < c.pin_count; ++i) o.tls.pins.push_back(need_text(c.pins[i], "pin"));
    o.insecure = c.insecure;
    if (c.app) o.app = c.app;
    if (c.connect_timeout_ms) o.connect_timeout = std::chrono::milliseconds(c.connect_timeout_ms);
    if (c.io_timeout_ms) o.io_timeout = std::chrono::milliseconds(c.io_timeout_ms);
    void* context = c.context;
    if (auto* fn = c.on_progress)
        o.on_progress = [fn, context](const SyncProgress& p) {
            const auto progress = to_c(p);
            fn(&progress, context);
        };
    if (auto* fn = c.on_status)
        o.on_status = [fn, context](const SyncStatus& s) {
            const auto status = to_c(s, [](const std::string& t) { return t.c_str(); });
            fn(&status, context);
        };
    if (auto* fn = c.on_rejected)
        o.on_rejected = [fn, context](const SyncRejection& r) {
            const std::unique_ptr<lindra_sync_rejection, void (*)(void*)> rejection(
                build([&](Block& b) {
                    auto* out = b.alloc<lindra_sync_rejection>(1);
                    put(b, *out, r);
                    return out;
                }),
                std::free);
            fn(rejection.get(), context);
        };
    return o;
}

}  // namespace lindra::capi

extern "C" {

const char* lindra_sync_outcome_name(lindra_sync_outcome outcome) noexcept {
    if (outcome < LINDRA_OUTCOME_OK || outcome > LINDRA_OUTCOME_TIMED_OUT) return "?";
    return to_string(static_cast<SyncOutcome>(outcome)).data();  // static, NUL-terminated literals
}

const char* lindra_sync_state_name(lindra_sync_state state) noexcept {
    if (state < LINDRA_SYNC_IDLE || state > LINDRA_SYNC_ERROR) return "?";
    return to_string(static_cast<SyncState>(state)).data();
}

lindra_sync_client* lindra_sync_client_new(lindra_replica* replica, const lindra_sync_options* options,
                                           lindra_error* error) noexcept {
    lindra_sync_client* out = nullptr;
    try_catch(error, [&] {
        auto o = options_from(need(options, "options"));
        out = new lindra_sync_client{std::make_unique<SyncClient>(need(replica, "replica").replica, std::move(o))};
    });
    return out;
}

void lindra_sync_client_free(lindra_sync_client* client) noexcept {
    delete client;
}

lindra_sync_result* lindra_sync_client_sync(lindra_sync_client* client, lindra_error* error) noexcept {
    lindra_sync_result* out = nullptr;
    try_catch(error, [&] { out = build_result(need(client, "client").client->sync()); });
    return out;
}

bool lindra_sync_client_sync_async(lindra_sync_client* client, void (*done)(lindra_sync_result*, void*), void* context,
                                   lindra_error* error) noexcept {
    return try_catch(error, [&] {
        auto& c = need(client, "client");
        need(done, "done");
        c.client->sync_async([done, context](SyncResult r) {
            lindra_sync_result* result = nullptr;
            try {
                result = build_result(r);
            } catch (...) {
                // Out of memory: `done` still hears the round ended.
            }
            done(result, context);
        });
    });
}

lindra_sync_result* lindra_sync_client_wait_until_synced(lindra_sync_client* client, uint32_t timeout_ms,
                                                         lindra_error* error) noexcept {
    lindra_sync_result* out = nullptr;
    try_catch(error, [&] {
        out = build_result(need(client, "client").client->wait_until_synced(std::chrono::milliseconds(timeout_ms)));
    });
    return out;
}

void lindra_sync_client_cancel(lindra_sync_client* client) noexcept {
    try_catch(nullptr, [&] { need(client, "client").client->cancel(); });
}

lindra_sync_status* lindra_sync_client_status(const lindra_sync_client* client, lindra_error* error) noexcept {
    lindra_sync_status* out = nullptr;
    try_catch(error, [&] {
        const SyncStatus s = need(client, "client").client->status();
        out = build([&](Block& b) {
            auto* o = b.alloc<lindra_sync_status>(1);
            *o = to_c(s, [&](const std::string& t) { return b.str(t); });
            return o;
        });
    });
    return out;
}

void lindra_sync_result_free(lindra_sync_result* result) noexcept {
    std::free(result);
}
void lindra_sync_status_free(lindra_sync_status* status) noexcept {
    std::free(status);
}

bool lindra_user_replica_path(const char* directory, const char* user, char* out, std::size_t size,
                              lindra_error* error) noexcept {
    return try_catch(error, [&] {
        const std::string path = user_replica_path(need_text(directory, "directory"), need_text(user, "user"));
        need(out, "out");
        if (path.size() >= size)
            throw Error(Errc::too_long, "the replica path needs " + std::to_string(path.size() + 1) +
                                            " bytes, the buffer has " + std::to_string(size));
        std::memcpy(out, path.c_str(), path.size() + 1);
    });
}

const char* lindra_sign_out_status_name(lindra_sign_out_status status) noexcept {
    if (status < LINDRA_SIGNED_OUT || status > LINDRA_SIGN_OUT_FORCED) return "?";
    return to_string(static_cast<SignOutStatus>(status)).data();
}

lindra_sign_out_result* lindra_sign_out(lindra_replica** replica, const lindra_sync_options* options, bool force,
                                        lindra_error* error) noexcept {
    lindra_sign_out_result* out = nullptr;
    try_catch(error, [&] {
        auto& handle = need(need(replica, "replica"), "*replica");
        if (handle.batch_thread.load() == std::this_thread::get_id())
            throw Error(Errc::invalid_argument, "cannot sign out inside a batch: the batch would outlive its replica");
        const auto o = options_from(need(options, "options"));
        // From here the handle's replica is sign_out's: on an error it is
        // closed, and so is the handle.
        std::unique_ptr<lindra_replica> owned(&handle);
        *replica = nullptr;
        auto r = sign_out(std::move(owned->replica), o, force);
        out = build([&](Block& b) {
            auto* c = b.alloc<lindra_sign_out_result>(1);
            c->status = static_cast<lindra_sign_out_status>(r.status);
            put(b, c->sync, r.sync);
            c->pending_writes = r.pending_writes;
            c->refused_writes = r.refused_writes;
            c->deleted_file_count = r.deleted_files.size();
            c->deleted_files = b.alloc<const char*>(r.deleted_files.size());
            for (std::size_t i = 0; i < r.deleted_files.size(); ++i) c->deleted_files[i] = b.str(r.deleted_files[i]);
            return c;
        });
        if (r.replica) {  // kept: the handle goes on
            owned->replica = std::move(*r.replica);
            *replica = owned.release();
        }
    });
    return out;
}

void lindra_sign_out_result_free(lindra_sign_out_result* result) noexcept {
    std::free(result);
}

void lindra_log_set_callback(void (*fn)(lindra_log_level, const char*, const char*, void*), lindra_log_level min,
                             void* context) noexcept {
    try {
        if (!fn || min < LINDRA_LOG_DEBUG || min >= LINDRA_LOG_OFF) {
            set_log_handler({});
            return;
        }
        set_log_handler(
            [fn, context](LogLevel level, std::string_view domain, std::string_view message) {
                const std::string d(domain), m(message);
                fn(static_cast<lindra_log_level>(level), d.c_str(), m.c_str(), context);
            },
            static_cast<LogLevel>(min));
    } catch (...) {
        // Out of memory making the handler: lindra stays silent.
        set_log_handler({});
    }
}

}  // extern "C"
