// The certificate commands of lindra-tablet: a person's certificates
// verified with no network, a credential from elsewhere, the server's keys,
// and a coordinator's revocation.
#include "commands.hpp"

#include "lookup.hpp"
#include "text.hpp"

#include <fstream>
#include <iostream>
#include <optional>
#include <ostream>
#include <sstream>
#include <string>

namespace tablet {

using lindra::Errc;
using lindra::Error;
using lindra::Id;
using lindra::to_string;

namespace {

// One verified certificate: its status, and what it says if the
// signature held. True if valid.
bool print_check(Session& s, const lindra::CertificateCheck& c, const std::string& name) {
    s.out() << (c.serial.empty() ? name : c.serial) << "  " << to_string(c.status) << ": " << c.reason << '\n';
    if (c.status == lindra::CertificateStatus::bad_signature || c.status == lindra::CertificateStatus::unknown_key)
        return false;
    s.out() << "  " << c.course_title << ", " << c.person_name << ", issued by " << c.issuer << ", valid from "
            << local_datetime(c.valid_from_ms) << '\n'
            << "  revocation list: "
            << (c.revocation_list_age_ms ? "signed " + std::to_string(*c.revocation_list_age_ms / 3'600'000) + " h ago"
                                         : std::string("none this device can trust: a revocation would not show"))
            << '\n';
    return c.status == lindra::CertificateStatus::valid;
}

}  // namespace

// PERSON's certificates, each verified on this device with no network;
// --jws prints the signed credentials only, one a line, for a verifier
// that is not lindra (with issuer-keys).
void cmd_certificate(Session& s) {
    const auto& r = s.replica();
    const Id person = resolve(r, "person", s.operand(0));
    const auto ids = r.certificates_of(person);
    if (s.flag("--jws")) {
        for (const auto& id : ids) s.out() << r.verify_certificate(id).credential << '\n';
        return;
    }
    if (s.flag("--revocation-list")) {
        if (ids.empty()) throw Error(Errc::not_found, "no certificate for " + s.operand(0) + " on this device");
        const auto list = r.verify_certificate(ids.front()).revocation_list;
        if (list.empty()) throw Error(Errc::not_found, "no signed revocation list on this device yet; sync first");
        s.out() << list << '\n';
        return;
    }
    if (ids.empty()) {
        s.out() << "no certificate for " << s.operand(0) << " on this device\n";
        return;
    }
    bool all_valid = true;
    for (const auto& id : ids) all_valid = print_check(s, r.verify_certificate(id), id.to_string()) && all_valid;
    if (!all_valid) throw Error(Errc::invalid_argument, "a certificate did not verify as valid");
}

// A credential from elsewhere (a file, or - for stdin), verified against
// what this device holds, with no network.
void cmd_verify(Session& s) {
    const std::string& path = s.operand(0);
    std::ostringstream text;
    if (path == "-") {
        text << std::cin.rdbuf();
    } else {
        std::ifstream in(path, std::ios::binary);
        if (!in) throw Error(Errc::not_found, "cannot read " + path);
        text << in.rdbuf();
    }
    if (!print_check(s, s.replica().verify_credential(text.str()), path))
        throw Error(Errc::invalid_argument, "the credential did not verify as valid");
}

// A coordinator revokes PERSON's certificate (--serial picks one of
// several) with a reason; the next sync carries it to the server.
void cmd_revoke(Session& s) {
    auto& r = s.replica();
    const Id person = resolve(r, "person", s.operand(0));
    const auto reason = s.option("--reason");
    if (!reason) throw Error(Errc::invalid_argument, "--reason TEXT: say why the certificate is revoked");
    const auto serial = s.option("--serial");
    std::optional<Id> chosen;
    std::string serials;
    for (const auto& id : r.certificates_of(person)) {
        const std::string its = r.verify_certificate(id).serial;
        serials += (serials.empty() ? "" : ", ") + its;
        if (!serial || its == *serial) {
            if (chosen && !serial)
                throw Error(Errc::ambiguous, s.operand(0) + " holds several certificates; pick one with --serial");
            chosen = id;
        }
    }
    if (!chosen)
        throw Error(Errc::not_found, serial ? "no certificate " + *serial + " for " + s.operand(0) +
                                                  (serials.empty() ? "" : " (there is " + serials + ")")
                                            : "no certificate for " + s.operand(0) + " on this device; sync first");
    r.revoke_certificate(*chosen, *reason);
    s.out() << "certificate revoked; the next sync carries it to the server\n";
}

// The server's certificate keys this device holds, as a JWK Set.
void cmd_issuer_keys(Session& s) {
    s.out() << s.replica().issuer_jwks() << '\n';
}

}  // namespace tablet
