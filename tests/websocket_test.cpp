// Sync over wss:// (DESIGN §11): the same rounds as raw TLS, on the same
// port, with the same answers when something is wrong; the one reading of
// a server URL; and a client and a server that disagree on TLS saying so.
#include "support/db.hpp"
#include "support/fixture.hpp"
#include "support/sync_fixture.hpp"
#include "support/temp_dir.hpp"

#include <lindra/error.hpp>
#include <lindra/server.hpp>
#include <lindra/sync.hpp>
#include <lindra/testing/mock_server.hpp>

#include <catch2/catch.hpp>

#include <string>

using namespace lindra;
using lindra::test::dump;
using lindra::test::require_ok;
using lindra::test::SyncWorld;
using lindra::test::Tables;

namespace {

bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

SyncOptions at(const std::string& url) {
    SyncOptions o;
    o.url = url;
    return o;
}

std::string url_error(const std::string& url) {
    try {
        (void)parse_server_url(url);
    } catch (const Error& e) {
        CHECK(e.errc() == Errc::invalid_argument);
        return e.what();
    }
    return "(accepted)";
}

}  // namespace

TEST_CASE("a server URL is read one way, and a bad one is named") {
    auto u = parse_server_url("wss://sync.example.org/lindra");
    CHECK(u.websocket);
    CHECK(u.tls);
    CHECK(u.host == "sync.example.org");
    CHECK(u.port == 443);
    CHECK(u.path == "/lindra");
    CHECK(parse_server_url("wss://sync.example.org").path == "/lindra");
    u = parse_server_url("wss://[::1]:8443/sync/v1");
    CHECK(u.host == "::1");
    CHECK(u.port == 8443);
    CHECK(u.path == "/sync/v1");
    u = parse_server_url("tls://10.0.0.1:7443");
    CHECK_FALSE(u.websocket);
    CHECK(u.tls);
    CHECK(u.port == 7443);
    u = parse_server_url("sync.example.org:7443");
    CHECK_FALSE(u.websocket);
    CHECK(u.tls);
    CHECK(u.host == "sync.example.org");
    CHECK_FALSE(parse_server_url("ws://localhost/lindra").tls);
    CHECK(parse_server_url("ws://localhost").port == 80);
    CHECK(to_string(parse_server_url("wss://h")) == "wss://h:443/lindra");

    CHECK(contains(url_error("https://sync.example.org"), "unknown scheme \"https\""));
    CHECK(contains(url_error("wss://sync.example.org:0"), "bad port \"0\""));
    CHECK(contains(url_error("wss://sync.example.org:99999"), "bad port"));
    CHECK(contains(url_error("wss://sync.example.org:x/lindra"), "bad port \"x\""));
    CHECK(contains(url_error("wss://:443"), "missing host"));
    CHECK(contains(url_error("wss:///lindra"), "missing host"));
    CHECK(contains(url_error("sync.example.org"), "missing port"));
    CHECK(contains(url_error("tls://sync.example.org"), "missing port"));
    CHECK(contains(url_error("::1:7443"), "IPv6 address goes in brackets"));
    CHECK(contains(url_error("[::1:7443"), "lacks its ']'"));
    CHECK(contains(url_error("tls://h:1/path"), "only a wss:// or ws:// URL has a path"));
    CHECK(contains(url_error("wss://user:pw@h"), "no user or password"));
    CHECK(contains(url_error(""), "missing"));
}

TEST_CASE("a round over wss:// pushes and pulls like one over raw TLS, on the same port") {
    SyncWorld w;
    Replica& coordinator = w.tablet("coordinator");
    const auto s = lindra::test::seed_group(coordinator);
    const std::string wss = "wss://127.0.0.1:" + std::to_string(w.port()) + "/lindra";
    const auto pushed = w.sync(coordinator, "coordinator-token", at(wss));
    require_ok(pushed);
    CHECK(pushed.changes_pushed > 0);
    CHECK(coordinator.outbox_size() == 0);

    Replica& raw = w.tablet("raw");
    Replica& ws = w.tablet("ws");
    require_ok(w.sync(raw));
    const auto pulled = w.sync(ws, "coordinator-token", at(wss));
    require_ok(pulled);
    CHECK(pulled.changes_pulled > 0);
    CHECK(dump(w.path("raw"), Tables::domain) == dump(w.path("ws"), Tables::domain));

    // A write over wss reaches the raw tablet.
    ws.add_time_spent(s.candidates[0], s.modules[0], s.group, 45);
    require_ok(w.sync(ws, "coordinator-token", at(wss)));
    require_ok(w.sync(raw));
    CHECK(dump(w.path("raw"), Tables::domain) == dump(w.path("ws"), Tables::domain));

    // The second round of one client resumes its TLS session, as raw TLS does.
    SyncClient client(ws, w.options_for("coordinator-token", at(wss)));
    require_ok(client.sync());
    CHECK(client.sync().tls_resumed);
}

