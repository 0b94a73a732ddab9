// Verifying a course certificate on the tablet, with no network: the
// signed credential against the issuer keys the server sent as catalog
// rows (server/certificates.hpp makes both).
#include "core/jws.hpp"
#include "core/status_list.hpp"
#include "model/completion.hpp"
#include "replica/core.hpp"

#include <nlohmann/json.hpp>

namespace lindra {

using detail::Core;

namespace {

using model::field_as;
using model::urn;

using Json = nlohmann::json;

const EntityDef& entity(std::string_view name) {
    return *find_entity(name);
}

std::string text_at(const Json& j, const Json::json_pointer& at) {
    return j.contains(at) && j.at(at).is_string() ? j.at(at).get<std::string>() : std::string();
}

CertificateCheck& bad(CertificateCheck& c, std::string why) {
    c.status = CertificateStatus::bad_signature;
    c.reason = std::move(why);
    return c;
}

// A compact JWS checked against the issuer keys the device holds.
struct Signed {
    CertificateStatus status = CertificateStatus::bad_signature;
    std::string reason, kid;
    Json payload;  // an object when the status is valid
};

Signed check_signed(store::Database& db, std::string_view compact) {
    Signed out;
    const auto jws = jws::split_compact(compact);
    if (!jws) {
        out.reason = "the credential is not a compact JWS";
        return out;
    }
    const Json header = Json::parse(jws->header, nullptr, false);
    if (!header.is_object() || header.value("alg", "") != "EdDSA" || !header.contains("kid") ||
        !header["kid"].is_string()) {
        out.reason = "the credential's header is not EdDSA with a kid";
        return out;
    }
    const std::string kid = header["kid"].get<std::string>();
    const EntityDef& keys = entity("issuer_key");
    const auto key = model::row_store(keys).load(db, model::issuer_key_id(kid));
    const Json jwk = Json::parse(field_as<std::string>(keys, key, "public_jwk").value_or(""), nullptr, false);
    if (!model::is_live(keys, key) || !jwk.is_object() || field_as<std::string>(keys, key, "kid") != kid) {
        out.status = CertificateStatus::unknown_key;
        out.reason = "signed with key " + kid + ", which this device has not received; sync, then check again";
        return out;
    }
    const auto public_key = jws::base64url_decode(jwk.value("x", ""));
    if (!public_key || !jws::ed25519_verify(*public_key, jws->signing_input, jws->signature)) {
        out.reason = "the signature does not match the credential: it was changed after the server signed it";
        return out;
    }
    out.payload = Json::parse(jws->payload, nullptr, false);
    if (!out.payload.is_object()) {
        out.reason = "the signed payload is not a JSON object";
        return out;
    }
    out.status = CertificateStatus::valid;
    out.kid = kid;
    return out;
}

std::int64_t signed_integer(const Json& j, std::string_view name) {
    return j.contains(name) && j[std::string(name)].is_number_integer() ? j[std::string(name)].get<std::int64_t>() : 0;
}

struct RevocationList {
    std::string bits;
    std::int64_t signed_at_ms = 0;
    std::string credential;
};

// The revocation list the device holds, if its signature holds: its bits
// and when the server signed it. Without one, `problem` says why when the
// device holds a list it cannot trust (changed on the device).
std::optional<RevocationList> revocation_list(store::Database& db, std::string& problem) {
    const EntityDef& list = entity("status_list");
    const auto row = model::row_store(list).load(db, model::status_list_id());
    const auto credential = field_as<std::string>(list, row, "credential");
    if (!model::is_live(list, row) || !credential) return std::nullopt;
    const Signed s = check_signed(db, *credential);
    std::optional<std::string> bits;
    if (s.status == CertificateStatus::valid &&
        text_at(s.payload, "/credentialSubject/type"_json_pointer) == "BitstringStatusList" &&
        text_at(s.payload, "/credentialSubject/statusPurpose"_json_pointer) == "revocation")
        bits = status_list::decode(text_at(s.payload, "/credentialSubject/encodedList"_json_pointer),
                                   status_list::bytes_for(list.field("allocated")->max));
    if (!bits) {
        problem = "but the revocation list on this device does not verify (" +
                  (s.status == CertificateStatus::valid ? std::string("not a revocation list") : s.reason) +
                  "), so a revocation would not show: sync to get the server's";
        return std::nullopt;
    }
    return RevocationList{std::move(*bits), signed_integer(s.payload, "nbf") * 1000, *credential};
}

}  // namespace

std::string_view to_string(CertificateStatus v) {
    switch (v) {
        case CertificateStatus::valid:
            return "valid";
        case CertificateStatus::revoked:
            return "revoked";
        case CertificateStatus::bad_signature:
            return "bad signature";
        case CertificateStatus::unknown_key:
            return "unknown key";
        case CertificateStatus::not_yet_valid:
            return "not yet valid";
    }
    return "?";
}

std::string Replica::issuer_jwks() const {
    std::lock_guard lock(core_->mutex);
    Json keys = Json::array();
    auto s = core_->db.cached("SELECT kid, public_jwk FROM issuer_key WHERE deleted = 0 ORDER BY added_at, kid");
    while (s->step()) {
        Json jwk = Json::parse(s->text(1), nullptr, false);
        if (!jwk.is_object()) continue;
        jwk["kid"] = s->text(0);
        jwk["alg"] = "EdDSA";
        jwk["use"] = "sig";
        keys.push_back(std::move(jwk));
    }
    return Json{{"keys", keys}}.dump();
}

std::vector<Id> Replica::certificates_of(const Id& person) const {
    std::lock_guard lock(core_->mutex);
    auto s = core_->db.cached("SELECT id FROM certificate WHERE person_id = ? AND deleted = 0 ORDER BY issued_at, id");
    s->bind(1, person);
    std::vector<Id> out;
    while (s->step()) out.push_back(s->id(0));
    return out;
}

namespace {

// The checks of a credential: its signature by a key of the server's this
// device holds; when it comes with the certificate row `held` (id `id`),
// that it is that row's; its validFrom; and whether it is revoked, by the
// signed list or by the row this device holds for it.
CertificateCheck check_credential(store::Database& db, std::int64_t now_ms, std::string credential, const Id* id) {
    const EntityDef& certificates = entity("certificate");
    CertificateCheck out;
    std::string list_problem;
    const auto list = revocation_list(db, list_problem);
    if (list) {
        out.revocation_list_age_ms = now_ms - list->signed_at_ms;
        out.revocation_list = list->credential;
    }
    out.credential = std::move(credential);
    const Signed s = check_signed(db, out.credential);
    if (s.status != CertificateStatus::valid) {
        out.status = s.status;
        out.reason = s.reason;
        return out;
    }
    out.kid = s.kid;

    // The signature holds: the credential is the server's. Given with a
    // row, it must be that row's, whose fields a tablet could have changed.
    const Json& vc = s.payload;
    const auto named = Id::parse(std::string_view(vc.value("jti", "")).substr(std::string_view("urn:uuid:").size()));
    if (!named || vc.value("jti", "") != urn(*named)) return bad(out, "the credential names no certificate (jti)");
    const auto row = model::row_store(certificates).load(db, *named);
    if (id) {
        const auto person = field_as<Id>(certificates, row, "person_id");
        const auto course = field_as<Id>(certificates, row, "course_id");
        const auto group = field_as<Id>(certificates, row, "group_id");
        if (*named != *id || !person || !course || !group ||
            Id::derive("certificate", {*person, *course, *group}) != *id ||
            text_at(vc, "/credentialSubject/id"_json_pointer) != urn(*person) ||
            text_at(vc, "/credentialSubject/achievement/id"_json_pointer) != urn(*course))
            return bad(out, "the certificate row does not match its signed credential: it was changed on a device");
    }

    out.valid_from_ms = signed_integer(vc, "nbf") * 1000;
    out.serial = model::certificate_serial(*named);
    out.course_title = text_at(vc, "/credentialSubject/achievement/name"_json_pointer);
    out.issuer = text_at(vc, "/issuer/name"_json_pointer);
    for (const auto& identity : vc.contains("/credentialSubject/identifier"_json_pointer)
                                    ? vc.at("/credentialSubject/identifier"_json_pointer)
                                    : Json::array())
        if (identity.is_object() && identity.value("identityType", "") == "name")
            out.person_name = identity.value("identityHash", "");
    if (out.valid_from_ms > now_ms) {
        out.status = CertificateStatus::not_yet_valid;
        out.reason = "valid from a time this device's clock has not reached; check the date and time";
        return out;
    }
    // Its bit, where the signed credential puts it (the row's status_index
    // could have been changed on a device); the row's revoked_at is the
    // server's word too, should the list be older than the row.
    const std::string index = text_at(vc, "/credentialStatus/statusListIndex"_json_pointer);
    const bool listed = list && !index.empty() && index.find_first_not_of("0123456789") == std::string::npos &&
                        index.size() < 10 && status_list::bit(list->bits, std::stoll(index));
    if (listed || field_as<std::int64_t>(certificates, row, "revoked_at")) {
        out.status = CertificateStatus::revoked;
        out.reason =
            "revoked: " + field_as<std::string>(certificates, row, "revocation_reason").value_or("no reason given");
        return out;
    }
    out.status = CertificateStatus::valid;
    out.reason = "signed by the server's key " + out.kid + (list_problem.empty() ? "" : "; " + list_problem);
    return out;
}

}  // namespace

CertificateCheck Replica::verify_certificate(const Id& id) const {
    std::lock_guard lock(core_->mutex);
    const EntityDef& certificates = entity("certificate");
    const auto row = model::row_store(certificates).load(core_->db, id);
    if (!model::is_live(certificates, row))
        throw Error(Errc::not_found, "this device holds no certificate " + id.to_string());
    const auto credential = field_as<std::string>(certificates, row, "credential");
    if (!credential) {
        CertificateCheck out;
        return bad(out, "the certificate carries no signed credential");
    }
    return check_credential(core_->db, core_->clock.now_ms(), *credential, &id);
}

CertificateCheck Replica::verify_credential(std::string_view credential) const {
    std::lock_guard lock(core_->mutex);
    std::string text(credential);
    // A file or a pasted line: surrounding white space is not the JWS's.
    const auto first = text.find_first_not_of(" \t\r\n");
    text =
        first == std::string::npos ? std::string() : text.substr(first, text.find_last_not_of(" \t\r\n") - first + 1);
    return check_credential(core_->db, core_->clock.now_ms(), std::move(text), nullptr);
}

}  // namespace lindra
