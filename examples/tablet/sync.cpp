// The sync commands of lindra-tablet: one sync round, and sign-out (push
// what is pending, then delete this user's replica).
#include "commands.hpp"

#include "text.hpp"

#include <lindra/sync.hpp>

#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <ostream>
#include <sstream>
#include <stdexcept>
#include <string>

namespace tablet {

using lindra::Error;

namespace {

// The whole of a small text file (a CA list), or an error naming it.
std::string read_text_file(const std::string& option, const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    if (!in || text.str().empty()) throw std::runtime_error(option + ": cannot read " + path);
    return text.str();
}

// --server URL into the options: the one place that reads the address.
void set_server(lindra::SyncOptions& options, const std::string& server) {
    try {
        (void)lindra::parse_server_url(server);
    } catch (const Error& e) {
        throw UsageError(std::string("--server: ") + e.what());
    }
    options.url = server;
}

// The token, from --token-file FILE or --token, else LINDRA_TOKEN. A file or
// the environment keep it out of `ps`, which any user of the machine can
// read; --token stays for scripts that pass it already.
std::string token_of(const Session& s) {
    const auto file = s.option("--token-file");
    const auto flag = s.option("--token");
    if (file && flag) throw UsageError("--token and --token-file: give one of them");
    std::string token;
    if (file) {
        std::ifstream in(*file, std::ios::binary);
        std::ostringstream text;
        text << in.rdbuf();
        if (!in) throw std::runtime_error("--token-file: cannot read " + *file);
        token = text.str();
    } else if (flag) {
        token = *flag;
    } else if (const char* env = std::getenv("LINDRA_TOKEN"); env && *env) {
        token = env;
    } else {
        throw UsageError(std::string(s.command().name) +
                         " needs a token: --token-file FILE, or LINDRA_TOKEN in the environment "
                         "(--token TOKEN works too, but every user of the machine sees it in ps)");
    }
    // A token file ends with a newline, and an editor may add spaces.
    while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
    while (!token.empty() && std::isspace(static_cast<unsigned char>(token.front()))) token.erase(0, 1);
    if (token.empty())
        throw UsageError(file ? "--token-file: " + *file + " holds no token" : std::string("the token is empty"));
    return token;
}

// The sync options of --server, the token, --ca, --extra-ca, --proxy, --pin and --insecure.
lindra::SyncOptions sync_options(Session& s) {
    const auto server = s.option("--server");
    if (!server) throw UsageError(std::string(s.command().name) + " needs --server URL");

    lindra::SyncOptions options;
    set_server(options, *server);
    options.token = token_of(s);
    options.app = "lindra-tablet";
    // TLS unless --insecure: the system's CAs, or those in --ca FILE, and
    // the server's key must match a --pin if any are given.
    options.insecure = s.flag("--insecure");
    const auto ca = s.option("--ca");
    options.tls.pins = s.options("--pin");
    if (options.insecure && (ca || !options.tls.pins.empty()))
        throw UsageError("--insecure turns TLS off; it does not go with --ca or --pin");
    if (ca) options.tls.ca_pem = read_text_file("--ca", *ca);
    // A TLS-inspecting proxy's CA, trusted beside the others.
    for (const auto& file : s.options("--extra-ca")) options.tls.extra_ca_pems.push_back(read_text_file("--extra-ca", file));
    if (options.insecure && !options.tls.extra_ca_pems.empty())
        throw UsageError("--insecure turns TLS off; it does not go with --extra-ca");
    // Unset: https_proxy and no_proxy from the environment.
    if (const auto proxy = s.option("--proxy")) options.proxy = *proxy;
    return options;
}

// What a round's refused writes and purges did here, as they happened.
void print_round(Session& s, const lindra::SyncResult& result) {
    // The app learns of each refused change once it has been rolled back.
    for (const auto& r : result.rejected)
        s.out() << "refused by the server (" << r.code << "): " << r.entity << " change "
                << (r.row_removed ? "undone, the row removed" : "undone, the server's value restored") << ": "
                << r.reason << '\n';
    for (const auto& line : purge_lines(result)) s.out() << line << '\n';
}

// What to do about a certificate the tablet would not trust: the two
// usual causes, said where the user can act on them.
std::string tls_hint(const lindra::SyncResult& result, const lindra::SyncOptions& options) {
    if (result.outcome != lindra::SyncOutcome::tls_failed ||
        result.message.find("certificate verify failed") == std::string::npos)
        return {};
    return ". The server's certificate must be signed by a CA in " +
           std::string(options.tls.ca_pem.empty() ? "the system's list (or give --ca FILE)" : "--ca") +
           " and name " + options.host + " (subjectAltName " +
           (options.host.find_first_not_of("0123456789.:") == std::string::npos ? "IP:" : "DNS:") + options.host + ")";
}

// The server's word on when to come back (its store is down or busy).
std::string retry_hint(const lindra::SyncResult& result) {
    return result.retry_after_ms > 0 ? "; retry after " + std::to_string(result.retry_after_ms) + " ms" : std::string();
}

// On a terminal, the round's progress bar on stdout, drawn over in place
// as the round goes and erased when it is over (or failed): the command's
// lines, held back until it ends, come after. Elsewhere nothing, so that a
// script reads the same lines as before.
class ProgressBar {
  public:
    explicit ProgressBar(lindra::SyncOptions& options) {
        if (::isatty(STDOUT_FILENO) != 1) return;
        // On the sync's thread; sync() returns after its last call.
        options.on_progress = [this](const lindra::SyncProgress& p) {
            if (const auto text = bar_.line(p); !text.empty()) line_.show(text);
        };
    }
    ~ProgressBar() { line_.clear(); }
    ProgressBar(const ProgressBar&) = delete;
    ProgressBar& operator=(const ProgressBar&) = delete;

