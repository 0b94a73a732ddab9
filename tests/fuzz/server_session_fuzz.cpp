// The server's message handling after Hello: a ServerSession on a SQLite
// server store that holds the seed rows (fuzz_world.hpp), with a real token
// authenticator. The first input byte picks the user; the session gets that
// user's Hello with a valid token, then the rest of the input as the bytes
// of a connection, frame by frame as net/ reads them. If the session is
// still open after them, the device pulls everything as a sync round would
// and applies it to a replica holding the seed rows.
//
// Every input starts from a fresh copy of the same store, so a finding
// replays from its input alone.
//
// Besides "no crash": every reply is one frame a device can decode, of the
// kind the request calls for; an Error closes the connection, is never
// `internal` (an unexpected exception or a storage failure) and commits
// nothing; a push is acknowledged up to its last seq, and an entry refused
// once is refused again when retried; the pull reaches the head and every
// pulled change applies on the device; the store passes integrity_check
// and foreign_key_check.
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
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
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
            std::mutex mutex;
            server::SessionContext context = this->context(*store, mutex);
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

    server::SessionContext context(server::ServerStore& store, std::mutex& mutex) const {
        return {store, mutex, *auth_, kLimits, {}, [] { return fuzz::kNowMs; }};
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

// One input's session and what it checks.
class Run {
  public:
    Run(const World& world, std::size_t user)
        : user_(fuzz::users()[user]),
          store_(fresh_store(world)),
          observer_(world.server_db()),
          context_(world.context(*store_, mutex_)),
          session_(context_, "fuzz") {
        const auto welcome = reply(
            session_.on_frame(bytes_of(protocol::encode(World::hello(user_.device, world.token(user))))), kPullBudget);
        if (!std::holds_alternative<protocol::Welcome>(welcome)) finding("Hello refused: " + describe(welcome));
        highest_seq_ = std::get<protocol::Welcome>(welcome).highest_seq;
    }

    bool closed() const { return closed_; }
    std::size_t max_frame() const { return session_.max_frame(); }

    // One frame of the input.
    void frame(std::span<const std::uint8_t> body) {
        // The request as the server should read it says what the reply must be.
        std::optional<protocol::ClientMessage> request;
        std::optional<protocol::ProtocolError> malformed;
        try {
            request = protocol::decode_client(body, user_.device, kLimits.max_push_changes);
        } catch (const protocol::ProtocolError& e) {
            malformed = e;
        }
        const auto* push = request ? std::get_if<protocol::Push>(&*request) : nullptr;

        const std::int64_t version = data_version();
        const auto m = reply(session_.on_frame(body), push ? push_budget(*push) : kPullBudget);
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
        } else if (!error && !std::holds_alternative<protocol::PullBatch>(m)) {
            finding("a Pull answered with " + describe(m));
        }
    }

    // A frame the server cannot take (over the limit, a malformed length).
    void bad_frame(const protocol::ProtocolError& e) {
        const auto m = reply(session_.on_bad_frame(e), kPullBudget);
        if (!std::holds_alternative<protocol::ErrorMessage>(m)) finding("a bad frame answered with " + describe(m));
    }

    // What a sync round does last: pull until the head, applying each batch.
    void pull_everything(const World& world) {
        fuzz::copy_database(world.replica_template(), world.replica_db());
        detail::Core device(world.replica_db(), kReplicaOptions);
        std::string cursor;
        for (int round = 0; round < 1'000; ++round) {
            const auto m =
                reply(session_.on_frame(bytes_of(protocol::encode(protocol::Pull{cursor, 50, true}))), kPullBudget);
            const auto* batch = std::get_if<protocol::PullBatch>(&m);
            if (batch) fuzz::trace("pulled " + std::to_string(batch->changes.size()) + " changes");
            if (!batch) finding("a pull with the server's own cursor answered with " + describe(m));
            try {
                detail::Core::WriteTransaction txn(device);
                for (const auto& p : batch->purges) device.purge(p.rows);
                device.apply_pulled(batch->changes, batch->next_cursor, !batch->has_more);
                txn.commit();
            } catch (const Error& e) {
                finding(std::string("a device cannot apply what the server handed out: ") + e.what());
            }
            if (!batch->has_more) return;
            cursor = batch->next_cursor;
        }
        finding("1000 pulls did not reach the head");
    }

    void finish() {
        session_.on_close("the input ended");
        fuzz::check_integrity(observer_);
    }

  private:
    static std::unique_ptr<server::ServerStore> fresh_store(const World& world) {
        fuzz::copy_database(world.server_template(), world.server_db());
        return server::open_sqlite_store(world.server_db(), kStoreOptions);
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
        const std::int64_t highest = std::max(highest_seq_, push.entries.back().seq);
        if (ack->acked_seq != highest)
            finding("acked seq " + std::to_string(ack->acked_seq) + ", expected " + std::to_string(highest));
        // Refused: new entries, and retries of entries refused before (and only those).
        std::set<std::int64_t> refused;
        for (const auto& r : ack->rejected) {
            const bool pushed = std::any_of(push.entries.begin(), push.entries.end(),
                                            [&](const protocol::Entry& e) { return e.seq == r.seq; });
            if (!pushed || (r.seq <= highest_seq_ && !refused_.contains(r.seq)))
                finding("refused seq " + std::to_string(r.seq) + ", which was not pushed or was applied before");
            refused.insert(r.seq);
        }
        for (const auto& e : push.entries)
            if (e.seq <= highest_seq_ && refused_.contains(e.seq) && !refused.contains(e.seq))
                finding("seq " + std::to_string(e.seq) + " was refused, but not when retried");
        refused_.merge(refused);
        highest_seq_ = highest;
    }

    std::int64_t data_version() {
        auto st = observer_.prepare("PRAGMA data_version");
        st.step();
        return st.int64(0);
    }

    const fuzz::User& user_;
    std::unique_ptr<server::ServerStore> store_;
    store::Database observer_;  // another connection: sees what the store commits
    std::mutex mutex_;
    server::SessionContext context_;
    server::ServerSession session_;
    std::int64_t highest_seq_ = 0;
    std::set<std::int64_t> refused_;  // the seqs the server refused
    bool closed_ = false;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const World world;
    if (size == 0) return 0;
    Run run(world, data[0] % fuzz::users().size());
    std::span<const std::uint8_t> rest(data + 1, size - 1);
    while (!rest.empty() && !run.closed()) {
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
    if (!run.closed()) run.pull_everything(world);
    run.finish();
    return 0;
}
