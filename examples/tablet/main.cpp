// lindra-tablet: a command-line stand-in for the tablet app. It works on the
// device's local replica only (sync is lindra-syncd's job): coordinators seed,
// mentors hold gatherings and confirm candidates, candidates record progress.
//
// Exit status: 0 done, 1 error (the library wrote nothing), 2 wrong usage,
// 3 synced but the server refused writes (kept: `lindra-tablet refused`).
#include "cli.hpp"
#include "commands.hpp"

#include <iostream>
#include <span>
#include <sstream>

namespace {

int run(std::span<char* const> args) {
    const auto table = tablet::commands();
    auto inv = tablet::parse_args(args, table);
    if (inv.help) {
        if (inv.command)
            tablet::print_command_usage(std::cout, *inv.command);
        else
            tablet::print_usage(std::cout, table);
        return 0;
    }
    const auto& command = *inv.command;
    if (!inv.db || inv.db->empty()) throw tablet::UsageError("--db PATH is required");

    // A command's lines wait until they are whole: one that fails half way
    // through a line (opening the replica, say) must not leave "outbox: "
    // in front of the error. Its whole lines are printed either way.
    std::ostringstream out;
    try {
        tablet::Session session(command, *inv.db, std::move(inv.words), std::move(inv.options), out);
        command.run(session);
        std::cout << std::move(out).str();
        return session.exit_status();
    } catch (...) {
        const auto text = std::move(out).str();
        std::cout << text.substr(0, text.rfind('\n') + 1) << std::flush;
        throw;
    }
}

}  // namespace

int main(int argc, char** argv) {
    try {
        return run({argv + 1, static_cast<std::size_t>(argc > 0 ? argc - 1 : 0)});
    } catch (const tablet::UsageError& e) {
        std::cerr << "lindra-tablet: " << e.what() << "\n(lindra-tablet --help lists the commands)\n";
        return 2;
    } catch (const std::exception& e) {  // lindra::Error's message names the field or the file
        std::cerr << "lindra-tablet: " << e.what() << '\n';
        return 1;
    }
}
