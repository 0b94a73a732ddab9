#include "options.hpp"

#include <CLI/CLI.hpp>
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

}  // namespace

// CLI11 reads the command line; the values are checked here, so that no
// message quotes one (a token pasted in the wrong place would end up in a
// log) and the ranges say their units.
Options parse_options(std::span<char* const> args) {
    Options o;
    std::string server, interval, max_backoff, timeout, min_backoff, poll, push_batch, pull_batch, ca;
    CLI::App app("lindra-syncd", "lindra-syncd");
    app.set_help_flag();  // our own --help, printed by main() (print_usage)
    app.allow_extras();   // reported below, without their values
    const auto once = [](CLI::Option* opt) { return opt->multi_option_policy(CLI::MultiOptionPolicy::Throw); };
    app.add_flag("--help,-h", o.help);
    once(app.add_option("--db", o.db));
    once(app.add_option("--server", server));
    once(app.add_option("--token-file", o.token_file));
    auto* ca_opt = once(app.add_option("--ca", ca));
    app.add_option("--pin", o.pins);
    once(app.add_flag("--insecure", o.insecure));
    once(app.add_flag("--once", o.once));
    once(app.add_flag("--create", o.create));
    once(app.add_option("--interval", interval));
    once(app.add_option("--max-backoff", max_backoff));
    auto* timeout_opt = once(app.add_option("--timeout", timeout));
    once(app.add_option("--min-backoff-ms", min_backoff));
    once(app.add_option("--poll-ms", poll));
    once(app.add_option("--push-batch", push_batch));
    once(app.add_option("--pull-batch", pull_batch));
    std::string proxy;
    auto* proxy_opt = once(app.add_option("--proxy", proxy));
    app.add_option("--extra-ca", o.extra_ca_files);

    std::vector<std::string> argv(args.begin(), args.end());
    std::reverse(argv.begin(), argv.end());  // CLI11 takes them last first
    try {
        app.parse(argv);
    } catch (const CLI::ArgumentMismatch& e) {  // "--db: At Most 1 ...", "--db: 1 required TEXT missing"
        const std::string what = e.what();
        const auto name = what.substr(0, std::min(what.find(':'), std::size_t{40}));
        throw UsageError(name + (what.find("At Most") != std::string::npos ? " is given twice" : " wants a value"));
    } catch (const CLI::ConversionError&) {  // "--once=yes": CLI11's message quotes the value
        throw UsageError("--insecure, --once and --create take no value");
    } catch (const CLI::ParseError& e) {
        throw UsageError(e.what());
    }
    if (const auto extra = app.remaining(); !extra.empty()) {
        const std::string_view arg = extra.front();
        if (!arg.starts_with("--"))
            throw UsageError("unexpected argument (every option starts with --, and takes one value)");
        const auto name = arg.substr(0, std::min(arg.find('='), std::size_t{40}));
        if (name == "--token")
            throw UsageError(
                "there is no --token: put the token in a file readable only by this service and "
                "pass --token-file FILE (a command line is visible to every user of the machine)");
        throw UsageError("unknown option " + std::string(name));
    }
    if (o.help) return o;
    const auto empty = [](const std::string& name) { return UsageError(name + " wants a value"); };
    if (!server.empty()) parse_server(server, o);
    if (ca_opt->count()) {
        if (ca.empty()) throw empty("--ca");
        o.ca_file = ca;
    }
    for (const auto& pin : o.pins)
        if (pin.empty()) throw empty("--pin");
    for (const auto& file : o.extra_ca_files)
        if (file.empty()) throw empty("--extra-ca");
    if (proxy_opt->count()) o.proxy = proxy;  // "" too: no proxy, whatever the environment says
    if (!interval.empty()) o.interval = seconds(parse_number("--interval", interval, 1, 7 * 86400, "seconds"));
    if (!max_backoff.empty())
        o.max_backoff = seconds(parse_number("--max-backoff", max_backoff, 1, 86400, "seconds"));
    if (!timeout.empty()) o.timeout = seconds(parse_number("--timeout", timeout, 1, 86400, "seconds"));
    if (!min_backoff.empty())
        o.min_backoff = milliseconds(parse_number("--min-backoff-ms", min_backoff, 1, 3'600'000, "milliseconds"));
    if (!poll.empty()) o.poll = milliseconds(parse_number("--poll-ms", poll, 10, 3'600'000, "milliseconds"));
    if (!push_batch.empty())
        o.push_batch = static_cast<std::uint32_t>(parse_number("--push-batch", push_batch, 1, 1'000'000, "changes"));
    if (!pull_batch.empty())
        o.pull_batch = static_cast<std::uint32_t>(parse_number("--pull-batch", pull_batch, 1, 1'000'000, "changes"));

    if (o.db.empty()) throw UsageError("--db PATH is required");
    if (o.server.empty()) throw UsageError("--server URL is required (wss://HOST[:PORT][/PATH], or HOST:PORT)");
    if (o.token_file.empty()) throw UsageError("--token-file FILE is required");
    if (o.insecure && (o.ca_file || !o.pins.empty() || !o.extra_ca_files.empty()))
        throw UsageError("--insecure turns TLS off; it does not go with --ca, --extra-ca or --pin");
    if (timeout_opt->count() && !o.once) throw UsageError("--timeout goes with --once");
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
           "  --pull-batch N      at most N changes per pulled page\n"
           "\n"
           "Signals: SIGTERM or SIGINT stops (a running round is cancelled; what the server\n"
           "acknowledged stays acknowledged, the rest stays in the outbox); SIGHUP rereads the\n"
           "token and CA files and syncs at once.\n"
           "Exit status: 0 stopped by a signal, or --once in sync; 1 an error, or --once not in\n"
           "sync; 2 wrong usage; 3 --once in sync, but the server refused writes on the way.\n";
}

}  // namespace syncd
