// Keys: from PEM and from JWK, and the one algorithm each key type verifies.
#include "server/token.hpp"

#include "core/jws.hpp"

#include <lindra/error.hpp>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include <algorithm>
#include <stdexcept>

namespace lindra::server {
namespace {

const unsigned char* bytes(std::string_view s) {
    return reinterpret_cast<const unsigned char*>(s.data());
}
unsigned char* bytes(std::string& s) {
    return reinterpret_cast<unsigned char*>(s.data());
}

struct BioFree {
    void operator()(BIO* b) const noexcept { BIO_free(b); }
};
using Bio = std::unique_ptr<BIO, BioFree>;
struct MdCtxFree {
    void operator()(EVP_MD_CTX* c) const noexcept { EVP_MD_CTX_free(c); }
};
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;
struct EcdsaSigFree {
    void operator()(ECDSA_SIG* s) const noexcept { ECDSA_SIG_free(s); }
};
using EcdsaSig = std::unique_ptr<ECDSA_SIG, EcdsaSigFree>;
struct BnFree {
    void operator()(BIGNUM* b) const noexcept { BN_free(b); }
};
using Bn = std::unique_ptr<BIGNUM, BnFree>;

Bio memory_bio(std::string_view pem) {
    if (pem.size() > 1 << 20) return nullptr;  // no key is a megabyte
    return Bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

std::string bio_text(BIO* b) {
    char* data = nullptr;
    const long size = BIO_get_mem_data(b, &data);
    return {data, static_cast<std::size_t>(size)};
}

// Never asks for a passphrase (OpenSSL would prompt on the terminal): an
// encrypted key is refused.
int no_passphrase(char*, int, int, void*) {
    return -1;
}

const EVP_MD* digest_for(std::string_view alg) {
    return alg == "EdDSA" ? nullptr : EVP_sha256();
}

// JWS carries an ECDSA signature as R || S, 32 bytes each (RFC 7518
// §3.4); OpenSSL wants the DER SEQUENCE. Empty if `raw` is not 64 bytes.
std::string es256_der(std::string_view raw) {
    if (raw.size() != 64) return {};
    EcdsaSig sig(ECDSA_SIG_new());
    BIGNUM* r = BN_bin2bn(bytes(raw), 32, nullptr);
    BIGNUM* s = BN_bin2bn(bytes(raw) + 32, 32, nullptr);
    if (!sig || !r || !s || ECDSA_SIG_set0(sig.get(), r, s) != 1) {  // set0 owns r and s only on success
        BN_free(r);
        BN_free(s);
        return {};
    }
    unsigned char* der = nullptr;
    const int len = i2d_ECDSA_SIG(sig.get(), &der);
    if (len <= 0) return {};
    std::string out(reinterpret_cast<char*>(der), static_cast<std::size_t>(len));
    OPENSSL_free(der);
    return out;
}

std::string es256_raw(std::string_view der) {
    const unsigned char* p = bytes(der);
    const EcdsaSig sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size())));
    if (!sig) return {};
    const BIGNUM* r = nullptr;
    const BIGNUM* s = nullptr;
    ECDSA_SIG_get0(sig.get(), &r, &s);
    std::string out(64, '\0');
    if (BN_bn2binpad(r, bytes(out), 32) != 32 || BN_bn2binpad(s, bytes(out) + 32, 32) != 32) return {};
    return out;
}

// ---- JWK ----

// The member `name` of a JWK, base64url-decoded; throws if absent or not
// canonical base64url.
std::string jwk_bytes(const Json& jwk, const char* name) {
    const auto* text = text_member(jwk, name);
    auto raw = text ? jws::base64url_decode(*text) : std::nullopt;
    if (!raw || raw->empty()) throw JsonRefused(std::string("its \"") + name + "\" is missing or not base64url");
    return std::move(*raw);
}

// OpenSSL 3 builds a key from named parameters.
Pkey key_from_params(const char* type, OSSL_PARAM_BLD* build) {
    OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(build);
    EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr);
    EVP_PKEY* key = nullptr;
    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) != 1)
        key = nullptr;
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    ERR_clear_error();
    return Pkey(key);
}

Pkey rsa_jwk(const Json& jwk) {
    const std::string n = jwk_bytes(jwk, "n"), e = jwk_bytes(jwk, "e");
    if (n.size() > 2048 || e.size() > 8) throw JsonRefused("its RSA modulus or exponent is too large");
    const Bn bn_n(BN_bin2bn(bytes(n), static_cast<int>(n.size()), nullptr));
    const Bn bn_e(BN_bin2bn(bytes(e), static_cast<int>(e.size()), nullptr));
    OSSL_PARAM_BLD* build = OSSL_PARAM_BLD_new();
    Pkey key;
    if (build && bn_n && bn_e && OSSL_PARAM_BLD_push_BN(build, OSSL_PKEY_PARAM_RSA_N, bn_n.get()) == 1 &&
        OSSL_PARAM_BLD_push_BN(build, OSSL_PKEY_PARAM_RSA_E, bn_e.get()) == 1)
        key = key_from_params("RSA", build);
    OSSL_PARAM_BLD_free(build);
    if (!key) throw JsonRefused("it is not a usable RSA key");
    return key;
}

