#include <lindra/testing/certs.hpp>

#include <lindra/error.hpp>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <functional>
#include <memory>

namespace lindra::testing {
namespace {

template <class T, void (*Free)(T*)>
struct Deleter {
    void operator()(T* p) const { Free(p); }
};
using KeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using CertPtr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;

void check(bool ok, const std::string& what) {
    if (ok) return;
    ERR_clear_error();
    throw Error(Errc::invalid_argument, "test certificates: " + what);
}

BioPtr reader(std::string_view pem) {
    return BioPtr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

std::string pem_of(const std::function<int(BIO*)>& write) {
    BioPtr bio(BIO_new(BIO_s_mem()));
    check(bio && write(bio.get()) == 1, "cannot write PEM");
    char* data = nullptr;
    const long size = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(size));
}

KeyPtr new_key() {
    KeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
    check(key != nullptr, "cannot make an EC P-256 key");
    return key;
}

KeyPtr read_key(std::string_view pem) {
    KeyPtr key(PEM_read_bio_PrivateKey(reader(pem).get(), nullptr, nullptr, nullptr));
    check(key != nullptr, "not a PEM private key");
    return key;
}

CertPtr read_certificate(std::string_view pem) {
    CertPtr cert(PEM_read_bio_X509(reader(pem).get(), nullptr, nullptr, nullptr));
    check(cert != nullptr, "not a PEM certificate");
    return cert;
}

std::string key_pem(EVP_PKEY* key) {
    return pem_of([&](BIO* b) { return PEM_write_bio_PrivateKey(b, key, nullptr, nullptr, 0, nullptr, nullptr); });
}

std::string certificate_pem(X509* cert) {
    return pem_of([&](BIO* b) { return PEM_write_bio_X509(b, cert); });
}

// An unsigned X.509 v3 certificate for `key`, named `cn`, issued by
// `issuer` (itself when null), with a random serial.
CertPtr new_certificate(EVP_PKEY* key, std::string_view cn, X509* issuer, std::chrono::seconds not_before,
                        std::chrono::seconds not_after) {
    CertPtr cert(X509_new());
    unsigned char serial[16];
    check(cert && X509_set_version(cert.get(), X509_VERSION_3) == 1 && RAND_bytes(serial, sizeof serial) == 1,
          "cannot make a certificate");
    serial[0] &= 0x7F;  // positive
    BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
    check(bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get())), "cannot set a serial");
    BN_free(bn);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), static_cast<long>(not_before.count()));
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(not_after.count()));
    X509_NAME* name = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(cn.data()),
                               static_cast<int>(cn.size()), -1, 0);
    X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer) : name);
    check(X509_set_pubkey(cert.get(), key) == 1, "cannot set the public key");
    return cert;
}

void add_extension(X509* cert, X509* issuer, int nid, const std::string& value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
    check(ext != nullptr, "bad extension value \"" + value + "\"");
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
}

}  // namespace

Ca make_ca(std::string_view name) {
    const auto key = new_key();
    const auto cert = new_certificate(key.get(), name, nullptr, -std::chrono::hours(1), std::chrono::hours(24 * 7));
    add_extension(cert.get(), cert.get(), NID_basic_constraints, "critical,CA:TRUE");
    add_extension(cert.get(), cert.get(), NID_key_usage, "critical,keyCertSign,cRLSign");
    add_extension(cert.get(), cert.get(), NID_subject_key_identifier, "hash");
    check(X509_sign(cert.get(), key.get(), EVP_sha256()) > 0, "cannot sign the CA");
    return {std::string(name), certificate_pem(cert.get()), key_pem(key.get())};
}

Leaf issue_leaf(const Ca& ca, const LeafSpec& spec) {
    const auto ca_cert = read_certificate(ca.certificate_pem);
    const auto ca_key = read_key(ca.private_key_pem);
    const auto key = spec.key_pem.empty() ? new_key() : read_key(spec.key_pem);
    const std::string cn = spec.dns_names.empty() ? "lindra test server" : spec.dns_names.front();
    const auto cert = new_certificate(key.get(), cn, ca_cert.get(), spec.not_before, spec.not_after);
    std::string names;
    for (const auto& n : spec.dns_names) names += (names.empty() ? "DNS:" : ",DNS:") + n;
    for (const auto& ip : spec.ip_addresses) names += (names.empty() ? "IP:" : ",IP:") + ip;
    add_extension(cert.get(), ca_cert.get(), NID_basic_constraints, "critical,CA:FALSE");
    add_extension(cert.get(), ca_cert.get(), NID_key_usage, "critical,digitalSignature");
    add_extension(cert.get(), ca_cert.get(), NID_ext_key_usage, "serverAuth");
    add_extension(cert.get(), ca_cert.get(), NID_authority_key_identifier, "keyid:always");
    if (!names.empty()) add_extension(cert.get(), ca_cert.get(), NID_subject_alt_name, names);
    check(X509_sign(cert.get(), ca_key.get(), EVP_sha256()) > 0, "cannot sign the leaf");
    return {certificate_pem(cert.get()), key_pem(key.get())};
}

std::string spki_pin(std::string_view certificate_pem) {
    const auto cert = read_certificate(certificate_pem);
    unsigned char* der = nullptr;
    const int size = i2d_PUBKEY(X509_get0_pubkey(cert.get()), &der);
    check(size > 0, "cannot encode the public key");
    unsigned char digest[32];
    unsigned int digest_size = 0;
    const bool hashed = EVP_Digest(der, static_cast<std::size_t>(size), digest, &digest_size, EVP_sha256(), nullptr);
    OPENSSL_free(der);
    check(hashed && digest_size == sizeof digest, "cannot hash the public key");
    char base64[45];
    EVP_EncodeBlock(reinterpret_cast<unsigned char*>(base64), digest, sizeof digest);
    return "sha256/" + std::string(base64, 44);
}

}  // namespace lindra::testing
