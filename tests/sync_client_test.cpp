// SyncClient as apps drive it: on the app's own io_context, asynchronously,
// with progress reports, and cancelled in the middle of a round.
#include "support/db.hpp"
#include "support/fixture.hpp"
#include "support/sync_fixture.hpp"

#include <algorithm>

// The app's side of Asio (lindra's public headers only forward-declare it).
#include <utility>

#include <boost/asio/io_context.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>

#include <lindra/sync.hpp>

#include <catch2/catch.hpp>

#include <future>
#include <thread>

using namespace lindra;
using lindra::test::SyncWorld;

namespace {

SyncOptions options_for(SyncWorld& w, const std::string& token) {
    SyncOptions o;
    o.port = w.port();
    o.token = w.token_for(token);
    o.io_timeout = std::chrono::milliseconds(10'000);
    w.set_transport(o);
    return o;
}

// `n` module completions (7 changes each) waiting in the outbox.
lindra::test::Seeded fill_outbox(Replica& tablet, int n) {
    const auto s = lindra::test::seed_group(tablet);
    tablet.batch([&](Writes& writes) {
        for (int i = 0; i < n; ++i) writes.complete_module(Id::random(), s.modules[0], s.group, 70, 30);
    });
    return s;
}

}  // namespace

TEST_CASE("a sync runs on the app's io_context and reports progress") {
    SyncWorld w;
    Replica& tablet = w.tablet("tablet");
    fill_outbox(tablet, 3'000);

    boost::asio::io_context io;
    auto work = boost::asio::make_work_guard(io);
    std::thread app_thread([&] { io.run(); });

    std::vector<SyncProgress> seen;
    auto options = options_for(w, "coordinator-token");
    options.push_batch_changes = 2'000;
    options.on_progress = [&](const SyncProgress& p) { seen.push_back(p); };  // on the io thread
    SyncClient client(tablet, options, io);
    std::promise<SyncResult> done;
    client.sync_async([&](SyncResult r) { done.set_value(std::move(r)); });
    auto future = done.get_future();
    REQUIRE(future.wait_for(std::chrono::seconds(30)) == std::future_status::ready);
    const SyncResult r = future.get();
    CHECK(r.ok());
    CHECK(tablet.outbox_size() == 0);

    // From the app's own io thread, sync() would block the loop it needs.
    std::promise<bool> refused;
    boost::asio::post(io, [&] {
        try {
            (void)client.sync();
            refused.set_value(false);
        } catch (const Error&) {
            refused.set_value(true);
        }
    });
    CHECK(refused.get_future().get());
    work.reset();
    app_thread.join();

    REQUIRE(!seen.empty());
    CHECK(seen.front().phase == SyncPhase::connecting);
    CHECK(seen.back().phase == SyncPhase::done);
    int pushing = 0;
    for (std::size_t i = 1; i < seen.size(); ++i) {
        CHECK(seen[i].changes_pushed >= seen[i - 1].changes_pushed);  // monotonic
        pushing += seen[i].phase == SyncPhase::pushing;
    }
    CHECK(pushing >= 10);  // ~21,000 changes in pushes of at most 2,000
    CHECK(seen.back().changes_pushed == r.changes_pushed);
    // The push is seen to finish: a pushing report with every write acknowledged.
    const auto last_push = std::find_if(seen.rbegin(), seen.rend(),
                                        [](const SyncProgress& p) { return p.phase == SyncPhase::pushing; });
    REQUIRE(last_push != seen.rend());
    CHECK(last_push->push_remaining == 0);
    CHECK(last_push->writes_pushed == r.writes_pushed);
}

TEST_CASE("a cancelled round stops soon, keeps what was acknowledged, and the next round finishes") {
    SyncWorld w;
    Replica& tablet = w.tablet("tablet");
    fill_outbox(tablet, 20'000);
    const auto total = tablet.outbox_size();

    auto options = options_for(w, "coordinator-token");
    options.push_batch_changes = 1'000;  // many small pushes: time to cancel in between
    SyncClient* client_ptr = nullptr;
    std::atomic<bool> cancelled{false};
    options.on_progress = [&](const SyncProgress& p) {
        if (p.phase == SyncPhase::pushing && p.changes_pushed > 0 && !cancelled.exchange(true)) client_ptr->cancel();
    };
    SyncClient client(tablet, options);
    client_ptr = &client;
    const auto r = client.sync();
    CHECK(r.outcome == SyncOutcome::cancelled);
    const auto left = tablet.outbox_size();
    CHECK(left < total);  // what was acknowledged left the outbox
    CHECK(left > 0);      // and the round did stop early

    SyncClient again(tablet, options_for(w, "coordinator-token"));
    CHECK(again.sync().ok());
    CHECK(tablet.outbox_size() == 0);
    Replica& other = w.tablet("other");
    SyncClient pull(other, options_for(w, "mentor-token"));
    CHECK(pull.sync().ok());
    CHECK(lindra::test::dump(w.path("other"), lindra::test::Tables::domain) ==
          lindra::test::dump(w.server_db(), lindra::test::Tables::domain));
}

TEST_CASE("one round at a time per client") {
    SyncWorld w;
    Replica& tablet = w.tablet("tablet");
    fill_outbox(tablet, 5'000);
    SyncClient client(tablet, options_for(w, "coordinator-token"));
    std::promise<SyncResult> first;
    client.sync_async([&](SyncResult r) { first.set_value(std::move(r)); });
    std::promise<SyncResult> second;
    client.sync_async([&](SyncResult r) { second.set_value(std::move(r)); });
    const auto busy = second.get_future().get();
    CHECK(busy.outcome == SyncOutcome::local_error);
    CHECK(first.get_future().get().ok());
}

TEST_CASE("rounds back to back on one client never find the last one still running") {
    SyncWorld w;
    Replica& tablet = w.tablet("tablet");
    lindra::test::seed_group(tablet);
    SyncClient client(tablet, options_for(w, "coordinator-token"));
    for (int i = 0; i < 200; ++i) {
        const auto r = client.sync();
        INFO("round " << i << ": " << r.message);
        REQUIRE(r.ok());
    }
}