Pkey ec_jwk(const Json& jwk) {
    const auto* crv = text_member(jwk, "crv");
    if (!crv || *crv != "P-256") throw JsonRefused("its curve is not P-256");
    const std::string x = jwk_bytes(jwk, "x"), y = jwk_bytes(jwk, "y");
    if (x.size() != 32 || y.size() != 32) throw JsonRefused("its x or y is not 32 bytes");
    std::string point = "\x04" + x + y;  // an uncompressed point (SEC 1 §2.3.3)
    OSSL_PARAM_BLD* build = OSSL_PARAM_BLD_new();
    Pkey key;
    if (build && OSSL_PARAM_BLD_push_utf8_string(build, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) == 1 &&
        OSSL_PARAM_BLD_push_octet_string(build, OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()) == 1)
        key = key_from_params("EC", build);
    OSSL_PARAM_BLD_free(build);
    if (!key) throw JsonRefused("its point is not on the P-256 curve");
    return key;
}

Pkey okp_jwk(const Json& jwk) {
    const auto* crv = text_member(jwk, "crv");
    if (!crv || *crv != "Ed25519") throw JsonRefused("its curve is not Ed25519");
    const std::string x = jwk_bytes(jwk, "x");
    Pkey key(x.size() == 32 ? EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, bytes(x), x.size()) : nullptr);
    ERR_clear_error();
    if (!key) throw JsonRefused("its x is not an Ed25519 public key");
    return key;
}

// The big-endian bytes of a key's BIGNUM parameter, for a JWK.
std::string bn_param(EVP_PKEY* key, const char* name, int pad = 0) {
    BIGNUM* bn = nullptr;
    if (EVP_PKEY_get_bn_param(key, name, &bn) != 1) throw std::runtime_error("OpenSSL could not read a key");
    const Bn owned(bn);
    std::string out(static_cast<std::size_t>(std::max(pad, BN_num_bytes(bn))), '\0');
    BN_bn2binpad(bn, bytes(out), static_cast<int>(out.size()));
    return out;
}

}  // namespace

void PkeyFree::operator()(evp_pkey_st* key) const noexcept {
    EVP_PKEY_free(key);
}

std::string_view alg_of(const Pkey& key) {
    if (EVP_PKEY_is_a(key.get(), "ED25519")) return "EdDSA";
    if (EVP_PKEY_is_a(key.get(), "EC")) {
        char group[64] = {};
        std::size_t len = 0;
        if (EVP_PKEY_get_group_name(key.get(), group, sizeof group, &len) != 1) return "";
        const std::string_view name(group, len);
        return name == "prime256v1" || name == "P-256" ? "ES256" : "";
    }
    if (EVP_PKEY_is_a(key.get(), "RSA") && EVP_PKEY_get_bits(key.get()) >= 2048) return "RS256";
    return "";
}

std::string kind_of(const Pkey& key) {
    const char* name = EVP_PKEY_get0_type_name(key.get());
    return name ? name : "unknown";
}

Pkey read_pem_key(std::string_view pem, std::string_view what, bool want_private) {
    Pkey key;
    if (!want_private)
        if (const Bio in = memory_bio(pem)) key.reset(PEM_read_bio_PUBKEY(in.get(), nullptr, no_passphrase, nullptr));
    if (!key)
        if (const Bio in = memory_bio(pem))
            key.reset(PEM_read_bio_PrivateKey(in.get(), nullptr, no_passphrase, nullptr));
    ERR_clear_error();  // a failed attempt leaves errors on the thread's queue
    if (!key)
        throw Error(Errc::invalid_argument,
                    std::string(what) + (want_private ? " is not a PEM private key (unencrypted)"
                                                      : " is not a PEM public or private key"));
    return key;
}

Pkey jwk_public_key(const Json& jwk) {
    if (!jwk.is_object()) throw JsonRefused("it is not a JSON object");
    const auto* kty = text_member(jwk, "kty");
    if (!kty) throw JsonRefused("it has no \"kty\"");
    if (*kty == "RSA") return rsa_jwk(jwk);
    if (*kty == "EC") return ec_jwk(jwk);
    if (*kty == "OKP") return okp_jwk(jwk);
    throw JsonRefused("its key type is not RSA, EC or OKP");
}

void check_algorithms(const std::vector<std::string>& algorithms, std::string_view what) {
    for (const auto& a : algorithms)
        if (a != "EdDSA" && a != "ES256" && a != "RS256")
            throw Error(Errc::invalid_argument, std::string(what) + ": \"" + a +
                                                    "\" is not an algorithm lindra verifies (EdDSA, ES256 or RS256)");
}

