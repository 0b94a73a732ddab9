#include "net/tls.hpp"

#include <lindra/error.hpp>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>

namespace lindra::net {
namespace {

using CtxPtr = std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)>;
using BioPtr = std::unique_ptr<BIO, decltype(&BIO_free)>;
using X509Ptr = std::unique_ptr<X509, decltype(&X509_free)>;
using KeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;

// OpenSSL's reason for the oldest error queued on this thread; clears the queue.
std::string openssl_reason() {
    const unsigned long e = ERR_get_error();
    ERR_clear_error();
    const char* reason = e ? ERR_reason_error_string(e) : nullptr;
    return reason ? reason : "unknown OpenSSL error";
}

[[noreturn]] void fail(const std::string& what) {
    throw Error(Errc::invalid_argument, what);
}

BioPtr read_bio(std::string_view pem) {
    BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
    if (!bio) fail("out of memory reading PEM");
    return bio;
}

// Whether the PEM reader stopped because the input ended, not at something unreadable.
bool pem_ended() {
    const unsigned long e = ERR_peek_last_error();
    const bool ended = ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE;
    ERR_clear_error();
    return ended;
}

// Never prompts on a terminal for an encrypted key's password.
int no_password(char*, int, int, void*) {
    return 0;
}

CtxPtr make_context(const SSL_METHOD* method) {
    CtxPtr ctx(SSL_CTX_new(method), &SSL_CTX_free);
    if (!ctx) fail("cannot create a TLS context: " + openssl_reason());
    // At least TLS 1.2 and security level 2, even if the system's
    // configuration allows less; more if it asks for more.
    const long min = SSL_CTX_get_min_proto_version(ctx.get());
    if (min == 0 || min < TLS1_2_VERSION) SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
    if (SSL_CTX_get_security_level(ctx.get()) < 2) SSL_CTX_set_security_level(ctx.get(), 2);
    SSL_CTX_set_options(ctx.get(), SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    return ctx;
}

SpkiDigest spki_digest(EVP_PKEY* key) {
    SpkiDigest out{};
    unsigned char* der = nullptr;
    const int n = i2d_PUBKEY(key, &der);
    if (n <= 0) return out;
    unsigned int size = 0;
    EVP_Digest(der, static_cast<std::size_t>(n), out.data(), &size, EVP_sha256(), nullptr);
    OPENSSL_free(der);
    return out;
}

}  // namespace

struct TlsContext::Presented {
    std::mutex mutex;
    std::shared_ptr<const TlsContext> fresh;  // guarded by mutex; null: the context's own

