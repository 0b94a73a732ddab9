#include "model/row.hpp"

#include "core/codec.hpp"
#include "model/ddl.hpp"

#include <lindra/error.hpp>

#include <algorithm>

namespace lindra::model {
namespace {

Value default_value(const FieldDef& f) {
    switch (f.rule) {
        case MergeRule::progress:
        case MergeRule::counter:
        case MergeRule::tombstone:
            return std::int64_t{0};
        default:
            return std::monostate{};
    }
}

}  // namespace

RowStore::RowStore(const EntityDef& e) : entity_(&e) {
    std::string cols;
    for (const auto& f : e.fields)
        for (const auto& c : columns_of(f)) cols += c + ", ";
    cols += "lindra_clocks";
    const std::string table(e.name);
    select_sql_ = "SELECT " + cols + " FROM " + table + " WHERE id = ?";
    std::string params = "?", updates;
    for (const auto& f : e.fields)
        for (const auto& c : columns_of(f)) {
            params += ", ?";
            updates += c + " = excluded." + c + ", ";
        }
    params += ", ?";
    updates += "lindra_clocks = excluded.lindra_clocks";
    upsert_sql_ = "INSERT INTO " + table + " (id, " + cols + ") VALUES (" + params +
                  ") ON CONFLICT (id) DO UPDATE SET " + updates;
}

RowState RowStore::empty() const {
    RowState s;
    s.fields.reserve(entity_->fields.size());
    for (const auto& f : entity_->fields) s.fields.push_back({default_value(f), {}, {}});
    return s;
}

RowState RowStore::load(store::Database& db, const Id& row) const {
    RowState s = empty();
    auto st = db.cached(select_sql_);
    st->bind(1, row);
    if (!st->step()) return s;
    s.exists = true;
    int col = 0;
    for (std::size_t i = 0; i < entity_->fields.size(); ++i) {
        const auto& f = entity_->fields[i];
        if (f.type == FieldType::progress) {
            const int rank = f.value_index(st->text(col + 1));
            if (rank < 0) throw Error(Errc::corrupt, "unknown progress status in " + std::string(entity_->name));
            s.fields[i].value = progress_value(st->int64(col), rank);
            col += 2;
        } else {
            s.fields[i].value = st->value(col++);
        }
    }
    decode_clocks(*entity_, st->blob(col), s);
    return s;
}

void RowStore::save(store::Database& db, const Id& row, const RowState& state) const {
    auto st = db.cached(upsert_sql_);
    st->bind(1, row);
    int p = 2;
    for (std::size_t i = 0; i < entity_->fields.size(); ++i) {
        const auto& f = entity_->fields[i];
        const Value& v = state.fields[i].value;
        if (f.type == FieldType::progress) {
            const auto pv = std::get<std::int64_t>(v);
            st->bind(p++, progress_attempt(pv));
            st->bind(p++, f.values[static_cast<std::size_t>(progress_rank(pv))]);
        } else {
            st->bind(p++, v);
        }
    }
    const std::string clocks = encode_clocks(*entity_, state);
    st->bind(p, codec::bytes_of(clocks));
    st->run();
}

std::string RowStore::encode_row(const EntityDef& e, const RowState& state) {
    codec::Writer w;
    for (std::size_t i = 0; i < e.fields.size(); ++i) w.value(state.fields[i].value);
    w.bytes(codec::bytes_of(encode_clocks(e, state)));
    return w.take();
}

RowState RowStore::decode_row(const EntityDef& e, std::span<const std::uint8_t> blob) {
    RowState s = row_store(e).empty();
    s.exists = true;
    codec::Reader r(blob);
    std::size_t used = 0;
    try {
        for (auto& f : s.fields) f.value = r.value();
        used = blob.size() - r.remaining();
    } catch (const Error&) {
        throw Error(Errc::corrupt, "malformed row of " + std::string(e.name));
    }
    decode_clocks(e, blob.subspan(used), s);
    return s;
}

// Layout (all counts and indexes varints):
//   origins:  count, then 16 bytes each, sorted
//   clocks:   count of distinct clocks, then per clock in (hlc, origin)
//             order: hlc (8 bytes LE), origin index, field count, field tags
//   totals:   per counter field with totals, until the end: tag, count,
//             then (origin index, total) pairs
// A write sets all its fields at one clock, so a row usually carries one or
// two clocks however many fields it has.
std::string RowStore::encode_clocks(const EntityDef& e, const RowState& state) {
    std::vector<Id> origins;
    std::vector<std::pair<Clock, std::uint16_t>> clocks;
    for (std::size_t i = 0; i < e.fields.size(); ++i) {
        const auto& fs = state.fields[i];
        if (fs.clock.hlc) {
            origins.push_back(fs.clock.origin);
            clocks.emplace_back(fs.clock, e.fields[i].tag);
        }
        for (const auto& [o, t] : fs.totals) origins.push_back(o);
    }
    std::sort(origins.begin(), origins.end());
    origins.erase(std::unique(origins.begin(), origins.end()), origins.end());
    std::sort(clocks.begin(), clocks.end());
    auto index = [&](const Id& o) {
        return static_cast<std::uint64_t>(std::lower_bound(origins.begin(), origins.end(), o) - origins.begin());
    };

    codec::Writer w;
    w.varint(origins.size());
    for (const auto& o : origins) w.bytes(o.bytes);
    std::size_t distinct = 0;
    for (std::size_t i = 0; i < clocks.size(); ++i) distinct += i == 0 || clocks[i].first != clocks[i - 1].first;
    w.varint(distinct);
    for (std::size_t i = 0; i < clocks.size();) {
        std::size_t j = i;
        while (j < clocks.size() && clocks[j].first == clocks[i].first) ++j;
        w.fixed64(clocks[i].first.hlc);
        w.varint(index(clocks[i].first.origin));
        w.varint(j - i);
        for (std::size_t k = i; k < j; ++k) w.varint(clocks[k].second);
        i = j;
    }
    for (std::size_t i = 0; i < e.fields.size(); ++i) {
        const auto& totals = state.fields[i].totals;
        if (totals.empty()) continue;
        w.varint(e.fields[i].tag);
        w.varint(totals.size());
        for (const auto& [o, t] : totals) {
            w.varint(index(o));
            w.svarint(t);
        }
    }
    return w.take();
}

void RowStore::decode_clocks(const EntityDef& e, std::span<const std::uint8_t> blob, RowState& state) {
    auto malformed = [&]() -> void { throw Error(Errc::corrupt, "malformed lindra_clocks in " + std::string(e.name)); };
    codec::Reader r(blob);
    // Counts are bounded by the blob size before anything is reserved.
    auto count = [&] {
        const auto n = r.varint();
        if (n > blob.size()) malformed();
        return n;
    };
    // Only the canonical form is accepted: merge_counter relies on sorted,
    // unique origins.
    std::vector<Id> origins(count());
    for (std::size_t i = 0; i < origins.size(); ++i) {
        origins[i] = r.id();
        if (i > 0 && !(origins[i - 1] < origins[i])) malformed();
    }
    auto origin = [&](std::uint64_t i) -> const Id& {
        if (i >= origins.size()) malformed();
        return origins[i];
    };
    auto field_state = [&](std::uint64_t tag) -> FieldState& {
        const FieldDef* f = tag <= 0xFFFF ? e.field(static_cast<std::uint16_t>(tag)) : nullptr;
        if (!f) malformed();
        return state.fields[e.index_of(*f)];
    };
    for (auto n = count(); n > 0; --n) {
        Clock c;
        c.hlc = r.fixed64();
        c.origin = origin(r.varint());
        for (auto k = count(); k > 0; --k) field_state(r.varint()).clock = c;
    }
    while (!r.done()) {
        auto& fs = field_state(r.varint());
        fs.totals.clear();
        for (auto k = count(); k > 0; --k) {
            const Id& o = origin(r.varint());
            if (!fs.totals.empty() && !(fs.totals.back().first < o)) malformed();
            fs.totals.emplace_back(o, r.svarint());
        }
    }
}

const RowStore& row_store(const EntityDef& e) {
    static const std::vector<RowStore> stores = [] {
        std::vector<RowStore> v;
        for (const auto& ent : entities()) v.emplace_back(ent);
        return v;
    }();
    return stores[static_cast<std::size_t>(&e - entities().data())];
}

}  // namespace lindra::model
