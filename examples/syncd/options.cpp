#include "options.hpp"

#include <lindra/error.hpp>
#include <lindra/sync.hpp>

#include <algorithm>
#include <charconv>
#include <ostream>
#include <set>
#include <string_view>

namespace syncd {

namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// Whole numbers only, in [lo, hi]. Messages never quote the value: a
// misplaced token would end up in a log.
std::int64_t parse_number(std::string_view flag, std::string_view text, std::int64_t lo, std::int64_t hi,
                          std::string_view unit) {
    std::int64_t v = 0;
    const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (text.empty() || ec != std::errc{} || ptr != text.data() + text.size() || v < lo || v > hi)
        throw UsageError(std::string(flag) + " wants a whole number of " + std::string(unit) + " from " +
                         std::to_string(lo) + " to " + std::to_string(hi));
    return v;
}

// A server URL (lindra::parse_server_url): wss://HOST[:PORT][/PATH],
// tls://HOST:PORT or HOST:PORT.
void parse_server(std::string_view text, Options& o) {
    try {
        o.server = lindra::to_string(lindra::parse_server_url(text));
    } catch (const lindra::Error& e) {
        throw UsageError(std::string("--server: ") + e.what());
    }
    o.server_given = std::string(text);
}

struct Flag {
    std::string_view name;
    bool takes_value;
    bool repeatable = false;
};

constexpr Flag kFlags[] = {
    {"--db", true},        {"--server", true},     {"--token-file", true}, {"--ca", true},
    {"--pin", true, true}, {"--insecure", false},  {"--interval", true},   {"--max-backoff", true},
    {"--once", false},     {"--timeout", true},    {"--create", false},    {"--min-backoff-ms", true},
    {"--poll-ms", true},   {"--push-batch", true}, {"--help", false},
    {"--proxy", true},     {"--extra-ca", true, true},
};

}  // namespace

Options parse_options(std::span<char* const> args) {
    Options o;
    std::set<std::string_view> seen;
    bool timeout_given = false;
    for (std::size_t i = 0; i < args.size(); ++i) {
        std::string_view arg = args[i];
        if (arg == "-h") arg = "--help";
        if (arg.substr(0, 2) != "--")
            throw UsageError("unexpected argument #" + std::to_string(i + 1) + " (every option starts with --)");
        std::string_view name = arg;
        std::optional<std::string_view> value;
        if (const auto eq = arg.find('='); eq != std::string_view::npos) {
            name = arg.substr(0, eq);
            value = arg.substr(eq + 1);
        }
        const auto* flag =
            std::find_if(std::begin(kFlags), std::end(kFlags), [&](const Flag& f) { return f.name == name; });
        if (flag == std::end(kFlags)) {
            if (name == "--token")
                throw UsageError(
                    "there is no --token: put the token in a file readable only by this service and "
                    "pass --token-file FILE (a command line is visible to every user of the machine)");
            throw UsageError("unknown option " + std::string(name.substr(0, 40)));
        }
        if (!flag->repeatable && !seen.insert(flag->name).second)
            throw UsageError(std::string(flag->name) + " is given twice");
        if (flag->takes_value && !value) {
            if (i + 1 >= args.size()) throw UsageError(std::string(flag->name) + " wants a value");
            value = args[++i];
        } else if (!flag->takes_value && value) {
            throw UsageError(std::string(flag->name) + " takes no value");
        }
        const std::string_view v = value.value_or("");
        if (flag->takes_value && v.empty()) throw UsageError(std::string(flag->name) + " wants a value");

        if (name == "--help")
            o.help = true;
        else if (name == "--db")
            o.db = std::string(v);
        else if (name == "--server")
            parse_server(v, o);
        else if (name == "--token-file")
            o.token_file = std::string(v);
        else if (name == "--ca")
            o.ca_file = std::string(v);
        else if (name == "--extra-ca")
            o.extra_ca_files.emplace_back(v);
        else if (name == "--proxy")
            o.proxy = std::string(v);
        else if (name == "--pin")
            o.pins.emplace_back(v);
        else if (name == "--insecure")
            o.insecure = true;
        else if (name == "--once")
            o.once = true;
        else if (name == "--create")
            o.create = true;
        else if (name == "--interval")
            o.interval = seconds(parse_number(name, v, 1, 7 * 86400, "seconds"));
        else if (name == "--max-backoff")
            o.max_backoff = seconds(parse_number(name, v, 1, 86400, "seconds"));
        else if (name == "--timeout") {
            o.timeout = seconds(parse_number(name, v, 1, 86400, "seconds"));
            timeout_given = true;
        } else if (name == "--min-backoff-ms")
            o.min_backoff = milliseconds(parse_number(name, v, 1, 3'600'000, "milliseconds"));
        else if (name == "--poll-ms")
            o.poll = milliseconds(parse_number(name, v, 10, 3'600'000, "milliseconds"));
        else if (name == "--push-batch")
            o.push_batch = static_cast<std::uint32_t>(parse_number(name, v, 1, 1'000'000, "changes"));
    }
    if (o.help) return o;
    if (o.db.empty()) throw UsageError("--db PATH is required");
    if (o.server.empty()) throw UsageError("--server URL is required (wss://HOST[:PORT][/PATH], or HOST:PORT)");
    if (o.token_file.empty()) throw UsageError("--token-file FILE is required");
    if (o.insecure && (o.ca_file || !o.pins.empty() || !o.extra_ca_files.empty()))
        throw UsageError("--insecure turns TLS off; it does not go with --ca, --extra-ca or --pin");
    if (timeout_given && !o.once) throw UsageError("--timeout goes with --once");
    if (o.min_backoff > o.max_backoff) throw UsageError("--min-backoff-ms is longer than --max-backoff");
    return o;
}

