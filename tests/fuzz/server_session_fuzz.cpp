// The server's message handling after Hello: ServerSessions on a SQLite
// server store that holds the seed rows (fuzz_world.hpp), with a real token
// authenticator. The first input byte picks the user; a session gets that
// user's Hello with a valid token, then the rest of the input as the bytes
// of a connection, frame by frame as net/ reads them.
//
// Two things in the input are read as a device would mean them, not as
// bytes, so that what the server hands out is used again:
// - a Hello whose token is "fuzz-user-<n>" (fuzz::kUserToken) ends the
//   connection and opens a new one, with user n's valid token and the
//   Hello's own device id: another user, a second device, or the same
//   device again later (e.g. after a coordinator has withdrawn its user);
// - a cursor (in a Pull or a Hello) of k bytes 0x80 (fuzz::kHandedCursor)
//   is the k-th latest cursor the server handed to the device (the first
//   pull's, "", if there is none). No cursor the server makes is an
//   unfinished varint.
// So scope loss, purges, refills and backfill run under the fuzzer.
// Every PullBatch is applied to its device's replica (one per device, from
// the seed rows) as the device would apply it. If the last session is still
// open at the end of the input, its device pulls on from its latest cursor
// to the head, as its next sync round would.
//
// Every input starts from a fresh copy of the same store, so a finding
// replays from its input alone.
//
// Besides "no crash": every reply is one frame a device can decode, of the
// kind the request calls for; an Error closes the connection, is never
// `internal` (an unexpected exception or a storage failure) and commits
// nothing; a push is acknowledged up to its last seq, and an entry refused
// once is refused again when retried (unless the device said it heard the
// answer, Hello.acked_seq, or more than kRefusalsKept came after it: then
// it is judged anew), and an entry applied is never refused on retry; a
// Welcome's highest_seq is what the device's pushes left; a pull with a
// cursor the server handed out is answered with a batch; every pulled batch
// applies on the device; the store passes integrity_check and
// foreign_key_check.
#include "fuzz/fuzz_world.hpp"
#include "protocol/frame.hpp"
#include "replica/core.hpp"
#include "server/auth.hpp"
#include "server/session.hpp"
#include "server/store.hpp"
#include "support/temp_dir.hpp"

#include <lindra/schema.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

using namespace lindra;
using lindra::fuzz::finding;
using protocol::ErrorCode;