TEST_CASE("a wss:// round to a path the server does not serve fails clearly, and the outbox stays") {
    SyncWorld w;
    Replica& tablet = w.tablet("tablet");
    lindra::test::seed_group(tablet);
    const auto outbox = tablet.outbox_size();
    const auto r = w.sync(tablet, "coordinator-token", at("wss://127.0.0.1:" + std::to_string(w.port()) + "/other"));
    INFO(to_string(r.outcome) << ": " << r.message);
    CHECK(r.outcome == SyncOutcome::offline);
    CHECK(contains(r.message, "HTTP 404"));
    CHECK(contains(r.message, "check the URL's path"));
    CHECK(tablet.outbox_size() == outbox);
}

TEST_CASE("a client and a server that disagree on TLS say so, over WebSocket too") {
    SECTION("ws:// (no TLS) to a TLS server") {
        SyncWorld w;
        Replica& tablet = w.tablet("tablet");
        SyncOptions o = at("ws://127.0.0.1:" + std::to_string(w.port()) + "/lindra");
        o.insecure = true;
        const auto r = w.sync(tablet, "coordinator-token", o);
        INFO(to_string(r.outcome) << ": " << r.message);
        CHECK_FALSE(r.ok());
        CHECK(contains(r.message, "HTTP 400"));
    }
    SECTION("wss:// to a plain server") {
        SyncWorld w([](ServerOptions& o) { o.insecure = true; });
        Replica& tablet = w.tablet("tablet");
        SyncOptions o = at("wss://127.0.0.1:" + std::to_string(w.port()) + "/lindra");
        o.tls.ca_pem = w.ca().certificate_pem;
        o.port = w.port();
        o.token = "never sent";
        SyncClient client(tablet, o);
        const auto r = client.sync();
        INFO(to_string(r.outcome) << ": " << r.message);
        CHECK(r.outcome == SyncOutcome::tls_failed);
        CHECK(contains(r.message, "the server does not speak TLS"));
    }
    SECTION("a URL and insecure that contradict each other") {
        SyncWorld w;
        Replica& tablet = w.tablet("tablet");
        SyncOptions o = at("wss://127.0.0.1:" + std::to_string(w.port()));
        o.insecure = true;
        o.token = "never sent";
        SyncClient client(tablet, o);
        const auto r = client.sync();
        CHECK(r.outcome == SyncOutcome::local_error);
        CHECK(contains(r.message, "asks for TLS and insecure is set"));
        SyncOptions plain = at("ws://127.0.0.1:1");
        SyncClient no_tls(tablet, plain);
        const auto r2 = no_tls.sync();
        CHECK(r2.outcome == SyncOutcome::local_error);
        CHECK(contains(r2.message, "has no TLS"));
    }
}

TEST_CASE("over wss://, a round that waits on a slow server keeps pinging and ends well; a cut message is resumed") {
    lindra::test::TempDir dir;
    testing::MockServer mock;
    Replica tablet(dir.file("tablet.db"));
    const auto seeded = lindra::test::seed_group(tablet);
    SyncOptions o = mock.client_options(mock.admin_token());
    o.url = "wss://127.0.0.1:" + std::to_string(mock.port()) + "/lindra";
    o.io_timeout = std::chrono::milliseconds(2'000);  // a ping after 1 s of waiting
    mock.faults().delay(testing::Frame::welcome, std::chrono::milliseconds(1'500));
    {
        SyncClient client(tablet, o);
        const auto r = client.sync();
        INFO(to_string(r.outcome) << ": " << r.message);
        CHECK(r.ok());
        CHECK(tablet.outbox_size() == 0);
    }
    // A PushAck cut mid-message: the round breaks, the next one resumes.
    tablet.add_time_spent(seeded.candidates[0], seeded.modules[0], seeded.group, 10);
    mock.faults().truncate(testing::Frame::push_ack, 3);
    SyncClient client(tablet, o);
    const auto cut = client.sync();
    INFO(to_string(cut.outcome) << ": " << cut.message);
    CHECK(cut.outcome == SyncOutcome::offline);
    require_ok(client.sync());
    CHECK(tablet.outbox_size() == 0);
}
