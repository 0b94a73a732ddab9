// Throw-away certificates for tests: a CA and the leaf certificates it
// issues, made at run time with EC P-256 keys, so nothing secret is ever
// checked in. Everything is PEM text, ready for ServerOptions::tls and
// SyncOptions::tls.
//
// Thread-safety: the functions share no state; call them from any thread.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

namespace lindra::testing {

struct Ca {
    std::string name{};             // its subject's common name
    std::string certificate_pem{};  // self-signed; what clients trust
    std::string private_key_pem{};
};

struct LeafSpec {
    std::vector<std::string> dns_names{};     // subjectAltName DNS entries
    std::vector<std::string> ip_addresses{};  // subjectAltName IP entries
    // Validity relative to now: negative offsets make a certificate that
    // has expired or (a positive not_before) is not valid yet.
    std::chrono::seconds not_before{-std::chrono::hours(1)};
    std::chrono::seconds not_after{std::chrono::hours(24 * 7)};
    std::string key_pem{};  // reuse this private key (PEM); empty: a new one
};

struct Leaf {
    std::string certificate_pem{};  // the leaf alone: the CA is the chain's root
    std::string private_key_pem{};
};

// A new self-signed CA named `name`, valid from an hour ago for a week.
// Throws lindra::Error(invalid_argument) if OpenSSL fails.
Ca make_ca(std::string_view name);

// A server certificate signed by `ca` for the names in `spec`. Throws
// lindra::Error(invalid_argument) for a bad IP address or key.
Leaf issue_leaf(const Ca& ca, const LeafSpec& spec);

// "sha256/BASE64": SHA-256 over the DER SubjectPublicKeyInfo of the
// certificate's key, the form SyncOptions::tls.pins takes.
std::string spki_pin(std::string_view certificate_pem);

}  // namespace lindra::testing
