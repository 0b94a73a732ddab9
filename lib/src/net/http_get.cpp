#include "net/http_get.hpp"

#include "net/tls.hpp"

#include <utility>  // Asio 1.74's awaitable.hpp uses std::exchange without it

#include <lindra/error.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <algorithm>
#include <cctype>
#include <stdexcept>
#include <utility>

namespace lindra::net {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct Url {
    bool https = true;
    std::string host;  // without brackets
    std::string port;
    std::string host_header;
    std::string target;  // path and query
};

[[noreturn]] void bad_url(const std::string& why) {
    throw Error(Errc::invalid_argument, "the URL " + why);
}

Url parse_url(std::string_view url) {
    Url u;
    if (url.starts_with("https://"))
        url.remove_prefix(8);
    else if (url.starts_with("http://"))
        u.https = false, url.remove_prefix(7);
    else
        bad_url("is not http:// or https://");
    if (std::any_of(url.begin(), url.end(), [](unsigned char c) { return c <= 0x20 || c >= 0x7F; }))
        bad_url("holds spaces, control or non-ASCII characters");
    url = url.substr(0, url.find('#'));
    const auto end = url.find_first_of("/?");
    const std::string_view authority = url.substr(0, end);
    u.target = end == url.npos ? "/" : std::string(url.substr(end));
    if (u.target.front() == '?') u.target.insert(0, "/");
    if (authority.find('@') != authority.npos) bad_url("holds credentials, which lindra does not send");
    std::string_view port;
    if (authority.starts_with("[")) {
        const auto close = authority.find(']');
        if (close == authority.npos) bad_url("has an unclosed [");
        u.host = authority.substr(1, close - 1);
        const auto after = authority.substr(close + 1);
        if (!after.empty() && !after.starts_with(":")) bad_url("has something after its ] that is not a port");
        if (!after.empty()) port = after.substr(1);
    } else {
        const auto colon = authority.rfind(':');
        u.host = authority.substr(0, colon);
        if (colon != authority.npos) port = authority.substr(colon + 1);
    }
    if (u.host.empty()) bad_url("has no host");
    if (port.empty()) {
        u.port = u.https ? "443" : "80";
    } else {
        const bool digits = port.size() <= 5 && std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; });
        if (!digits || std::stoi(std::string(port)) < 1 || std::stoi(std::string(port)) > 65535)
            bad_url("has a port that is not 1 to 65535");
        u.port = port;
    }
    u.host_header = std::string(authority);
    return u;
}

bool loopback_name(const std::string& host) {
    if (host == "localhost") return true;
    boost::system::error_code ec;
    const auto address = asio::ip::make_address(host, ec);
    return !ec && address.is_loopback();
}

const char* const kPlainHttp = "is plain http to a host that is not a loopback address (use https)";

// Cache-Control (RFC 9111 §5.2): max-age, or 0 for no-cache and no-store.
std::optional<std::chrono::seconds> max_age(std::string_view header) {
    std::string text(header);
    std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
    if (text.find("no-store") != text.npos || text.find("no-cache") != text.npos) return std::chrono::seconds(0);
    const auto at = text.find("max-age=");
    if (at == text.npos) return std::nullopt;
    std::int64_t seconds = 0;
    std::size_t i = at + 8, digits = 0;
    for (; i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])) && digits < 10; ++i, ++digits)
        seconds = seconds * 10 + (text[i] - '0');
    if (digits == 0) return std::nullopt;
    return std::chrono::seconds(seconds);
}