namespace {

std::span<const std::uint8_t> bytes_of(const std::string& s) {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

std::string describe(const protocol::ServerMessage& m) {
    if (const auto* e = std::get_if<protocol::ErrorMessage>(&m))
        return "Error " + std::string(protocol::to_string(e->code)) + ": " + e->message;
    if (const auto* a = std::get_if<protocol::PushAck>(&m)) {
        std::string out = "PushAck " + std::to_string(a->acked_seq);
        for (const auto& r : a->rejected) out += "; refused " + std::to_string(r.seq) + ": " + r.reason;
        return out;
    }
    static const char* const kinds[] = {"Welcome", "PushAck", "PullBatch", "Pong", "Error"};
    return kinds[m.index()];
}

const server::StoreOptions kStoreOptions{.wall_clock_ms = [] { return fuzz::kNowMs; }};
const ReplicaOptions kReplicaOptions{.wall_clock_ms = [] { return fuzz::kNowMs; }};

// Small limits, so that inputs of a few kilobytes reach them.
constexpr protocol::Limits kLimits{.max_frame_bytes = 256 * 1024, .max_push_changes = 500, .max_pull_changes = 200};
// What a device with default options decodes a reply with (client/session.cpp):
// a PullBatch holds up to the pull limit and one entry more; a PushAck holds
// the server's state of each refused entry's fields, a counter as one change
// per origin.
const std::size_t kPullBudget = kLimits.max_pull_changes + protocol::max_changes_per_entry();
std::size_t push_budget(const protocol::Push& push) {
    std::size_t changes = 0;
    for (const auto& e : push.entries) changes += e.changes.size();
    return protocol::max_changes_per_entry() + 16 * changes;
}

// Built once per process: the token key, the users' tokens, and the two
// databases every input starts from.
class World {
  public:
    World() {
        const std::string key = generate_token_key();
        auth_ = server::token_authenticator({.key_pem = key});
        for (const auto& u : fuzz::users()) tokens_.push_back(issue_token(key, u.claims, "lindra", "lindra", now_s()));

        // The server: the seed device pushes the seed rows as an admin.
        {
            auto store = server::open_sqlite_store(server_template(), kStoreOptions);
            server::SessionContext context = this->context(*store);
            server::ServerSession session(context, "seed");
            const fuzz::Seed& seed = fuzz::seed();
            const std::string token =
                issue_token(key, {.user = "seed-admin", .role = Role::admin}, "lindra", "lindra", now_s());
            expect<protocol::Welcome>(session, hello(seed.device, token));
            const auto ack = expect<protocol::PushAck>(session, protocol::Push{seed.entries});
            if (ack.acked_seq != seed.entries.back().seq || !ack.rejected.empty())
                throw std::logic_error("the server refused the seed rows");
            session.on_close("seeded");
        }
        // A device that has pulled the seed rows.
        Replica device(replica_template(), kReplicaOptions);
        for (const auto& entry : fuzz::seed().entries) device.apply_remote(entry.changes);
    }

    std::string server_template() const { return dir_.file("server-template.db"); }
    std::string replica_template() const { return dir_.file("replica-template.db"); }
    std::string server_db() const { return dir_.file("server.db"); }
    std::string replica_db() const { return dir_.file("replica.db"); }
    const std::string& token(std::size_t user) const { return tokens_[user]; }

    server::SessionContext context(server::ServerStore& store) const {
        return {store, *auth_, kLimits, {}, [] { return fuzz::kNowMs; }};
    }

    static protocol::Hello hello(const Id& device, const std::string& token) {
        return {.versions = {protocol::kVersion},
                .device = device,
                .token = token,
                .schema_version = schema_version(),
                .app = "lindra-fuzz/1"};
    }

  private:
    static std::int64_t now_s() { return fuzz::kNowMs / 1000; }

    template <class Reply>
    static Reply expect(server::ServerSession& session, const protocol::ClientMessage& m) {
        const net::Reply r = session.on_frame(bytes_of(protocol::encode(m)));
        const auto reply = protocol::decode_server(bytes_of(r.frames.at(0)), SIZE_MAX);
        if (!std::holds_alternative<Reply>(reply)) throw std::logic_error("setup: got " + describe(reply));
        return std::get<Reply>(reply);
    }

    test::TempDir dir_{true};
    std::unique_ptr<server::Authenticator> auth_;
    std::vector<std::string> tokens_;
};

// The user a Hello's token names (fuzz::kUserToken), if it names one.
std::optional<std::size_t> user_of(const protocol::Hello& hello) {
    for (std::size_t u = 0; u < fuzz::users().size(); ++u)
        if (hello.token == std::string(fuzz::kUserToken) + std::to_string(u)) return u;
    return std::nullopt;
}

// How many cursors back `cursor` names (fuzz::kHandedCursor), or 0 if it is one of its own.
std::size_t cursors_back(std::string_view cursor) {
    if (cursor.empty() || cursor.size() > 8) return 0;
    return std::all_of(cursor.begin(), cursor.end(), [](char c) { return c == fuzz::kHandedCursor; }) ? cursor.size()
                                                                                                      : 0;
}

// One input's connections, the devices behind them, and what they check.
class Run {
  public:
    Run(const World& world, std::size_t user)
        : world_(world),
          store_(fresh_store(world)),
          observer_(world.server_db()),
          context_(world.context(*store_)) {
        const auto m = connect(user, World::hello(fuzz::users()[user].device, {}));
        if (!std::holds_alternative<protocol::Welcome>(m)) finding("Hello refused: " + describe(m));
    }

    bool closed() const { return closed_; }
    std::size_t max_frame() const { return closed_ ? kLimits.max_frame_bytes : session_->max_frame(); }

    // One frame of the input.
    void frame(std::span<const std::uint8_t> body) {
        // The request as the server should read it says what the reply must be.
        std::optional<protocol::ClientMessage> request;
        std::optional<protocol::ProtocolError> malformed;
        try {
            request = protocol::decode_client(body, device_, kLimits.max_push_changes);
        } catch (const protocol::ProtocolError& e) {
            malformed = e;
        }
        if (const auto* hello = request ? std::get_if<protocol::Hello>(&*request) : nullptr)
            if (const auto user = user_of(*hello)) {
                connect(*user, *hello);
                return;
            }
        if (closed_) return;      // nothing reaches a closed connection but a new one
        std::string substituted;  // the body with a cursor handed out, if it names one
        bool handed_out = false;
        if (auto* pull = request ? std::get_if<protocol::Pull>(&*request) : nullptr) {
            if (const std::size_t back = cursors_back(pull->cursor)) {
                pull->cursor = cursor(device_, back);
                substituted = protocol::encode(*request);
                body = bytes_of(substituted);
            }
            handed_out = pull->cursor.empty() || !substituted.empty();
        }
        const auto* push = request ? std::get_if<protocol::Push>(&*request) : nullptr;

        const std::int64_t version = data_version();
        const auto m = reply(session_->on_frame(body), push ? push_budget(*push) : kPullBudget);
        fuzz::trace("frame of " + std::to_string(body.size()) + " bytes: " + describe(m));
        const auto* error = std::get_if<protocol::ErrorMessage>(&m);
        if (error && data_version() != version) finding("a refused message committed: " + describe(m));

        if (malformed) {
            if (!error || error->code != malformed->code())
                finding("undecodable request (" + std::string(malformed->what()) + ") answered with " + describe(m));
        } else if (std::holds_alternative<protocol::Hello>(*request)) {
            if (!error) finding("a second Hello answered with " + describe(m));
        } else if (const auto* ping = std::get_if<protocol::Ping>(&*request)) {
            const auto* pong = std::get_if<protocol::Pong>(&m);
            if (!pong || pong->nonce != ping->nonce) finding("a Ping answered with " + describe(m));
        } else if (push) {
            check_push(*push, m);
        } else if (const auto* batch = std::get_if<protocol::PullBatch>(&m)) {
            pulled(*batch);
        } else if (!error || handed_out) {
            finding("a Pull " + std::string(handed_out ? "with a cursor the server handed out " : "") +
                    "answered with " + describe(m));
        }
    }

    // A frame the server cannot take (over the limit, a malformed length).
    void bad_frame(const protocol::ProtocolError& e) {
        if (closed_) return;
        const auto m = reply(session_->on_bad_frame(e), kPullBudget);
        if (!std::holds_alternative<protocol::ErrorMessage>(m)) finding("a bad frame answered with " + describe(m));
    }

    // What the device's next sync round does last: pull from its latest
    // cursor until the head, applying each batch.
    void pull_to_head() {
        for (int round = 0; round < 1'000; ++round) {
            const auto m =
                reply(session_->on_frame(bytes_of(protocol::encode(protocol::Pull{cursor(device_, 1), 50, true}))),
                      kPullBudget);
            const auto* batch = std::get_if<protocol::PullBatch>(&m);
            if (!batch) finding("a pull with the server's own cursor answered with " + describe(m));
            pulled(*batch);
            if (!batch->has_more) return;
        }
        finding("1000 pulls did not reach the head");
    }

    void finish() {
        if (!closed_) session_->on_close("the input ended");
        fuzz::check_integrity(observer_);
    }

  private:
    // What the harness knows of one device, across its connections.
    struct Device {
        std::optional<std::int64_t> highest_seq;  // as its pushes left it, once a Welcome told
        std::set<std::int64_t> refused;           // the seqs the server refused and still remembers
        std::set<std::int64_t> forgotten;         // refused, then forgotten: a retry is judged anew
        std::vector<std::string> cursors;         // handed out to it, the latest last
        std::unique_ptr<detail::Core> replica;
    };

    static std::unique_ptr<server::ServerStore> fresh_store(const World& world) {
        fuzz::copy_database(world.server_template(), world.server_db());
        return server::open_sqlite_store(world.server_db(), kStoreOptions);
    }

    // Ends the connection, if open, and says `hello` on a new one as `user`.
    protocol::ServerMessage connect(std::size_t user, protocol::Hello hello) {
        if (session_ && !closed_) session_->on_close("the device reconnected");
        session_ = std::make_unique<server::ServerSession>(context_, "fuzz");
        closed_ = false;
        device_ = hello.device;
        hello.token = world_.token(user);
        if (const std::size_t back = cursors_back(hello.cursor)) hello.cursor = cursor(device_, back);
        const std::int64_t version = data_version();
        const auto m = reply(session_->on_frame(bytes_of(protocol::encode(hello))), kPullBudget);
        fuzz::trace("connected as " + fuzz::users()[user].claims.user + ": " + describe(m));
        if (!std::holds_alternative<protocol::Welcome>(m)) {
            if (data_version() != version) finding("a refused Hello committed: " + describe(m));
            return m;
        }
        Device& d = devices_[device_];
        const std::int64_t highest = std::get<protocol::Welcome>(m).highest_seq;
        if (d.highest_seq && *d.highest_seq != highest)
            finding("Welcome says highest seq " + std::to_string(highest) + ", the device's pushes left " +
                    std::to_string(*d.highest_seq));
        d.highest_seq = highest;
        const auto heard = d.refused.upper_bound(hello.acked_seq);
        d.forgotten.insert(d.refused.begin(), heard);
        d.refused.erase(d.refused.begin(), heard);
        return m;
    }

    // The `back`-th latest cursor handed to `device`, or "" if it had fewer.
    std::string cursor(const Id& device, std::size_t back) {
        const auto& cursors = devices_[device].cursors;
        return back <= cursors.size() ? cursors[cursors.size() - back] : std::string();
    }

    // A batch the server handed out, applied as its device applies it.
    void pulled(const protocol::PullBatch& batch) {
        Device& d = devices_[device_];
        d.cursors.push_back(batch.next_cursor);
        std::size_t purged = 0;
        for (const auto& p : batch.purges) purged += p.rows.size();
        fuzz::trace("pulled " + std::to_string(batch.changes.size()) + " changes, purged " + std::to_string(purged) +
                    " rows");
        if (!d.replica) {
            const std::string path = world_.replica_db() + "-" + std::to_string(++replicas_);
            fuzz::copy_database(world_.replica_template(), path);
            d.replica = std::make_unique<detail::Core>(path, kReplicaOptions);
        }
        try {
            detail::Core::WriteTransaction txn(*d.replica);
            for (const auto& p : batch.purges) d.replica->purge(p.rows);
            d.replica->apply_pulled(batch.changes, batch.next_cursor, !batch.has_more);
            txn.commit();
        } catch (const Error& e) {
            finding(std::string("a device cannot apply what the server handed out: ") + e.what());
        }
    }

    // A reply's one frame, decoded as a device would.
    protocol::ServerMessage reply(const net::Reply& r, std::size_t max_changes) {
        if (closed_) finding("the session was used after it closed");
        if (r.frames.size() != 1) finding("a reply of " + std::to_string(r.frames.size()) + " frames");
        if (r.frames[0].size() > kLimits.max_frame_bytes) finding("a reply over the frame limit");
        protocol::ServerMessage m;
        try {
            m = protocol::decode_server(bytes_of(r.frames[0]), max_changes);
        } catch (const protocol::ProtocolError& e) {
            finding(std::string("a reply a device cannot decode: ") + e.what());
        }
        const auto* error = std::get_if<protocol::ErrorMessage>(&m);
        if ((error != nullptr) != r.close) finding("close=" + std::to_string(r.close) + " with " + describe(m));
        if (error && error->code == ErrorCode::internal) finding("an internal error: " + error->message);
        closed_ = r.close;
        return m;
    }

    void check_push(const protocol::Push& push, const protocol::ServerMessage& m) {
        if (std::holds_alternative<protocol::ErrorMessage>(m)) return;  // nothing committed: checked above
        const auto* ack = std::get_if<protocol::PushAck>(&m);
        if (!ack) finding("a Push answered with " + describe(m));
        Device& d = devices_[device_];
        const std::int64_t before = d.highest_seq.value_or(0);
        const std::int64_t highest = std::max(before, push.entries.back().seq);
        if (ack->acked_seq != highest)
            finding("acked seq " + std::to_string(ack->acked_seq) + ", expected " + std::to_string(highest));
        // Refused: new entries, and retries of entries refused before (and only those).
        std::set<std::int64_t> refused;
        for (const auto& r : ack->rejected) {
            const bool pushed = std::any_of(push.entries.begin(), push.entries.end(),
                                            [&](const protocol::Entry& e) { return e.seq == r.seq; });
            if (!pushed || (r.seq <= before && !d.refused.contains(r.seq) && !d.forgotten.contains(r.seq)))
                finding("refused seq " + std::to_string(r.seq) + ", which was not pushed or was applied before");
            refused.insert(r.seq);
        }
        for (const auto& e : push.entries)
            if (e.seq <= before && d.refused.contains(e.seq) && !refused.contains(e.seq))
                finding("seq " + std::to_string(e.seq) + " was refused, but not when retried");
        d.refused.merge(refused);
        while (d.refused.size() > static_cast<std::size_t>(server::ServerStore::kRefusalsKept)) {
            d.forgotten.insert(*d.refused.begin());
            d.refused.erase(d.refused.begin());
        }
        d.highest_seq = highest;
    }

    std::int64_t data_version() {
        auto st = observer_.prepare("PRAGMA data_version");
        st.step();
        return st.int64(0);
    }

    const World& world_;
    std::unique_ptr<server::ServerStore> store_;
    store::Database observer_;  // another connection: sees what the store commits
    server::SessionContext context_;
    std::map<Id, Device> devices_;
    int replicas_ = 0;                                // the files of devices_' replicas: replica.db-1, -2, ...
    std::unique_ptr<server::ServerSession> session_;  // the connection open now, or the last one
    Id device_;                                       // its device
    bool closed_ = false;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const World world;
    if (size == 0) return 0;
    Run run(world, data[0] % fuzz::users().size());
    std::span<const std::uint8_t> rest(data + 1, size - 1);
    while (!rest.empty()) {
        std::optional<protocol::FrameHeader> header;
        try {
            header = protocol::parse_frame_header(rest, run.max_frame());
        } catch (const protocol::ProtocolError& e) {
            run.bad_frame(e);
            break;
        }
        if (!header || header->header_size + header->body_size > rest.size()) break;  // the input ends mid-frame
        run.frame(rest.subspan(header->header_size, header->body_size));
        rest = rest.subspan(header->header_size + header->body_size);
    }
    if (!run.closed()) run.pull_to_head();
    run.finish();
    return 0;
}
