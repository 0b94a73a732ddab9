// What an operator sees of a running server, in-process: the observer's
// calls for real rounds, the admin listener's answers (bad requests too),
// and SyncServer::reload() with good and broken material.
#include "support/fixture.hpp"
#include "support/sync_fixture.hpp"

#include <lindra/error.hpp>

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <thread>

namespace {

using lindra::test::SyncWorld;

// Counts every call, by name (and label).
class Recorder final : public lindra::ServerObserver {
public:
    std::map<std::string, std::uint64_t> counts() const {
        std::lock_guard lock(mutex_);
        return counts_;
    }
    void session_opened() override { add("opened"); }
    void session_closed(std::string_view outcome, std::chrono::nanoseconds length) override {
        add("closed:" + std::string(outcome));
        if (length.count() <= 0) add("bad length");
    }
    void refused(std::string_view code) override { add("refused:" + std::string(code)); }
    void store_call(std::string_view operation, std::chrono::nanoseconds) override {
        add("store:" + std::string(operation));
    }
    void pushed(std::size_t applied, std::size_t rejected, std::size_t certificates) override {
        add("pushed", applied);
        add("rejected", rejected);
        add("certificates", certificates);
    }
    void pulled(std::size_t changes, std::size_t purged) override {
        add("pulled", changes);
        add("purged", purged);
    }
    void bytes(std::size_t in, std::size_t out) override {
        add("bytes in", in);
        add("bytes out", out);
    }
    void turned_away(std::string_view reason, std::uint64_t n) override { add("away:" + std::string(reason), n); }

private:
    void add(const std::string& key, std::uint64_t n = 1) {
        std::lock_guard lock(mutex_);
        counts_[key] += n;
    }
    mutable std::mutex mutex_;
    std::map<std::string, std::uint64_t> counts_;  // guarded by mutex_
};

// One HTTP exchange with 127.0.0.1:port over a plain socket: what came back.
std::string http(std::uint16_t port, const std::string& request) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size()));
    std::string out;
    char buffer[4096];
    for (ssize_t n; (n = ::recv(fd, buffer, sizeof buffer, 0)) > 0;) out.append(buffer, static_cast<std::size_t>(n));
    ::close(fd);
    return out;
}

std::string get(std::uint16_t port, const std::string& path) {
    return http(port, "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
}

}  // namespace

