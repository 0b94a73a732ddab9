// TLS on the sync connection: a tablet syncs only with a server whose
// certificate chains to a CA it trusts, names the host it dialled, is in its
// validity period and (if the tablet pins keys) carries a pinned key. A
// refused server learns nothing: the tablet sends no Hello, so no token and
// no change leave it. The server takes TLS 1.2 or later only, and a peer that
// does not speak TLS at all costs it nothing but that connection.
#include <lindra/testing/certs.hpp>
#include "support/db.hpp"
#include "support/fixture.hpp"
#include "support/raw_client.hpp"
#include "support/sync_fixture.hpp"
#include "support/temp_dir.hpp"

#include <lindra/server.hpp>
#include <lindra/sync.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <functional>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

using namespace lindra;
using lindra::test::dump;
using lindra::test::require_ok;
using lindra::test::SyncWorld;
using lindra::test::Tables;

namespace {

bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

// Whether any line of the server's log contains `part`; stops the server
// first, so every session has logged its line.
bool logged(SyncWorld& w, const std::string& part) {
    w.stop_server();
    const auto log = w.log();
    std::ostringstream all;
    for (const auto& line : log) all << line << "\n";
    INFO("server log:\n" << all.str());
    return std::any_of(log.begin(), log.end(), [&](const std::string& l) { return contains(l, part); });
}

// A server whose certificate is `leaf` instead of the world's.
std::function<void(ServerOptions&)> serving(const testing::Leaf& leaf) {
    return [leaf](ServerOptions& o) { o.tls = {leaf.certificate_pem, leaf.private_key_pem}; };
}

testing::LeafSpec loopback_names() {
    return {.dns_names = {"localhost"}, .ip_addresses = {"127.0.0.1"}};
}

// A world whose server holds the seeded group, a tablet that has pulled it
// and made one more write it has not pushed.
struct Scene {
    SyncWorld w;
    Replica& coordinator = w.tablet("coordinator");
    lindra::test::Seeded s = lindra::test::seed_group(coordinator);
    Replica& tablet = w.tablet("tablet");

    // Without `seed_over_tls` (a server whose certificate the tablet will
    // refuse), the tablet seeds a group of its own instead.
    explicit Scene(std::function<void(ServerOptions&)> tweak = {}, bool seed_over_tls = true) : w(std::move(tweak)) {
        if (!seed_over_tls) {
            lindra::test::seed_group(tablet);
            return;
        }
        require_ok(w.sync(coordinator));
        require_ok(w.sync(tablet));
        tablet.add_time_spent(s.candidates[0], s.modules[0], s.group, 60);
    }

    // A round that TLS must refuse, naming `why`, with nothing moved either way.
    void require_refused(SyncOptions options, const std::string& why) {
        const auto server_before = dump(w.server_db(), Tables::domain);
        const auto tablet_before = dump(w.path("tablet"), Tables::all);
        const auto outbox = tablet.outbox_size();
        const auto r = w.sync(tablet, "coordinator-token", std::move(options));
        INFO(to_string(r.outcome) << ": " << r.message);
        CHECK(r.outcome == SyncOutcome::tls_failed);
        CHECK(contains(r.message, why));
        CHECK(r.changes_pushed == 0);
        CHECK(r.bytes_sent == 0);  // not even the Hello: the token stayed on the tablet
        CHECK(tablet.outbox_size() == outbox);
        CHECK(dump(w.server_db(), Tables::domain) == server_before);
        CHECK(dump(w.path("tablet"), Tables::all) == tablet_before);
    }
};

// A bare OpenSSL client on a blocking POSIX socket (every wait bounded by
// 5 s) that offers TLS versions up to `max_version`, with every cipher
// OpenSSL still has. Returns "" once a handshake completes, else why not.
std::string bare_handshake(std::uint16_t port, int max_version) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    const timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0);

    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_security_level(ctx, 0);  // TLS 1.1 and its ciphers need level 0 in OpenSSL 3
    SSL_CTX_set_cipher_list(ctx, "DEFAULT:@SECLEVEL=0");
    SSL_CTX_set_min_proto_version(ctx, TLS1_VERSION);
    SSL_CTX_set_max_proto_version(ctx, max_version);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);  // only the version is on trial
    SSL* ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    ERR_clear_error();
    std::string why;
    if (SSL_connect(ssl) != 1) {
        const unsigned long e = ERR_get_error();
        const char* reason = e ? ERR_reason_error_string(e) : nullptr;
        why = reason ? reason : "the handshake failed";
        ERR_clear_error();
    } else {
        SSL_shutdown(ssl);
    }
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    ::close(fd);
    return why;
}

}  // namespace

