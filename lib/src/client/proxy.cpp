#include "client/proxy.hpp"

#include "core/jws.hpp"

#include <lindra/error.hpp>

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstdlib>

namespace lindra::client {
namespace {

[[noreturn]] void bad(std::string_view what, std::string_view url, const std::string& why) {
    // The URL may carry a password: name the setting, not its value.
    (void)url;
    throw Error(Errc::invalid_argument, std::string(what) + ": " + why);
}

std::string percent_decode(std::string_view text, std::string_view what, std::string_view url) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] != '%') {
            out += text[i];
            continue;
        }
        unsigned v = 0;
        if (i + 3 > text.size() || std::from_chars(text.data() + i + 1, text.data() + i + 3, v, 16).ptr != text.data() + i + 3)
            bad(what, url, "a '%' in the credentials is not followed by two hex digits");
        out += static_cast<char>(v);
        i += 2;
    }
    return out;
}

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

std::string base64(std::string_view bytes) {
    std::string s = jws::base64url_encode(bytes);
    std::replace(s.begin(), s.end(), '-', '+');
    std::replace(s.begin(), s.end(), '_', '/');
    while (s.size() % 4) s += '=';
    return s;
}

const char* env(const char* lower_name, const char* upper_name) {
    const char* v = std::getenv(lower_name);
    if (!v || !*v) v = std::getenv(upper_name);
    return v && *v ? v : nullptr;
}

}  // namespace

Proxy parse_proxy_url(std::string_view url, std::string_view what) {
    std::string_view rest = url;
    if (const auto s = rest.find("://"); s != std::string_view::npos) {
        const std::string scheme = lower(rest.substr(0, s));
        if (scheme != "http")
            bad(what, url, "only an http:// proxy is supported (one that takes CONNECT), not " + scheme + "://");
        rest.remove_prefix(s + 3);
    }
    while (rest.ends_with('/')) rest.remove_suffix(1);
    if (rest.find('/') != std::string_view::npos) bad(what, url, "a proxy URL has no path");
    Proxy p;
    if (const auto at = rest.rfind('@'); at != std::string_view::npos) {
        const std::string_view userinfo = rest.substr(0, at);
        rest.remove_prefix(at + 1);
        const auto colon = userinfo.find(':');
        const std::string user = percent_decode(userinfo.substr(0, colon), what, url);
        const std::string password =
            colon == std::string_view::npos ? std::string() : percent_decode(userinfo.substr(colon + 1), what, url);
        if (user.empty()) bad(what, url, "the proxy's user name is empty (http://user:password@host:port)");
        p.authorization = "Basic " + base64(user + ":" + password);
    }
    std::string_view port_text;
    if (rest.starts_with('[')) {
        const auto close = rest.find(']');
        if (close == std::string_view::npos) bad(what, url, "an IPv6 address in brackets lacks its ']'");
        p.host = rest.substr(1, close - 1);
        const auto after = rest.substr(close + 1);
        if (!after.empty() && !after.starts_with(':')) bad(what, url, "expected ':port' after ']'");
        if (!after.empty()) port_text = after.substr(1);
        if (after.empty()) port_text = {};
    } else {
        const auto colon = rest.find(':');
        p.host = rest.substr(0, colon);
        if (colon != std::string_view::npos) {
            port_text = rest.substr(colon + 1);
            if (port_text.empty()) bad(what, url, "bad port \"\": a number from 1 to 65535");
        }
    }
    if (p.host.empty()) bad(what, url, "missing host (http://host:port)");
    if (!port_text.empty()) {
        unsigned v = 0;
        const auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), v);
        if (ec != std::errc() || end != port_text.data() + port_text.size() || v == 0 || v > 65535)
            bad(what, url, "bad port \"" + std::string(port_text) + "\": a number from 1 to 65535");
        p.port = static_cast<std::uint16_t>(v);
    }
    return p;
}

namespace {

// An IPv4 or IPv6 address as bytes (4 or 16 of them), or none.
struct Address {
    std::array<unsigned char, 16> bytes{};
    int size = 0;
};
Address address_of(const std::string& text) {
    Address a;
    if (::inet_pton(AF_INET, text.c_str(), a.bytes.data()) == 1) a.size = 4;
    else if (::inet_pton(AF_INET6, text.c_str(), a.bytes.data()) == 1) a.size = 16;
    return a;
}

// Whether the address `host` lies in `cidr` ("10.0.0.0/8", "fd00::/8"), as
// curl matches it: addresses only, never a name resolved.
bool in_network(const std::string& host, std::string_view cidr) {
    const auto slash = cidr.find('/');
    int bits = -1;
    const auto* end = cidr.data() + cidr.size();
    if (std::from_chars(cidr.data() + slash + 1, end, bits).ptr != end || bits < 0) return false;
    std::string_view network = cidr.substr(0, slash);
    if (network.starts_with('[') && network.ends_with(']')) network = network.substr(1, network.size() - 2);
    const Address net = address_of(std::string(network));
    const Address addr = address_of(host);
    if (addr.size == 0 || addr.size != net.size || bits > 8 * net.size) return false;
    for (int i = 0; i < bits; ++i) {
        const unsigned mask = 0x80u >> (i % 8);
        if ((addr.bytes[static_cast<std::size_t>(i / 8)] & mask) != (net.bytes[static_cast<std::size_t>(i / 8)] & mask))
            return false;
    }
    return true;
}

}  // namespace

bool no_proxy_covers(std::string_view no_proxy, std::string_view host) {
    const std::string name = lower(host.starts_with('[') && host.ends_with(']') ? host.substr(1, host.size() - 2) : host);
    std::size_t i = 0;
    while (i < no_proxy.size()) {
        const auto end = no_proxy.find_first_of(", ", i);
        std::string_view entry = no_proxy.substr(i, end == std::string_view::npos ? std::string_view::npos : end - i);
        i = end == std::string_view::npos ? no_proxy.size() : end + 1;
        if (entry.empty()) continue;
        if (entry == "*") return true;
        if (entry.starts_with('.')) entry.remove_prefix(1);
        if (entry.starts_with('[') && entry.ends_with(']')) entry = entry.substr(1, entry.size() - 2);
        const std::string e = lower(entry);
        if (e.empty()) continue;
        if (e.find('/') != std::string::npos) {
            if (in_network(name, e)) return true;
            continue;
        }
        if (name == e) return true;
        if (name.size() > e.size() && name.ends_with(e) && name[name.size() - e.size() - 1] == '.') return true;
    }
    return false;
}

std::optional<Proxy> proxy_for(const std::optional<std::string>& configured, std::string_view host) {
    if (configured) {
        if (configured->empty()) return std::nullopt;
        return parse_proxy_url(*configured);
    }
    const char* url = env("https_proxy", "HTTPS_PROXY");
    if (!url) return std::nullopt;
    if (const char* no = env("no_proxy", "NO_PROXY"); no && no_proxy_covers(no, host)) return std::nullopt;
    auto p = parse_proxy_url(url, "the https_proxy environment variable");
    p.from_environment = true;
    return p;
}

}  // namespace lindra::client