  private:
    common::SyncBar bar_;
    common::TerminalLine line_{std::cout};
};

}  // namespace

// One sync round; prints what moved. A failed round exits 1 with the reason.
void cmd_sync(Session& s) {
    auto options = sync_options(s);
    const ProgressBar bar(options);
    lindra::SyncClient client(s.replica(), options);
    const auto result = client.sync();
    print_round(s, result);
    // Refusals may come in a round that fails later: they are news either
    // way, and what was refused is kept either way.
    const auto refusals = [&] {
        if (result.rejected.empty()) return;
        const auto n = result.rejected.size();
        s.out() << n << (n == 1 ? " of your writes was" : " of your writes were")
                << " refused by the server and undone here; what you wrote is kept:\n"
                << "  lindra-tablet --db " << s.db_path() << " refused\n";
    };
    if (!result.ok()) {
        refusals();
        // What the failure holds back: the writes still in the outbox.
        const auto waiting = s.replica().outbox_size();
        throw std::runtime_error("sync failed (" + std::string(lindra::to_string(result.outcome)) +
                                 "): " + result.message + retry_hint(result) + tls_hint(result, options) + "; " +
                                 counted(waiting, "write") + (waiting == 1 ? " waits" : " wait") +
                                 " in the outbox for the next sync");
    }
    s.out() << "synced: pushed " << writes_and_changes(result.writes_pushed, result.changes_pushed) << ", pulled "
            << counted(result.changes_pulled, "change") << " (" << common::format_bytes(result.bytes_sent) << " sent, "
            << common::format_bytes(result.bytes_received) << " received)\n";
    refusals();
    if (!result.clean()) s.set_exit_status(kExitRefused);
}

// Pushes what is pending and deletes this user's replica (shared tablets).
// If something would be lost it deletes nothing, says what, and exits 1;
// --force deletes anyway.
void cmd_sign_out(Session& s) {
    auto options = sync_options(s);
    const bool force = s.flag("--force");
    const auto r = [&] {
        const ProgressBar bar(options);
        return lindra::sign_out(s.take_replica(), options, force);
    }();
    print_round(s, r.sync);
    const auto lost = [&] {
        std::string what = std::to_string(r.pending_writes) +
                           (r.pending_writes == 1 ? " write not on the server" : " writes not on the server");
        what += " and " + std::to_string(r.refused_writes) +
                (r.refused_writes == 1 ? " refused write kept here" : " refused writes kept here");
        return what;
    };
    if (r.status == lindra::SignOutStatus::kept) {
        const std::string why = r.sync.ok() ? std::string("the sync went through")
                                            : "sync failed (" + std::string(lindra::to_string(r.sync.outcome)) +
                                                  "): " + r.sync.message + retry_hint(r.sync);
        throw std::runtime_error("not signed out, nothing deleted: " + why + ", but " + lost() +
                                 " would be lost. Sync again later, see them with: lindra-tablet --db " + s.db_path() +
                                 " refused; or sign out with --force to delete them");
    }
    if (r.status == lindra::SignOutStatus::forced) s.out() << "forced: deleted with " << lost() << '\n';
    s.out() << "signed out: pushed " << writes_and_changes(r.sync.writes_pushed, r.sync.changes_pushed)
            << "; deleted " << r.deleted_files.size()
            << (r.deleted_files.size() == 1 ? " file" : " files") << " (overwritten before removal):\n";
    for (const auto& f : r.deleted_files) s.out() << "  " << f << '\n';
}

}  // namespace tablet
