// One sync round as a state machine, without I/O (net/ moves the bytes):
// Hello -> Welcome -> (Push -> PushAck)* -> (Pull -> PullBatch)* -> done.
#pragma once

#include "net/client.hpp"
#include "replica/core.hpp"

#include <lindra/sync.hpp>

#include <deque>

namespace lindra::client {

class SyncSession final : public net::ClientSession {
public:
    SyncSession(detail::Core& core, const SyncOptions& options);

    std::vector<std::string> first_frames() override;
    net::Reply on_frame(std::span<const std::uint8_t> body) override;
    net::Reply on_bad_frame(const protocol::ProtocolError& error) override;
    void on_close(std::string_view reason) override;
    bool done() const override { return state_ == State::done; }

    // The round's result, given how the connection ended.
    SyncResult result(const net::ClientOutcome& outcome) const;

private:
    enum class State { hello, pushing, pulling, done };

    net::Reply welcome(const protocol::Welcome& m);
    net::Reply push_ack(const protocol::PushAck& m);
    net::Reply pull_batch(protocol::PullBatch& m);
    // Fills the push window; once the outbox is sent and acknowledged, the
    // first Pull, or done.
    net::Reply next();
    net::Reply pull(std::string cursor);
    net::Reply finish(SyncOutcome outcome, std::string message);
    net::Reply send(const protocol::ClientMessage& m);
    void progress(SyncPhase phase);
    // Tells the app of refused or discarded changes, once they are undone
    // and what they set is kept.
    void report(std::vector<SyncRejection>& rejected);
    std::string label_of(std::string_view entity, const Id& row);  // with core_.mutex held

    detail::Core& core_;
    const SyncOptions& options_;
    State state_ = State::hello;
    SyncResult result_{};
    bool finished_ = false;  // result_.outcome is final
    std::uint32_t push_limit_ = 0, pull_limit_ = 0;
    std::size_t push_bytes_ = 0;  // values per Push, to stay within a frame
    // Pushes sent and not yet acknowledged, oldest first: two at a time, so
    // this device reads and encodes the next batch while the server applies
    // the last one.
    struct InFlight {
        std::int64_t last_seq = 0;
        std::int64_t writes = 0;  // outbox entries
        std::int64_t changes = 0;
    };
    static constexpr std::size_t kPushWindow = 2;
    std::deque<InFlight> in_flight_;
    bool pull_needed_ = false, include_own_ = false;
    // The server's time at Welcome, or the last stamp this round restamped
    // an entry to: nothing is pushed stamped above it.
    std::uint64_t ceiling_ = 0;
    std::uint64_t pull_remaining_ = 0;  // as the last PullBatch said
};

}  // namespace lindra::client
