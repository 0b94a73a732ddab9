// The HTTP CONNECT proxy from the client's side, against a fake proxy on
// loopback that answers what a test tells it: a refused or botched CONNECT
// fails the round with a message that says what to do, within the connect
// timeout, and leaves the outbox as it was. The proxy settings are read
// as curl reads them. (A real Squid: tests/proxy_squid_test.sh.)
#include "client/proxy.hpp"
#include "support/fixture.hpp"
#include "support/sync_fixture.hpp"

#include <lindra/error.hpp>
#include <lindra/testing/certs.hpp>
#include <lindra/sync.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>

using namespace lindra;
using lindra::test::SyncWorld;

namespace {

bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

// Accepts one connection on 127.0.0.1, reads the request head (or up to 4
// KiB), sends `answer`, then closes, or holds the connection for `hold`.
class FakeProxy {
  public:
    explicit FakeProxy(std::string answer, std::chrono::milliseconds hold = {}) : answer_(std::move(answer)), hold_(hold) {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        socklen_t n = sizeof a;
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &n);
        port_ = ntohs(a.sin_port);
        REQUIRE(::listen(fd_, 4) == 0);
        thread_ = std::thread([this] { serve(); });
    }
    ~FakeProxy() {
        stop_ = true;
        thread_.join();
        ::close(fd_);
    }
    std::string url(const std::string& credentials = "") const {
        return "http://" + credentials + "127.0.0.1:" + std::to_string(port_);
    }
    std::string request() const {
        std::lock_guard lock(mutex_);
        return request_;
    }

  private:
    // Every wait is bounded: the test's client gives up within seconds.
    void serve() {
        pollfd p{fd_, POLLIN, 0};
        const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (!stop_ && std::chrono::steady_clock::now() < until) {
            if (::poll(&p, 1, 50) <= 0) continue;
            const int c = ::accept(fd_, nullptr, nullptr);
            if (c < 0) continue;
            std::string head;
            char buf[1024];
            pollfd q{c, POLLIN, 0};
            while (head.find("\r\n\r\n") == std::string::npos && head.size() < 4096 && ::poll(&q, 1, 2000) > 0) {
                const auto n = ::recv(c, buf, sizeof buf, 0);
                if (n <= 0) break;
                head.append(buf, static_cast<std::size_t>(n));
            }
            {
                std::lock_guard lock(mutex_);
                request_ = head;
            }
            for (std::size_t sent = 0; sent < answer_.size();) {
                const auto n = ::send(c, answer_.data() + sent, answer_.size() - sent, MSG_NOSIGNAL);
                if (n <= 0) break;
                sent += static_cast<std::size_t>(n);
            }
            const auto hold_until = std::chrono::steady_clock::now() + hold_;
            while (!stop_ && std::chrono::steady_clock::now() < hold_until)
                std::this_thread::sleep_for(std::chrono::milliseconds(20));
            ::close(c);
            return;
        }
    }

    std::string answer_;
    std::chrono::milliseconds hold_;
    int fd_ = -1;
    std::uint16_t port_ = 0;
    std::thread thread_;
    std::atomic<bool> stop_{false};
    mutable std::mutex mutex_;
    std::string request_;  // guarded by mutex_
};

// A round of a tablet with one unsent write through `proxy`, which must
// fail offline with `why` in its message and the outbox as it was.
void require_refused(SyncWorld& w, const std::string& proxy_url, const std::string& why) {
    Replica& tablet = w.tablet("tablet");
    if (tablet.outbox_size() == 0) lindra::test::seed_group(tablet);
    const auto outbox = tablet.outbox_size();
    SyncOptions o;
    o.proxy = proxy_url;
    const auto started = std::chrono::steady_clock::now();
    const auto r = w.sync(tablet, "coordinator-token", o);
    INFO(to_string(r.outcome) << ": " << r.message);
    CHECK(r.outcome == SyncOutcome::offline);
    CHECK(contains(r.message, why));
    CHECK(r.changes_pushed == 0);
    CHECK(r.bytes_sent == 0);  // no Hello: the token stayed on the tablet
    CHECK(tablet.outbox_size() == outbox);
    CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(5));
}

}  // namespace

