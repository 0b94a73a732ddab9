// Command-line plumbing of lindra-tablet: the command table's shape, argument
// parsing and the Session a command runs in. The commands themselves live in
// commands.cpp; this file knows nothing about training data.
#pragma once

#include <lindra/replica.hpp>

#include <cstdint>
#include <iosfwd>
#include <map>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace tablet {

// Wrong use of the command line. main() prints it with a hint and exits 2.
class UsageError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// A sync that went through, but the server refused some of this user's
// writes: they were rolled back and are kept (`lindra-tablet refused`).
// Apart from 1 (an error) so a script can tell work to look at from a
// network or other failure.
constexpr int kExitRefused = 3;

class Session;

// One row of the command table. The synopsis drives the checks: operands in
// [brackets] are optional, an operand written "a|b" must be one of those
// words, an option takes exactly one value ("--score N") unless it is a
// flag ("--insecure"), and only an option whose value ends in "..." may be
// given more than once ("--pin PIN...").
struct Command {
    std::string_view name;                  // one or two words: "roster", "gathering plan"
    std::string_view operands;              // "PERSON MODULE start|complete"
    std::vector<std::string_view> options;  // "--score N", "--group GROUP"
    std::string_view summary;
    void (*run)(Session&);
    bool creates_replica = false;  // only `init` may create the database file
};

// The command line read: the command, its operands and options, and the
// global flags.
struct Invocation {
    bool help = false;
    std::optional<std::string> db;
    const Command* command = nullptr;                               // none with --help alone
    std::vector<std::string> words;                                 // the command's operands
    std::multimap<std::string, std::string, std::less<>> options;  // "--score" -> "150"; a flag -> ""
};

// Reads argv (without the program name) with CLI11 against `table`.
// "--name value" and "--name=value" are options; "--" ends them. Throws
// UsageError: "unknown command", an option the command does not have, a
// missing value.
Invocation parse_args(std::span<char* const> args, std::span<const Command> table);

void print_usage(std::ostream& out, std::span<const Command> table);
void print_command_usage(std::ostream& out, const Command& command);

// What a running command sees: its checked operands and options, the replica
// (opened on first use) and where to print.
class Session {
  public:
    // Checks the operands and options against the command's synopsis.
    Session(const Command& command, std::string db_path, std::vector<std::string> operands,
            std::multimap<std::string, std::string, std::less<>> options, std::ostream& out);

    const Command& command() const noexcept { return command_; }
    const std::string& db_path() const noexcept { return db_path_; }
    lindra::Replica& replica();
    // The replica, opened if it is not yet, handed over for good (sign-out
    // closes and deletes it); replica() must not be used after.
    lindra::Replica take_replica();
    std::ostream& out() noexcept { return out_; }

    const std::string& operand(std::size_t i) const { return operands_.at(i); }
    std::optional<std::string> optional_operand(std::size_t i) const;
    std::optional<std::string> option(std::string_view name) const;
    // Every value of a repeatable option, in the order given.
    std::vector<std::string> options(std::string_view name) const;
    bool flag(std::string_view name) const { return option(name).has_value(); }
    // A whole number option, checked to fit `int` (UsageError otherwise).
    std::optional<int> int_option(std::string_view name) const;
    std::optional<std::int64_t> int64_option(std::string_view name) const;

    // The process's exit status once the command has run without throwing.
    int exit_status() const noexcept { return exit_status_; }
    void set_exit_status(int status) noexcept { exit_status_ = status; }

  private:
    const Command& command_;
    std::string db_path_;
    std::vector<std::string> operands_;
    std::multimap<std::string, std::string, std::less<>> options_;
    std::ostream& out_;
    std::optional<lindra::Replica> replica_;
    int exit_status_ = 0;
};

}  // namespace tablet