    // SSL_CTX_set_cert_cb: before a handshake's certificate is sent.
    static int choose(SSL* ssl, void* arg) {
        auto* self = static_cast<Presented*>(arg);
        std::shared_ptr<const TlsContext> fresh;
        {
            std::lock_guard lock(self->mutex);
            fresh = self->fresh;
        }
        if (!fresh) return 1;
        SSL_CTX* c = fresh->ctx_;
        STACK_OF(X509)* chain = nullptr;
        SSL_CTX_get0_chain_certs(c, &chain);
        return SSL_use_cert_and_key(ssl, SSL_CTX_get0_certificate(c), SSL_CTX_get0_privatekey(c), chain, 1) == 1 ? 1
                                                                                                               : 0;
    }
};

void TlsContext::present(std::shared_ptr<const TlsContext> fresh) const {
    if (!presented_) fail("only a server's TLS context presents a certificate");
    std::lock_guard lock(presented_->mutex);
    presented_->fresh = std::move(fresh);
}

TlsContext::~TlsContext() {
    SSL_CTX_free(ctx_);
}

ssl_ctx_st* TlsContext::new_reference() const {
    SSL_CTX_up_ref(ctx_);
    return ctx_;
}

std::shared_ptr<const TlsContext> TlsContext::server(std::string_view chain_pem, std::string_view key_pem) {
    if (chain_pem.empty() || key_pem.empty()) fail("TLS needs the server's certificate chain and private key (PEM)");
    auto ctx = make_context(TLS_server_method());
    // A tablet connects afresh for each round and resumes its last session
    // (TlsSessions): one stateless ticket per handshake, under the context's
    // own random key, so nothing is cached here and a restart, or another
    // server process, just means a full handshake.
    SSL_CTX_set_num_tickets(ctx.get(), 1);
    SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
    SSL_CTX_set_timeout(ctx.get(), kTicketLifetimeSeconds);

    auto chain = read_bio(chain_pem);
    X509Ptr leaf(PEM_read_bio_X509(chain.get(), nullptr, no_password, nullptr), &X509_free);
    if (!leaf) fail("the TLS certificate chain holds no readable PEM certificate");
    if (SSL_CTX_use_certificate(ctx.get(), leaf.get()) != 1)
        fail("the TLS certificate cannot be used: " + openssl_reason());
    while (X509* next = PEM_read_bio_X509(chain.get(), nullptr, no_password, nullptr)) {
        if (SSL_CTX_add0_chain_cert(ctx.get(), next) != 1) {
            X509_free(next);
            fail("a certificate of the TLS chain cannot be used: " + openssl_reason());
        }
    }
    if (!pem_ended()) fail("the TLS certificate chain holds something that is not a PEM certificate");

    auto key_bio = read_bio(key_pem);
    KeyPtr key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, no_password, nullptr), &EVP_PKEY_free);
    if (!key) {
        ERR_clear_error();
        fail("the TLS private key is not a readable PEM private key (encrypted keys are not supported)");
    }
    if (SSL_CTX_use_PrivateKey(ctx.get(), key.get()) != 1 || SSL_CTX_check_private_key(ctx.get()) != 1) {
        ERR_clear_error();
        fail("the TLS private key does not match the certificate");
    }
    std::shared_ptr<TlsContext> out(new TlsContext(ctx.release()));
    out->presented_ = std::make_shared<Presented>();
    // Lives as long as `out`, which whoever serves with the SSL_CTX holds.
    SSL_CTX_set_cert_cb(out->ctx_, &Presented::choose, out->presented_.get());
    return out;
}

std::shared_ptr<const TlsContext> TlsContext::client(std::string_view ca_pem,
                                                     const std::vector<std::string>& extra_ca_pems) {
    auto ctx = make_context(TLS_client_method());
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
    X509_STORE* store = SSL_CTX_get_cert_store(ctx.get());
    const auto add = [&](std::string_view pem, const std::string& what) {
        auto bio = read_bio(pem);
        int added = 0;
        while (X509* ca = PEM_read_bio_X509(bio.get(), nullptr, no_password, nullptr)) {
            const int ok = X509_STORE_add_cert(store, ca);
            X509_free(ca);
            // The same CA twice (in ca_pem and an extra list) is no error.
            if (ok != 1 && ERR_GET_REASON(ERR_peek_last_error()) != X509_R_CERT_ALREADY_IN_HASH_TABLE)
                fail("a CA certificate cannot be used: " + openssl_reason());
            ERR_clear_error();
            ++added;
        }
        if (!pem_ended() || added == 0) fail("the TLS CA list (" + what + ") holds something that is not a PEM certificate");
    };
    if (ca_pem.empty()) {
        if (SSL_CTX_set_default_verify_paths(ctx.get()) != 1)
            fail("cannot load the system's trusted CAs: " + openssl_reason());
    } else {
        add(ca_pem, "ca_pem");
    }
    for (std::size_t i = 0; i < extra_ca_pems.size(); ++i)
        add(extra_ca_pems[i], "extra CA list " + std::to_string(i + 1));
    return std::shared_ptr<const TlsContext>(new TlsContext(ctx.release()));
}

TlsSessions::~TlsSessions() {
    SSL_SESSION_free(session_);
}

void TlsSessions::offer(ssl_st* ssl, const std::string& peer) {
    std::lock_guard lock(mutex_);
    if (session_ && peer_ == peer && SSL_set_session(ssl, session_) != 1) ERR_clear_error();
}

void TlsSessions::keep(ssl_st* ssl, const std::string& peer) {
    SSL_SESSION* s = SSL_get1_session(ssl);
    if (s && SSL_SESSION_is_resumable(s) != 1) {
        SSL_SESSION_free(s);
        s = nullptr;
    }
    std::lock_guard lock(mutex_);
    SSL_SESSION_free(session_);
    session_ = s;
    peer_ = peer;
}

