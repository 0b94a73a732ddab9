#include "cli.hpp"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <limits>
#include <ostream>

namespace tablet {
namespace {

std::vector<std::string_view> split_words(std::string_view text) {
    std::vector<std::string_view> out;
    std::size_t pos = 0;
    while (pos < text.size()) {
        const auto start = text.find_first_not_of(' ', pos);
        if (start == std::string_view::npos) break;
        const auto end = std::min(text.find(' ', start), text.size());
        out.push_back(text.substr(start, end - start));
        pos = end;
    }
    return out;
}

// "--score N" -> "--score"
std::string_view option_name(std::string_view spec) {
    return spec.substr(0, spec.find(' '));
}

bool is_flag(std::string_view spec) { return spec.find(' ') == std::string_view::npos; }
bool is_repeatable(std::string_view spec) { return spec.ends_with("..."); }

std::string synopsis(const Command& c) {
    std::string s(c.name);
    if (!c.operands.empty()) s += " " + std::string(c.operands);
    for (const auto o : c.options) s += " [" + std::string(o) + "]";
    return s;
}

// An operand "a|b|c" must be one of its words.
void check_choice(const Command& c, std::string_view spec, const std::string& value) {
    if (spec.find('|') == std::string_view::npos) return;
    std::string choices;
    std::size_t pos = 0;
    while (pos <= spec.size()) {
        const auto end = std::min(spec.find('|', pos), spec.size());
        const auto choice = spec.substr(pos, end - pos);
        if (choice == value) return;
        choices += (choices.empty() ? "" : ", ") + std::string(choice);
        pos = end + 1;
    }
    throw UsageError(std::string(c.name) + ": expected one of " + choices + ", not \"" + value + "\"");
}

std::int64_t parse_number(std::string_view option, const std::string& text) {
    std::int64_t v = 0;
    const auto* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, v);
    if (ec != std::errc{} || ptr != end || text.empty())
        throw UsageError(std::string(option) + ": \"" + text + "\" is not a whole number");
    return v;
}

}  // namespace

Invocation parse_args(std::span<char* const> args, std::span<const Command> table) {
    const auto flag = [&](std::string_view name) {
        for (const auto& c : table)
            for (const auto spec : c.options)
                if (is_flag(spec) && spec == name) return true;
        return false;
    };
    Invocation inv;
    bool options_ended = false;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string_view arg = args[i];
        if (options_ended || !(arg.starts_with("--") || arg == "-h")) {
            inv.words.emplace_back(arg);
        } else if (arg == "--") {
            options_ended = true;
        } else if (arg == "--help" || arg == "-h") {
            inv.help = true;
        } else {
            std::string name(arg), value;
            if (const auto eq = arg.find('='); eq != std::string_view::npos) {
                name = arg.substr(0, eq);
                value = arg.substr(eq + 1);
            } else if (flag(name)) {
                // no value
            } else if (i + 1 < args.size()) {
                value = args[++i];
            } else {
                throw UsageError(name + " needs a value");
            }
            inv.options.emplace(name, std::move(value));
        }
    }
    if (inv.options.count("--db") > 1) throw UsageError("--db is given twice");
    if (const auto db = inv.options.find("--db"); db != inv.options.end()) {
        inv.db = db->second;
        inv.options.erase(db);
    }
    return inv;
}

const Command& find_command(std::span<const Command> table, const std::vector<std::string>& words,
                            std::size_t& consumed) {
    if (words.empty()) throw UsageError("no command given");
    const std::string one = words[0];
    const std::string two = words.size() > 1 ? one + " " + words[1] : std::string();
    for (const auto& c : table) {
        if (!two.empty() && c.name == two) {
            consumed = 2;
            return c;
        }
    }
    for (const auto& c : table) {
        if (c.name == one) {
            consumed = 1;
            return c;
        }
    }
    std::string subcommands;
    for (const auto& c : table)
        if (c.name.starts_with(one + " ")) subcommands += " " + std::string(c.name.substr(one.size() + 1));
    if (!subcommands.empty())
        throw UsageError(one + " needs one of:" + subcommands +
                         (words.size() > 1 ? " (not \"" + words[1] + "\")" : std::string()));
    throw UsageError("unknown command \"" + one + "\"");
}

