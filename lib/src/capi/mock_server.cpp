// The C API of lindra::testing::MockServer (lindra/testing/mock_server.h).
#include "capi/capi.hpp"

#include <lindra/testing/mock_server.h>
#include <lindra/testing/mock_server.hpp>

using namespace lindra;
using namespace lindra::capi;

static_assert(static_cast<int>(Role::admin) == LINDRA_TOKEN_ADMIN);

struct lindra_mock_server {
    testing::MockServer mock;
    bool tls;
    std::string host = "127.0.0.1";  // what client_options' pointers borrow
};

extern "C" {

lindra_mock_server* lindra_mock_server_new(bool tls, lindra_error* error) noexcept {
    lindra_mock_server* out = nullptr;
    try_catch(error, [&] { out = new lindra_mock_server{testing::MockServer({.tls = tls}), tls}; });
    return out;
}

void lindra_mock_server_free(lindra_mock_server* server) noexcept {
    delete server;
}

void lindra_mock_server_client_options(lindra_mock_server* server, const char* token,
                                       lindra_sync_options* out) noexcept {
    if (!out) return;
    *out = {};
    try_catch(nullptr, [&] {
        const SyncOptions o = need(server, "server").mock.client_options({});
        out->host = server->host.c_str();
        out->port = server->mock.port();
        out->token = token;
        out->ca_pem = server->tls ? server->mock.ca_pem().c_str() : nullptr;
        out->insecure = !server->tls;
        out->connect_timeout_ms = static_cast<uint32_t>(o.connect_timeout.count());
        out->io_timeout_ms = static_cast<uint32_t>(o.io_timeout.count());
    });
}

char* lindra_mock_server_token(const lindra_mock_server* server, const char* user, lindra_token_role role,
                               const lindra_id* person, const lindra_id* organization, lindra_error* error) noexcept {
    char* out = nullptr;
    try_catch(error, [&] {
        TokenClaims claims;
        claims.user = need_text(user, "user");
        claims.role = to_enum<Role>(role, LINDRA_TOKEN_ADMIN + 1, "token role");
        claims.person = optional_id(person).value_or(Id{});
        claims.organization = optional_id(organization).value_or(Id{});
        out = owned_string(need(server, "server").mock.token(claims));
    });
    return out;
}

bool lindra_mock_server_count(lindra_mock_server* server, const char* entity, int64_t* out,
                              lindra_error* error) noexcept {
    return try_catch(error, [&] { need(out, "out") = need(server, "server").mock.rows().count(need(entity, "entity")); });
}

size_t lindra_mock_server_pushed_count(const lindra_mock_server* server) noexcept {
    std::size_t n = 0;
    try_catch(nullptr, [&] { n = need(server, "server").mock.pushed().size(); });
    return n;
}

void lindra_mock_server_refuse_connections(lindra_mock_server* server, int count) noexcept {
    try_catch(nullptr, [&] { need(server, "server").mock.faults().refuse_connections(count); });
}

void lindra_mock_server_lose_push_ack(lindra_mock_server* server, int nth) noexcept {
    try_catch(nullptr, [&] { need(server, "server").mock.faults().lose_push_ack(nth); });
}

void lindra_mock_server_delay_push_ack(lindra_mock_server* server, uint32_t delay_ms, int nth) noexcept {
    try_catch(nullptr, [&] {
        need(server, "server").mock.faults().delay(testing::Frame::push_ack, std::chrono::milliseconds(delay_ms), nth);
    });
}

void lindra_mock_server_stop(lindra_mock_server* server) noexcept {
    try_catch(nullptr, [&] { need(server, "server").mock.stop(); });
}

bool lindra_mock_server_start(lindra_mock_server* server, lindra_error* error) noexcept {
    return try_catch(error, [&] { need(server, "server").mock.start(); });
}

}  // extern "C"