bool TlsSessions::resumed(ssl_st* ssl) {
    return SSL_session_reused(ssl) == 1;
}

std::vector<SpkiDigest> parse_pins(const std::vector<std::string>& pins) {
    constexpr std::string_view kPrefix = "sha256/";
    std::vector<SpkiDigest> out;
    for (const auto& pin : pins) {
        const auto bad = [&] {
            fail("pin \"" + pin + "\" is not \"sha256/\" followed by the base64 of a 32-byte SHA-256 digest");
        };
        if (!pin.starts_with(kPrefix) || pin.size() != kPrefix.size() + 44) bad();
        const std::string_view text = std::string_view(pin).substr(kPrefix.size());
        unsigned char decoded[33];  // EVP_DecodeBlock counts the padding as a byte
        if (EVP_DecodeBlock(decoded, reinterpret_cast<const unsigned char*>(text.data()), 44) != 33) bad();
        SpkiDigest d;
        std::copy_n(decoded, d.size(), d.begin());
        // Only the canonical spelling: it must encode back to itself.
        char again[45];
        EVP_EncodeBlock(reinterpret_cast<unsigned char*>(again), d.data(), static_cast<int>(d.size()));
        if (text != std::string_view(again, 44)) bad();
        out.push_back(d);
    }
    return out;
}

void expect_server(ssl_st* ssl, const std::string& server_name) {
    if (server_name.empty()) fail("TLS needs the server's name");
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (ASN1_OCTET_STRING* ip = a2i_IPADDRESS(server_name.c_str())) {
        ASN1_OCTET_STRING_free(ip);
        if (X509_VERIFY_PARAM_set1_ip_asc(param, server_name.c_str()) != 1)
            fail("cannot expect the IP address " + server_name + ": " + openssl_reason());
        return;  // SNI carries host names only (RFC 6066)
    }
    ERR_clear_error();
    if (SSL_set1_host(ssl, server_name.c_str()) != 1 || SSL_set_tlsext_host_name(ssl, server_name.c_str()) != 1)
        fail("cannot expect the host name " + server_name + ": " + openssl_reason());
}

bool matches_pin(ssl_st* ssl, const std::vector<SpkiDigest>& pins) {
    if (pins.empty()) return true;
    X509* leaf = SSL_get0_peer_certificate(ssl);
    EVP_PKEY* key = leaf ? X509_get0_pubkey(leaf) : nullptr;
    if (!key) return false;
    return std::find(pins.begin(), pins.end(), spki_digest(key)) != pins.end();
}

std::string handshake_failure(ssl_st* ssl, int openssl_error, std::string_view fallback) {
    if (ssl) {
        if (const long v = SSL_get_verify_result(ssl); v != X509_V_OK)
            return std::string("certificate verify failed: ") + X509_verify_cert_error_string(v);
    }
    if (openssl_error != 0) {
        // Asio keeps ERR_get_error()'s unsigned long in an int.
        const auto e = static_cast<unsigned long>(static_cast<unsigned int>(openssl_error));
        // A record that is not TLS where the peer's handshake should be.
        if (ERR_GET_LIB(e) == ERR_LIB_SSL) switch (ERR_GET_REASON(e)) {
                case SSL_R_WRONG_VERSION_NUMBER:
                case SSL_R_PACKET_LENGTH_TOO_LONG:
                case SSL_R_UNKNOWN_PROTOCOL:
                case SSL_R_RECORD_LENGTH_MISMATCH:
                    return ssl && !SSL_is_server(ssl)
                               ? "the server does not speak TLS (it runs with --insecure, for development only): "
                                 "connect with --insecure, or give the server a certificate"
                               : "the client does not speak TLS";
                case SSL_R_HTTP_REQUEST:
                    return "the client sent plain HTTP: use https:// or wss://";
                default: break;
            }
        if (const char* reason = ERR_reason_error_string(e)) return reason;
    }
    return std::string(fallback);
}

}  // namespace lindra::net
