// Which scopes each device holds rows of (DESIGN §6): the grant a pull
// compares with what its user may read now, to purge the scopes lost and
// backfill the ones gained. Written once, over the storage primitives.
#pragma once

#include "server/storage.hpp"

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace lindra::server {

using ScopeSet = std::set<std::string>;

// A pull cursor, opaque to clients: the log position the device has
// reached, and for scoped users the grant generation it holds and how far
// the backfill of newly granted scopes has got (scope index, position).
struct Cursor {
    std::int64_t pos = 0;
    std::int64_t gen = 0;
    std::int64_t backfill_scope = 0;
    std::int64_t backfill_pos = 0;
};
std::string encode_cursor(const Cursor& c);
// Throws lindra::Error(invalid_argument) for bytes no server handed out.
Cursor decode_cursor(std::string_view cursor);

// The grant a pull works with, and what must be written for it.
struct Regrant {
    Grant grant;
    bool is_new = false;           // to store as a new generation (then cursor.gen is set)
    std::int64_t drop_before = 0;  // older generations to drop, if not 0
};

// The device's grant for a pull from `c`: the one its cursor names, or, if
// what its user may read (`readable`) changed since, a new one, with the
// lost scopes' rows in `purges` and the new scopes queued for backfill.
// Reads only: the caller stores what it says (store_grant), after `c` is
// reset to start over on a generation this store never handed out.
Regrant regrant(StorageTxn& txn, const Id& device, const ScopeSet& readable, Cursor& c,
                std::vector<protocol::Purge>& purges);
void store_grant(StorageTxn& txn, const Id& device, const Regrant& r, Cursor& c);

// The device now holds rows of `written` (it pushed them) that its grants
// may lack, if it has not pulled since gaining those scopes: each grant
// takes them, to backfill while they stay readable and to purge once they
// are lost. Scopes in `refill` lost a row on the device that the server
// has: backfilled again while readable, purged once not, by the grants that
// already hold them only. A refusal never adds a scope to a grant: the
// purge that followed would tell the device what the scope holds
// (docs/decisions.md, "Refusals reveal nothing").
void hold(StorageTxn& txn, const Id& device, const ScopeSet& written, const ScopeSet& refill);

}  // namespace lindra::server
