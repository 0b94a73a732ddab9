#include "server/token.hpp"

#include "core/jws.hpp"

#include <lindra/error.hpp>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <optional>
#include <stdexcept>

namespace lindra::server {
namespace {

[[noreturn]] void malformed(std::string_view why) {
    throw TokenRefused("the token is malformed: " + std::string(why));
}

const unsigned char* bytes(std::string_view s) {
    return reinterpret_cast<const unsigned char*>(s.data());
}
unsigned char* bytes(std::string& s) {
    return reinterpret_cast<unsigned char*>(s.data());
}

// ---- JSON ----

void append_utf8(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

// Recursive descent over RFC 8259, nesting bounded by kMaxJsonDepth so a
// hostile token cannot exhaust the stack.
class JsonParser {
  public:
    explicit JsonParser(std::string_view text) : s_(text) {}

    Json document() {
        Json v = value(0);
        skip_space();
        if (pos_ != s_.size()) fail("trailing data");
        return v;
    }

  private:
    [[noreturn]] static void fail(std::string_view why) { malformed("invalid JSON (" + std::string(why) + ")"); }

    bool at_end() const { return pos_ >= s_.size(); }
    bool digit() const { return !at_end() && s_[pos_] >= '0' && s_[pos_] <= '9'; }
    void skip_space() {
        while (!at_end() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
    }
    bool eat(char c) {
        skip_space();
        if (at_end() || s_[pos_] != c) return false;
        ++pos_;
        return true;
    }
    bool literal(std::string_view word) {
        if (!s_.substr(pos_).starts_with(word)) return false;
        pos_ += word.size();
        return true;
    }

    Json value(int depth) {
        skip_space();
        if (at_end()) fail("unexpected end");
        switch (s_[pos_]) {
            case '{':
                return object(depth + 1);
            case '[':
                return array(depth + 1);
            case '"':
                return Json{string()};
            case 't':
                if (literal("true")) return Json{true};
                break;
            case 'f':
                if (literal("false")) return Json{false};
                break;
            case 'n':
                if (literal("null")) return Json{nullptr};
                break;
            default:
                if (s_[pos_] == '-' || digit()) return number();
        }
        fail("unexpected character");
    }

    Json object(int depth) {
        if (depth > kMaxJsonDepth) fail("nested too deeply");
        ++pos_;
        Json::Object members;
        if (eat('}')) return Json{std::move(members)};
        do {
            skip_space();
            if (at_end() || s_[pos_] != '"') fail("expected a key");
            std::string key = string();
            // Parsers disagree on which duplicate wins; a token that relies
            // on one of them is refused outright.
            for (const auto& m : members)
                if (m.key == key) fail("duplicate key");
            if (!eat(':')) fail("expected ':'");
            Json v = value(depth);
            members.push_back({std::move(key), std::move(v)});
        } while (eat(','));
        if (!eat('}')) fail("expected ',' or '}'");
        return Json{std::move(members)};
    }

    Json array(int depth) {
        if (depth > kMaxJsonDepth) fail("nested too deeply");
        ++pos_;
        Json::Array items;
        if (eat(']')) return Json{std::move(items)};
        do items.push_back(value(depth));
        while (eat(','));
        if (!eat(']')) fail("expected ',' or ']'");
        return Json{std::move(items)};
    }

    Json number() {
        const std::size_t start = pos_;
        bool integer = true;
        if (s_[pos_] == '-') ++pos_;
        if (!digit()) fail("bad number");
        if (s_[pos_] == '0')
            ++pos_;
        else
            while (digit()) ++pos_;
        if (!at_end() && s_[pos_] == '.') {
            integer = false;
            ++pos_;
            if (!digit()) fail("bad number");
            while (digit()) ++pos_;
        }
        if (!at_end() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
            integer = false;
            ++pos_;
            if (!at_end() && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
            if (!digit()) fail("bad number");
            while (digit()) ++pos_;
        }
        const char* first = s_.data() + start;
        const char* last = s_.data() + pos_;
        if (std::int64_t i = 0; integer && std::from_chars(first, last, i).ec == std::errc{}) return Json{i};
        double d = 0;
        if (std::from_chars(first, last, d).ec != std::errc{}) fail("number out of range");
        return Json{d};
    }

    std::string string() {
        ++pos_;  // the opening quote
        std::string out;
        for (;;) {
            if (at_end()) fail("unterminated string");
            const auto c = static_cast<unsigned char>(s_[pos_]);
            if (c == '"') {
                ++pos_;
                return out;
            }
            if (c < 0x20) fail("control character in a string");
            if (c == '\\') {
                ++pos_;
                escape(out);
            } else if (c < 0x80) {
                out += static_cast<char>(c);
                ++pos_;
            } else {
                utf8_sequence(out);
            }
        }
    }

    void escape(std::string& out) {
        if (at_end()) fail("unterminated string");
        switch (s_[pos_++]) {
            case '"':
                out += '"';
                break;
            case '\\':
                out += '\\';
                break;
            case '/':
                out += '/';
                break;
            case 'b':
                out += '\b';
                break;
            case 'f':
                out += '\f';
                break;
            case 'n':
                out += '\n';
                break;
            case 'r':
                out += '\r';
                break;
            case 't':
                out += '\t';
                break;
            case 'u': {
                std::uint32_t cp = hex4();
                if (cp >= 0xDC00 && cp <= 0xDFFF) fail("lone surrogate");
                if (cp >= 0xD800 && cp <= 0xDBFF) {  // a pair makes one code point past U+FFFF
                    if (!literal("\\u")) fail("lone surrogate");
                    const std::uint32_t low = hex4();
                    if (low < 0xDC00 || low > 0xDFFF) fail("lone surrogate");
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                }
                append_utf8(out, cp);
                break;
            }
            default:
                fail("bad escape");
        }
    }

    std::uint32_t hex4() {
        if (s_.size() - pos_ < 4) fail("bad escape");
        std::uint32_t v = 0;
        for (int i = 0; i < 4; ++i) {
            const char c = s_[pos_++];
            const int d = c >= '0' && c <= '9'   ? c - '0'
                          : c >= 'a' && c <= 'f' ? c - 'a' + 10
                          : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                                 : -1;
            if (d < 0) fail("bad escape");
            v = v << 4 | static_cast<std::uint32_t>(d);
        }
        return v;
    }

    // One multi-byte UTF-8 sequence, copied if it is the shortest form of a
    // code point that is not a surrogate and not past U+10FFFF.
    void utf8_sequence(std::string& out) {
        const auto lead = static_cast<unsigned char>(s_[pos_]);
        std::size_t more = 0;
        std::uint32_t cp = 0;
        if (lead >= 0xC2 && lead <= 0xDF)
            more = 1, cp = lead & 0x1F;
        else if (lead >= 0xE0 && lead <= 0xEF)
            more = 2, cp = lead & 0x0F;
        else if (lead >= 0xF0 && lead <= 0xF4)
            more = 3, cp = lead & 0x07;
        else
            fail("invalid UTF-8");
        if (s_.size() - pos_ <= more) fail("invalid UTF-8");
        for (std::size_t i = 1; i <= more; ++i) {
            const auto b = static_cast<unsigned char>(s_[pos_ + i]);
            if ((b & 0xC0) != 0x80) fail("invalid UTF-8");
            cp = cp << 6 | (b & 0x3F);
        }
        if ((more == 2 && cp < 0x800) || (more == 3 && cp < 0x10000) || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            fail("invalid UTF-8");
        out.append(s_.substr(pos_, more + 1));
        pos_ += more + 1;
    }

    std::string_view s_;
    std::size_t pos_ = 0;
};

// A NumericDate (RFC 7519 §2): seconds since the epoch, possibly fractional.
std::optional<std::int64_t> numeric_date(const Json& v) {
    if (const auto* i = v.as<std::int64_t>()) return *i;
    if (const auto* d = v.as<double>(); d && std::isfinite(*d) && std::abs(*d) < 1e18)
        return static_cast<std::int64_t>(std::floor(*d));
    return std::nullopt;
}

// ---- OpenSSL ----

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

// The one algorithm lindra uses with keys of `key`'s type, "" for none.
std::string_view alg_of(EVP_PKEY* key) {
    if (EVP_PKEY_is_a(key, "ED25519")) return "EdDSA";
    if (EVP_PKEY_is_a(key, "EC")) {
        char group[64] = {};
        std::size_t len = 0;
        if (EVP_PKEY_get_group_name(key, group, sizeof group, &len) != 1) return "";
        const std::string_view name(group, len);
        return name == "prime256v1" || name == "P-256" ? "ES256" : "";
    }
    if (EVP_PKEY_is_a(key, "RSA") && EVP_PKEY_get_bits(key) >= 2048) return "RS256";
    return "";
}

std::string kind_of(EVP_PKEY* key) {
    const char* name = EVP_PKEY_get0_type_name(key);
    return name ? name : "unknown";
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

}  // namespace

// ---- base64url ----

std::string base64url_encode(std::string_view in) {
    return jws::base64url_encode(in);
}

std::string base64url_decode(std::string_view text) {
    auto out = jws::base64url_decode(text);
    if (!out) malformed("it is not canonical base64url");
    return std::move(*out);
}

// ---- JSON ----

const Json* Json::find(std::string_view key) const {
    if (const auto* members = as<Object>())
        for (const auto& m : *members)
            if (m.key == key) return &m.value;
    return nullptr;
}

Json parse_json(std::string_view text) {
    return JsonParser(text).document();
}

std::string json_quote(std::string_view text) {
    std::string out = "\"";
    for (const unsigned char c : text) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c < 0x20) {
            char escaped[8];
            std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
            out += escaped;
        } else {
            out += static_cast<char>(c);
        }
    }
    return out + "\"";
}

// ---- keys, signatures ----

void PkeyFree::operator()(evp_pkey_st* key) const noexcept {
    EVP_PKEY_free(key);
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

VerifyKey::VerifyKey(std::string_view pem, const std::vector<std::string>& algorithms, std::string_view what)
    : key_(read_pem_key(pem, what)), alg_(alg_of(key_.get())) {
    const std::string name(what);
    if (alg_.empty())
        throw Error(Errc::invalid_argument,
                    name + " is " + kind_of(key_.get()) + ", not Ed25519, EC P-256 or RSA of 2048 bits or more");
    for (const auto& a : algorithms)
        if (a != "EdDSA" && a != "ES256" && a != "RS256")
            throw Error(Errc::invalid_argument,
                        name + ": \"" + a + "\" is not an algorithm lindra verifies (EdDSA, ES256 or RS256)");
    if (std::find(algorithms.begin(), algorithms.end(), alg_) == algorithms.end())
        throw Error(Errc::invalid_argument, name + " is " + kind_of(key_.get()) + ", which verifies " + alg_ +
                                                ", and " + alg_ + " is not among its allowed algorithms");
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

std::string sign_jws(std::string_view private_key_pem, std::string_view alg, std::string_view payload) {
    const Pkey key = read_pem_key(private_key_pem, "the signing key", true);
    if (alg_of(key.get()) != alg)
        throw Error(Errc::invalid_argument,
                    "the signing key is " + kind_of(key.get()) + ", which cannot sign " + std::string(alg) + " tokens");
    const std::string input =
        base64url_encode("{\"alg\":" + json_quote(alg) + ",\"typ\":\"JWT\"}") + "." + base64url_encode(payload);
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
    return input + "." + base64url_encode(signature);
}

// ---- decoding a JWT ----

DecodedJwt decode_jwt(std::string_view token) {
    if (token.empty()) throw TokenRefused("the token is missing");
    if (token.size() > kMaxTokenBytes) malformed("it is longer than " + std::to_string(kMaxTokenBytes) + " bytes");
    const auto first = token.find('.');
    const auto second = first == token.npos ? token.npos : token.find('.', first + 1);
    if (second == token.npos || token.find('.', second + 1) != token.npos)
        malformed("it is not three dot-separated parts");

    const Json header = parse_json(base64url_decode(token.substr(0, first)));
    if (!header.as<Json::Object>()) malformed("its header is not a JSON object");
    const Json* alg = header.find("alg");
    if (!alg || !alg->as<std::string>()) malformed("its header has no alg");
    // An extension the token says must be understood cannot be ignored
    // (RFC 7515 §4.1.11), and lindra implements none. Key hints (jwk, jku,
    // x5u, x5c, kid) are ignored: keys come only from the server's options.
    if (header.find("crit")) throw TokenRefused("the token has critical header parameters lindra does not support");

    DecodedJwt jwt;
    jwt.alg = *alg->as<std::string>();
    jwt.claims = parse_json(base64url_decode(token.substr(first + 1, second - first - 1)));
    if (!jwt.claims.as<Json::Object>()) malformed("its claims are not a JSON object");
    jwt.signing_input = token.substr(0, second);
    jwt.signature = base64url_decode(token.substr(second + 1));
    return jwt;
}

void check_time_and_audience(const Json& claims, std::string_view audience, std::int64_t now_s, std::int64_t leeway_s) {
    // Each is optional but exp; one that is present must be a NumericDate.
    auto date = [&](const char* name, bool required) -> std::optional<std::int64_t> {
        const Json* v = claims.find(name);
        if (!v && !required) return std::nullopt;
        auto d = v ? numeric_date(*v) : std::nullopt;
        if (!d) throw TokenRefused("the token has no valid " + std::string(name) + " claim");
        return d;
    };
    const auto exp = date("exp", true);
    const auto nbf = date("nbf", false);
    const auto iat = date("iat", false);
    // Written so that no claim value, however large, overflows.
    if (now_s - leeway_s >= *exp) throw TokenRefused("the token has expired");
    if ((nbf && now_s + leeway_s < *nbf) || (iat && now_s + leeway_s < *iat))
        throw TokenRefused("the token is not valid yet");

    // "aud" is one string or an array of them (RFC 7519 §4.1.3).
    const Json* aud = claims.find("aud");
    std::vector<const Json*> audiences;
    if (const auto* many = aud ? aud->as<Json::Array>() : nullptr)
        for (const auto& a : *many) audiences.push_back(&a);
    else if (aud)
        audiences.push_back(aud);
    const auto is_string = [](const Json* a) { return a->as<std::string>() != nullptr; };
    const auto is_ours = [&](const Json* a) { return *a->as<std::string>() == audience; };
    if (!aud || !std::all_of(audiences.begin(), audiences.end(), is_string))
        throw TokenRefused("the token has no valid aud claim");
    if (std::none_of(audiences.begin(), audiences.end(), is_ours))
        throw TokenRefused("the token is for another audience");
}

}  // namespace lindra::server
