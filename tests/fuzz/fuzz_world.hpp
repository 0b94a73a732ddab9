// What lindra's fuzz targets and their corpus generator share: a fixed
// clock, rows with fixed ids (so a corpus file can name them and replays the
// same way in every process), the databases that hold them, and the checks.
#pragma once

#include "protocol/messages.hpp"
#include "store/database.hpp"

#include <lindra/replica.hpp>
#include <lindra/server.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace lindra::fuzz {

// The wall clock of every fuzzed server and replica.
inline constexpr std::int64_t kNowMs = 1'780'000'000'000;  // June 2026
// The seed rows were written an hour earlier.
inline constexpr std::int64_t kSeedMs = kNowMs - 3'600'000;

// A course with one mentor group (tests/support/fixture.hpp), a coordinator,
// some progress, an attendance and a reflection, as the writes of one
// device, seqs 1..n. Their ids are fixed: the same in every run.
struct Seed {
    Id organization, course, group, mentor, coordinator;
    std::vector<Id> candidates;
    std::vector<Id> modules;
    std::vector<Id> gatherings;
    Id device;  // the origin of every change
    std::vector<protocol::Entry> entries;
};
const Seed& seed();

// The server session fuzzer's users; the first input byte picks one.
struct User {
    TokenClaims claims;
    Id device;
};
std::span<const User> users();

// What server_session_fuzz reads in an input as a device would mean it (see
// there): a Hello whose token is kUserToken and a user's index opens a new
// connection as that user; a cursor of k bytes kHandedCursor is the k-th
// latest cursor the server handed to the device (an unfinished varint: no
// cursor the server makes).
inline constexpr std::string_view kUserToken = "fuzz-user-";
inline constexpr char kHandedCursor = '\x80';

// The writes the apply_remote target's replica holds unpushed, after the
// seed rows (seqs 1..4). The first and the last set one field of one row: a
// refusal of the first finds a later write to it still pending.
void unpushed_writes(Writes& w);

// A fixed id, distinct for each `n` and `kind` (a few fixed bytes apart).
Id fixed_id(std::uint8_t kind, std::uint16_t n);

// Gives the random ids in writes made through the Replica API fixed ones,
// fixed_id(kind, 1), (kind, 2)... in the order met, so the writes come out
// the same in every run. Fixed ids stay; a derived row id is derived again
// from its renamed keys.
class Renamer {
  public:
    explicit Renamer(std::uint8_t kind) : kind_(kind) {}
    Id operator()(const Id& id);
    // Renames the entry's ids and makes `origin` its changes' origin.
    void rename(protocol::Entry& entry, const Id& origin);

  private:
    std::uint8_t kind_;
    std::uint16_t next_ = 1;
    std::map<Id, Id> ids_;
};

// The writes `fn` makes on a replica holding the seed rows, at kNowMs, as
// the entries of device `origin`, renamed by `rename`.
std::vector<protocol::Entry> writes(const std::function<void(Writes&)>& fn, const Id& origin, Renamer& rename);

// A closed SQLite file copied to `to`, replacing it and its -wal and -shm.
void copy_database(const std::string& from, const std::string& to);

// Every row of every table but those in `skip`, in a stable order: equal
// dumps mean equal contents.
std::string dump(store::Database& db, std::span<const std::string_view> skip = {});

// PRAGMA integrity_check and foreign_key_check both clean.
void check_integrity(store::Database& db);

// Prints `what` if LINDRA_FUZZ_TRACE is set: what happened to an input.
void trace(const std::string& what);

// A fuzz finding: prints `what` and aborts, so libFuzzer keeps the input.
[[noreturn]] void finding(const std::string& what);

}  // namespace lindra::fuzz
