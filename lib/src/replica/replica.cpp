#include "replica/core.hpp"

#include "model/validate.hpp"

#include <algorithm>
#include <cctype>
#include <utility>

namespace lindra {

using detail::Core;

// ---- enums: their strings live in the schema table ------------------------

namespace {

template <class E>
struct EnumField;
#define LINDRA_ENUM_FIELD(E, ENTITY, FIELD)                \
    template <>                                            \
    struct EnumField<E> {                                  \
        static constexpr std::string_view entity = ENTITY; \
        static constexpr std::string_view field = FIELD;   \
    }
LINDRA_ENUM_FIELD(OrganizationKind, "organization", "kind");
LINDRA_ENUM_FIELD(Profession, "person", "profession");
LINDRA_ENUM_FIELD(ModuleKind, "module", "kind");
LINDRA_ENUM_FIELD(GroupStatus, "mentor_group", "status");
LINDRA_ENUM_FIELD(MemberRole, "membership", "role");
LINDRA_ENUM_FIELD(MemberStatus, "membership", "status");
LINDRA_ENUM_FIELD(GatheringMode, "gathering", "mode");
LINDRA_ENUM_FIELD(GatheringStatus, "gathering", "status");
LINDRA_ENUM_FIELD(AttendanceStatus, "attendance", "status");
LINDRA_ENUM_FIELD(ProgressStatus, "module_progress", "progress");
#undef LINDRA_ENUM_FIELD

template <class E>
const EntityDef& enum_entity() {
    static const EntityDef& e = detail::entity(EnumField<E>::entity);
    return e;
}

template <class E>
const FieldDef& enum_field() {
    static const FieldDef& f = detail::field(enum_entity<E>(), EnumField<E>::field);
    return f;
}

template <class E>
std::string_view enum_string(E v) {
    return enum_field<E>().values[static_cast<std::size_t>(v)];
}

}  // namespace

template <class E>
std::optional<E> parse_enum(std::string_view text) {
    const int i = enum_field<E>().value_index(text);
    if (i < 0) return std::nullopt;
    return static_cast<E>(i);
}

template <class E>
E to_enum(std::string_view text) {
    if (const auto v = parse_enum<E>(text)) return *v;
    model::throw_bad_enum(enum_entity<E>(), enum_field<E>(), text);
}

#define LINDRA_ENUM(E)                                         \
    std::string_view to_string(E v) {                          \
        return enum_string(v);                                 \
    }                                                          \
    template std::optional<E> parse_enum<E>(std::string_view); \
    template E to_enum<E>(std::string_view)
LINDRA_ENUM(OrganizationKind);
LINDRA_ENUM(Profession);
LINDRA_ENUM(ModuleKind);
LINDRA_ENUM(GroupStatus);
LINDRA_ENUM(MemberRole);
LINDRA_ENUM(MemberStatus);
LINDRA_ENUM(GatheringMode);
LINDRA_ENUM(GatheringStatus);
LINDRA_ENUM(AttendanceStatus);
LINDRA_ENUM(ProgressStatus);
#undef LINDRA_ENUM

// ---- Replica --------------------------------------------------------------

Replica::Replica(const std::string& path, ReplicaOptions options)
    : Writes(nullptr, true), owned_(std::make_unique<Core>(path, options)) {
    core_ = owned_.get();
}

Replica::~Replica() = default;
// A moved-from Replica may only be destroyed or assigned to.
Replica::Replica(Replica&& other) noexcept : Writes(other), owned_(std::move(other.owned_)) {
    other.core_ = nullptr;
}

Replica& Replica::operator=(Replica&& other) noexcept {
    owned_ = std::move(other.owned_);
    core_ = std::exchange(other.core_, nullptr);
    return *this;
}

detail::Core& detail::core_of(Replica& replica) noexcept { return *replica.core_; }

const Id& Replica::device_id() const noexcept {
    return core_->device;
}
const std::string& Replica::path() const noexcept {
    return core_->db.path();
}

namespace {
// Writes that join the transaction Replica::batch() holds open.
class BatchWrites final : public Writes {
  public:
    explicit BatchWrites(Core* core) noexcept : Writes(core, false) {}
};
}  // namespace

void Replica::batch(const std::function<void(Writes&)>& fn) {
    std::lock_guard lock(core_->mutex);
    Core::WriteTransaction txn(*core_);
    BatchWrites writes(core_);
    fn(writes);
    txn.commit();
}

std::vector<RefusedWrite> Replica::refused_writes() const {
    std::lock_guard lock(core_->mutex);
    return core_->refused_writes();
}

bool Replica::dismiss_refused(std::int64_t id) {
    std::lock_guard lock(core_->mutex);
    Core::WriteTransaction txn(*core_);
    const bool found = core_->dismiss_refused(id) > 0;
    txn.commit();
    return found;
}

std::int64_t Replica::dismiss_all_refused() {
    std::lock_guard lock(core_->mutex);
    Core::WriteTransaction txn(*core_);
    const std::int64_t n = core_->dismiss_refused(std::nullopt);
    txn.commit();
    return n;
}

std::int64_t Replica::outbox_size() const {
    std::lock_guard lock(core_->mutex);
    return core_->outbox_size();
}

std::vector<OutboxEntry> Replica::outbox(std::size_t max_entries) const {
    std::lock_guard lock(core_->mutex);
    return core_->outbox(max_entries);
}

void Replica::acknowledge(std::int64_t seq) {
    if (seq < 0) throw Error(Errc::invalid_argument, "acknowledged seq must not be negative");
    std::lock_guard lock(core_->mutex);
    Core::WriteTransaction txn(*core_);
    core_->acknowledge(seq);
    txn.commit();
}

void Replica::apply_remote(std::span<const Change> changes) {
    std::lock_guard lock(core_->mutex);
    Core::WriteTransaction txn(*core_);
    core_->apply(changes);
    txn.commit();
}

std::uint64_t Replica::hlc() const {
    std::lock_guard lock(core_->mutex);
    return core_->clock.last();
}

}  // namespace lindra
