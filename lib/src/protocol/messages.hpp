// The sync protocol's messages as lindra's own types (DESIGN §5).
//
// Only protocol/ sees the generated protobuf types; every other layer
// speaks these structs, and codec.cpp translates. The wire format is
// proto/lindra/v1/sync.proto.
#pragma once

#include <lindra/change.hpp>
#include <lindra/id.hpp>
#include <lindra/schema.hpp>

#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace lindra::protocol {

inline constexpr std::uint32_t kVersion = 1;
inline constexpr std::size_t kDefaultMaxFrame = std::size_t{4} << 20;
// Outbox seqs are 1..kMaxSeq; anything else on the wire is malformed (a
// device could not have made it, and shifting seqs past it would overflow).
inline constexpr std::int64_t kMaxSeq = std::int64_t{1} << 53;

// The closed set of errors a peer reports (sync.proto ErrorCode).
enum class ErrorCode : std::uint8_t {
    unauthenticated = 1,
    permission_denied = 2,
    invalid_argument = 3,
    frame_too_large = 4,
    unsupported_version = 5,
    rate_limited = 6,
    internal = 7,
};
std::string_view to_string(ErrorCode code);

// The peer sent something that is not a valid message; `code` is what to
// answer with in an Error frame before closing.
class ProtocolError : public std::runtime_error {
public:
    ProtocolError(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
    ErrorCode code() const noexcept { return code_; }

private:
    ErrorCode code_;
};

// The changes of one local write: one outbox entry, one server log entry.
// All share entity, row, hlc and origin.
struct Entry {
    std::int64_t seq = 0;  // the device's outbox seq (Push); the log position (server side)
    std::vector<Change> changes{};
};

struct Limits {
    std::uint32_t max_frame_bytes = static_cast<std::uint32_t>(kDefaultMaxFrame);
    std::uint32_t max_push_changes = 50'000;
    std::uint32_t max_pull_changes = 50'000;
};

// ---- client to server ----
struct Hello {
    std::vector<std::uint32_t> versions{};
    Id device{};
    std::string token{};
    std::uint32_t schema_version = 0;
    std::string app{};
    std::string cursor{};
    std::int64_t acked_seq = 0;  // the device holds the answers up to here
};
// Every change's origin is the device that said Hello.
struct Push {
    std::vector<Entry> entries{};  // in seq order
};
struct Pull {
    std::string cursor{};
    std::uint32_t max_changes = 0;
    bool include_own = false;  // also the device's own changes (it lost some)
};
struct Ping {
    std::uint64_t nonce = 0;
};

// ---- server to client ----
struct Welcome {
    std::uint32_t version = 0;
    Id server_id{};
    std::uint64_t server_hlc = 0;
    std::string user{};
    std::vector<std::string> roles{};
    Limits limits{};
    std::int64_t highest_seq = 0;
    bool pull_needed = false;
    std::uint64_t highest_hlc = 0;  // the hlc of the entry at highest_seq
    std::uint64_t pull_remaining = 0;  // log entries after the cursor, an upper bound; 0: none or unknown
};
struct Rejected {
    std::int64_t seq = 0;
    ErrorCode code = ErrorCode::invalid_argument;
    std::string reason{};
    // What the device puts back: the row's fields `fields` become `current`
    // (the server's state, counters as one change per origin), or the row
    // goes if `drop_row`.
    std::uint16_t entity = 0;
    Id row{};
    std::vector<std::uint16_t> fields{};
    std::vector<Change> current{};
    bool drop_row = false;
};
struct PushAck {
    std::int64_t acked_seq = 0;
    std::vector<Rejected> rejected{};
};
struct Purge {
    std::string scope{};
    std::vector<Id> rows{};
    // What the scope was (none from an older server): catalog is never
    // purged. group and person are nil where the kind has none.
    std::optional<ScopeKind> kind{};
    Id group{};
    Id person{};
};
struct PullBatch {
    std::vector<Change> changes{};  // grouped on the wire by (entity, row, hlc, origin) runs
    std::string next_cursor{};
    bool has_more = false;
    std::vector<Purge> purges{};
    std::uint64_t remaining = 0;
};
struct Pong {
    std::uint64_t nonce = 0;
};
struct ErrorMessage {
    ErrorCode code = ErrorCode::internal;
    std::string message{};
    std::uint32_t retry_after_ms = 0;
};

using ClientMessage = std::variant<Hello, Push, Pull, Ping>;
using ServerMessage = std::variant<Welcome, PushAck, PullBatch, Pong, ErrorMessage>;

// Message bodies, without the frame's length prefix (see frame.hpp).
std::string encode(const ClientMessage& message);
std::string encode(const ServerMessage& message);

// Decoding checks structure and schema tags, not values (the replica
// validates those): malformed bytes, an unknown entity or field tag, an
// array too short for the fields it carries, an id that is not 16 bytes, an
// index past the id table, a Push whose groups name an origin, or more than
// `max_changes` changes in the message (counted before any is built), all
// throw ProtocolError(invalid_argument). `device` is the Hello's device id,
// the origin of every pushed change; a Push before Hello is the caller's to
// refuse.
ClientMessage decode_client(std::span<const std::uint8_t> body, const Id& device, std::size_t max_changes);
ServerMessage decode_server(std::span<const std::uint8_t> body, std::size_t max_changes);

// The most changes one write (one Entry) can hold: a field of each entity.
std::size_t max_changes_per_entry() noexcept;

}  // namespace lindra::protocol