TEST_CASE("a tablet syncs over TLS, by IP address or by host name") {
    Scene scene;
    require_ok(scene.w.sync(scene.tablet));
    CHECK(scene.tablet.outbox_size() == 0);

    scene.tablet.add_time_spent(scene.s.candidates[1], scene.s.modules[0], scene.s.group, 30);
    SyncOptions by_name;
    by_name.host = "localhost";
    require_ok(scene.w.sync(scene.tablet, "coordinator-token", by_name));
    require_ok(scene.w.sync(scene.coordinator));
    CHECK(dump(scene.w.path("coordinator"), Tables::domain) == dump(scene.w.server_db(), Tables::domain));
    CHECK(dump(scene.w.path("tablet"), Tables::domain) == dump(scene.w.server_db(), Tables::domain));
}

TEST_CASE("a tablet refuses a server whose certificate does not verify, and sends it nothing") {
    SECTION("the certificate is for another host name") {
        Scene scene;
        SyncOptions o;
        o.tls.server_name = "sync.example.org";  // the world's certificate names localhost and 127.0.0.1
        scene.require_refused(o, "certificate verify failed: hostname mismatch");
    }
    SECTION("the certificate is for another IP address") {
        const auto leaf = testing::issue_leaf(lindra::test::test_pki().ca,
                                              {.dns_names = {"sync.example.org"}, .ip_addresses = {"10.1.2.3"}});
        Scene scene(serving(leaf), false);
        scene.require_refused({}, "certificate verify failed: IP address mismatch");
    }
    SECTION("the certificate comes from a CA the tablet does not trust") {
        const auto other_ca = testing::make_ca("some other CA");
        Scene scene(serving(testing::issue_leaf(other_ca, loopback_names())), false);
        scene.require_refused({}, "certificate verify failed: unable to get local issuer certificate");
    }
    SECTION("the certificate has expired") {
        auto spec = loopback_names();
        spec.not_before = -std::chrono::hours(48);
        spec.not_after = -std::chrono::hours(24);
        Scene scene(serving(testing::issue_leaf(lindra::test::test_pki().ca, spec)), false);
        scene.require_refused({}, "certificate verify failed: certificate has expired");
    }
    SECTION("the server's key is not the pinned one") {
        Scene scene;
        const auto other = testing::issue_leaf(scene.w.ca(), loopback_names());  // a new key
        SyncOptions o;
        o.tls.pins = {testing::spki_pin(other.certificate_pem)};
        scene.require_refused(o, "the server's key matches no pin");
    }
}

TEST_CASE("a pinned tablet takes the server's key as primary or as backup pin") {
    Scene scene;
    const auto server_pin = testing::spki_pin(scene.w.server_certificate().certificate_pem);
    const auto other_pin = testing::spki_pin(testing::issue_leaf(scene.w.ca(), loopback_names()).certificate_pem);
    REQUIRE(server_pin != other_pin);

    SyncOptions primary;
    primary.tls.pins = {server_pin};
    require_ok(scene.w.sync(scene.tablet, "coordinator-token", primary));

    // The key was rotated to the backup: the first pin no longer matches.
    scene.tablet.add_time_spent(scene.s.candidates[1], scene.s.modules[0], scene.s.group, 30);
    SyncOptions backup;
    backup.tls.pins = {other_pin, server_pin};
    require_ok(scene.w.sync(scene.tablet, "coordinator-token", backup));
    CHECK(scene.tablet.outbox_size() == 0);
}