void print_command_usage(std::ostream& out, const Command& c) {
    out << "  " << synopsis(c) << "\n      " << c.summary << '\n';
}

void print_usage(std::ostream& out, std::span<const Command> table) {
    out << "usage: lindra-tablet --db PATH COMMAND [OPERANDS] [OPTIONS]\n"
           "\n"
           "The tablet's local copy of mentor-group and course data. Every write is one\n"
           "transaction with its outbox entry and waits there for the next sync.\n"
           "PERSON, GROUP, MODULE, GATHERING and ORG are ids or names; the first words of a\n"
           "name are enough when they are unique (\"ola\", \"m3\", \"g1\").\n"
           "\n"
           "commands:\n";
    for (const auto& c : table) print_command_usage(out, c);
    out << "\n"
           "options:\n"
           "  --db PATH   the replica's database file (required by every command)\n"
           "  --help      this text\n"
           "  --          ends the options; what follows are operands\n"
           "\n"
           "exit status: 0 done, 1 error (nothing was written), 2 wrong usage,\n"
           "             3 synced, but the server refused writes (lindra-tablet refused lists them)\n";
}

Session::Session(const Command& command, std::string db_path, std::vector<std::string> operands,
                 std::multimap<std::string, std::string, std::less<>> options, std::ostream& out)
    : command_(command),
      db_path_(std::move(db_path)),
      operands_(std::move(operands)),
      options_(std::move(options)),
      out_(out) {
    const auto specs = split_words(command.operands);
    std::size_t required = 0;
    for (const auto s : specs) required += s.starts_with('[') ? 0 : 1;
    if (operands_.size() < required || operands_.size() > specs.size())
        throw UsageError("usage: lindra-tablet --db PATH " + synopsis(command));
    for (std::size_t i = 0; i < operands_.size(); ++i) check_choice(command, specs[i], operands_[i]);
    for (const auto& [name, value] : options_) {
        const auto spec = std::find_if(command.options.begin(), command.options.end(),
                                       [&](std::string_view s) { return option_name(s) == name; });
        if (spec == command.options.end()) throw UsageError(std::string(command.name) + " has no option " + name);
        if (is_flag(*spec) && !value.empty()) throw UsageError(name + " takes no value");
        if (!is_repeatable(*spec) && options_.count(name) > 1) throw UsageError(name + " is given twice");
    }
}

lindra::Replica& Session::replica() {
    if (!replica_) {
        if (!command_.creates_replica && !std::filesystem::exists(db_path_))
            throw lindra::Error(
                lindra::Errc::not_found,
                "no replica at " + db_path_ + "; create it with: lindra-tablet --db " + db_path_ + " init");
        replica_.emplace(db_path_);
    }
    return *replica_;
}

std::optional<std::string> Session::optional_operand(std::size_t i) const {
    if (i < operands_.size()) return operands_[i];
    return std::nullopt;
}
lindra::Replica Session::take_replica() {
    replica();
    lindra::Replica out = std::move(*replica_);
    replica_.reset();
    return out;
}


std::optional<std::string> Session::option(std::string_view name) const {
    if (const auto it = options_.find(name); it != options_.end()) return it->second;
    return std::nullopt;
}

std::vector<std::string> Session::options(std::string_view name) const {
    std::vector<std::string> out;
    for (auto [it, end] = options_.equal_range(name); it != end; ++it) out.push_back(it->second);
    return out;
}

std::optional<std::int64_t> Session::int64_option(std::string_view name) const {
    const auto text = option(name);
    if (!text) return std::nullopt;
    return parse_number(name, *text);
}

std::optional<int> Session::int_option(std::string_view name) const {
    const auto v = int64_option(name);
    if (!v) return std::nullopt;
    if (*v < std::numeric_limits<int>::min() || *v > std::numeric_limits<int>::max())
        throw UsageError(std::string(name) + ": " + std::to_string(*v) + " is too large");
    return static_cast<int>(*v);
}

}  // namespace tablet