TEST_CASE("a proxy URL is read one way, and a bad one is named without its password") {
    auto p = client::parse_proxy_url("http://tablet:s%40cret@proxy.example.org:3128");
    CHECK(p.host == "proxy.example.org");
    CHECK(p.port == 3128);
    CHECK(p.authorization == "Basic dGFibGV0OnNAY3JldA==");  // tablet:s@cret
    CHECK(client::parse_proxy_url("proxy.example.org").port == 1080);
    CHECK(client::parse_proxy_url("http://[::1]:8080/").host == "::1");
    CHECK(client::parse_proxy_url("http://u@h:1").authorization == "Basic dTo=");
    const auto error = [](const std::string& url) {
        try {
            (void)client::parse_proxy_url(url);
        } catch (const Error& e) {
            return std::string(e.what());
        }
        return std::string("(accepted)");
    };
    CHECK(contains(error("https://h:1"), "only an http:// proxy"));
    CHECK(contains(error("socks5://h:1"), "only an http:// proxy"));
    CHECK(contains(error("http://h:0"), "bad port"));
    CHECK(contains(error("http://h:"), "bad port"));
    CHECK(contains(error("http://:8080"), "missing host"));
    CHECK(contains(error("http://h:1/path"), "no path"));
    CHECK(contains(error("http://u:p%zz@h:1"), "two hex digits"));
    CHECK_FALSE(contains(error("http://u:hunter2@h:0"), "hunter2"));
}

TEST_CASE("no_proxy is matched as curl matches it") {
    using client::no_proxy_covers;
    CHECK(no_proxy_covers("*", "anything.example"));
    CHECK(no_proxy_covers("example.org", "example.org"));
    CHECK(no_proxy_covers("example.org", "sync.example.org"));
    CHECK(no_proxy_covers(".example.org", "sync.example.org"));
    CHECK(no_proxy_covers("EXAMPLE.org", "Sync.Example.ORG"));
    CHECK_FALSE(no_proxy_covers("example.org", "notexample.org"));
    CHECK_FALSE(no_proxy_covers("example.org", "example.org.evil"));
    CHECK(no_proxy_covers("a.test, 127.0.0.1,localhost", "127.0.0.1"));
    CHECK(no_proxy_covers("a.test,localhost", "localhost"));
    CHECK_FALSE(no_proxy_covers("a.test,localhost", "127.0.0.1"));  // curl does not resolve or guess loopback
    CHECK(no_proxy_covers("::1", "::1"));
    CHECK(no_proxy_covers("[::1]", "::1"));
    CHECK_FALSE(no_proxy_covers("", "example.org"));
    CHECK_FALSE(no_proxy_covers(",,", "example.org"));
    // Networks, as hospital networks name theirs: addresses only.
    CHECK(no_proxy_covers("10.0.0.0/8", "10.20.30.40"));
    CHECK(no_proxy_covers("a.test, 192.168.1.0/24", "192.168.1.255"));
    CHECK_FALSE(no_proxy_covers("192.168.1.0/24", "192.168.2.1"));
    CHECK(no_proxy_covers("172.16.0.0/12", "172.31.255.1"));
    CHECK_FALSE(no_proxy_covers("172.16.0.0/12", "172.32.0.1"));
    CHECK(no_proxy_covers("0.0.0.0/0", "8.8.8.8"));
    CHECK(no_proxy_covers("127.0.0.1/32", "127.0.0.1"));
    CHECK_FALSE(no_proxy_covers("127.0.0.1/32", "127.0.0.2"));
    CHECK(no_proxy_covers("fd00::/8", "fd12:3456::1"));
    CHECK(no_proxy_covers("[::1]/128", "[::1]"));
    CHECK(no_proxy_covers("::1/128", "[::1]"));
    CHECK_FALSE(no_proxy_covers("fd00::/8", "fe80::1"));
    CHECK_FALSE(no_proxy_covers("10.0.0.0/8", "10.example.org"));  // a name is never resolved
    CHECK_FALSE(no_proxy_covers("10.0.0.0/8", "::ffff:10.0.0.1"));  // another family
    for (const char* bad : {"10.0.0.0/33", "10.0.0.0/", "10.0.0.0/x", "10.0.0/8", "/8", "fd00::/129"})
        CHECK_FALSE(no_proxy_covers(bad, "10.0.0.1"));

    // The environment: https_proxy unless no_proxy covers the host; an
    // explicit "" turns it off.
    ::setenv("https_proxy", "http://env-proxy:3128", 1);
    ::setenv("no_proxy", "internal.example", 1);
    CHECK(client::proxy_for(std::nullopt, "sync.example.org")->host == "env-proxy");
    CHECK(client::proxy_for(std::nullopt, "sync.example.org")->from_environment);
    CHECK_FALSE(client::proxy_for(std::nullopt, "sync.internal.example"));
    CHECK_FALSE(client::proxy_for(std::string(), "sync.example.org"));
    CHECK(client::proxy_for(std::string("http://mine:1"), "sync.internal.example")->host == "mine");
    ::unsetenv("https_proxy");
    ::unsetenv("no_proxy");
    ::setenv("HTTPS_PROXY", "http://upper:3128", 1);
    CHECK(client::proxy_for(std::nullopt, "h")->host == "upper");
    ::unsetenv("HTTPS_PROXY");
    CHECK_FALSE(client::proxy_for(std::nullopt, "h"));
}

