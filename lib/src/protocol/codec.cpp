// Translation between messages.hpp and the wire format (proto/lindra/v1/sync.proto).
//
// Changes travel as ChangeSets: one group per write, carrying what the
// write's fields share once, values in the array their schema type picks and
// ids in a table shared by the whole set. The schema table is therefore part
// of the wire format, which is why its tags and enum value lists only grow.
//
// Push and PullBatch share one writer and one reader; they differ only in who
// the origin is (implicit in a Push, so a device cannot push as another) and
// in the Push's seqs.
#include "protocol/messages.hpp"

#include "sync.pb.h"

#include <lindra/schema.hpp>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/stubs/common.h>
#if GOOGLE_PROTOBUF_VERSION < 4022000  // protobuf 22 moved logging to Abseil and dropped LogSilencer
#include <google/protobuf/stubs/logging.h>
#endif

#include <algorithm>
#include <climits>
#include <cstring>
#include <limits>
#include <unordered_map>
#include <utility>

namespace lindra::protocol {
namespace {

namespace pb = ::lindra::v1;

// An hlc must survive the trip through the signed deltas of sync.proto.
constexpr std::uint64_t kMaxHlc = std::numeric_limits<std::int64_t>::max();

// The peer sent something that is not a valid message.
[[noreturn]] void malformed(const std::string& what) {
    throw ProtocolError(ErrorCode::invalid_argument, what);
}

// The caller asked to encode something no peer would accept: a bug on this
// side, so not a ProtocolError (that one means "the peer is wrong").
[[noreturn]] void misuse(const std::string& what) {
    throw std::invalid_argument("protocol::encode: " + what);
}

std::string field_name(const EntityDef& e, const FieldDef& f) {
    return std::string(e.name) + "." + std::string(f.name);
}

// ---- ids ------------------------------------------------------------------

std::string bytes_of(const Id& id) {
    return {reinterpret_cast<const char*>(id.bytes.data()), id.bytes.size()};
}

Id id_of(const std::string& bytes, std::string_view what) {
    Id id;
    if (bytes.size() != id.bytes.size())
        malformed(std::string(what) + " is " + std::to_string(bytes.size()) + " bytes, not 16");
    std::memcpy(id.bytes.data(), bytes.data(), id.bytes.size());
    return id;
}

// A ChangeSet's id table (ChangeSet.ids). Encoding adds each distinct id once,
// in the order they are met; decoding checks every entry up front and every
// index into the table.
class IdTable {
  public:
    IdTable() = default;
    explicit IdTable(const pb::ChangeSet& set) {
        ids_.reserve(static_cast<std::size_t>(set.ids_size()));
        for (const std::string& b : set.ids()) ids_.push_back(id_of(b, "an id table entry"));
    }

    // The id's 0-based index, adding it if it is new.
    std::uint32_t add(const Id& id) {
        const auto [it, added] = index_.try_emplace(id, static_cast<std::uint32_t>(ids_.size()));
        if (added) ids_.push_back(id);
        return it->second;
    }

    // `owner` and `what` name the reference for the error message.
    const Id& at(std::uint64_t index, std::string_view owner, std::string_view what) const {
        if (index >= ids_.size())
            malformed(std::string(owner) + " " + std::string(what) + " refers to id " + std::to_string(index) +
                      " of a table of " + std::to_string(ids_.size()));
        return ids_[index];
    }

    void write_to(pb::ChangeSet& set) const {
        set.mutable_ids()->Reserve(static_cast<int>(ids_.size()));
        for (const Id& id : ids_) set.add_ids(bytes_of(id));
    }

