// lindra::parse_server_url: the one reading of a server URL, for
// SyncOptions, the C API and the command lines.
#include <lindra/error.hpp>
#include <lindra/sync.hpp>

#include <charconv>

namespace lindra {
namespace {

[[noreturn]] void bad(std::string_view url, const std::string& what) {
    throw Error(Errc::invalid_argument, "server URL \"" + std::string(url) + "\": " + what);
}

}  // namespace

ServerUrl parse_server_url(std::string_view url) {
    ServerUrl out;
    std::string_view rest = url;
    const auto scheme_end = rest.find("://");
    std::uint16_t default_port = 0;
    if (scheme_end != std::string_view::npos) {
        const std::string_view scheme = rest.substr(0, scheme_end);
        if (scheme == "wss") {
            out.websocket = true;
            default_port = 443;
        } else if (scheme == "ws") {
            out.websocket = true;
            out.tls = false;
            default_port = 80;
        } else if (scheme == "tls") {
        } else if (scheme == "tcp") {
            out.tls = false;
        } else {
            bad(url, "unknown scheme \"" + std::string(scheme) +
                         "\": use wss://host[:port][/path], tls://host:port or host:port");
        }
        rest.remove_prefix(scheme_end + 3);
    }
    // host[:port][/path]
    const auto slash = rest.find('/');
    std::string_view authority = rest.substr(0, slash);
    std::string_view path = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
    if (authority.find('@') != std::string_view::npos) bad(url, "a server URL carries no user or password");
    std::string_view port_text;
    if (authority.starts_with('[')) {
        const auto close = authority.find(']');
        if (close == std::string_view::npos) bad(url, "an IPv6 address in brackets lacks its ']'");
        out.host = authority.substr(1, close - 1);
        const std::string_view after = authority.substr(close + 1);
        if (!after.empty() && !after.starts_with(':')) bad(url, "expected ':port' after ']'");
        if (!after.empty()) port_text = after.substr(1);
        if (out.host.empty()) bad(url, "missing host");
        if (after.empty() && default_port == 0) bad(url, "missing port (host:port)");
    } else {
        const auto colon = authority.find(':');
        if (colon != authority.rfind(':')) bad(url, "an IPv6 address goes in brackets: [::1]:port");
        out.host = authority.substr(0, colon);
        if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
        else if (default_port == 0) bad(url, "missing port (host:port)");
    }
    if (out.host.empty()) bad(url, "missing host");
    if (out.host.find_first_of(" \t\r\n?#") != std::string::npos) bad(url, "the host holds a character hosts do not");
    if (port_text.empty() && default_port != 0 && authority.find(':') == std::string_view::npos) {
        out.port = default_port;
    } else {
        unsigned value = 0;
        const auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
        if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() || value == 0 ||
            value > 65535)
            bad(url, "bad port \"" + std::string(port_text) + "\": a number from 1 to 65535");
        out.port = static_cast<std::uint16_t>(value);
    }
    if (out.websocket) {
        out.path = path.empty() ? "/lindra" : std::string(path);
        if (out.path.find_first_of(" \t\r\n#") != std::string::npos) bad(url, "the path holds a space or '#'");
    } else if (!path.empty() && path != "/") {
        bad(url, "only a wss:// or ws:// URL has a path");
    }
    return out;
}

std::string to_string(const ServerUrl& u) {
    const std::string host = u.host.find(':') != std::string::npos ? "[" + u.host + "]" : u.host;
    if (u.websocket) return std::string(u.tls ? "wss://" : "ws://") + host + ":" + std::to_string(u.port) + u.path;
    return std::string(u.tls ? "tls://" : "tcp://") + host + ":" + std::to_string(u.port);
}

}  // namespace lindra
