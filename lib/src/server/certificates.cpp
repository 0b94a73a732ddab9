#include "server/certificates.hpp"

#include "core/codec.hpp"
#include "core/jws.hpp"
#include "core/status_list.hpp"
#include "model/completion.hpp"
#include "replica/core.hpp"
#include "server/access.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <ctime>
#include <map>
#include <set>

namespace lindra::server {
namespace {

using model::field_as;
using model::urn;

using Json = nlohmann::ordered_json;
using model::field_value;
using model::is_live;

const EntityDef& entity(std::string_view name) {
    return *find_entity(name);
}

// RFC 3339, UTC, to the second: Open Badges' dateTime.
std::string iso8601(std::int64_t ms) {
    const std::time_t t = static_cast<std::time_t>(ms / 1000);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char out[32];
    std::strftime(out, sizeof out, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return out;
}

std::string hex(std::string_view bytes) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    for (const unsigned char b : bytes) {
        out += digits[b >> 4];
        out += digits[b & 15];
    }
    return out;
}

// The (person, group) pairs whose rule a staged row may complete.
std::set<std::pair<Id, Id>> touched(RowSource& rows, std::span<const StagedRow> staged) {
    std::set<std::pair<Id, Id>> out;
    const EntityDef& membership = entity("membership");
    auto whole_group = [&](const Id& group) {
        for (const Id& m : rows.referring(membership, "group_id", group)) {
            const auto st = rows.load(membership, m);
            if (const auto p = field_as<Id>(membership, st, "person_id");
                p && field_as<Id>(membership, st, "group_id") == group)
                out.emplace(*p, group);
        }
    };
    for (const auto& s : staged) {
        const EntityDef& e = *s.entity;
        if (e.name == "module_progress" || e.name == "attendance" || e.name == "mentor_confirmation" ||
            e.name == "membership") {
            const auto p = field_as<Id>(e, s.state, e.person_field);
            const auto g = field_as<Id>(e, s.state, e.group_field);
            if (p && g) out.emplace(*p, *g);
        } else if (e.name == "gathering") {
            if (const auto g = field_as<Id>(e, s.state, "group_id")) whole_group(*g);
        } else if (e.name == "course" || e.name == "module" || e.name == "mentor_group") {
            // The bar itself moved (a module made optional, a lower pass
            // score, fewer gatherings, a group moved to another course):
            // every member of the course's groups. Rare, and as large as
            // the course.
            const EntityDef& groups = entity("mentor_group");
            std::optional<Id> course =
                e.name == "course" ? std::optional<Id>(s.row) : field_as<Id>(e, s.state, "course_id");
            if (e.name == "mentor_group") {
                whole_group(s.row);
            } else if (course) {
                for (const Id& g : rows.referring(groups, "course_id", *course)) whole_group(g);
            }
        }
    }
    return out;
}

// Where the revocation list is, by the Bitstring Status List's ids.
std::string status_list_url(const Issuer& issuer) {
    return issuer.id() + "/status/1";
}

// The payload fields a VC-JWT mirrors from its credential, and the
// signature with the issuer's current key.
std::string sign(const Issuer& issuer, Json payload, const std::string& id, const std::string& subject,
                 std::int64_t now_ms) {
    payload["iss"] = issuer.id();
    payload["jti"] = id;
    payload["nbf"] = now_ms / 1000;
    payload["sub"] = subject;
    const Json header = {{"alg", "EdDSA"}, {"kid", issuer.signing_key().kid}};
    return jws::sign_compact(issuer.signing_key().private_pem, header.dump(), payload.dump());
}

// The revocation list as a signed BitstringStatusListCredential.
std::string status_list_credential(const Issuer& issuer, std::string_view bits, std::int64_t now_ms) {
    const std::string id = status_list_url(issuer);
    Json vc = {
        {"@context", {"https://www.w3.org/ns/credentials/v2"}},
        {"id", id},
        {"type", {"VerifiableCredential", "BitstringStatusListCredential"}},
        {"issuer", issuer.id()},
        {"validFrom", iso8601(now_ms)},
        {"credentialSubject",
         {{"id", id + "#list"},
          {"type", "BitstringStatusList"},
          {"statusPurpose", "revocation"},
          {"encodedList", status_list::encode(bits)}}},
    };
    return sign(issuer, std::move(vc), id, id + "#list", now_ms);
}

// The bits of the list the server signed last: read back from its own
// credential, so no second copy of them can disagree with what tablets
// hold. Zeros if it has signed none yet.
std::string status_bits(const EntityDef& list, const model::RowState& st) {
    const auto allocated = field_as<std::int64_t>(list, st, "allocated").value_or(0);
    std::string bits(status_list::bytes_for(allocated), '\0');
    const auto signed_list = field_as<std::string>(list, st, "credential");
    if (!signed_list) return bits;
    const auto parts = jws::split_compact(*signed_list);
    const Json payload = parts ? Json::parse(parts->payload, nullptr, false) : Json();
    const auto at = "/credentialSubject/encodedList"_json_pointer;
    auto decoded = payload.is_object() && payload.contains(at) && payload.at(at).is_string()
                       ? status_list::decode(payload.at(at).get<std::string>(),
                                             status_list::bytes_for(list.field("allocated")->max))
                       : std::nullopt;
    if (!decoded)
        throw Error(Errc::corrupt,
                    "the server's revocation list does not hold a list it signed; restore it from a backup");
    if (decoded->size() < bits.size()) decoded->resize(bits.size(), '\0');
    return std::move(*decoded);
}

// The credential's criteria: the rule, in words.
std::string criteria(std::int64_t required_gatherings) {
    return "Every required module of the course passed, at or above its pass score where it has one; at least " +
           std::to_string(required_gatherings) +
           " of the mentor group's held gatherings attended; participation confirmed by a mentor of the group; "
           "the membership of the group active or completed.";
}

// The Open Badges 3.0 OpenBadgeCredential of a met rule, as a compact JWS.
std::string credential(RowSource& rows, const model::Completion& c, const Id& certificate, std::int64_t status_index,
                       const Issuer& issuer, std::int64_t now_ms) {
    const EntityDef& person = entity("person");
    const EntityDef& course = entity("course");
    const EntityDef& group = entity("mentor_group");
    const auto p = rows.load(person, c.person);
    const auto co = rows.load(course, c.course);
    const auto g = rows.load(group, c.group);
    const std::string course_title = field_as<std::string>(course, co, "title").value_or("");

    // The person by a salted hash of their id: a verifier who is told the
    // id and salt can match it, nobody else can; never a national id.
    unsigned char salt_bytes[16];
    RAND_bytes(salt_bytes, sizeof salt_bytes);
    const std::string salt = hex(std::string_view(reinterpret_cast<const char*>(salt_bytes), sizeof salt_bytes));
    unsigned char digest[32];
    unsigned int n = 0;
    const std::string hashed = c.person.to_string() + salt;
    EVP_Digest(hashed.data(), hashed.size(), digest, &n, EVP_sha256(), nullptr);

    Json modules = Json::array();
    for (const auto& m : c.modules) {
        Json one = {{"ordinal", m.ordinal}, {"title", m.title}};
        if (m.best_score) one["score"] = *m.best_score;
        modules.push_back(std::move(one));
    }
    std::string attended;
    for (const auto& h : c.held)
        if (h.attended) attended += (attended.empty() ? "" : ", ") + std::to_string(h.ordinal) + " " + h.title;
    std::string passed;
    for (const auto& m : c.modules) passed += (passed.empty() ? "" : ", ") + std::to_string(m.ordinal) + " " + m.title;

    const std::string subject = urn(c.person);
    const std::string status_list = status_list_url(issuer);
    Json vc = {
        {"@context",
         {"https://www.w3.org/ns/credentials/v2", "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"}},
        {"id", urn(certificate)},
        {"type", {"VerifiableCredential", "OpenBadgeCredential"}},
        {"issuer", {{"id", issuer.id()}, {"type", {"Profile"}}, {"name", issuer.name()}}},
        {"validFrom", iso8601(now_ms)},
        {"name", course_title},
        {"credentialSubject",
         {{"id", subject},
          {"type", {"AchievementSubject"}},
          {"identifier",
           {{{"type", "IdentityObject"},
             {"identityHash", "sha256$" + hex(std::string_view(reinterpret_cast<const char*>(digest), n))},
             {"identityType", "identifier"},
             {"hashed", true},
             {"salt", salt}},
            {{"type", "IdentityObject"},
             {"identityHash", field_as<std::string>(person, p, "display_name").value_or("")},
             {"identityType", "name"},
             {"hashed", false}}}},
          {"achievement",
           {{"id", urn(c.course)},
            {"type", {"Achievement"}},
            {"achievementType", "CertificateOfCompletion"},
            {"name", course_title},
            {"description", "Course certificate of " + course_title + ", a blended course with a mentor group."},
            {"criteria", {{"narrative", criteria(c.required_gatherings)}}}}}}},
        {"evidence",
         {{{"id", urn(Id::derive("evidence_modules", {certificate}))},
           {"type", {"Evidence"}},
           {"name", "Modules passed"},
           {"narrative", std::to_string(c.modules_passed()) + " of " + std::to_string(c.modules.size()) +
                             " required modules passed: " + (passed.empty() ? "none required" : passed)}},
          {{"id", urn(Id::derive("evidence_gatherings", {certificate}))},
           {"type", {"Evidence"}},
           {"name", "Gatherings attended"},
           {"narrative", std::to_string(c.attended()) + " of " + std::to_string(c.held.size()) +
                             " gatherings held attended in the group " +
                             field_as<std::string>(group, g, "name").value_or("") +
                             (attended.empty() ? std::string() : ": " + attended)}},
          {{"id", urn(Id::derive("evidence_confirmation", {certificate}))},
           {"type", {"Evidence"}},
           {"name", "Mentor confirmation"},
           {"narrative",
            "Participation confirmed by the mentor " +
                field_as<std::string>(person, rows.load(person, *c.confirmed_by), "display_name").value_or("") +
                " on " + iso8601(c.confirmed_at).substr(0, 10) + "."}}}},
        {"credentialStatus",
         {{"id", status_list + "#" + std::to_string(status_index)},
          {"type", "BitstringStatusListEntry"},
          {"statusPurpose", "revocation"},
          {"statusListIndex", std::to_string(status_index)},
          {"statusListCredential", status_list}}},
    };
    return sign(issuer, std::move(vc), urn(certificate), subject, now_ms);
}

}  // namespace

Issuer::Issuer(const std::vector<std::string>& keys_pem, std::string id, std::string name)
    : id_(std::move(id)), name_(std::move(name)) {
    if (keys_pem.empty()) throw Error(Errc::invalid_argument, "a certificate issuer needs at least one key");
    for (std::size_t i = 0; i < keys_pem.size(); ++i) {
        std::string jwk;
        try {
            jwk = jws::ed25519_jwk(jws::ed25519_public_key(keys_pem[i]));
        } catch (const Error& e) {
            throw Error(Errc::invalid_argument, "issuer key " + std::to_string(i + 1) + ": " + e.what());
        }
        keys_.push_back({jws::jwk_thumbprint(jwk), keys_pem[i], jwk});
    }
    if (id_.empty()) id_ = urn(Id::derive("issuer/" + keys_.front().kid, std::initializer_list<Id>{}));
}

model::RowState ServerWrites::load(const EntityDef& e, const Id& id) {
    const auto it = std::find_if(writes_.begin(), writes_.end(),
                                 [&](const ServerWrite& w) { return w.row.entity == &e && w.row.row == id; });
    return it != writes_.end() ? it->row.state : rows_.load(e, id);
}

void ServerWrites::set(std::string_view entity_name, const Id& id,
                       const std::vector<std::pair<std::string_view, Value>>& values) {
    const EntityDef& e = entity(entity_name);
    auto it = std::find_if(writes_.begin(), writes_.end(),
                           [&](const ServerWrite& w) { return w.row.entity == &e && w.row.row == id; });
    if (it == writes_.end()) {
        const std::uint64_t hlc = tick_();
        writes_.push_back(
            {{&e, id, rows_.load(e, id)}, {0, e.tag, id, hlc, server_, static_cast<std::int64_t>(hlc), {}, {}}});
        it = writes_.end() - 1;
    }
    const std::uint64_t hlc = it->entry.hlc;
    std::vector<Change> changes;
    for (const auto& [field, value] : values) changes.push_back({e.tag, id, e.field(field)->tag, value, hlc, server_});
    std::vector<const Change*> pointers;
    for (const auto& c : changes) {
        detail::Core::check(c, model::Quote::none);
        pointers.push_back(&c);
    }
    bool changed = false;
    it->row.state = detail::Core::merge_checked(e, id, std::move(it->row.state), pointers, changed);
    // One log entry per row, with every field the transaction set.
    std::vector<Change> all;
    if (!it->entry.fields.empty()) codec::decode_fields(codec::bytes_of(it->entry.fields), changes.front(), all);
    for (auto& c : changes) {
        std::erase_if(all, [&](const Change& a) { return a.field == c.field; });
        all.push_back(std::move(c));
    }
    it->entry.fields = codec::encode_fields(all);
    it->entry.scope = scope_of(e, id, it->row.state);
}

namespace {

// The status list as this transaction has it.
model::RowState list_state(ServerWrites& out) {
    return out.load(entity("status_list"), model::status_list_id());
}

bool stale(const model::RowState& list, std::int64_t now_ms) {
    const auto at = field_as<std::int64_t>(entity("status_list"), list, "issued_at");
    return !field_as<std::string>(entity("status_list"), list, "credential") || !at ||
           now_ms - *at >= kStatusListRefreshMs;
}

void sign_list(const Issuer& issuer, std::string_view bits, std::int64_t now_ms, ServerWrites& out) {
    out.set("status_list", model::status_list_id(),
            {{"credential", Value{status_list_credential(issuer, bits, now_ms)}}, {"issued_at", Value{now_ms}}});
}

std::size_t issue(RowSource& rows, const std::set<std::pair<Id, Id>>& pairs, const Issuer& issuer,
                  std::int64_t now_ms, ServerWrites& out) {
    std::size_t issued = 0;
    const EntityDef& certificate = entity("certificate");
    const EntityDef& list = entity("status_list");
    for (const auto& [person, group] : pairs) {
        const auto c = model::completion(rows, person, group);
        if (!c || !c->met()) continue;
        const Id id = Id::derive("certificate", {person, c->course, group});
        if (rows.load(certificate, id).exists) continue;  // issued once, never again
        // Its bit in the revocation list: the next one, under the list's lock.
        const auto index = field_as<std::int64_t>(list, list_state(out), "allocated").value_or(0);
        out.set("status_list", model::status_list_id(), {{"allocated", Value{index + 1}}});
        out.set("certificate", id,
                {{"person_id", Value{person}},
                 {"course_id", Value{c->course}},
                 {"group_id", Value{group}},
                 {"issued_at", Value{now_ms}},
                 {"serial", Value{model::certificate_serial(id)}},
                 {"status_index", Value{index}},
                 {"credential", Value{credential(rows, *c, id, index, issuer, now_ms)}}});
        ++issued;
    }
    return issued;
}

// Marks each revoked certificate and sets its bit in `bits`; true if a bit
// was set.
bool revoke(RowSource& rows, std::span<const StagedRow* const> revoked, std::string& bits, std::int64_t now_ms,
            ServerWrites& out) {
    const EntityDef& revocation = entity("revocation");
    const EntityDef& certificate = entity("certificate");
    bool flipped = false;
    for (const StagedRow* r : revoked) {
        const auto id = field_as<Id>(revocation, r->state, "certificate_id");
        const auto cert = id ? rows.load(certificate, *id) : model::RowState{};
        const auto index = field_as<std::int64_t>(certificate, cert, "status_index");
        if (!is_live(certificate, cert) || !index) continue;  // the access rules let no such revocation through
        const auto reason = field_as<std::string>(revocation, r->state, "reason").value_or("");
        std::vector<std::pair<std::string_view, Value>> values;
        // Revoked once, at the server's time; a later word from a
        // coordinator changes only the reason.
        if (!field_as<std::int64_t>(certificate, cert, "revoked_at")) values.emplace_back("revoked_at", Value{now_ms});
        if (field_as<std::string>(certificate, cert, "revocation_reason") != reason)
            values.emplace_back("revocation_reason", Value{reason});
        if (!values.empty()) out.set("certificate", *id, values);
        if (!status_list::bit(bits, *index)) {
            status_list::set_bit(bits, *index);
            flipped = true;
        }
    }
    return flipped;
}

}  // namespace

std::size_t certify(StorageTxn& txn, RowSource& rows, std::span<const StagedRow> staged, const Issuer& issuer,
                    std::int64_t now_ms, ServerWrites& out) {
    const EntityDef& revocation = entity("revocation");
    const EntityDef& list = entity("status_list");
    const auto pairs = touched(rows, staged);
    std::vector<const StagedRow*> revoked;
    for (const auto& s : staged)
        if (s.entity == &revocation && is_live(revocation, s.state)) revoked.push_back(&s);
    if (pairs.empty() && revoked.empty() && !stale(list_state(out), now_ms)) return 0;
    // Everything read to decide, or written over, is locked first, in one
    // call in key order (PostgreSQL, READ COMMITTED): the memberships, so
    // two pushes that each bring half of one person's rule cannot both
    // read the other's half as missing; the certificates revoked, which
    // are written in place; and the status list, so no two servers each
    // take the same bit or save a list without the other's.
    std::vector<std::pair<std::uint16_t, Id>> locks{{list.tag, model::status_list_id()}};
    for (const auto& [person, group] : pairs)
        locks.emplace_back(entity("membership").tag, Id::derive("membership", {group, person}));
    for (const StagedRow* r : revoked)
        if (const auto id = field_as<Id>(revocation, r->state, "certificate_id"))
            locks.emplace_back(entity("certificate").tag, *id);
    std::sort(locks.begin(), locks.end());
    txn.lock_rows(locks);

    const std::size_t issued = issue(rows, pairs, issuer, now_ms, out);
    std::string bits = status_bits(list, list_state(out));
    // Signed anew when a bit was set, and at least daily: the age a tablet
    // reports is then that of its last sync, not of the last revocation.
    if (revoke(rows, revoked, bits, now_ms, out) || stale(list_state(out), now_ms))
        sign_list(issuer, bits, now_ms, out);
    return issued;
}

void publish_issuer(StorageTxn& txn, RowSource& rows, const Issuer& issuer, std::int64_t now_ms, ServerWrites& out) {
    const EntityDef& key = entity("issuer_key");
    const EntityDef& list = entity("status_list");
    const std::pair<std::uint16_t, Id> lock[] = {{list.tag, model::status_list_id()}};
    txn.lock_rows(lock);
    for (const auto& k : issuer.keys()) {
        const Id id = model::issuer_key_id(k.kid);
        if (!rows.load(key, id).exists)
            out.set("issuer_key", id,
                    {{"kid", Value{k.kid}}, {"public_jwk", Value{k.jwk}}, {"added_at", Value{now_ms}}});
    }
    if (!rows.load(list, model::status_list_id()).exists)
        out.set("status_list", model::status_list_id(), {{"allocated", Value{std::int64_t{0}}}});
    // Signed from the start, so that a tablet knows how old its list is
    // before anything was revoked.
    if (stale(list_state(out), now_ms)) sign_list(issuer, status_bits(list, list_state(out)), now_ms, out);
}

}  // namespace lindra::server