  private:
    std::vector<Id> ids_;
    std::unordered_map<Id, std::uint32_t> index_;  // encoding only
};

// ---- values ---------------------------------------------------------------

template <class T>
const T& expect(const Value& v, const EntityDef& e, const FieldDef& f) {
    const T* x = std::get_if<T>(&v);
    if (!x) misuse(field_name(e, f) + ": value " + to_string(v) + " does not fit the field's type");
    return *x;
}

// Appends one field's value to the group, in the array its schema type uses.
void put_value(pb::ChangeGroup& g, const EntityDef& e, const FieldDef& f, const Value& v, IdTable& ids) {
    if (std::holds_alternative<std::monostate>(v)) {
        g.add_nulls(f.tag);
        return;
    }
    g.add_fields(f.tag);
    switch (f.type) {
        case FieldType::text:
        case FieldType::date:
            g.add_texts(expect<std::string>(v, e, f));
            return;
        case FieldType::ref:
            g.add_refs(ids.add(expect<Id>(v, e, f)));
            return;
        case FieldType::enumeration: {
            const int index = f.value_index(expect<std::string>(v, e, f));
            if (index < 0) misuse(field_name(e, f) + ": " + to_string(v) + " is not one of the field's values");
            g.add_ints(index);
            return;
        }
        case FieldType::integer:
        case FieldType::boolean:
        case FieldType::timestamp:
        case FieldType::progress:
            g.add_ints(expect<std::int64_t>(v, e, f));
            return;
    }
    misuse(field_name(e, f) + ": unknown field type");
}

// Reads one group's values back: each field takes the next element of its
// type's array, and nothing may be left over.
class ValueReader {
  public:
    ValueReader(const pb::ChangeGroup& g, const EntityDef& e, const IdTable& ids) : g_(g), e_(e), ids_(ids) {}

    Value take(const FieldDef& f) {
        switch (f.type) {
            case FieldType::text:
            case FieldType::date:
                return next(g_.texts(), texts_, f);
            case FieldType::ref:
                return ids_.at(next(g_.refs(), refs_, f), e_.name, f.name);
            case FieldType::enumeration: {
                const std::int64_t index = next(g_.ints(), ints_, f);
                if (index < 0 || static_cast<std::uint64_t>(index) >= f.values.size())
                    malformed(field_name(e_, f) + ": enum index " + std::to_string(index) + " is not one of its " +
                              std::to_string(f.values.size()) + " values");
                return std::string(f.values[static_cast<std::size_t>(index)]);
            }
            case FieldType::integer:
            case FieldType::boolean:
            case FieldType::timestamp:
            case FieldType::progress:
                return next(g_.ints(), ints_, f);
        }
        malformed(field_name(e_, f) + ": unknown field type");
    }

    void check_consumed() const {
        if (ints_ != g_.ints_size() || texts_ != g_.texts_size() || refs_ != g_.refs_size())
            malformed(std::string(e_.name) + " change group: more values than fields");
    }

  private:
    template <class Array>
    auto next(const Array& values, int& pos, const FieldDef& f) -> decltype(values.Get(0)) {
        if (pos >= values.size()) malformed(field_name(e_, f) + ": the group has fewer values than fields");
        return values.Get(pos++);
    }

    const pb::ChangeGroup& g_;
    const EntityDef& e_;
    const IdTable& ids_;
    int ints_ = 0, texts_ = 0, refs_ = 0;
};

// ---- change sets ----------------------------------------------------------

// What the changes of one write share, sent once per ChangeGroup.
bool same_write(const Change& a, const Change& b) {
    return a.entity == b.entity && a.row == b.row && a.hlc == b.hlc && a.origin == b.origin;
}

// The id of a derived-id row whose key fields are among `changes`, hashed in
// schema order as the replica derives it; nullopt if a key has no id there.
// Encoder and decoder both call this, so they agree on which rows can omit it.
std::optional<Id> derived_row(const EntityDef& e, std::span<const Change> changes) {
    std::vector<Id> keys;
    for (const FieldDef& f : e.fields) {
        if (!f.key) continue;
        const auto it = std::find_if(changes.begin(), changes.end(), [&](const Change& c) { return c.field == f.tag; });
        const Id* id = it == changes.end() ? nullptr : std::get_if<Id>(&it->value);
        if (!id) return std::nullopt;
        keys.push_back(*id);
    }
    return Id::derive(e.name, keys);
}

class ChangeSetWriter {
  public:
    // Adds the group of one write (changes that are all same_write). Its
    // origin goes on the wire only if `with_origin`.
    pb::ChangeGroup& add(std::span<const Change> changes, bool with_origin) {
        const Change& first = changes.front();
        const EntityDef* e = find_entity(first.entity);
        if (!e) misuse("unknown entity tag " + std::to_string(first.entity));
        if (first.hlc == 0 || first.hlc > kMaxHlc) misuse("hlc " + std::to_string(first.hlc) + " is out of range");

        pb::ChangeGroup& g = *set_.add_groups();
        g.set_entity(e->tag);
        // A row id that every receiver derives from the group's keys need not travel.
        const bool derivable = e->derived_id && derived_row(*e, changes) == first.row;
        g.set_row(derivable ? 0 : ids_.add(first.row) + 1);
        const auto hlc = static_cast<std::int64_t>(first.hlc);
        g.set_hlc_delta(hlc - hlc_);
        hlc_ = hlc;
        if (with_origin) g.set_origin(ids_.add(first.origin) + 1);
        for (const Change& c : changes) {
            const FieldDef* f = e->field(c.field);
            if (!f) misuse(std::string(e->name) + ": unknown field tag " + std::to_string(c.field));
            put_value(g, *e, *f, c.value, ids_);
        }
        return g;
    }