// A tablet's next round resumes its TLS session: no certificate again, a
// fresh key exchange still. Only the server process that issued the ticket
// can take it, so a restarted server, or one with another key, gets a full
// handshake with every check: a changed key still meets the pin.
TEST_CASE("a tablet resumes its TLS session in the next round, and only with the server that issued it") {
    Scene scene;
    const auto server_pin = testing::spki_pin(scene.w.server_certificate().certificate_pem);
    SyncOptions pinned;
    pinned.tls.pins = {server_pin};
    SyncClient client(scene.tablet, scene.w.options_for("coordinator-token", pinned));

    const auto first = client.sync();
    require_ok(first);
    CHECK_FALSE(first.tls_resumed);
    scene.tablet.add_time_spent(scene.s.candidates[1], scene.s.modules[0], scene.s.group, 30);
    const auto second = client.sync();
    require_ok(second);
    CHECK(second.tls_resumed);
    CHECK(scene.tablet.outbox_size() == 0);
    CHECK(client.sync().tls_resumed);

    // Another client of the same tablet has no session of its own.
    SyncClient other(scene.tablet, scene.w.options_for("coordinator-token", pinned));
    CHECK_FALSE(other.sync().tls_resumed);

    scene.w.restart_server();  // the ticket's key died with the old server
    const auto after_restart = client.sync();
    require_ok(after_restart);
    CHECK_FALSE(after_restart.tls_resumed);
    CHECK(client.sync().tls_resumed);

    // The server now holds another key: the session is not taken, and the pin refuses it.
    scene.w.restart_server(serving(testing::issue_leaf(scene.w.ca(), loopback_names())));
    const auto outbox = scene.tablet.outbox_size();
    scene.tablet.add_time_spent(scene.s.candidates[0], scene.s.modules[1], scene.s.group, 30);
    const auto refused = client.sync();
    INFO(to_string(refused.outcome) << ": " << refused.message);
    CHECK(refused.outcome == SyncOutcome::tls_failed);
    CHECK(contains(refused.message, "the server's key matches no pin"));
    CHECK(refused.bytes_sent == 0);
    CHECK(scene.tablet.outbox_size() == outbox + 1);
}

TEST_CASE("a pin that is not sha256/BASE64 is the tablet's own error, found before connecting") {
    SyncWorld w;
    Replica& tablet = w.tablet("tablet");
    const auto good = testing::spki_pin(w.server_certificate().certificate_pem);
    for (const std::string& bad :
         {std::string("sha1/") + good.substr(7), good.substr(7), good.substr(0, good.size() - 2),
          good.substr(0, good.size() - 1) + "!", std::string("sha256/") + std::string(44, 'A')}) {
        INFO("pin: " << bad);
        SyncOptions o;
        o.tls.pins = {good, bad};
        const auto r = w.sync(tablet, "coordinator-token", o);
        CHECK(r.outcome == SyncOutcome::local_error);
        CHECK(contains(r.message, bad));
    }
    CHECK_FALSE(logged(w, "session peer="));  // no connection was made
}

TEST_CASE("the server takes TLS 1.2 and later only") {
    SyncWorld w;
    CHECK(bare_handshake(w.port(), TLS1_3_VERSION) == "");  // the bare client works
    CHECK(bare_handshake(w.port(), TLS1_2_VERSION) == "");
    const auto why = bare_handshake(w.port(), TLS1_1_VERSION);
    INFO("TLS 1.1: " << why);
    CHECK(why != "");
    CHECK(logged(w, "TLS handshake failed: unsupported protocol"));
}

