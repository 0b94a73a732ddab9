#include "server/grants.hpp"

#include "core/codec.hpp"
#include "server/access.hpp"

#include <lindra/error.hpp>

namespace lindra::server {

std::string encode_cursor(const Cursor& c) {
    codec::Writer w;
    w.varint(static_cast<std::uint64_t>(c.pos));
    if (c.gen != 0) {
        w.varint(static_cast<std::uint64_t>(c.gen));
        w.varint(static_cast<std::uint64_t>(c.backfill_scope));
        w.varint(static_cast<std::uint64_t>(c.backfill_pos));
    }
    return w.take();
}

Cursor decode_cursor(std::string_view cursor) {
    if (cursor.empty()) return {};
    try {
        codec::Reader r(codec::bytes_of(cursor));
        std::int64_t parts[4] = {};
        std::size_t n = 0;
        while (!r.done() && n < 4) {
            const auto v = r.varint();
            if (v > static_cast<std::uint64_t>(INT64_MAX)) break;
            parts[n++] = static_cast<std::int64_t>(v);
        }
        if (r.done() && (n == 1 || n == 4)) return {parts[0], parts[1], parts[2], parts[3]};
    } catch (const Error&) {
    }
    throw Error(Errc::invalid_argument, "not a cursor this server handed out");
}

namespace {

// Every row of a scope lost, for the device to delete.
void purge_scope(StorageTxn& txn, std::string scope, std::vector<protocol::Purge>& purges) {
    protocol::Purge& p = purges.emplace_back();
    p.rows = txn.rows_in_scope(scope);
    const auto parts = parts_of_scope(scope);
    p.kind = parts.kind;
    p.group = parts.group;
    p.person = parts.person;
    p.scope = std::move(scope);
}

}  // namespace

Regrant regrant(StorageTxn& txn, const Id& device, const ScopeSet& readable, Cursor& c,
                std::vector<protocol::Purge>& purges) {
    std::optional<Grant> held;
    Regrant out;
    if (c.gen) {
        bool older = false;
        for (auto& [gen, grant] : txn.grants(device)) {
            if (gen == c.gen) held = std::move(grant);
            older |= gen < c.gen;
        }
        if (!held) c = {};  // a generation this store never handed out (restored): start over
        // The device holds this generation now; older ones are done with.
        if (held && older) out.drop_before = c.gen;
    }
    if (held && held->scopes == readable) {
        out.grant = std::move(*held);
        return out;
    }
    // Backfill up to the head, not the cursor: the stream skips the
    // device's own entries, and those of a scope purged from it may lie
    // ahead of the cursor (the rest of the overlap arrives twice, which
    // merging makes harmless).
    Grant next{readable, {}, txn.head()};
    std::vector<std::string> own;  // readable scopes the device wrote in, without a grant
    if (!held) {
        // No generation to compare with (a first pull, or a cursor this
        // store never handed out). The device may hold rows it wrote in
        // scopes it has lost since: purged. It may also have dropped rows it
        // wrote that the server has (a refusal said to): the scopes it wrote
        // in are backfilled, its own entries included, which the stream
        // skips.
        for (auto& scope : txn.scopes_written_by(device)) {
            if (readable.contains(scope))
                own.push_back(std::move(scope));
            else
                purge_scope(txn, std::move(scope), purges);
        }
    } else {
        for (const auto& scope : held->scopes)
            if (!readable.contains(scope)) purge_scope(txn, scope, purges);
        // Still to backfill: what the last generation had not finished, and
        // every scope gained.
        for (std::size_t i = static_cast<std::size_t>(c.backfill_scope); i < held->backfill.size(); ++i)
            if (readable.contains(held->backfill[i])) next.backfill.push_back(held->backfill[i]);
        for (const auto& scope : readable)
            if (!held->scopes.contains(scope)) next.backfill.push_back(scope);
    }
    // Backfilled even at position 0: the stream skips the device's own
    // entries, and a purge may have taken some of them.
    next.backfill.insert(next.backfill.end(), own.begin(), own.end());
    out.grant = std::move(next);
    out.is_new = true;
    c.gen = 0;  // store_grant numbers it
    c.backfill_scope = 0;
    c.backfill_pos = 0;
    return out;
}

void store_grant(StorageTxn& txn, const Id& device, const Regrant& r, Cursor& c) {
    if (r.drop_before) txn.drop_grants_before(device, r.drop_before);
    if (r.is_new) c.gen = txn.add_grant(device, r.grant);
}

void hold(StorageTxn& txn, const Id& device, const ScopeSet& written, const ScopeSet& refill) {
    if (written.empty() && refill.empty()) return;
    for (auto& [gen, grant] : txn.grants(device)) {
        const auto before = grant.backfill.size();
        // A scope written that the grant did not list is held from now on
        // (purged if unreadable at the next pull); a refilled one is
        // backfilled again if listed.
        for (const auto& scope : refill)
            if (grant.scopes.contains(scope)) grant.backfill.push_back(scope);
        for (const auto& scope : written)
            if (grant.scopes.insert(scope).second) grant.backfill.push_back(scope);
        if (grant.backfill.size() != before) txn.update_grant(device, gen, grant);
    }
}

}  // namespace lindra::server