    void finish(pb::ChangeSet& out) {
        ids_.write_to(set_);
        out = std::move(set_);
    }

  private:
    pb::ChangeSet set_;
    IdTable ids_;
    std::int64_t hlc_ = 0;  // the previous group's
};

class ChangeSetReader {
  public:
    // Counts before decoding anything: a few packed bytes per change could
    // otherwise unfold a 4 MiB frame into millions of Changes.
    ChangeSetReader(const pb::ChangeSet& set, std::size_t max_changes) : ids_(set) {
        std::size_t n = 0;
        for (const auto& g : set.groups()) n += static_cast<std::size_t>(g.fields_size() + g.nulls_size());
        if (n > max_changes)
            throw ProtocolError(ErrorCode::invalid_argument, std::to_string(n) + " changes in one message; the limit is " +
                                                                  std::to_string(max_changes));
    }

    const IdTable& ids() const noexcept { return ids_; }

    // Appends the changes of group `g`, whose origin the caller resolved.
    void read(const pb::ChangeGroup& g, const Id& origin, std::vector<Change>& out) {
        const EntityDef* e = g.entity() <= UINT16_MAX ? find_entity(static_cast<std::uint16_t>(g.entity())) : nullptr;
        if (!e) malformed("unknown entity tag " + std::to_string(g.entity()));
        if (__builtin_add_overflow(hlc_, g.hlc_delta(), &hlc_) || hlc_ <= 0)
            malformed(std::string(e->name) + " change group: the hlc deltas leave the range of a clock");
        if (g.fields_size() == 0 && g.nulls_size() == 0)
            malformed(std::string(e->name) + " change group without fields");

        const std::size_t first = out.size();
        const auto hlc = static_cast<std::uint64_t>(hlc_);
        ValueReader values(g, *e, ids_);
        for (const std::uint32_t tag : g.fields()) {
            const FieldDef& f = field(*e, tag);
            out.push_back({e->tag, Id{}, f.tag, values.take(f), hlc, origin});
        }
        values.check_consumed();
        for (const std::uint32_t tag : g.nulls()) out.push_back({e->tag, Id{}, field(*e, tag).tag, {}, hlc, origin});

        const std::span<Change> group(out.data() + first, out.size() - first);
        const Id row = g.row() != 0 ? ids_.at(std::uint64_t{g.row()} - 1, e->name, "row") : derive_row(*e, group);
        for (Change& c : group) c.row = row;
    }

  private:
    static const FieldDef& field(const EntityDef& e, std::uint32_t tag) {
        const FieldDef* f = tag <= UINT16_MAX ? e.field(static_cast<std::uint16_t>(tag)) : nullptr;
        if (!f) malformed(std::string(e.name) + ": unknown field tag " + std::to_string(tag));
        return *f;
    }

    static Id derive_row(const EntityDef& e, std::span<const Change> group) {
        if (!e.derived_id) malformed(std::string(e.name) + " rows have no derived id: the group needs its row id");
        const std::optional<Id> row = derived_row(e, group);
        if (!row) malformed(std::string(e.name) + " change group without its row id lacks a key field");
        return *row;
    }

