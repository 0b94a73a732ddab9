// Course certificates (DESIGN §10; README, "Course completion and
// certificates"). The server issues one by the rule of model/completion.hpp
// in the very transaction of the change that completes it, whoever pushed
// that change and in whatever order the changes came: exactly one per
// (person, course, group), an Open Badges 3.0 credential signed with the
// server's issuer key. It publishes its public keys as catalog rows, so a
// tablet verifies a certificate with no network. Written once, over the
// storage primitives, like the rest of the policy.
#pragma once

#include "server/storage.hpp"

#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace lindra::server {

struct IssuerKey {
    std::string kid;  // the JWK thumbprint (RFC 7638) of the public key
    std::string private_pem;
    std::string jwk;  // the public key, RFC 8037
};

// The server as a certificate issuer. Thread-safety: immutable.
class Issuer {
  public:
    // `keys_pem`: Ed25519 private keys, oldest first; the last signs, all
    // stay published so certificates signed by the older ones still
    // verify. `id`: a URI naming the issuer (Open Badges `issuer.id`).
    // Throws lindra::Error(invalid_argument) naming the key that is not one.
    Issuer(const std::vector<std::string>& keys_pem, std::string id, std::string name);

    const std::vector<IssuerKey>& keys() const noexcept { return keys_; }
    const IssuerKey& signing_key() const noexcept { return keys_.back(); }
    const std::string& id() const noexcept { return id_; }
    const std::string& name() const noexcept { return name_; }

  private:
    std::vector<IssuerKey> keys_;
    std::string id_, name_;
};

// A row the server writes itself (a certificate, a key, the status list),
// staged with its log entry: origin the server, seq its hlc.
struct ServerWrite {
    StagedRow row;
    LogEntry entry;
};

// The server's writes of one transaction: each row merged from what
// `rows` holds, through the one merge, stamped with a tick of the server's
// clock of its own (which is also its log entry's seq).
class ServerWrites {
  public:
    ServerWrites(RowSource& rows, Id server_id, std::function<std::uint64_t()> tick)
        : rows_(rows), server_(server_id), tick_(std::move(tick)) {}
    // Sets `values` (field name, value) on row `id` of `entity`.
    void set(std::string_view entity, const Id& id, const std::vector<std::pair<std::string_view, Value>>& values);
    // Row `id` of `e` as this transaction has it: as written here, else
    // as `rows` holds it.
    model::RowState load(const EntityDef& e, const Id& id);
    std::vector<ServerWrite>& writes() noexcept { return writes_; }

  private:
    RowSource& rows_;
    Id server_;
    std::function<std::uint64_t()> tick_;
    std::vector<ServerWrite> writes_;
};

// How often the status list is signed anew with nothing revoked, so that
// the age a tablet reports is that of its last sync.
inline constexpr std::int64_t kStatusListRefreshMs = 24 * 3600 * 1000;

// The certificate policy of one push, through `out`: issues the
// certificate of every (person, group) whose rule the staged rows (over
// `rows`) may complete and that has none; carries out the coordinators'
// revocations among them (each certificate marked revoked at the server's
// time with the reason, its bit set in the status list); and signs the
// list anew when a bit was set or it is older than kStatusListRefreshMs.
// It first locks, in one call in key order, the memberships it judges,
// the certificates it revokes and the status list.
// Returns how many certificates it issued.
std::size_t certify(StorageTxn& txn, RowSource& rows, std::span<const StagedRow> staged, const Issuer& issuer,
                    std::int64_t now_ms, ServerWrites& out);

// Publishes the issuer's keys not yet published, and the signed status
// list if there is none, through `out`, under the list's lock.
void publish_issuer(StorageTxn& txn, RowSource& rows, const Issuer& issuer, std::int64_t now_ms, ServerWrites& out);

}  // namespace lindra::server
