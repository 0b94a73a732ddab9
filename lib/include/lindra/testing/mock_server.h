/* lindra/testing/mock_server.h — lindra::testing::MockServer from C, for the
 * integration tests of apps that reach lindra through the C API (Swift,
 * Kotlin): the real server on 127.0.0.1, a port of its own, a temporary
 * store, TLS with a certificate it makes or plain TCP, and the faults an
 * app's tests script most. In liblindra.so beside lindra.h; conventions
 * as there. For tests only.
 *
 * Thread-safety: every function may be called from any thread while
 * clients sync, except lindra_mock_server_free.
 */
#ifndef LINDRA_TESTING_MOCK_SERVER_H
#define LINDRA_TESTING_MOCK_SERVER_H

#include <lindra/lindra.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lindra_mock_server lindra_mock_server;

/* Who a token says its holder is (lindra::Role). */
typedef enum lindra_token_role LINDRA_ENUM {
    LINDRA_TOKEN_CANDIDATE,
    LINDRA_TOKEN_MENTOR,
    LINDRA_TOKEN_COORDINATOR,
    LINDRA_TOKEN_ADMIN
} lindra_token_role;

/* Starts a server: TLS if `tls`, else plain TCP (insecure clients). */
LINDRA_API lindra_mock_server* lindra_mock_server_new(bool tls, lindra_error* error) LINDRA_NOEXCEPT;
/* Stops it and removes its store. */
LINDRA_API void lindra_mock_server_free(lindra_mock_server* server) LINDRA_NOEXCEPT;

/* Options for a client of this server: host, port, TLS trust or insecure,
 * short timeouts, and `token` itself (the caller's pointer). The other
 * strings in *out belong to the server and live as long as it does; the
 * callbacks are left NULL. */
LINDRA_API void lindra_mock_server_client_options(lindra_mock_server* server, const char* token,
                                                  lindra_sync_options* out) LINDRA_NOEXCEPT;
/* A signed token; `person` and `organization` may be NULL. Free it with
 * lindra_string_free (lindra.h). */
LINDRA_API char* lindra_mock_server_token(const lindra_mock_server* server, const char* user, lindra_token_role role,
                                          const lindra_id* person, const lindra_id* organization,
                                          lindra_error* error) LINDRA_NOEXCEPT;

/* Rows of `entity` the server holds. */
LINDRA_API bool lindra_mock_server_count(lindra_mock_server* server, const char* entity, int64_t* out,
                                         lindra_error* error) LINDRA_NOEXCEPT;
/* Writes the server received, a retried push counted again. */
LINDRA_API size_t lindra_mock_server_pushed_count(const lindra_mock_server* server) LINDRA_NOEXCEPT;

/* Faults: the next `count` connections are closed as soon as accepted;
 * the `nth` PushAck from now is lost after the server committed its push. */
LINDRA_API void lindra_mock_server_refuse_connections(lindra_mock_server* server, int count) LINDRA_NOEXCEPT;
LINDRA_API void lindra_mock_server_lose_push_ack(lindra_mock_server* server, int nth) LINDRA_NOEXCEPT;
/* The `nth` PushAck from now is sent `delay_ms` late: a slow round to cancel. */
LINDRA_API void lindra_mock_server_delay_push_ack(lindra_mock_server* server, uint32_t delay_ms,
                                                  int nth) LINDRA_NOEXCEPT;
/* Stops accepting until lindra_mock_server_start (clients find it offline). */
LINDRA_API void lindra_mock_server_stop(lindra_mock_server* server) LINDRA_NOEXCEPT;
LINDRA_API bool lindra_mock_server_start(lindra_mock_server* server, lindra_error* error) LINDRA_NOEXCEPT;

#ifdef __cplusplus
}
#endif

#endif /* LINDRA_TESTING_MOCK_SERVER_H */