TEST_CASE("the observer hears a round, its store calls and a refusal, with no one named") {
    auto recorder = std::make_shared<Recorder>();
    SyncWorld world([&](lindra::ServerOptions& o) { o.observer = recorder; });
    auto& tablet = world.tablet("coordinator");
    lindra::test::seed_group(tablet);
    lindra::test::require_ok(world.sync(tablet));
    lindra::test::require_ok(world.sync(tablet));
    // A session ends on the server's side after the client has its answer.
    for (int i = 0; i < 100 && recorder->counts()["closed:ok"] < 2; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    auto c = recorder->counts();
    CHECK(c["opened"] == 2);
    CHECK(c["closed:ok"] == 2);
    CHECK(c["bad length"] == 0);
    CHECK(c["store:hello"] == 2);
    CHECK(c["store:push"] >= 1);
    CHECK(c["store:pull"] >= 1);  // the second round had nothing to pull
    CHECK(c["pushed"] > 0);
    CHECK(c["bytes in"] > 0);
    CHECK(c["bytes out"] > 0);

    CHECK_FALSE(world.sync(tablet, "not-a-token").ok());
    for (int i = 0; i < 100 && recorder->counts()["closed:refused"] < 1; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    c = recorder->counts();
    CHECK(c["refused:unauthenticated"] == 1);
    CHECK(c["closed:refused"] == 1);
}

// The log gathers turnaways into a line a minute; a counter must not wait.
TEST_CASE("the observer counts each connection turned away as it happens") {
    auto recorder = std::make_shared<Recorder>();
    SyncWorld world([&](lindra::ServerOptions& o) {
        o.observer = recorder;
        o.max_connections_per_address = 1;
    });
    const auto connect = [&] {
        const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        REQUIRE(fd >= 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(world.port());
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        return fd;
    };
    const int held = connect();  // the address's one connection
    for (std::uint64_t turned = 1; turned <= 3; ++turned) {
        const int fd = connect();
        for (int i = 0; i < 250 && recorder->counts()["away:address_cap"] < turned; ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        CHECK(recorder->counts()["away:address_cap"] == turned);
        ::close(fd);
    }
    ::close(held);
}

TEST_CASE("the admin listener answers health, readiness and metrics, and shrugs off bad requests") {
    std::atomic<int> scrapes{0};
    SyncWorld world([&](lindra::ServerOptions& o) {
        o.admin.port = 0;
        o.admin.metrics = [&] {
            ++scrapes;
            return std::string("lindra_test_total 1\n");
        };
    });
    const auto port = world.server().admin_port();
    REQUIRE(port != 0);
    CHECK(get(port, "/healthz").starts_with("HTTP/1.1 200"));
    CHECK(get(port, "/readyz").starts_with("HTTP/1.1 200"));
    const auto metrics = get(port, "/metrics?x=1");
    CHECK(metrics.starts_with("HTTP/1.1 200"));
    CHECK(metrics.find("text/plain; version=0.0.4") != std::string::npos);
    CHECK(metrics.find("lindra_test_total 1") != std::string::npos);
    CHECK(scrapes == 1);
    CHECK(get(port, "/nothing").starts_with("HTTP/1.1 404"));
    CHECK(http(port, "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n").starts_with("HTTP/1.1 405"));
    const auto head = http(port, "HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(head.starts_with("HTTP/1.1 200"));
    CHECK(head.ends_with("\r\n\r\n"));  // no body
    // Not HTTP, and a header too large: closed, and the listener goes on.
    CHECK(http(port, "\x16\x03\x01 hello\r\n\r\n").find("200") == std::string::npos);
    CHECK(http(port, "GET / HTTP/1.1\r\nX: " + std::string(20'000, 'a') + "\r\n\r\n").find("200") ==
          std::string::npos);
    CHECK(get(port, "/healthz").starts_with("HTTP/1.1 200"));
}

TEST_CASE("without an admin port there is no admin listener") {
    SyncWorld world;
    CHECK(world.server().admin_port() == 0);
}

TEST_CASE("an admin port that cannot be bound stops the server from starting, saying so") {
    SyncWorld first([](lindra::ServerOptions& o) { o.admin.port = 0; });
    const auto taken = first.server().admin_port();
    CHECK_THROWS_WITH(SyncWorld([&](lindra::ServerOptions& o) { o.admin.port = taken; }),
                      Catch::Contains("admin listener cannot listen on 127.0.0.1:" + std::to_string(taken)));
}

TEST_CASE("reload: a new certificate for new connections, new token keys, and broken material changes nothing") {
    SyncWorld world;
    auto& tablet = world.tablet("coordinator");
    lindra::test::seed_group(tablet);
    const auto& ca = world.ca();
    const auto fresh = lindra::testing::issue_leaf(ca, {.dns_names = {"localhost"}, .ip_addresses = {"127.0.0.1"}});
    lindra::SyncOptions pinned;
    pinned.tls.pins = {lindra::testing::spki_pin(fresh.certificate_pem)};
    CHECK_FALSE(world.sync(tablet, "coordinator-token", pinned).ok());  // the old certificate is still served

    const std::string new_key = lindra::generate_token_key();
    lindra::TokenOptions tokens;
    tokens.key_pem = new_key;
    world.server().reload({fresh.certificate_pem, fresh.private_key_pem}, tokens, {});
    const auto new_token = lindra::issue_token(new_key, {.user = "coord-2", .role = lindra::Role::admin});
    lindra::test::require_ok(world.sync(tablet, new_token, pinned));
    CHECK_FALSE(world.sync(tablet, "coordinator-token", pinned).ok());  // signed with the old key

    // Broken material: refused whole, what was loaded goes on.
    CHECK_THROWS_AS(world.server().reload({"not a certificate", fresh.private_key_pem}, tokens, {}), lindra::Error);
    CHECK_THROWS_AS(world.server().reload({fresh.certificate_pem, fresh.private_key_pem}, {}, {}), lindra::Error);
    CHECK_THROWS_AS(world.server().reload({fresh.certificate_pem, fresh.private_key_pem}, tokens, {{"not a key"}}),
                    lindra::Error);
    const auto other = lindra::testing::issue_leaf(ca, {.ip_addresses = {"127.0.0.1"}});
    CHECK_THROWS_AS(world.server().reload({other.certificate_pem, fresh.private_key_pem}, tokens, {}), lindra::Error);
    lindra::test::require_ok(world.sync(tablet, new_token, pinned));
}
