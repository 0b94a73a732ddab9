// A SyncServer on 127.0.0.1 with a temporary store, and tablets that sync
// with it, for in-process sync tests.
#pragma once

#include "support/temp_dir.hpp"

#include <lindra/replica.hpp>
#include <lindra/server.hpp>
#include <lindra/sync.hpp>

#include <catch2/catch.hpp>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace lindra::test {

// A sync round that must succeed; says why when it does not.
inline void require_ok(const SyncResult& r) {
    INFO(to_string(r.outcome) << ": " << r.message);
    REQUIRE(r.ok());
}

class SyncWorld {
public:
    // `tweak` adjusts the server's options (limits, timeouts) before it starts.
    explicit SyncWorld(std::function<void(ServerOptions&)> tweak = {}) : tweak_(std::move(tweak)) { start_server(); }

    // Stops the server and starts a new one on the same store (a restart).
    void restart_server() {
        server_.reset();
        start_server();
    }
    void stop_server() { server_.reset(); }

    std::uint16_t port() const { return server_->port(); }
    std::string server_db() const { return dir_.file("server.db"); }
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

    SyncResult sync(Replica& r, const std::string& token = "coordinator-token", SyncOptions options = {}) {
        options.port = server_ ? server_->port() : last_port_;
        options.token = token;
        options.connect_timeout = std::chrono::milliseconds(2'000);
        options.io_timeout = std::chrono::milliseconds(10'000);
        SyncClient client(r, options);
        return client.sync();
    }

private:
    void start_server() {
        ServerOptions o;
        o.db_path = dir_.file("server.db");
        o.users = {{"coord-1", "coordinator", "coordinator-token"},
                   {"mentor-1", "mentor", "mentor-token"},
                   {"cand-1", "candidate", "candidate-1-token"},
                   {"cand-2", "candidate", "candidate-2-token"}};
        o.port = last_port_;
        if (tweak_) tweak_(o);
        o.log = [this](std::string_view line) {  // called from the server's thread
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
    TempDir dir_;
    mutable std::mutex log_mutex_;
    std::vector<std::string> log_;  // guarded by log_mutex_
    std::uint16_t last_port_ = 0;
    std::unique_ptr<SyncServer> server_;
    std::vector<Tablet> tablets_;
};

}  // namespace lindra::test