TEST_CASE("a peer that does not speak TLS is turned away, and the server goes on serving") {
    Scene scene;
    SECTION("raw lindra frames on plain TCP: told, in a frame, to use TLS") {
        lindra::test::RawClient raw(scene.w.port());
        REQUIRE(raw.send_frame(std::string(100, 'x')));
        const auto answer = raw.read_message();
        REQUIRE(std::holds_alternative<protocol::ServerMessage>(answer));
        const auto& m = std::get<protocol::ServerMessage>(answer);
        REQUIRE(std::holds_alternative<protocol::ErrorMessage>(m));
        CHECK(contains(std::get<protocol::ErrorMessage>(m).message, "drop --insecure"));
    }
    SECTION("a SyncClient told to be insecure") {
        SyncOptions plain;
        plain.insecure = true;
        const auto r = scene.w.sync(scene.tablet, "coordinator-token", plain);
        INFO(to_string(r.outcome) << ": " << r.message);
        CHECK_FALSE(r.ok());
        CHECK(contains(r.message, "this server speaks TLS"));
        CHECK(contains(r.message, "drop --insecure"));
        CHECK(r.changes_pushed == 0);
        CHECK(scene.tablet.outbox_size() == 1);
    }
    require_ok(scene.w.sync(scene.tablet));
    CHECK(scene.tablet.outbox_size() == 0);
    CHECK(logged(scene.w, "this server speaks TLS and the client did not"));
}

TEST_CASE("a tablet that expects TLS from a plain-TCP server fails as TLS, not as offline") {
    SyncWorld w([](ServerOptions& o) { o.insecure = true; });
    Replica& tablet = w.tablet("tablet");
    SyncOptions o;
    o.tls.ca_pem = w.ca().certificate_pem;
    o.insecure = false;
    // The world would make this round plain to match its server; go direct.
    o.port = w.port();
    o.token = "never sent";  // the handshake fails before any Hello
    o.connect_timeout = std::chrono::milliseconds(2'000);
    SyncClient client(tablet, o);
    const auto r = client.sync();
    INFO(to_string(r.outcome) << ": " << r.message);
    CHECK(r.outcome == SyncOutcome::tls_failed);
    CHECK(contains(r.message, "the server does not speak TLS"));
    CHECK(contains(r.message, "--insecure"));
    CHECK(logged(w, "the client started a TLS handshake and this server does not speak TLS"));
}

TEST_CASE("a peer that connects and never starts the handshake is cut off at the Hello deadline") {
    SyncWorld w([](ServerOptions& o) {
        o.hello_timeout = std::chrono::milliseconds(300);
        o.idle_timeout = std::chrono::milliseconds(60'000);
    });
    const auto started = std::chrono::steady_clock::now();
    lindra::test::RawClient silent(w.port());
    CHECK(std::holds_alternative<lindra::test::RawClient::Eof>(silent.read_message()));
    CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(3));
    CHECK(logged(w, "end=\"TLS handshake failed: timed out\""));
}

TEST_CASE("a server with unusable TLS material fails at construction and creates no store") {
    lindra::test::TempDir dir;
    const auto& pki = lindra::test::test_pki();
    const auto other = testing::issue_leaf(pki.ca, loopback_names());
    struct Case {
        const char* name;
        TlsServerOptions tls;
        const char* says;
    };
    const Case cases[] = {
        {"no TLS material and not insecure", {}, "insecure"},
        {"a chain that is not PEM", {"not a certificate", pki.server.private_key_pem}, "no readable PEM certificate"},
        {"a key that is not PEM", {pki.server.certificate_pem, "not a key"}, "not a readable PEM private key"},
        {"a key that is not the certificate's", {pki.server.certificate_pem, other.private_key_pem}, "does not match"},
        {"a chain with garbage after the leaf",
         {pki.server.certificate_pem + "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
          pki.server.private_key_pem},
         "not a PEM certificate"},
    };
    for (const auto& c : cases) {
        INFO(c.name);
        ServerOptions o;
        o.db_path = dir.file("server.db");
        o.tls = c.tls;
        const auto e = lindra::test::error_of([&] { SyncServer server(o); });
        CHECK(e.errc() == Errc::invalid_argument);
        CHECK(contains(e.what(), c.says));
        CHECK_FALSE(std::filesystem::exists(o.db_path));
    }
}