TEST_CASE("the CONNECT names the server and carries the credentials") {
    SyncWorld w;
    // A tunnel that works is Squid's test; here, what the CONNECT says.
    FakeProxy proxy("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
    require_refused(w, proxy.url("tablet:s3cret@"), "refused CONNECT to 127.0.0.1:" + std::to_string(w.port()));
    const auto request = proxy.request();
    INFO(request);
    CHECK(request.starts_with("CONNECT 127.0.0.1:" + std::to_string(w.port()) + " HTTP/1.1\r\n"));
    CHECK(contains(request, "\r\nHost: 127.0.0.1:" + std::to_string(w.port()) + "\r\n"));
    CHECK(contains(request, "\r\nProxy-Authorization: Basic dGFibGV0OnMzY3JldA==\r\n"));
}

TEST_CASE("a proxy that refuses or botches CONNECT fails the round clearly, the outbox intact") {
    SyncWorld w;
    SECTION("403") {
        FakeProxy proxy("HTTP/1.1 403 Forbidden\r\nContent-Length: 5\r\n\r\nnope!");
        require_refused(w, proxy.url(), "ask its operator to allow port " + std::to_string(w.port()));
    }
    SECTION("407 without credentials") {
        FakeProxy proxy("HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"x\"\r\n\r\n");
        require_refused(w, proxy.url(), "wants credentials (HTTP 407 Proxy Authentication Required)");
        CHECK_FALSE(contains(proxy.request(), "Proxy-Authorization"));
    }
    SECTION("407 with credentials") {
        FakeProxy proxy("HTTP/1.1 407 Proxy Authentication Required\r\n\r\n");
        require_refused(w, proxy.url("u:wrong@"), "refused the credentials (HTTP 407");
    }
    SECTION("another status") {
        FakeProxy proxy("HTTP/1.1 502 Bad Gateway\r\n\r\n");
        require_refused(w, proxy.url(), "with HTTP 502 Bad Gateway");
    }
    SECTION("garbage") {
        FakeProxy proxy(std::string("\x16\x03\x01\x00\x05hello", 10) + std::string(100, 'x') + "\r\n\r\n");
        require_refused(w, proxy.url(), "something that is not HTTP");
    }
    SECTION("an answer that never ends is cut at the limit") {
        FakeProxy proxy("HTTP/1.1 200 OK\r\nX-Pad: " + std::string(64 * 1024, 'a') + "\r\n\r\n");
        require_refused(w, proxy.url(), "more than 16 KiB of headers");
    }
    SECTION("a proxy that closes at once") {
        FakeProxy proxy("");
        require_refused(w, proxy.url(), "closed the connection before answering CONNECT");
    }
    SECTION("a proxy that closes mid-answer") {
        FakeProxy proxy("HTTP/1.1 200 Connection est");
        require_refused(w, proxy.url(), "closed the connection before answering CONNECT");
    }
    SECTION("a proxy that never answers, within the connect timeout") {
        FakeProxy proxy("", std::chrono::milliseconds(4'000));
        require_refused(w, proxy.url(), "did not answer CONNECT in time");
    }
    SECTION("data after 200") {
        FakeProxy proxy("HTTP/1.1 200 Connection established\r\n\r\nSSH-2.0-not-a-tunnel\r\n");
        require_refused(w, proxy.url(), "sent data after accepting CONNECT");
    }
    SECTION("no proxy listening") {
        std::uint16_t unused = 0;
        {
            FakeProxy gone("");
            unused = static_cast<std::uint16_t>(std::stoi(gone.url().substr(gone.url().rfind(':') + 1)));
        }
        require_refused(w, "http://127.0.0.1:" + std::to_string(unused),
                        "the proxy 127.0.0.1:" + std::to_string(unused) + " is unreachable");
    }
}

TEST_CASE("an extra CA, as a TLS-inspecting proxy needs, is trusted beside the others") {
    SyncWorld w;
    Replica& tablet = w.tablet("tablet");
    const auto other = lindra::testing::make_ca("another CA");
    SyncOptions o;
    o.tls.ca_pem = other.certificate_pem;  // the world's CA is not in it
    auto r = w.sync(tablet, "coordinator-token", o);
    INFO(to_string(r.outcome) << ": " << r.message);
    CHECK(r.outcome == SyncOutcome::tls_failed);
    o.tls.extra_ca_pems = {w.ca().certificate_pem};
    r = w.sync(tablet, "coordinator-token", o);
    INFO(to_string(r.outcome) << ": " << r.message);
    CHECK(r.ok());
    // The same CA twice is no error; a list that holds no certificate is.
    o.tls.extra_ca_pems = {w.ca().certificate_pem, w.ca().certificate_pem};
    CHECK(w.sync(tablet, "coordinator-token", o).ok());
    o.tls.extra_ca_pems = {"not a certificate"};
    r = w.sync(tablet, "coordinator-token", o);
    CHECK(r.outcome == SyncOutcome::local_error);
    CHECK(contains(r.message, "extra CA list 1"));
}
