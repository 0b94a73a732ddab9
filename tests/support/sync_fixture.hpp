// A SyncServer on 127.0.0.1 with a temporary store, and tablets that sync
// with it, for in-process sync tests. The server speaks TLS with a
// certificate from a throw-away CA, unless a test's tweak sets insecure.
#pragma once

#include <lindra/testing/certs.hpp>
#include "support/temp_dir.hpp"
#include "support/test_store.hpp"

#include <lindra/replica.hpp>
#include <lindra/server.hpp>
#include <lindra/sync.hpp>

#include <catch2/catch.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace lindra::test {

// A sync round that must succeed; says why when it does not.
inline void require_ok(const SyncResult& r) {
    INFO(to_string(r.outcome) << ": " << r.message);
    REQUIRE(r.ok());
}

// One CA and a server certificate for 127.0.0.1 and localhost, made once
// per test process.
struct TestPki {
    lindra::testing::Ca ca;
    lindra::testing::Leaf server;
};
inline const TestPki& test_pki() {
    static const TestPki pki = [] {
        auto ca = lindra::testing::make_ca("lindra test CA");
        auto server = lindra::testing::issue_leaf(ca, {.dns_names = {"localhost"}, .ip_addresses = {"127.0.0.1"}});
        return TestPki{std::move(ca), std::move(server)};
    }();
    return pki;
}

class SyncWorld {
  public:
    // `tweak` adjusts the server's options (limits, timeouts) before it starts.
    explicit SyncWorld(std::function<void(ServerOptions&)> tweak = {}) : tweak_(std::move(tweak)) { start_server(); }

    // Stops the server and starts a new one on the same store (a restart).
    // On the same port; with `tweak`, changed by it from here on.
    void restart_server(std::function<void(ServerOptions&)> tweak) {
        tweak_ = std::move(tweak);
        restart_server();
    }
    void restart_server() {
        server_.reset();
        start_server();
    }
    void stop_server() { server_.reset(); }
    SyncServer& server() { return *server_; }

    std::uint16_t port() const { return server_->port(); }
    // The server's store: a file, or a PostgreSQL connection string.
    std::string server_db() const { return store_.db(); }
    std::vector<std::string> log() const {
        std::lock_guard lock(log_mutex_);
        return log_;
    }

    Replica& tablet(const std::string& name, ReplicaOptions options = {}) {
        for (auto& t : tablets_)
            if (t.name == name) return *t.replica;
        tablets_.push_back({name, std::make_unique<Replica>(dir_.file(name + ".db"), std::move(options))});
        return *tablets_.back().replica;
    }
    std::string path(const std::string& name) const { return dir_.file(name + ".db"); }

    // The CA the server's certificate comes from, and that certificate.
    const lindra::testing::Ca& ca() const { return test_pki().ca; }
    const lindra::testing::Leaf& server_certificate() const { return test_pki().server; }
    // Plain TCP if the server is insecure; otherwise, unless the caller
    // chose plain TCP or CAs of its own, TLS trusting ca().
    void set_transport(SyncOptions& o) const {
        if (insecure_)
            o.insecure = true;
        else if (!o.insecure && o.tls.ca_pem.empty())
            o.tls.ca_pem = ca().certificate_pem;
    }

    // The world's Ed25519 token key (PEM); its server verifies tokens with it.
    const std::string& token_key() const { return token_key_; }
    // A token for `claims` signed with the world's key, valid from `now_s`
    // (seconds since the epoch; 0: now).
    std::string token(const TokenClaims& claims, std::int64_t now_s = 0) const {
        return issue_token(token_key_, claims, "lindra", "lindra", now_s);
    }
    // The signed token for one of the fixture's names ("coordinator-token",
    // "mentor-token", "candidate-1-token", "candidate-2-token"); any other
    // string is taken as the token itself, so "not-a-token" stays one.
    std::string token_for(const std::string& name) const {
        const auto it = tokens_.find(name);
        return it == tokens_.end() ? name : it->second;
    }

    // `token` is one of the fixture's names, or a token (see token_for).
    SyncResult sync(Replica& r, const std::string& token = "coordinator-token", SyncOptions options = {}) {
        SyncClient client(r, options_for(token, std::move(options)));
        return client.sync();
    }
    // The options sync() gives its client, for a test that keeps one.
    SyncOptions options_for(const std::string& token = "coordinator-token", SyncOptions options = {}) {
        options.port = server_ ? server_->port() : last_port_;
        options.token = token_for(token);
        options.connect_timeout = std::chrono::milliseconds(2'000);
        options.io_timeout = std::chrono::milliseconds(10'000);
        set_transport(options);
        return options;
    }

  private:
    void start_server() {
        ServerOptions o;
        o.db_path = store_.db();
        o.tokens.key_pem = token_key_;
        o.port = last_port_;
        o.tls = {server_certificate().certificate_pem, server_certificate().private_key_pem};
        if (tweak_) tweak_(o);
        insecure_ = o.insecure;
        // These tests are about sync, not authorization: every name is an
        // admin, each a user of its own. Issued at the server's clock, which
        // a test may have set.
        const std::int64_t now_s = o.wall_clock_ms ? o.wall_clock_ms() / 1000 : 0;
        static constexpr std::pair<const char*, const char*> names[] = {{"coordinator-token", "coord-1"},
                                                                        {"mentor-token", "mentor-1"},
                                                                        {"candidate-1-token", "cand-1"},
                                                                        {"candidate-2-token", "cand-2"}};
        for (const auto& [name, user] : names) tokens_[name] = token({.user = user, .role = Role::admin}, now_s);
        o.log = [this](std::string_view line) {  // from the server's worker threads
            std::lock_guard lock(log_mutex_);
            log_.emplace_back(line);
        };
        server_ = std::make_unique<SyncServer>(std::move(o));
        last_port_ = server_->port();
    }

    struct Tablet {
        std::string name;
        std::unique_ptr<Replica> replica;
    };
    std::function<void(ServerOptions&)> tweak_;
    std::string token_key_ = generate_token_key();
    std::map<std::string, std::string> tokens_;  // the fixture's names -> signed tokens
    TempDir dir_;
    TestStore store_{dir_};
    mutable std::mutex log_mutex_;
    std::vector<std::string> log_;  // guarded by log_mutex_
    std::uint16_t last_port_ = 0;
    bool insecure_ = false;  // the server's ServerOptions::insecure
    std::unique_ptr<SyncServer> server_;
    std::vector<Tablet> tablets_;
};

}  // namespace lindra::test
