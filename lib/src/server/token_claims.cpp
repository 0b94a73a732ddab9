// Claims: the registered time and audience claims (RFC 7519 §4.1).
#include "server/token.hpp"

#include <algorithm>
#include <cmath>
#include <optional>

namespace lindra::server {
namespace {

// A NumericDate (RFC 7519 §2): seconds since the epoch, possibly fractional.
std::optional<std::int64_t> numeric_date(const Json& v) {
    if (v.is_number_integer() && !v.is_number_unsigned()) return v.get<std::int64_t>();
    if (v.is_number_unsigned() && v.get<std::uint64_t>() < std::uint64_t{1} << 62)
        return static_cast<std::int64_t>(v.get<std::uint64_t>());
    if (v.is_number_float())
        if (const double d = v.get<double>(); std::isfinite(d) && std::abs(d) < 1e18)
            return static_cast<std::int64_t>(std::floor(d));
    return std::nullopt;
}

}  // namespace

void check_time_and_audience(const Json& claims, std::string_view audience, std::int64_t now_s, std::int64_t leeway_s) {
    // Each is optional but exp; one that is present must be a NumericDate.
    auto date = [&](const char* name, bool required) -> std::optional<std::int64_t> {
        const auto it = claims.find(name);
        if (it == claims.end() && !required) return std::nullopt;
        auto d = it != claims.end() ? numeric_date(*it) : std::nullopt;
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
    const auto aud = claims.find("aud");
    if (aud == claims.end()) throw TokenRefused("the token has no valid aud claim");
    const Json audiences = aud->is_array() ? *aud : Json::array({*aud});
    if (!std::all_of(audiences.begin(), audiences.end(), [](const Json& a) { return a.is_string(); }))
        throw TokenRefused("the token has no valid aud claim");
    if (std::none_of(audiences.begin(), audiences.end(), [&](const Json& a) { return a == audience; }))
        throw TokenRefused("the token is for another audience");
}

}  // namespace lindra::server
