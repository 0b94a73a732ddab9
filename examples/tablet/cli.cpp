#include "cli.hpp"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <charconv>
#include <deque>
#include <map>
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
    // CLI11 reads the command line: one subcommand per command (a two-word
    // command under its first word), each with its options and one
    // positional list of operands, checked against the synopsis by
    // Session. --db and --help go anywhere (fallthrough).
    struct Target {
        const Command* command = nullptr;
        CLI::App* app = nullptr;
        std::vector<std::string> operands;
        std::map<std::string, std::vector<std::string>, std::less<>> values;
        std::map<std::string, std::int64_t, std::less<>> flags;
    };
    std::deque<Target> targets;  // stable addresses for CLI11's references
    std::map<std::string, CLI::App*, std::less<>> groups;
    bool help = false;
    std::string db;
    CLI::App app("lindra-tablet", "lindra-tablet");
    app.set_help_flag();  // our own --help: print_usage
    app.allow_extras();   // reported below, in our words
    app.add_flag("--help,-h", help);
    auto* db_opt = app.add_option("--db", db)->multi_option_policy(CLI::MultiOptionPolicy::Throw);
    app.require_subcommand(0, 1);
    const auto configure = [](CLI::App* sub) {
        sub->fallthrough();
        sub->allow_extras();
        sub->set_help_flag();
        sub->require_subcommand(0, 1);
    };
    for (const auto& c : table) {
        const auto words = split_words(c.name);
        const std::string first(words.front());
        CLI::App* sub = nullptr;
        if (words.size() == 2) {
            auto& group = groups[first];
            if (!group) {  // a group may be a command of its own too ("refused")
                group = app.add_subcommand(first);
                configure(group);
            }
            sub = group->add_subcommand(std::string(words.back()));
            configure(sub);
        } else if (const auto it = groups.find(first); it != groups.end()) {
            sub = it->second;
        } else {
            sub = groups[first] = app.add_subcommand(first);
            configure(sub);
        }
        auto& t = targets.emplace_back();
        t.command = &c;
        t.app = sub;
        sub->add_option("operands", t.operands);
        for (const auto spec : c.options) {
            const std::string name(option_name(spec));
            if (is_flag(spec))
                sub->add_flag(name, t.flags[name]);
            else
                sub->add_option(name, t.values[name])->allow_extra_args(false)->expected(1);
        }
    }
    Invocation inv;
    std::vector<std::string> argv(args.begin(), args.end());
    if (!argv.empty() && argv.front() == "help") {  // "help" is --help
        inv.help = true;
        return inv;
    }
    // After "--" every word is an operand ("reflect ola -- '-- a dash'").
    std::vector<std::string> after_dashes;
    if (const auto dashes = std::find(argv.begin(), argv.end(), "--"); dashes != argv.end()) {
        after_dashes.assign(dashes + 1, argv.end());
        argv.erase(dashes, argv.end());
    }
    std::reverse(argv.begin(), argv.end());  // CLI11 takes them last first
    try {
        app.parse(argv);
    } catch (const CLI::ArgumentMismatch& e) {  // "--score: 1 required TEXT missing", "--db: At Most 1 ..."
        const std::string what = e.what();
        const auto name = what.substr(0, what.find(':'));
        throw UsageError(name + (what.find("At Most") != std::string::npos ? " is given twice" : " needs a value"));
    } catch (const CLI::ParseError& e) {
        throw UsageError(e.what());
    }
    inv.help = help;
    if (db_opt->count()) inv.db = db;

    // The command parsed: the deepest subcommand given.
    CLI::App* leaf = nullptr;
    for (auto* at = &app; !at->get_subcommands().empty();) at = leaf = at->get_subcommands().front();
    const Target* target = nullptr;
    for (const auto& t : targets)
        if (t.app == leaf) target = &t;
    const auto rest = app.remaining();
    if (!leaf) {
        if (help) return inv;
        if (rest.empty()) throw UsageError("no command given");
        if (!rest.front().starts_with("-")) throw UsageError("unknown command \"" + rest.front() + "\"");
        throw UsageError("unknown option " + rest.front().substr(0, rest.front().find('=')));
    }
    if (!target) {  // a group's first word alone, or with a word it does not know
        std::string subcommands;
        for (const auto* sub : leaf->get_subcommands({})) subcommands += " " + sub->get_name();
        const auto word = std::find_if(rest.begin(), rest.end(), [](const std::string& w) { return !w.starts_with("-"); });
        throw UsageError(leaf->get_name() + " needs one of:" + subcommands +
                         (word == rest.end() ? std::string() : " (not \"" + *word + "\")"));
    }
    inv.command = target->command;
    if (help) return inv;
    for (const auto& word : rest)
        if (word.starts_with("-"))
            throw UsageError(std::string(target->command->name) + " has no option " + word.substr(0, word.find('=')));
    inv.words = target->operands;
    inv.words.insert(inv.words.end(), after_dashes.begin(), after_dashes.end());
    for (const auto& [name, values] : target->values)
        for (const auto& v : values) inv.options.emplace(name, v);
    for (const auto& [name, n] : target->flags)
        for (std::int64_t i = 0; i < n; ++i) inv.options.emplace(name, "");
    return inv;
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