VerifyKey::VerifyKey(std::string_view pem, const std::vector<std::string>& algorithms, std::string_view what)
    : VerifyKey(read_pem_key(pem, what), algorithms, what) {}

VerifyKey::VerifyKey(Pkey key, const std::vector<std::string>& algorithms, std::string_view what)
    : key_(std::move(key)), alg_(alg_of(key_)) {
    const std::string name(what);
    if (alg_.empty())
        throw Error(Errc::invalid_argument,
                    name + " is " + kind_of(key_) + ", not Ed25519, EC P-256 or RSA of 2048 bits or more");
    check_algorithms(algorithms, what);
    if (std::find(algorithms.begin(), algorithms.end(), alg_) == algorithms.end())
        throw Error(Errc::invalid_argument, name + " is " + kind_of(key_) + ", which verifies " + alg_ + ", and " +
                                                alg_ + " is not among its allowed algorithms");
}

bool VerifyKey::verify(std::string_view signing_input, std::string_view signature) const {
    std::string der;
    if (alg_ == "ES256") {
        der = es256_der(signature);
        if (der.empty()) return false;
        signature = der;
    }
    const MdCtx ctx(EVP_MD_CTX_new());
    const bool ok = ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, digest_for(alg_), nullptr, key_.get()) == 1 &&
                    EVP_DigestVerify(ctx.get(), bytes(signature), signature.size(), bytes(signing_input),
                                     signing_input.size()) == 1;
    ERR_clear_error();
    return ok;
}

std::string sign_bytes(const Pkey& key, std::string_view alg, std::string_view input) {
    const MdCtx ctx(EVP_MD_CTX_new());
    std::size_t len = 0;
    std::string signature;
    bool ok = ctx && EVP_DigestSignInit(ctx.get(), nullptr, digest_for(alg), nullptr, key.get()) == 1 &&
              EVP_DigestSign(ctx.get(), nullptr, &len, bytes(input), input.size()) == 1;
    if (ok) {
        signature.resize(len);
        ok = EVP_DigestSign(ctx.get(), bytes(signature), &len, bytes(input), input.size()) == 1;
        signature.resize(len);
    }
    if (ok && alg == "ES256") {
        signature = es256_raw(signature);
        ok = !signature.empty();
    }
    ERR_clear_error();
    if (!ok) throw std::runtime_error("OpenSSL could not sign a token");
    return signature;
}

std::string generate_private_key_pem(std::string_view alg) {
    Pkey key;
    if (alg == "EdDSA")
        key.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
    else if (alg == "ES256")
        key.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", const_cast<char*>("P-256")));
    else if (alg == "RS256")
        key.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", std::size_t{2048}));
    else
        throw Error(Errc::invalid_argument, "no key type for algorithm " + std::string(alg));
    const Bio out(BIO_new(BIO_s_mem()));
    if (!key || !out || PEM_write_bio_PrivateKey(out.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
        ERR_clear_error();
        throw std::runtime_error("OpenSSL could not generate a key");
    }
    return bio_text(out.get());
}

std::string public_key_pem(std::string_view pem) {
    const Pkey key = read_pem_key(pem, "the key");
    const Bio out(BIO_new(BIO_s_mem()));
    if (!out || PEM_write_bio_PUBKEY(out.get(), key.get()) != 1) {
        ERR_clear_error();
        throw std::runtime_error("OpenSSL could not write a public key");
    }
    return bio_text(out.get());
}

Json public_jwk(std::string_view pem, std::string_view kid) {
    const Pkey key = read_pem_key(pem, "the key");
    const std::string alg(alg_of(key));
    Json jwk = {{"kid", kid}, {"alg", alg}, {"use", "sig"}};
    if (alg == "RS256") {
        jwk["kty"] = "RSA";
        jwk["n"] = jws::base64url_encode(bn_param(key.get(), OSSL_PKEY_PARAM_RSA_N));
        jwk["e"] = jws::base64url_encode(bn_param(key.get(), OSSL_PKEY_PARAM_RSA_E));
    } else if (alg == "ES256") {
        jwk["kty"] = "EC";
        jwk["crv"] = "P-256";
        jwk["x"] = jws::base64url_encode(bn_param(key.get(), OSSL_PKEY_PARAM_EC_PUB_X, 32));
        jwk["y"] = jws::base64url_encode(bn_param(key.get(), OSSL_PKEY_PARAM_EC_PUB_Y, 32));
    } else if (alg == "EdDSA") {
        std::string raw(32, '\0');
        std::size_t len = raw.size();
        EVP_PKEY_get_raw_public_key(key.get(), bytes(raw), &len);
        jwk.update(Json::parse(jws::ed25519_jwk(raw)));  // the certificates' JWK
    } else {
        throw Error(Errc::invalid_argument, "the key is " + kind_of(key) + ", which lindra has no JWK for");
    }
    return jwk;
}

}  // namespace lindra::server