template <class Stream>
asio::awaitable<HttpResponse> exchange(Stream& stream, const Url& u, const HttpGetOptions& o) {
    http::request<http::empty_body> request{http::verb::get, u.target, 11};
    request.set(http::field::host, u.host_header);
    request.set(http::field::user_agent, "lindra");
    request.set(http::field::accept, "application/jwk-set+json, application/json");
    co_await http::async_write(stream, request, asio::use_awaitable);
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.header_limit(16 * 1024);
    parser.body_limit(o.max_body);
    co_await http::async_read(stream, buffer, parser, asio::use_awaitable);
    auto& response = parser.get();
    const unsigned status = response.result_int();
    if (status != 200)
        throw std::runtime_error("the server answered HTTP " + std::to_string(status) +
                                 (status / 100 == 3 ? " (lindra follows no redirects: give the final URL)" : ""));
    const auto cache_control = response[http::field::cache_control];
    co_return HttpResponse{std::move(response.body()), max_age({cache_control.data(), cache_control.size()})};
}

asio::awaitable<HttpResponse> fetch(Url u, HttpGetOptions o, std::shared_ptr<const TlsContext> tls,
                                    std::chrono::steady_clock::time_point deadline) {
    const auto executor = co_await asio::this_coro::executor;
    tcp::resolver resolver(executor);
    const auto endpoints = co_await resolver.async_resolve(u.host, u.port, asio::use_awaitable);
    if (!u.https && !o.allow_http)  // a name may resolve elsewhere than its looks say
        for (const auto& e : endpoints)
            if (!e.endpoint().address().is_loopback()) throw Error(Errc::invalid_argument, std::string("the URL ") + kPlainHttp);
    if (!u.https) {
        beast::tcp_stream stream(executor);
        stream.expires_at(deadline);  // for every operation from here on
        co_await stream.async_connect(endpoints, asio::use_awaitable);
        co_return co_await exchange(stream, u, o);
    }
    asio::ssl::context context(tls->new_reference());
    beast::ssl_stream<beast::tcp_stream> stream(executor, context);
    expect_server(stream.native_handle(), u.host);
    beast::get_lowest_layer(stream).expires_at(deadline);
    co_await beast::get_lowest_layer(stream).async_connect(endpoints, asio::use_awaitable);
    try {
        co_await stream.async_handshake(asio::ssl::stream_base::client, asio::use_awaitable);
    } catch (const boost::system::system_error& e) {
        const bool tls_error = e.code().category() == asio::error::get_ssl_category();
        throw std::runtime_error("TLS: " + handshake_failure(stream.native_handle(), tls_error ? e.code().value() : 0,
                                                             e.code().message()));
    }
    co_return co_await exchange(stream, u, o);
}

}  // namespace

void check_url(std::string_view url, const HttpGetOptions& options) {
    const Url u = parse_url(url);
    if (!u.https && !options.allow_http && !loopback_name(u.host)) bad_url(kPlainHttp);
}

HttpResponse http_get(std::string_view url, const HttpGetOptions& options) {
    check_url(url, options);
    const Url u = parse_url(url);
    auto tls = u.https ? TlsContext::client(options.ca_pem) : nullptr;
    const auto seconds = std::to_string((options.timeout.count() + 999) / 1000);
    asio::io_context io;
    std::optional<HttpResponse> result;
    std::exception_ptr error;
    const auto deadline = std::chrono::steady_clock::now() + options.timeout;
    asio::co_spawn(io, fetch(u, options, std::move(tls), deadline), [&](std::exception_ptr e, HttpResponse r) {
        if (e)
            error = e;
        else
            result = std::move(r);
    });
    io.run_until(deadline + std::chrono::milliseconds(100));  // bounds resolving too, which the stream's deadline does not
    if (error) {
        try {
            std::rethrow_exception(error);
        } catch (const boost::system::system_error& e) {
            if (e.code() == beast::error::timeout) throw std::runtime_error("no answer within " + seconds + " s");
            if (e.code() == http::error::body_limit)
                throw std::runtime_error("the answer is larger than " + std::to_string(options.max_body) + " bytes");
            throw std::runtime_error(e.code().message());
        }
    }
    if (!result) throw std::runtime_error("no answer within " + seconds + " s");
    return std::move(*result);
}

}  // namespace lindra::net
