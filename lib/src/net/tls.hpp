// TLS policy on OpenSSL, without Asio: contexts made from PEM text, what a
// client checks of the server beyond the chain (host name, key pins), and
// why a handshake failed in words. net/connection.hpp puts it on the wire;
// keeping this apart keeps OpenSSL setup out of the Asio translation units.
//
// Thread-safety: a TlsContext is immutable once made and may be shared by
// any number of connections on any threads. The free functions touch only
// the SSL object they are given.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

struct ssl_ctx_st;
struct ssl_st;
struct ssl_session_st;

namespace lindra::net {

// An OpenSSL SSL_CTX: TLS 1.2 or later, OpenSSL's default ciphers at
// security level 2 or above, no renegotiation, no 0-RTT data. A server's
// issues one session ticket per handshake, valid kTicketLifetime, under a
// key of its own that dies with it (TlsSessions).
class TlsContext {
  public:
    // A server's: the certificate chain (leaf first) and its private key.
    // Throws lindra::Error(invalid_argument) saying what is wrong with them.
    static std::shared_ptr<const TlsContext> server(std::string_view certificate_chain_pem,
                                                    std::string_view private_key_pem);
    // A client's: verifies the server's chain against the CAs in `ca_pem`,
    // or the system's when it is empty, and those in each of `extra_ca_pems`.
    // Throws lindra::Error(invalid_argument) if one of them holds no usable
    // certificate.
    static std::shared_ptr<const TlsContext> client(std::string_view ca_pem,
                                                    const std::vector<std::string>& extra_ca_pems = {});

    ~TlsContext();
    TlsContext(const TlsContext&) = delete;
    TlsContext& operator=(const TlsContext&) = delete;

    static constexpr long kTicketLifetimeSeconds = 2 * 3600;

    // A new reference to the SSL_CTX; the caller frees it (asio::ssl::context
    // takes it over).
    ssl_ctx_st* new_reference() const;

    // A server's: its handshakes from now on present the certificate chain
    // and key of `fresh`, another server context (an operator's reload);
    // connections made before keep theirs. The one change a TlsContext
    // allows; safe from any thread, during handshakes.
    void present(std::shared_ptr<const TlsContext> fresh) const;

    struct Presented;  // tls.cpp

  private:
    explicit TlsContext(ssl_ctx_st* ctx) : ctx_(ctx) {}
    ssl_ctx_st* ctx_;
    std::shared_ptr<Presented> presented_{};  // servers only
};

// A client's last TLS session with its server, to resume in the next round.
// A resumed TLS 1.3 handshake (still with a fresh key exchange) skips the
// certificate, its parsing and its checks, which cost a tablet and the
// server more than a round's own work (README, Performance). The server's
// chain, name and pins were checked when the session was made; a session is
// offered only to the peer it was made with, and only a round that ended
// well keeps one. Thread-safe.
class TlsSessions {
  public:
    TlsSessions() = default;
    ~TlsSessions();
    TlsSessions(const TlsSessions&) = delete;
    TlsSessions& operator=(const TlsSessions&) = delete;

    // Before the handshake: offers the kept session if it was made with `peer`.
    void offer(ssl_st* ssl, const std::string& peer);
    // After a round that ended well: keeps its session if it can be resumed.
    void keep(ssl_st* ssl, const std::string& peer);
    // Whether the connection's handshake resumed a session.
    static bool resumed(ssl_st* ssl);

  private:
    std::mutex mutex_;
    ssl_session_st* session_ = nullptr;  // guarded by mutex_
    std::string peer_;                   // guarded by mutex_
};

// SHA-256 of a DER SubjectPublicKeyInfo.
using SpkiDigest = std::array<std::uint8_t, 32>;

// "sha256/BASE64" pins to digests. Throws lindra::Error(invalid_argument)
// naming the pin that is not of that form.
std::vector<SpkiDigest> parse_pins(const std::vector<std::string>& pins);

// Prepares a new client connection to expect `server_name`: a DNS name (also
// sent as SNI) or an IP address literal, which the certificate must carry.
// Throws lindra::Error(invalid_argument) if OpenSSL refuses the name.
void expect_server(ssl_st* ssl, const std::string& server_name);

// After a handshake: whether the server's leaf key matches one of `pins`
// (true when there are none).
bool matches_pin(ssl_st* ssl, const std::vector<SpkiDigest>& pins);

// Why a handshake failed, in words: the certificate verification error if
// verification failed ("certificate verify failed: Hostname mismatch"), else
// OpenSSL's reason for `openssl_error` (the value of an error code in Asio's
// SSL category), else `fallback`.
std::string handshake_failure(ssl_st* ssl, int openssl_error, std::string_view fallback);

}  // namespace lindra::net
