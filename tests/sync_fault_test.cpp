// Faults on the wire: syncs through a proxy that cuts the connection at a
// chosen point. A cut round ends as "offline"; the retry completes it; no
// change is lost and none is applied (or logged) twice.
//
// "Applied once" is checked two ways: the server's change log holds exactly
// one entry per local write, and the time_spent_s counters equal the sum of
// what was written.
#include "support/db.hpp"
#include "support/fixture.hpp"
#include "support/proxy.hpp"
#include "support/sync_fixture.hpp"

#include <lindra/sync.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

using namespace lindra;
using lindra::test::count_rows;
using lindra::test::Cut;
using lindra::test::Direction;
using lindra::test::dump;
using lindra::test::Proxy;
using lindra::test::Seeded;
using lindra::test::require_ok;
using lindra::test::SyncWorld;
using lindra::test::Tables;

namespace {

constexpr const char* kToken = "coordinator-token";


// A round whose connection was cut: it failed as a broken connection does.
void require_cut(const SyncResult& r) {
    INFO(to_string(r.outcome) << ": " << r.message);
    REQUIRE(r.outcome == SyncOutcome::offline);
}

// The proxy counts lindra frames in the bytes it forwards; under TLS it sees
// only records. Tests that cut "after the Welcome" or "after 5 pages" run
// their server on plain TCP; cuts at byte offsets also run over TLS.
void plain_tcp(ServerOptions& o) { o.insecure = true; }

// One round through the proxy (SyncWorld::sync always goes to the server).
SyncResult sync_through(const SyncWorld& w, Proxy& proxy, Replica& r, SyncOptions options = {}) {
    options.port = proxy.port();
    options.token = w.token_for(kToken);
    options.connect_timeout = std::chrono::milliseconds(2'000);
    options.io_timeout = std::chrono::milliseconds(10'000);
    w.set_transport(options);
    SyncClient client(r, options);
    return client.sync();
}

// The tablet holds the same domain tables as the server, byte for byte.
void require_same_as_server(SyncWorld& w, const std::string& tablet) {
    INFO("tablet " << tablet);
    REQUIRE(dump(w.path(tablet), Tables::domain) == dump(w.server_db(), Tables::domain));
}

std::int64_t log_entries(SyncWorld& w) {
    return count_rows(w.server_db(), "lindra_log");
}

// Time spent written on the seeded group's progress rows (each candidate x
// each module), remembered so the counters can be checked afterwards.
class Ledger {
  public:
    explicit Ledger(const Seeded& s) : s_(s), seconds_(s.candidates.size() * s.modules.size(), 0) {}

    // `count` writes, spread over the rows, in batches of 1,000 writes.
    void add_time(Replica& r, int count) {
        for (int done = 0; done < count;) {
            const int n = std::min(1'000, count - done);
            r.batch([&](Writes& w) {
                for (int i = done; i < done + n; ++i) {
                    const auto k = static_cast<std::size_t>(next_++) % seconds_.size();
                    const std::int64_t seconds = 1 + next_ % 13;
                    w.add_time_spent(candidate(k), module(k), s_.group, seconds);
                    seconds_[k] += seconds;
                }
            });
            done += n;
        }
    }

    // Every row's time_spent_s equals what was written to it, once.
    void require_counted(const Replica& r) const {
        for (std::size_t k = 0; k < seconds_.size(); ++k) {
            std::int64_t have = 0;
            for (const auto& p : r.progress_of(candidate(k)))
                if (p.module == module(k) && p.group == s_.group) have = p.time_spent_s;
            INFO("progress row " << k << " of " << r.path());
            REQUIRE(have == seconds_[k]);
        }
    }

  private:
    const Id& candidate(std::size_t k) const { return s_.candidates[k % s_.candidates.size()]; }
    const Id& module(std::size_t k) const { return s_.modules[k / s_.candidates.size()]; }

    const Seeded& s_;
    std::vector<std::int64_t> seconds_;
    int next_ = 0;
};

// A server with the seeded group, synced by the coordinator, and a tablet
// that has pulled it. `entries` counts the local writes made on any device,
// which the server's log must hold exactly once each after they synced.
struct Scene {
    SyncWorld w;
    Replica& coordinator = w.tablet("coordinator");
    Seeded s = lindra::test::seed_group(coordinator);
    Ledger ledger{s};
    std::int64_t entries = coordinator.outbox_size();
    Replica& tablet = w.tablet("tablet");

    explicit Scene(std::function<void(ServerOptions&)> tweak = {}) : w(std::move(tweak)) {
        require_ok(w.sync(coordinator));
        require_ok(w.sync(tablet));
    }

    void add_time(Replica& r, int count) {
        ledger.add_time(r, count);
        entries += count;
    }

    // Every write is in the server's log once, and `tablet` matches the server.
    void require_once(const std::string& tablet_name, Replica& r) {
        CHECK(r.outbox_size() == 0);
        CHECK(log_entries(w) == entries);
        require_same_as_server(w, tablet_name);
        ledger.require_counted(r);
    }
};

// The changes a fresh device pulls, in log order: every outbox entry of `r`.
std::vector<Change> all_changes(const Replica& r) {
    std::vector<Change> out;
    for (auto& e : r.outbox(SIZE_MAX)) out.insert(out.end(), e.changes.begin(), e.changes.end());
    return out;
}

}  // namespace

TEST_CASE("a connection dropped in the middle of a push changes nothing; the retry applies it once") {
    Scene scene;
    scene.add_time(scene.tablet, 2'000);
    const auto logged_before = log_entries(scene.w);

    Proxy proxy(scene.w.port());
    // The Hello is ~100 bytes and the push of 2,000 writes tens of KiB.
    proxy.set_cut(Cut{.direction = Direction::client_to_server, .bytes = 8 * 1024});
    require_cut(sync_through(scene.w, proxy, scene.tablet));
    CHECK(proxy.cuts() == 1);
    CHECK(proxy.bytes(Direction::client_to_server) == 8 * 1024);
    CHECK(proxy.bytes(Direction::server_to_client) > 0);  // the Welcome came
    CHECK(scene.tablet.outbox_size() == 2'000);
    CHECK(log_entries(scene.w) == logged_before);  // no part of the push was applied

    require_ok(scene.w.sync(scene.tablet));
    scene.require_once("tablet", scene.tablet);
    require_ok(scene.w.sync(scene.coordinator));
    scene.require_once("coordinator", scene.coordinator);
}

TEST_CASE("a PushAck lost after the server committed the push: the retry applies nothing twice") {
    Scene scene(plain_tcp);
    scene.add_time(scene.tablet, 200);

    Proxy proxy(scene.w.port());
    proxy.set_cut(Cut{.direction = Direction::server_to_client, .frames = 1, .bytes = 3});  // Welcome + 3 bytes
    require_cut(sync_through(scene.w, proxy, scene.tablet));
    CHECK(proxy.cuts() == 1);
    CHECK(scene.tablet.outbox_size() == 200);      // no acknowledgement arrived
    CHECK(log_entries(scene.w) == scene.entries);  // but the server committed the push

    const auto retry = scene.w.sync(scene.tablet);
    require_ok(retry);
    scene.require_once("tablet", scene.tablet);
    require_ok(scene.w.sync(scene.coordinator));
    scene.require_once("coordinator", scene.coordinator);
}

TEST_CASE("a pull cut off after some pages keeps them; the retry pulls only the rest") {
    SyncWorld w(plain_tcp);
    Replica& coordinator = w.tablet("coordinator");
    const auto s = lindra::test::seed_group(coordinator);
    Ledger ledger(s);
    ledger.add_time(coordinator, 2'000);
    const auto log = all_changes(coordinator);
    require_ok(w.sync(coordinator));

    Replica& reader = w.tablet("reader");
    Proxy proxy(w.port());
    proxy.set_cut(Cut{.direction = Direction::server_to_client, .frames = 6, .bytes = 10});  // Welcome, 5 pages
    SyncOptions small_pages;
    small_pages.pull_batch_changes = 100;
    const auto cut = sync_through(w, proxy, reader, small_pages);
    require_cut(cut);
    REQUIRE(proxy.cuts() == 1);
    // Five pages of whole writes, at most 100 changes each.
    CHECK(cut.changes_pulled > 5 * 80);
    CHECK(cut.changes_pulled <= 5 * 100);

    // What the reader holds is exactly the log's first changes_pulled changes.
    Replica& prefix = w.tablet("prefix");
    prefix.apply_remote(std::span(log).first(static_cast<std::size_t>(cut.changes_pulled)));
    CHECK(dump(w.path("reader"), Tables::domain) == dump(w.path("prefix"), Tables::domain));

    const auto retry = w.sync(reader, kToken, small_pages);
    require_ok(retry);
    CHECK(retry.changes_pulled == static_cast<std::int64_t>(log.size()) - cut.changes_pulled);
    require_same_as_server(w, "reader");
    ledger.require_counted(reader);
}

TEST_CASE("a sync cut at any point fails cleanly and the retry converges") {
    // Each round: the coordinator writes and syncs; the tablet writes, then
    // syncs through the proxy (several pushes and pulls of 100 changes),
    // cut at a point spread over the round's bytes in one direction; then
    // it retries directly.
    constexpr int kCutsPerDirection = 10;
    constexpr int kWrites = 150;
    Scene scene;
    Proxy proxy(scene.w.port());
    SyncOptions small_batches;
    small_batches.push_batch_changes = 100;
    small_batches.pull_batch_changes = 100;
    auto round = [&](std::optional<Cut> cut) {
        scene.add_time(scene.coordinator, kWrites);
        require_ok(scene.w.sync(scene.coordinator));
        scene.add_time(scene.tablet, kWrites);
        proxy.set_cut(cut);
        const auto through = sync_through(scene.w, proxy, scene.tablet, small_batches);
        if (!cut) return require_ok(through);
        require_cut(through);
        require_ok(scene.w.sync(scene.tablet, kToken, small_batches));
    };

    round(std::nullopt);  // measures a round's bytes in each direction
    const std::uint64_t total[] = {proxy.bytes(Direction::client_to_server), proxy.bytes(Direction::server_to_client)};
    scene.require_once("tablet", scene.tablet);
    for (const auto direction : {Direction::client_to_server, Direction::server_to_client}) {
        for (int i = 0; i < kCutsPerDirection; ++i) {
            const auto at = total[static_cast<int>(direction)] * (2 * i + 1) / (2 * kCutsPerDirection);
            INFO((direction == Direction::client_to_server ? "client->server" : "server->client")
                 << " cut after " << at << " of " << total[static_cast<int>(direction)] << " bytes");
            const int cuts = proxy.cuts();
            round(Cut{.direction = direction, .bytes = at});
            CHECK(proxy.cuts() == cuts + 1);
            scene.require_once("tablet", scene.tablet);
        }
    }
    require_ok(scene.w.sync(scene.coordinator));
    scene.require_once("coordinator", scene.coordinator);
}

TEST_CASE("a fresh device pulls over 100 000 changes in pages") {
    SyncWorld w;
    Replica& writer = w.tablet("writer");
    const auto s = lindra::test::seed_group(writer);
    // Per person: registered (3 changes), then 4 modules completed with a
    // score (6 changes each, a new row each) and time spent on them (1 each).
    constexpr int kPersons = 3'300, kPersonsPerBatch = 200;
    for (int first = 0; first < kPersons; first += kPersonsPerBatch) {
        writer.batch([&](Writes& wr) {
            for (int i = first; i < first + kPersonsPerBatch; ++i) {
                const Id person =
                    wr.register_person("Person " + std::to_string(i), Profession::assistant, s.organization);
                for (const Id& module : s.modules) {
                    wr.complete_module(person, module, s.group, 50 + i % 50);
                    wr.add_time_spent(person, module, s.group, 60);
                }
            }
        });
    }
    const auto pushed = w.sync(writer);
    require_ok(pushed);
    REQUIRE(pushed.changes_pushed >= 100'000);

    Replica& fresh = w.tablet("fresh");
    int pages = 0;
    std::int64_t last_pulled = 0;
    SyncOptions options;
    options.pull_batch_changes = 5'000;
    options.on_progress = [&](const SyncProgress& p) {
        if (p.phase == SyncPhase::pulling && p.changes_pulled > last_pulled) {
            ++pages;
            last_pulled = p.changes_pulled;
        }
    };
    const auto pulled = w.sync(fresh, kToken, options);
    require_ok(pulled);
    CHECK(pulled.changes_pulled == pushed.changes_pushed);
    CHECK(pulled.changes_pulled >= 100'000);
    CHECK(pages >= 20);
    CHECK(pages <= 25);
    CHECK(fresh.outbox_size() == 0);
    require_same_as_server(w, "fresh");
}

// A connection that breaks inside a frame from the server is a broken
// connection (try again later), not a protocol error.
TEST_CASE("a connection cut in the middle of a server frame is reported as offline") {
    Scene scene(plain_tcp);
    Proxy proxy(scene.w.port());
    proxy.set_cut(Cut{.direction = Direction::server_to_client, .bytes = 5});  // inside the Welcome
    const auto r = sync_through(scene.w, proxy, scene.tablet);
    INFO(to_string(r.outcome) << ": " << r.message);
    CHECK(proxy.cuts() == 1);
    CHECK(r.outcome == SyncOutcome::offline);
}

// A handshake cut off by the network is a broken connection too, not a
// certificate that failed to verify: the tablet tries again later.
TEST_CASE("a connection cut in the middle of the TLS handshake is reported as offline") {
    Scene scene;
    for (const auto direction : {Direction::server_to_client, Direction::client_to_server}) {
        Proxy proxy(scene.w.port());
        proxy.set_cut(Cut{.direction = direction, .bytes = 5});  // inside the first handshake record
        const auto r = sync_through(scene.w, proxy, scene.tablet);
        INFO(to_string(r.outcome) << ": " << r.message);
        CHECK(proxy.cuts() == 1);
        CHECK(r.outcome == SyncOutcome::offline);
    }
    require_ok(scene.w.sync(scene.tablet));
}