void print_usage(std::ostream& out) {
    out << "usage: lindra-syncd --db PATH --server URL --token-file FILE [options]\n"
           "\n"
           "Keeps the lindra replica at PATH in sync with the server: a round at start, every\n"
           "--interval, and soon after an app writes to PATH; after a failure it backs off.\n"
           "\n"
           "  --db PATH           the replica (an app writes it too; lindra allows that)\n"
           "  --create            create PATH if it does not exist (else that is an error)\n"
           "  --server URL        the sync server: wss://HOST[:PORT][/PATH] (WebSocket, port\n"
           "                      443 unless given), tls://HOST:PORT or HOST:PORT (raw TLS)\n"
           "  --token-file FILE   the token alone in a file (chmod 600); reread on SIGHUP\n"
           "  --ca FILE           CAs to trust (PEM) instead of the system's; reread on SIGHUP\n"
           "  --extra-ca FILE     more CAs to trust beside those, e.g. a TLS-inspecting\n"
           "                      proxy's (repeatable); reread on SIGHUP\n"
           "  --proxy URL         an HTTP CONNECT proxy, http://[USER:PASSWORD@]HOST[:PORT];\n"
           "                      default: https_proxy unless no_proxy names the server\n"
           "  --pin sha256/B64    the server's public key must match a pin (repeatable)\n"
           "  --insecure          plain TCP instead of TLS, for local development only: the\n"
           "                      token and personal data cross the network in the clear\n"
           "  --interval S        seconds between scheduled rounds (default 300)\n"
           "  --max-backoff S     longest wait between failed rounds (default 300); a refused\n"
           "                      token or a failed TLS handshake waits this long, or for SIGHUP\n"
           "  --once              sync until in sync, then exit\n"
           "  --timeout S         with --once: give up after S seconds (default 120)\n"
           "  --help              this text\n"
           "\n"
           "Tuning (tests):\n"
           "  --min-backoff-ms N  first wait after a failure (default 1000)\n"
           "  --poll-ms N         how often to look for local writes (default 1000)\n"
           "  --push-batch N      at most N changes per pushed message\n"
           "\n"
           "Signals: SIGTERM or SIGINT stops (a running round is cancelled; what the server\n"
           "acknowledged stays acknowledged, the rest stays in the outbox); SIGHUP rereads the\n"
           "token and CA files and syncs at once.\n"
           "Exit status: 0 stopped by a signal, or --once in sync; 1 an error, or --once not in\n"
           "sync; 2 wrong usage; 3 --once in sync, but the server refused writes on the way.\n";
}

}  // namespace syncd