    IdTable ids_;
    std::int64_t hlc_ = 0;  // the previous group's
};

// ---- push and pull batch --------------------------------------------------

void write(const Push& push, pb::Push& out) {
    if (push.entries.empty()) misuse("a Push without entries");
    const Entry& front = push.entries.front();
    ChangeSetWriter writer;
    std::int64_t seq = 0;
    for (const Entry& entry : push.entries) {
        if (entry.changes.empty()) misuse("an entry without changes");
        for (const Change& c : entry.changes)
            if (!same_write(c, entry.changes.front()))
                misuse("entry " + std::to_string(entry.seq) + " mixes entities, rows, hlcs or origins");
        // The receiver takes every origin to be the device that said Hello.
        if (entry.changes.front().origin != front.changes.front().origin) misuse("a Push mixes origins");
        std::int64_t delta = 0;
        if ((&entry != &front && entry.seq <= seq) || __builtin_sub_overflow(entry.seq, seq, &delta))
            misuse("entry seqs must increase: " + std::to_string(entry.seq) + " after " + std::to_string(seq));
        writer.add(entry.changes, false).set_seq_delta(delta);
        seq = entry.seq;
    }
    out.set_first_seq(front.seq);
    out.set_last_seq(push.entries.back().seq);
    writer.finish(*out.mutable_changes());
}

Push read(const pb::Push& in, const Id& device, std::size_t max_changes) {
    const auto& groups = in.changes().groups();
    if (groups.empty()) malformed("a Push without changes");
    ChangeSetReader reader(in.changes(), max_changes);
    Push push;
    push.entries.reserve(static_cast<std::size_t>(groups.size()));
    std::int64_t seq = 0;
    for (const pb::ChangeGroup& g : groups) {
        // A device pushes only its own changes; naming another origin is refused, not ignored.
        if (g.origin() != 0) malformed("a Push names an origin");
        if ((!push.entries.empty() && g.seq_delta() <= 0) || __builtin_add_overflow(seq, g.seq_delta(), &seq))
            malformed("Push seqs must increase");
        if (seq < 1 || seq > kMaxSeq) malformed("a Push seq outside 1..2^53");
        Entry& entry = push.entries.emplace_back();
        entry.seq = seq;
        reader.read(g, device, entry.changes);
    }
    if (in.first_seq() != push.entries.front().seq || in.last_seq() != push.entries.back().seq)
        malformed("Push first_seq/last_seq do not match its changes");
    return push;
}

// Changes with their origins, a group per run of one write's changes.
void write_changes(std::span<const Change> changes, pb::ChangeSet& out) {
    ChangeSetWriter writer;
    for (std::size_t begin = 0, end = 0; begin < changes.size(); begin = end) {
        end = begin + 1;
        while (end < changes.size() && same_write(changes[end], changes[begin])) ++end;
        writer.add(changes.subspan(begin, end - begin), true);
    }
    writer.finish(out);
}

void read_changes(const pb::ChangeSet& in, std::size_t max_changes, std::vector<Change>& out) {
    ChangeSetReader reader(in, max_changes);
    for (const pb::ChangeGroup& g : in.groups()) {
        if (g.origin() == 0) malformed("a change group without origin");
        reader.read(g, reader.ids().at(std::uint64_t{g.origin()} - 1, "ChangeSet", "origin"), out);
    }
}

// Purge kinds on the wire: the scope kinds a purge can have (never the
// catalog). An unknown number reads as none, as from an older server.
pb::PurgeKind purge_kind(ScopeKind kind) {
    switch (kind) {
        case ScopeKind::group: return pb::PURGE_KIND_GROUP;
        case ScopeKind::person: return pb::PURGE_KIND_PERSON;
        case ScopeKind::person_in_group: return pb::PURGE_KIND_PERSON_IN_GROUP;
        case ScopeKind::personal: return pb::PURGE_KIND_PERSONAL;
        case ScopeKind::catalog: break;
    }
    return pb::PURGE_KIND_UNSPECIFIED;
}

std::optional<ScopeKind> scope_kind(int kind) {
    switch (kind) {
        case pb::PURGE_KIND_GROUP: return ScopeKind::group;
        case pb::PURGE_KIND_PERSON: return ScopeKind::person;
        case pb::PURGE_KIND_PERSON_IN_GROUP: return ScopeKind::person_in_group;
        case pb::PURGE_KIND_PERSONAL: return ScopeKind::personal;
        default: return std::nullopt;
    }
}

void write(const PullBatch& batch, pb::PullBatch& out) {
    write_changes(batch.changes, *out.mutable_changes());
    out.set_next_cursor(batch.next_cursor);
    out.set_has_more(batch.has_more);
    for (const Purge& p : batch.purges) {
        pb::Purge& purge = *out.add_purges();
        purge.set_scope(p.scope);
        for (const Id& row : p.rows) purge.add_rows(bytes_of(row));
        if (p.kind) purge.set_kind(purge_kind(*p.kind));
        if (!p.group.is_nil()) purge.set_group(bytes_of(p.group));
        if (!p.person.is_nil()) purge.set_person(bytes_of(p.person));
    }
    out.set_remaining(batch.remaining);
}

PullBatch read(const pb::PullBatch& in, std::size_t max_changes) {
    PullBatch batch;
    read_changes(in.changes(), max_changes, batch.changes);
    batch.next_cursor = in.next_cursor();
    batch.has_more = in.has_more();
    for (const pb::Purge& p : in.purges()) {
        Purge& purge = batch.purges.emplace_back();
        purge.scope = p.scope();
        for (const std::string& row : p.rows()) purge.rows.push_back(id_of(row, "a purged row id"));
        purge.kind = scope_kind(p.kind());
        if (!p.group().empty()) purge.group = id_of(p.group(), "a purged scope's group");
        if (!p.person().empty()) purge.person = id_of(p.person(), "a purged scope's person");
    }
    batch.remaining = in.remaining();
    return batch;
}

// ---- the other messages ---------------------------------------------------

static_assert(static_cast<int>(ErrorCode::unauthenticated) == pb::ERROR_CODE_UNAUTHENTICATED);
static_assert(static_cast<int>(ErrorCode::permission_denied) == pb::ERROR_CODE_PERMISSION_DENIED);
static_assert(static_cast<int>(ErrorCode::invalid_argument) == pb::ERROR_CODE_INVALID_ARGUMENT);
static_assert(static_cast<int>(ErrorCode::frame_too_large) == pb::ERROR_CODE_FRAME_TOO_LARGE);
static_assert(static_cast<int>(ErrorCode::unsupported_version) == pb::ERROR_CODE_UNSUPPORTED_VERSION);
static_assert(static_cast<int>(ErrorCode::rate_limited) == pb::ERROR_CODE_RATE_LIMITED);
static_assert(static_cast<int>(ErrorCode::internal) == pb::ERROR_CODE_INTERNAL);

pb::ErrorCode to_wire(ErrorCode code) {
    return static_cast<pb::ErrorCode>(code);
}

// The enum is closed: a code this build does not know (a newer peer's, or
// unspecified) is reported as internal.
ErrorCode from_wire(int code) {
    const bool known =
        code >= static_cast<int>(ErrorCode::unauthenticated) && code <= static_cast<int>(ErrorCode::internal);
    return known ? static_cast<ErrorCode>(code) : ErrorCode::internal;
}

void write(const Hello& m, pb::Hello& out) {
    out.mutable_versions()->Add(m.versions.begin(), m.versions.end());
    out.set_device_id(bytes_of(m.device));
    out.set_token(m.token);
    out.set_schema_version(m.schema_version);
    out.set_app(m.app);
    out.set_cursor(m.cursor);
    out.set_acked_seq(m.acked_seq);
}

Hello read(const pb::Hello& in) {
    return {.versions = {in.versions().begin(), in.versions().end()},
            .device = id_of(in.device_id(), "Hello.device_id"),
            .token = in.token(),
            .schema_version = in.schema_version(),
            .app = in.app(),
            .cursor = in.cursor(),
            .acked_seq = in.acked_seq()};
}

void write(const Welcome& m, pb::Welcome& out) {
    out.set_version(m.version);
    out.set_server_id(bytes_of(m.server_id));
    out.set_server_hlc(m.server_hlc);
    out.set_user(m.user);
    for (const std::string& role : m.roles) out.add_roles(role);
    pb::Limits& limits = *out.mutable_limits();
    limits.set_max_frame_bytes(m.limits.max_frame_bytes);
    limits.set_max_push_changes(m.limits.max_push_changes);
    limits.set_max_pull_changes(m.limits.max_pull_changes);
    out.set_highest_seq(m.highest_seq);
    out.set_pull_needed(m.pull_needed);
    out.set_highest_hlc(m.highest_hlc);
    out.set_pull_remaining(m.pull_remaining);
}

Welcome read(const pb::Welcome& in) {
    Welcome m{.version = in.version(),
              .server_id = id_of(in.server_id(), "Welcome.server_id"),
              .server_hlc = in.server_hlc(),
              .user = in.user(),
              .roles = {in.roles().begin(), in.roles().end()},
              .highest_seq = in.highest_seq(),
              .pull_needed = in.pull_needed(),
              .highest_hlc = in.highest_hlc(),
              .pull_remaining = in.pull_remaining()};
    if (m.highest_seq < 0 || m.highest_seq > kMaxSeq) malformed("Welcome.highest_seq outside 0..2^53");
    if (in.has_limits())  // absent: lindra's defaults, not zeros
        m.limits = {.max_frame_bytes = in.limits().max_frame_bytes(),
                    .max_push_changes = in.limits().max_push_changes(),
                    .max_pull_changes = in.limits().max_pull_changes()};
    return m;
}

void write(const PushAck& m, pb::PushAck& out) {
    out.set_acked_seq(m.acked_seq);
    for (const Rejected& r : m.rejected) {
        pb::Rejected& rejected = *out.add_rejected();
        rejected.set_seq(r.seq);
        rejected.set_code(to_wire(r.code));
        rejected.set_reason(r.reason);
        rejected.set_entity(r.entity);
        rejected.set_row(bytes_of(r.row));
        for (const auto tag : r.fields) rejected.add_fields(tag);
        write_changes(r.current, *rejected.mutable_current());
        rejected.set_drop_row(r.drop_row);
    }
}

PushAck read(const pb::PushAck& in, std::size_t max_changes) {
    PushAck m{.acked_seq = in.acked_seq()};
    m.rejected.reserve(static_cast<std::size_t>(in.rejected_size()));
    std::size_t changes = 0;
    for (const pb::Rejected& r : in.rejected()) {
        Rejected& out = m.rejected.emplace_back();
        out.seq = r.seq();
        out.code = from_wire(r.code());
        out.reason = r.reason();
        const EntityDef* e = r.entity() <= UINT16_MAX ? find_entity(static_cast<std::uint16_t>(r.entity())) : nullptr;
        if (!e) malformed("a rejected change of unknown entity tag " + std::to_string(r.entity()));
        out.entity = e->tag;
        out.row = id_of(r.row(), "a rejected change's row id");
        for (const auto tag : r.fields()) {
            if (tag > UINT16_MAX || !e->field(static_cast<std::uint16_t>(tag)))
                malformed(std::string(e->name) + ": a rejected change of unknown field tag " + std::to_string(tag));
            out.fields.push_back(static_cast<std::uint16_t>(tag));
        }
        read_changes(r.current(), max_changes - std::min(changes, max_changes), out.current);
        changes += out.current.size();
        out.drop_row = r.drop_row();
    }
    return m;
}

void write(const Pull& m, pb::Pull& out) {
    out.set_cursor(m.cursor);
    out.set_max_changes(m.max_changes);
    out.set_include_own(m.include_own);
}

Pull read(const pb::Pull& in) {
    return {.cursor = in.cursor(), .max_changes = in.max_changes(), .include_own = in.include_own()};
}

void write(const ErrorMessage& m, pb::Error& out) {
    out.set_code(to_wire(m.code));
    out.set_message(m.message);
    out.set_retry_after_ms(m.retry_after_ms);
}

ErrorMessage read(const pb::Error& in) {
    return {.code = from_wire(in.code()), .message = in.message(), .retry_after_ms = in.retry_after_ms()};
}

// ---- bodies ---------------------------------------------------------------

std::string serialize(const google::protobuf::MessageLite& m) {
    std::string body;
    if (!m.SerializeToString(&body)) misuse("the message is too large to serialize");
    return body;
}

void parse(std::span<const std::uint8_t> body, google::protobuf::MessageLite& m, std::string_view what) {
    // Frames are limited far below this; the check keeps the int casts honest.
    if (body.size() > static_cast<std::size_t>(INT_MAX)) malformed("malformed " + std::string(what) + ": too large");
    const int size = static_cast<int>(body.size());
    google::protobuf::io::CodedInputStream in(body.data(), size);
    in.SetRecursionLimit(8);  // the deepest message nests 4 levels; unknown groups may not nest further
    in.SetTotalBytesLimit(size);
#if GOOGLE_PROTOBUF_VERSION < 4022000
    // Protobuf logs some parse failures (invalid UTF-8) to stderr; a peer
    // must not be able to fill the log. The ProtocolError reports them.
    const google::protobuf::LogSilencer quiet;
#endif
    if (!m.ParseFromCodedStream(&in) || !in.ConsumedEntireMessage()) malformed("malformed " + std::string(what));
}

// Runs a decoder so that only ProtocolError leaves it: a peer's bytes must
// never surface as some other exception a caller does not expect.
template <class F>
auto guarded(std::string_view what, F&& decode) -> decltype(decode()) {
    try {
        return decode();
    } catch (const ProtocolError&) {
        throw;
    } catch (const std::exception& e) {  // std::bad_alloc above all; reported as ours, not the peer's fault
        throw ProtocolError(ErrorCode::internal, "decoding a " + std::string(what) + " failed: " + e.what());
    } catch (...) {
        throw ProtocolError(ErrorCode::internal, "decoding a " + std::string(what) + " failed");
    }
}

template <class... F>
struct Overloaded : F... {
    using F::operator()...;
};
// Clang before 17 does not deduce an aggregate's template arguments (P1816).
template <class... F>
Overloaded(F...) -> Overloaded<F...>;

}  // namespace

std::string_view to_string(ErrorCode code) {
    switch (code) {
        case ErrorCode::unauthenticated:
            return "unauthenticated";
        case ErrorCode::permission_denied:
            return "permission_denied";
        case ErrorCode::invalid_argument:
            return "invalid_argument";
        case ErrorCode::frame_too_large:
            return "frame_too_large";
        case ErrorCode::unsupported_version:
            return "unsupported_version";
        case ErrorCode::rate_limited:
            return "rate_limited";
        case ErrorCode::internal:
            return "internal";
    }
    return "unknown";
}

std::string encode(const ClientMessage& message) {
    pb::ClientMessage m;
    std::visit(Overloaded{[&](const Hello& x) { write(x, *m.mutable_hello()); },
                          [&](const Push& x) { write(x, *m.mutable_push()); },
                          [&](const Pull& x) { write(x, *m.mutable_pull()); },
                          [&](const Ping& x) { m.mutable_ping()->set_nonce(x.nonce); }},
               message);
    return serialize(m);
}

std::string encode(const ServerMessage& message) {
    pb::ServerMessage m;
    std::visit(Overloaded{[&](const Welcome& x) { write(x, *m.mutable_welcome()); },
                          [&](const PushAck& x) { write(x, *m.mutable_push_ack()); },
                          [&](const PullBatch& x) { write(x, *m.mutable_pull_batch()); },
                          [&](const Pong& x) { m.mutable_pong()->set_nonce(x.nonce); },
                          [&](const ErrorMessage& x) { write(x, *m.mutable_error()); }},
               message);
    return serialize(m);
}

ClientMessage decode_client(std::span<const std::uint8_t> body, const Id& device, std::size_t max_changes) {
    return guarded("client message", [&]() -> ClientMessage {
        pb::ClientMessage m;
        parse(body, m, "client message");
        switch (m.kind_case()) {
            case pb::ClientMessage::kHello:
                return read(m.hello());
            case pb::ClientMessage::kPush:
                return read(m.push(), device, max_changes);
            case pb::ClientMessage::kPull:
                return read(m.pull());
            case pb::ClientMessage::kPing:
                return Ping{m.ping().nonce()};
            case pb::ClientMessage::KIND_NOT_SET:
                break;
        }
        malformed("a client message of no known kind");
    });
}

ServerMessage decode_server(std::span<const std::uint8_t> body, std::size_t max_changes) {
    return guarded("server message", [&]() -> ServerMessage {
        pb::ServerMessage m;
        parse(body, m, "server message");
        switch (m.kind_case()) {
            case pb::ServerMessage::kWelcome:
                return read(m.welcome());
            case pb::ServerMessage::kPushAck:
                return read(m.push_ack(), max_changes);
            case pb::ServerMessage::kPullBatch:
                return read(m.pull_batch(), max_changes);
            case pb::ServerMessage::kPong:
                return Pong{m.pong().nonce()};
            case pb::ServerMessage::kError:
                return read(m.error());
            case pb::ServerMessage::KIND_NOT_SET:
                break;
        }
        malformed("a server message of no known kind");
    });
}

std::size_t max_changes_per_entry() noexcept {
    std::size_t n = 0;
    for (const auto& e : entities()) n = std::max(n, e.fields.size());
    return n;
}

}  // namespace lindra::protocol
