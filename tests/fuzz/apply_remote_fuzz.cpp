// Applying what a server sends: the input is one ServerMessage body. A
// PullBatch is applied as a device applies it (its purges, then its changes
// and cursor, in one transaction); a PushAck's rejected changes are put
// back as the device puts them back. The replica holds the seed rows
// (fuzz_world.hpp) and writes of its own still in its outbox
// (fuzz::unpushed_writes); every input starts from a fresh copy of it.
//
// Besides "no crash": decoding throws only ProtocolError and applying only
// lindra::Error; a call that throws leaves every table as it was and the
// transaction usable (the server applies each pushed entry this way and
// goes on with the next); a batch applied twice changes nothing the second
// time; its writes applied one by one in reverse order leave the same rows
// (merging commutes); a row a PushAck refused keeps the device's later
// writes to it still pending, and refusals put back twice change nothing the
// second time; and the database passes integrity_check.
#include "fuzz/fuzz_world.hpp"
#include "model/merge.hpp"
#include "replica/core.hpp"
#include "support/temp_dir.hpp"

#include <lindra/replica.hpp>
#include <lindra/schema.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

using namespace lindra;
using lindra::fuzz::finding;

namespace {

const ReplicaOptions kOptions{.wall_clock_ms = [] { return fuzz::kNowMs; }};
constexpr std::size_t kMaxChanges = 2'000;
// Where a pulled batch leaves its cursor; merged rows are compared without it.
constexpr std::string_view kReplicaState[] = {"lindra_replica"};

class World {
  public:
    World() {
        const fuzz::Seed& s = fuzz::seed();
        Replica r(template_db(), kOptions);
        for (const auto& entry : s.entries) r.apply_remote(entry.changes);
        r.batch(fuzz::unpushed_writes);
    }
    std::string template_db() const { return dir_.file("template.db"); }
    std::string db() const { return dir_.file("replica.db"); }

  private:
    test::TempDir dir_{true};
};

// Runs `f`, one call of the device's apply path. If it throws, it must be a
// lindra::Error that left every table as it was. False if it threw.
template <class F>
bool applied(detail::Core& core, const char* what, F&& f) {
    const std::string before = fuzz::dump(core.db);
    try {
        f();
        return true;
    } catch (const Error& e) {
        fuzz::trace(std::string(what) + " refused: " + e.what());
        if (e.storage_failure()) finding(std::string(what) + ": a storage failure: " + e.what());
        if (fuzz::dump(core.db) != before) finding(std::string(what) + " threw after changing rows: " + e.what());
        return false;
    } catch (const std::exception& e) {
        finding(std::string(what) + " threw something other than lindra::Error: " + e.what());
    }
}

// The batch as a device applies it; the dump after, or nullopt if refused.
std::optional<std::string> apply_batch(detail::Core& core, const protocol::PullBatch& batch) {
    detail::Core::WriteTransaction txn(core);
    for (const auto& p : batch.purges) core.purge(p.rows);
    if (!applied(core, "apply_pulled", [&] { core.apply_pulled(batch.changes, batch.next_cursor, !batch.has_more); })) {
        txn.commit();  // a refused batch leaves the transaction usable
        return std::nullopt;
    }
    fuzz::trace("applied " + std::to_string(batch.changes.size()) + " changes");
    const std::string once = fuzz::dump(core.db);
    if (!applied(core, "apply_pulled again",
                 [&] { core.apply_pulled(batch.changes, batch.next_cursor, !batch.has_more); }))
        finding("a batch that applied was refused the second time");
    if (fuzz::dump(core.db) != once) finding("applying a batch twice changed rows the second time");
    txn.commit();
    return fuzz::dump(core.db, kReplicaState);
}

// The batch's writes (runs of one entity, row, hlc and origin), last first
// and each with its changes reversed, each applied on its own.
void check_reverse_order(detail::Core& core, const protocol::PullBatch& batch, const std::string& forward) {
    detail::Core::WriteTransaction txn(core);
    for (const auto& p : batch.purges) core.purge(p.rows);
    const std::span<const Change> changes = batch.changes;
    for (std::size_t end = changes.size(); end > 0;) {
        std::size_t begin = end - 1;
        const Change& last = changes[begin];
        while (begin > 0 && changes[begin - 1].entity == last.entity && changes[begin - 1].row == last.row &&
               changes[begin - 1].hlc == last.hlc && changes[begin - 1].origin == last.origin)
            --begin;
        const std::vector<Change> write(changes.rend() - static_cast<std::ptrdiff_t>(end),
                                        changes.rend() - static_cast<std::ptrdiff_t>(begin));
        if (!applied(core, "apply", [&] { core.apply(write); }))
            finding("a write of a batch that applied whole was refused on its own");
        end = begin;
    }
    if (fuzz::dump(core.db, kReplicaState) != forward)
        finding("the batch's writes applied in reverse order left other rows");
}

// The refusals put back as the device puts them back: each row goes back to
// the server's state with the device's later pending writes to it on top.
// Then once more, which must change nothing.
void revert(detail::Core& core, const protocol::PushAck& ack) {
    auto put_back = [&] {
        detail::Core::WriteTransaction txn(core);
        for (const auto& r : ack.rejected) {
            const EntityDef& e = *find_entity(r.entity);  // the decoder checked it
            applied(core, "revert", [&] { core.revert(e, r.row, r.seq, r.fields, r.current, r.drop_row); });
        }
        txn.commit();
    };
    put_back();
    const std::string once = fuzz::dump(core.db);

    // A row refused holds the device's writes to it still pending after
    // the last refusal: merging them in again changes nothing.
    std::map<std::pair<std::uint16_t, Id>, std::int64_t> refused;  // a row's last refused seq
    for (const auto& r : ack.rejected) {
        auto& seq = refused[{r.entity, r.row}];
        seq = std::max(seq, r.seq);
    }
    for (const auto& entry : core.outbox(SIZE_MAX)) {
        const Change& c = entry.changes.front();
        const auto it = refused.find({c.entity, c.row});
        if (it == refused.end() || entry.seq <= it->second) continue;
        const EntityDef& e = *find_entity(c.entity);
        const model::RowState row = core.load(e, c.row);
        if (model::merged(e, row, entry.changes).fields != row.fields)
            finding("a refused write's row lost the device's later write " + std::to_string(entry.seq) +
                    ", still pending");
    }

    put_back();
    if (fuzz::dump(core.db) != once) finding("putting back a PushAck's refusals twice changed rows the second time");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const World world;
    protocol::ServerMessage message;
    try {
        message = protocol::decode_server(std::span(data, size), kMaxChanges);
    } catch (const protocol::ProtocolError& e) {
        // The decoder turns any other exception into `internal`: a bug, not bad bytes.
        if (e.code() == protocol::ErrorCode::internal) finding(e.what());
        return 0;
    }
    const auto* batch = std::get_if<protocol::PullBatch>(&message);
    const auto* ack = std::get_if<protocol::PushAck>(&message);
    if (!batch && !ack) return 0;

    fuzz::copy_database(world.template_db(), world.db());
    detail::Core core(world.db(), kOptions);
    const std::lock_guard lock(core.mutex);
    if (ack) {
        revert(core, *ack);
    } else if (const auto forward = apply_batch(core, *batch)) {
        // Back to the state before the batch, then the other order.
        fuzz::copy_database(world.template_db(), world.db() + "-reverse");
        detail::Core other(world.db() + "-reverse", kOptions);
        check_reverse_order(other, *batch, *forward);
    }
    fuzz::check_integrity(core.db);
    return 0;
}
