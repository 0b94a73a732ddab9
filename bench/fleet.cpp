// lindra-bench fleet: many tablets against real lindra-server processes.
//
// K servers (the built lindra-server binary, over TLS) and N simulated
// tablets, each with its own replica and token: groups of one mentor and
// eight candidates; candidates record module progress and write
// reflections, mentors plan and hold gatherings, record attendance and
// confirm candidates. Rounds start on a timer at an offered aggregate rate
// (open loop) and run on a bounded pool of client threads; a tablet is in
// at most one round at a time, and one that is still busy when due is
// counted late and skips that round. Latency runs from a round's scheduled
// start, so queueing shows.
//
// Then, with --big-push N, an admin pushes N changes in one round while a
// bystander tablet does no-op rounds. Last, every tablet syncs twice more
// and the bench checks that every write is in the server's log exactly
// once and that every tablet holds exactly the rows it may read, as the
// server has them. A failed check makes the exit status 1.
#include "bench.hpp"
#include "fleet_checks.hpp"
#include "fleet_server.hpp"

#include <lindra/error.hpp>
#include <lindra/replica.hpp>
#include <lindra/server.hpp>
#include <lindra/sync.hpp>
#include <lindra/testing/certs.hpp>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace lindra::bench {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr int kGroupSize = 9;  // one mentor, eight candidates
constexpr int kModules = 20;

struct FleetArgs {
    int devices = 1000;
    double rate = 400;  // offered rounds per second, all tablets together
    int servers = 1;
    std::string store = "sqlite";
    std::string db;  // PostgreSQL connection string
    bool json = false;
    double duration = 30;
    std::int64_t big_push = 150'000;
    std::string server_bin;
    int clients = 32;  // client threads
    bool alternate = false;
    std::uint64_t seed = 0;
    std::string replica_dir;
    bool keep = false;
};

struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

int usage(const char* why) {
    if (why && *why) std::fprintf(stderr, "lindra-bench fleet: %s\n", why);
    std::fprintf(stderr,
                 "usage: lindra-bench fleet [--devices N] [--rate R] [--servers K] [--store sqlite|postgres]\n"
                 "                          [--db postgresql://...] [--json] [--duration S] [--big-push N]\n"
                 "                          [--server-bin PATH] [--clients N] [--alternate] [--seed N]\n"
                 "                          [--replica-dir DIR] [--keep]\n"
                 "  --devices N      simulated tablets (1000), in groups of a mentor and 8 candidates\n"
                 "  --rate R         offered sync rounds per second, all tablets together (400)\n"
                 "  --servers K      lindra-server processes (1); tablet i syncs with server i %% K\n"
                 "  --store S        sqlite (K must be 1) or postgres (--db, or LINDRA_TEST_PG)\n"
                 "  --duration S     seconds of timed rounds (30)\n"
                 "  --big-push N     then an admin pushes N changes while a bystander syncs (150000; 0: skip)\n"
                 "  --server-bin P   lindra-server (default: next to lindra-bench)\n"
                 "  --clients N      client threads running rounds (32)\n"
                 "  --alternate      a tablet's rounds go to its servers in turn (i + round) %% K\n"
                 "  --replica-dir D  where the tablets' replicas live (default /dev/shm: the tablets'\n"
                 "                   disks are not the server's)\n"
                 "  --keep           keep the temporary files\n"
                 "  --json           print one JSON object with every figure on the last line\n");
    return 2;
}

FleetArgs parse_args(int argc, char** argv) {
    FleetArgs a;
    a.seed = std::random_device{}();
    auto number = [&](int& i, const std::string& flag) -> double {
        if (i + 1 >= argc) throw UsageError("missing value for " + flag);
        char* end = nullptr;
        const double v = std::strtod(argv[++i], &end);
        if (*end != '\0' || !std::isfinite(v) || v < 0) throw UsageError(flag + " wants a number >= 0");
        return v;
    };
    auto text = [&](int& i, const std::string& flag) -> std::string {
        if (i + 1 >= argc) throw UsageError("missing value for " + flag);
        return argv[++i];
    };
    for (int i = 2; i < argc; ++i) {
        const std::string f = argv[i];
        if (f == "--help" || f == "-h") throw UsageError("");
        if (f == "--json")
            a.json = true;
        else if (f == "--alternate")
            a.alternate = true;
        else if (f == "--keep")
            a.keep = true;
        else if (f == "--devices")
            a.devices = static_cast<int>(number(i, f));
        else if (f == "--rate")
            a.rate = number(i, f);
        else if (f == "--servers")
            a.servers = static_cast<int>(number(i, f));
        else if (f == "--duration")
            a.duration = number(i, f);
        else if (f == "--big-push")
            a.big_push = static_cast<std::int64_t>(number(i, f));
        else if (f == "--clients")
            a.clients = static_cast<int>(number(i, f));
        else if (f == "--seed")
            a.seed = static_cast<std::uint64_t>(number(i, f));
        else if (f == "--store")
            a.store = text(i, f);
        else if (f == "--db")
            a.db = text(i, f);
        else if (f == "--server-bin")
            a.server_bin = text(i, f);
        else if (f == "--replica-dir")
            a.replica_dir = text(i, f);
        else
            throw UsageError("unknown option " + f);
    }
    if (a.devices < 2) throw UsageError("--devices must be at least 2");
    if (a.rate <= 0) throw UsageError("--rate must be positive");
    if (a.servers < 1) throw UsageError("--servers must be at least 1");
    if (a.clients < 1) throw UsageError("--clients must be at least 1");
    if (a.duration <= 0) throw UsageError("--duration must be positive");
    if (a.store == "sqlite") {
        if (a.servers != 1)
            throw UsageError("--store sqlite takes --servers 1: an SQLite store belongs to one server process");
        if (!a.db.empty()) throw UsageError("--db is for --store postgres");
    } else if (a.store == "postgres") {
        if (a.db.empty())
            if (const char* env = std::getenv("LINDRA_TEST_PG")) a.db = env;
        if (a.db.empty()) throw UsageError("--store postgres needs --db postgresql://... (or LINDRA_TEST_PG)");
    } else {
        throw UsageError("--store is sqlite or postgres");
    }
    return a;
}

// ---- small helpers ------------------------------------------------------

double ms_between(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
}

// The q-quantile (nearest rank) of sorted values; 0 if there are none.
double quantile(const std::vector<double>& sorted, double q) {
    if (sorted.empty()) return 0;
    const auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(sorted.size())));
    return sorted[std::clamp<std::size_t>(rank, 1, sorted.size()) - 1];
}

std::string load_average() {
    std::ifstream in("/proc/loadavg");
    double a = 0, b = 0, c = 0;
    in >> a >> b >> c;
    char out[64];
    std::snprintf(out, sizeof out, "%.2f %.2f %.2f", a, b, c);
    return out;
}

double own_cpu_ms() {
    rusage u{};
    ::getrusage(RUSAGE_SELF, &u);
    return (static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1000.0) +
           static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1000.0;
}

void write_file(const std::filesystem::path& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out) throw std::runtime_error("cannot write " + path.string());
}

std::string json_string(std::string_view s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        if (static_cast<unsigned char>(c) < 0x20) {
            char esc[8];
            std::snprintf(esc, sizeof esc, "\\u%04x", c);
            out += esc;
            continue;
        }
        out += c;
    }
    return out + "\"";
}

// A fixed pool of threads running jobs in order of posting.
class Pool {
  public:
    explicit Pool(int threads) {
        for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
    }
    ~Pool() {
        {
            std::lock_guard lock(mutex_);
            closing_ = true;
        }
        wake_.notify_all();
        for (auto& t : threads_) t.join();
    }
    void post(std::function<void()> job) {
        {
            std::lock_guard lock(mutex_);
            jobs_.push_back(std::move(job));
            ++pending_;
        }
        wake_.notify_one();
    }
    // Waits until every job posted so far has run; false if `limit` passed first.
    bool wait_idle(std::chrono::seconds limit) {
        std::unique_lock lock(mutex_);
        return idle_.wait_for(lock, limit, [this] { return pending_ == 0; });
    }

  private:
    void run() {
        for (;;) {
            std::function<void()> job;
            {
                std::unique_lock lock(mutex_);
                wake_.wait(lock, [this] { return closing_ || !jobs_.empty(); });
                if (jobs_.empty()) return;
                job = std::move(jobs_.front());
                jobs_.pop_front();
            }
            job();  // jobs catch their own errors
            std::lock_guard lock(mutex_);
            if (--pending_ == 0) idle_.notify_all();
        }
    }
    std::mutex mutex_;  // guards the four below
    std::condition_variable wake_, idle_;
    std::deque<std::function<void()>> jobs_;
    std::size_t pending_ = 0;
    bool closing_ = false;
    std::vector<std::thread> threads_;
};

// The io_context every tablet's SyncClient runs on, and its threads: a
// client per tablet keeps its TLS context, and the bench holds a few
// threads rather than one per tablet.
class IoPool {
  public:
    explicit IoPool(int threads) : guard_(io_.get_executor()) {
        for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { io_.run(); });
    }
    ~IoPool() {
        guard_.reset();
        io_.stop();
        for (auto& t : threads_) t.join();
    }
    boost::asio::io_context& io() noexcept { return io_; }

  private:
    boost::asio::io_context io_;
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_;
    std::vector<std::thread> threads_;
};

// The first few error messages, and how many there were.
class Errors {
  public:
    void add(std::string message) {
        std::lock_guard lock(mutex_);
        if (messages_.size() < 10) messages_.push_back(std::move(message));
        ++count_;
    }
    std::size_t count() const {
        std::lock_guard lock(mutex_);
        return count_;
    }
    std::vector<std::string> messages() const {
        std::lock_guard lock(mutex_);
        return messages_;
    }

  private:
    mutable std::mutex mutex_;  // guards the two below
    std::vector<std::string> messages_;
    std::size_t count_ = 0;
};

// ---- the simulated organisation ------------------------------------------

struct World {
    Id org, import_org, course;
    std::vector<Id> modules;
};

struct Tablet {
    std::string name;
    int index = 0;
    Id person, group;
    bool mentor = false;
    std::vector<Id> candidates;  // a mentor's: the candidates of the group
    std::vector<Id> members;     // every member of the group
    std::string token;
    std::unique_ptr<Replica> replica;
    std::vector<std::unique_ptr<SyncClient>> clients;  // by server, made on first use; before `replica` goes
    std::int64_t writes = 0;                           // outbox entries made: what the server's log must hold once each
    std::int64_t rounds = 0;                           // rounds that succeeded
    std::vector<Id> gatherings;                        // a mentor's
    std::mt19937_64 rng;
    std::atomic<bool> busy{false};
};

int roll(std::mt19937_64& rng, int n) {
    return static_cast<int>(rng() % static_cast<std::uint64_t>(n));
}

std::string reflection_text(std::mt19937_64& rng) {
    static constexpr const char* parts[] = {
        "Today I learned to ask the patient what matters most to them. ",
        "The family meeting was hard; next time I will prepare the questions beforehand. ",
        "Breathlessness can be eased by positioning and a calm presence. ",
        "I noticed my own tiredness after the night shift and talked with my mentor. ",
        "The module on pain assessment changed how I observe residents with dementia. ",
    };
    std::string out;
    for (int i = 0, n = 1 + roll(rng, 3); i < n; ++i) out += parts[roll(rng, 5)];
    return out;
}

void candidate_write(Tablet& t, const World& w) {
    const Id& m = w.modules[static_cast<std::size_t>(roll(t.rng, kModules))];
    const int kind = roll(t.rng, 100);
    if (kind < 15)
        t.replica->start_module(t.person, m, t.group);
    else if (kind < 45)
        t.replica->add_time_spent(t.person, m, t.group, 60 + roll(t.rng, 600));
    else if (kind < 70)
        t.replica->complete_module(t.person, m, t.group, 50 + roll(t.rng, 51), 60 + roll(t.rng, 900));
    else
        t.replica->write_reflection(t.person, t.group, m, reflection_text(t.rng));
}

void mentor_write(Tablet& t, const World& w) {
    const int kind = roll(t.rng, 100);
    if (t.gatherings.empty() || (kind < 15 && t.gatherings.size() < 12)) {
        const int ordinal = static_cast<int>(t.gatherings.size()) + 1;
        t.gatherings.push_back(
            t.replica->plan_gathering({.group = t.group,
                                       .ordinal = ordinal,
                                       .title = "Gathering " + std::to_string(ordinal),
                                       .scheduled_at = 1'790'000'000'000 + std::int64_t{ordinal} * 7 * 24 * 3'600'000,
                                       .mode = roll(t.rng, 4) == 0 ? GatheringMode::digital : GatheringMode::in_person,
                                       .module = w.modules[static_cast<std::size_t>(roll(t.rng, kModules))]}));
        return;
    }
    const Id& g = t.gatherings[static_cast<std::size_t>(roll(t.rng, static_cast<int>(t.gatherings.size())))];
    if (t.candidates.empty() || kind < 25) {
        t.replica->hold_gathering(g);
        return;
    }
    const Id& who = t.candidates[static_cast<std::size_t>(roll(t.rng, static_cast<int>(t.candidates.size())))];
    if (kind < 85) {
        static constexpr AttendanceStatus statuses[] = {AttendanceStatus::present, AttendanceStatus::present,
                                                        AttendanceStatus::present, AttendanceStatus::absent,
                                                        AttendanceStatus::excused};
        t.replica->record_attendance(g, who, statuses[roll(t.rng, 5)], roll(t.rng, 3) == 0 ? "came late" : "");
    } else {
        t.replica->confirm_candidate(t.group, who, t.person, "Took part in the gatherings and the reflections.");
    }
}

// Most rounds carry 0-3 writes: none 40%, one 30%, two 20%, three 10%.
void make_writes(Tablet& t, const World& w) {
    const int r = roll(t.rng, 10);
    const int n = r < 4 ? 0 : r < 7 ? 1 : r < 9 ? 2 : 3;
    if (n == 0) return;
    const auto before = t.replica->outbox_size();
    for (int i = 0; i < n; ++i) t.mentor ? mentor_write(t, w) : candidate_write(t, w);
    t.writes += t.replica->outbox_size() - before;
}

struct Pki {
    std::string ca_pem;
    std::filesystem::path cert, key, token_key;
    std::string token_key_pem;
};

Pki make_pki(const std::filesystem::path& dir) {
    Pki p;
    const auto ca = testing::make_ca("lindra fleet bench CA");
    const auto leaf = testing::issue_leaf(ca, {.dns_names = {"localhost"}, .ip_addresses = {"127.0.0.1"}});
    p.ca_pem = ca.certificate_pem;
    p.cert = dir / "server.pem";
    p.key = dir / "server.key";
    p.token_key = dir / "token.key";
    p.token_key_pem = generate_token_key();
    write_file(p.cert, leaf.certificate_pem);
    write_file(p.key, leaf.private_key_pem);
    write_file(p.token_key, p.token_key_pem);
    std::filesystem::permissions(p.key, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    return p;
}

std::string find_server_bin(const FleetArgs& a) {
    std::string bin = a.server_bin;
    if (bin.empty()) bin = (std::filesystem::read_symlink("/proc/self/exe").parent_path() / "lindra-server").string();
    if (::access(bin.c_str(), X_OK) != 0)
        throw std::runtime_error("no lindra-server at " + bin + " (build it, or name it with --server-bin)");
    return bin;
}

// Until the server speaks PostgreSQL, `--db postgresql://...` would be taken
// for a file name; refuse before starting anything.
void require_postgres_server(const std::string& bin) {
    std::string command = "'";
    for (char c : bin) command += c == '\'' ? std::string("'\\''") : std::string(1, c);
    command += "' --help 2>&1";
    std::unique_ptr<FILE, int (*)(FILE*)> pipe(::popen(command.c_str(), "r"), ::pclose);
    std::string help;
    char buffer[4096];
    while (pipe && std::fgets(buffer, sizeof buffer, pipe.get())) help += buffer;
    std::transform(help.begin(), help.end(), help.begin(), [](unsigned char c) { return std::tolower(c); });
    if (help.find("postgres") == std::string::npos)
        throw std::runtime_error(bin +
                                 " does not take a PostgreSQL database yet (its --help says nothing of "
                                 "postgres); --store postgres needs a server that does");
}

struct RoundSample {
    double latency_ms;  // from the scheduled start
    double service_ms;  // from sync() to its result
};

// What one phase of rounds measured.
struct Summary {
    std::size_t ok = 0, failed = 0, late = 0, scheduled = 0;
    double p50 = 0, p95 = 0, p99 = 0, max = 0, service_p50 = 0, service_p99 = 0;
    double achieved = 0;
    std::int64_t writes = 0;
};

class Fleet {
  public:
    explicit Fleet(FleetArgs a) : a_(std::move(a)), rng_(a_.seed) {}

    int run();

  private:
    SyncOptions options_for(const std::string& token, int server) const {
        SyncOptions o;
        o.port = ports_[static_cast<std::size_t>(server)];
        o.token = token;
        o.tls.ca_pem = pki_.ca_pem;
        o.app = "lindra-bench-fleet";
        o.connect_timeout = 10s;
        o.io_timeout = 60s;
        return o;
    }
    int server_of(const Tablet& t) const {
        return a_.alternate ? static_cast<int>((t.index + t.rounds) % a_.servers) : t.index % a_.servers;
    }
    SyncClient& client_of(Tablet& t, int server, SyncOptions o = {}) {
        if (t.clients.size() < servers_.size()) t.clients.resize(servers_.size());
        auto& c = t.clients[static_cast<std::size_t>(server)];
        if (!c) {
            const auto progress = std::move(o.on_progress);
            o = options_for(t.token, server);
            o.on_progress = progress;
            c = std::make_unique<SyncClient>(*t.replica, std::move(o), io_->io());
        }
        return *c;
    }
    SyncResult round(Tablet& t) { return client_of(t, server_of(t)).sync(); }
    // One round that must succeed and have every write taken.
    void checked_round(Tablet& t, const char* what, bool until_synced = false) {
        SyncClient& client = client_of(t, server_of(t));
        const auto r = until_synced ? client.wait_until_synced(120s) : client.sync();
        if (!r.ok())
            errors_.add(std::string(what) + ": " + t.name + ": " + std::string(to_string(r.outcome)) + ": " +
                        r.message);
        else if (!r.rejected.empty())
            errors_.add(std::string(what) + ": " + t.name + ": the server refused " +
                        std::to_string(r.rejected.size()) + " writes, the first: " + r.rejected.front().reason);
    }
    void start_servers();
    void seed();
    Summary timed_phase();
    void big_push();
    void final_syncs();
    void stop_servers();
    bool check_exactly_once();
    bool check_convergence();
    void report(const Summary& s) const;

    FleetArgs a_;
    std::mt19937_64 rng_;
    std::filesystem::path dir_, replica_dir_;
    Pki pki_;
    std::string server_bin_;
    std::vector<std::unique_ptr<ServerProcess>> servers_;
    std::vector<std::uint16_t> ports_;
    std::unique_ptr<IoPool> io_;  // outlives the tablets' clients
    World world_;
    std::vector<std::unique_ptr<Tablet>> tablets_;
    std::unique_ptr<Tablet> admin_, importer_, bystander_;
    std::string reference_path_;
    Errors errors_;        // what must not fail: setup, the big push, the final syncs, the servers' exits
    Errors round_errors_;  // timed rounds that failed: a figure under load
    // Figures.
    std::string load_start_, load_end_;
    double server_cpu_ms_ = 0, bench_cpu_ms_ = 0, server_peak_rss_mib_ = 0, server_busy_pct_ = 0;
    double server_wait_ms_ = 0;  // waiting for a CPU, a round
    std::int64_t big_push_changes_ = 0;
    double big_push_s_ = 0, bystander_p50_ = 0, bystander_max_ = 0;
    std::size_t bystander_rounds_ = 0;
    bool exactly_once_ = false, converged_ = false;
    std::vector<std::string> check_lines_;
    std::size_t check_differences_ = 0;
    std::size_t rows_compared_ = 0, tablets_compared_ = 0;
    std::int64_t writes_checked_ = 0;
};

void Fleet::start_servers() {
    server_bin_ = find_server_bin(a_);
    if (a_.store == "postgres") require_postgres_server(server_bin_);
    for (int k = 0; k < a_.servers; ++k) {
        const std::string db = a_.store == "sqlite" ? (dir_ / "server.db").string() : a_.db;
        servers_.push_back(std::make_unique<ServerProcess>(
            server_bin_,
            std::vector<std::string>{"--db", db, "--listen", "127.0.0.1:0", "--token-key", pki_.token_key.string(),
                                     "--cert", pki_.cert.string(), "--key", pki_.key.string(),
                                     // Every tablet is 127.0.0.1 here: one site's share must hold the pool.
                                     "--max-connections-per-address", std::to_string(a_.clients + 16)},
            dir_, dir_ / ("server-" + std::to_string(k) + ".log")));
        try {
            ports_.push_back(servers_.back()->wait_for_port());
        } catch (const std::exception& e) {
            if (a_.store == "postgres")
                throw std::runtime_error("lindra-server refused --db " + a_.db + ": " + e.what());
            throw;
        }
    }
}

void Fleet::seed() {
    auto make = [&](const std::string& name, int index) {
        auto t = std::make_unique<Tablet>();
        t->name = name;
        t->index = index;
        t->rng.seed(a_.seed * 1'000'003 + static_cast<std::uint64_t>(index) + 1);
        t->replica = std::make_unique<Replica>((replica_dir_ / (name + ".db")).string());
        return t;
    };
    admin_ = make("admin", 0);
    admin_->token = issue_token(pki_.token_key_pem, {.user = "fleet-admin", .role = Role::admin});
    const int n = a_.devices;
    for (int i = 0; i < n; ++i) tablets_.push_back(make("tablet-" + std::to_string(i), i));
    bystander_ = make("bystander", 0);

    // The admin registers the catalog, the people, the groups and their members.
    const auto before = admin_->replica->outbox_size();
    admin_->replica->batch([&](Writes& w) {
        world_.org = w.register_organization("Fjordvik", OrganizationKind::municipality);
        world_.import_org = w.register_organization("Fjordvik import", OrganizationKind::care_unit, world_.org);
        world_.course = w.register_course("Palliative care, basic", "2026", "nb", 8);
        for (int m = 1; m <= kModules; ++m)
            world_.modules.push_back(
                w.register_module({.course = world_.course,
                                   .ordinal = m,
                                   .title = "M" + std::to_string(m),
                                   .kind = m % 5 == 0 ? ModuleKind::reflection : ModuleKind::elearning,
                                   .pass_score = m % 4 == 0 ? std::optional<int>(80) : std::nullopt}));
        Id group;
        for (int i = 0; i < n; ++i) {
            auto& t = *tablets_[static_cast<std::size_t>(i)];
            if (i % kGroupSize == 0)
                group = w.create_group({.course = world_.course,
                                        .organization = world_.org,
                                        .name = "Group " + std::to_string(i / kGroupSize + 1),
                                        .starts_on = "2026-01-12",
                                        .ends_on = "2026-06-19"});
            t.group = group;
            t.mentor = i % kGroupSize == 0;
            t.person = w.register_person((t.mentor ? "Mentor " : "Candidate ") + std::to_string(i),
                                         t.mentor ? Profession::nurse : Profession::assistant, world_.org);
            w.add_member(group, t.person, t.mentor ? MemberRole::mentor : MemberRole::candidate);
        }
        bystander_->group = w.create_group({.course = world_.course, .organization = world_.org, .name = "Bystanders"});
        bystander_->person = w.register_person("Bystander", Profession::assistant, world_.org);
        w.add_member(bystander_->group, bystander_->person, MemberRole::candidate);
    });
    admin_->writes += admin_->replica->outbox_size() - before;
    bystander_->members = {bystander_->person};
    bystander_->token =
        issue_token(pki_.token_key_pem, {.user = "bystander", .role = Role::candidate, .person = bystander_->person});
    for (auto& t : tablets_) {
        const auto mentor_index = static_cast<std::size_t>(t->index / kGroupSize * kGroupSize);
        for (auto i = mentor_index; i < std::min<std::size_t>(mentor_index + kGroupSize, tablets_.size()); ++i) {
            t->members.push_back(tablets_[i]->person);
            if (t->mentor && i != mentor_index) t->candidates.push_back(tablets_[i]->person);
        }
        t->token =
            issue_token(pki_.token_key_pem,
                        {.user = t->name, .role = t->mentor ? Role::mentor : Role::candidate, .person = t->person});
    }
    checked_round(*admin_, "seeding", true);
    if (errors_.count() > 0) throw std::runtime_error("seeding failed: " + errors_.messages().front());

    // Every tablet's first sync (its catalog and group), then its first writes.
    Pool pool(a_.clients);
    auto first = [&](Tablet& t) {
        pool.post([&] {
            try {
                checked_round(t, "first sync");
                if (&t != bystander_.get()) make_writes(t, world_);  // the bystander only watches
            } catch (const std::exception& e) {
                errors_.add("first sync: " + t.name + ": " + e.what());
            }
        });
    };
    for (auto& t : tablets_) first(*t);
    first(*bystander_);
    if (!pool.wait_idle(600s)) throw std::runtime_error("the tablets' first syncs took over 10 minutes");
    if (errors_.count() > 0) throw std::runtime_error(errors_.messages().front());
}

Summary Fleet::timed_phase() {
    std::vector<Tablet*> order;
    for (auto& t : tablets_) order.push_back(t.get());
    std::shuffle(order.begin(), order.end(), rng_);

    std::mutex samples_mutex;
    std::vector<RoundSample> samples;  // guarded by samples_mutex
    Clock::time_point last_end;        // guarded by samples_mutex
    std::atomic<std::size_t> failed{0};
    std::atomic<std::int64_t> writes{0};
    Summary s;

    load_start_ = load_average();
    double cpu0 = 0, wait0 = 0;
    for (auto& p : servers_) {
        cpu0 += p->cpu_ms();
        wait0 += p->run_queue_wait_ms();
    }
    const double own0 = own_cpu_ms();
    // How often the servers are busy (a thread running, runnable or in a
    // disk wait): near 100% when they are the bottleneck.
    std::atomic<bool> sampling{true};
    std::size_t samples_busy = 0, samples_taken = 0;
    std::thread sampler([&] {
        while (sampling) {
            for (auto& p : servers_) {
                samples_busy += p->busy();
                ++samples_taken;
            }
            std::this_thread::sleep_for(5ms);
        }
    });
    struct StopSampler {
        std::atomic<bool>& on;
        std::thread& t;
        ~StopSampler() {
            on = false;
            t.join();
        }
    };
    {
        StopSampler stop_sampler{sampling, sampler};
        Pool pool(a_.clients);
        const auto t0 = Clock::now() + 50ms;
        last_end = t0;
        const auto period = std::chrono::duration<double>(1.0 / a_.rate);
        const auto end = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(a_.duration));
        for (std::size_t k = 0;; ++k) {
            const auto due = t0 + std::chrono::duration_cast<Clock::duration>(period * static_cast<double>(k));
            if (due >= end) break;
            std::this_thread::sleep_until(due);
            ++s.scheduled;
            Tablet& t = *order[k % order.size()];
            bool idle = false;
            if (!t.busy.compare_exchange_strong(idle, true)) {
                ++s.late;
                continue;
            }
            pool.post([&, due] {
                try {
                    const auto start = Clock::now();
                    const auto r = round(t);
                    const auto done = Clock::now();
                    if (r.ok() && r.rejected.empty()) {
                        std::lock_guard lock(samples_mutex);
                        samples.push_back({ms_between(due, done), ms_between(start, done)});
                        last_end = std::max(last_end, done);
                    } else {
                        ++failed;
                        round_errors_.add("round: " + t.name + ": " + std::string(to_string(r.outcome)) + ": " +
                                          r.message +
                                          (r.rejected.empty() ? "" : "; refused: " + r.rejected.front().reason));
                    }
                    if (r.ok()) ++t.rounds;
                    const auto w0 = t.writes;
                    make_writes(t, world_);  // the user works until the next round
                    writes += t.writes - w0;
                } catch (const std::exception& e) {
                    ++failed;
                    round_errors_.add("round: " + t.name + ": " + e.what());
                }
                t.busy = false;
            });
        }
        if (!pool.wait_idle(600s)) throw std::runtime_error("rounds still running 10 minutes after the last was due");
        std::lock_guard lock(samples_mutex);
        s.achieved = samples.empty() ? 0 : static_cast<double>(samples.size()) / (ms_between(t0, last_end) / 1000.0);
    }
    server_busy_pct_ =
        samples_taken ? 100.0 * static_cast<double>(samples_busy) / static_cast<double>(samples_taken) : 0;
    double cpu1 = 0, wait1 = 0;
    for (auto& p : servers_) {
        cpu1 += p->cpu_ms();
        wait1 += p->run_queue_wait_ms();
    }
    bench_cpu_ms_ = own_cpu_ms() - own0;
    load_end_ = load_average();

    std::vector<double> lat, service;
    for (const auto& x : samples) {
        lat.push_back(x.latency_ms);
        service.push_back(x.service_ms);
    }
    std::sort(lat.begin(), lat.end());
    std::sort(service.begin(), service.end());
    s.ok = lat.size();
    s.failed = failed;
    s.writes = writes;
    s.p50 = quantile(lat, 0.50);
    s.p95 = quantile(lat, 0.95);
    s.p99 = quantile(lat, 0.99);
    s.max = lat.empty() ? 0 : lat.back();
    s.service_p50 = quantile(service, 0.50);
    s.service_p99 = quantile(service, 0.99);
    server_cpu_ms_ = s.ok ? (cpu1 - cpu0) / static_cast<double>(s.ok) : 0;
    server_wait_ms_ = s.ok ? (wait1 - wait0) / static_cast<double>(s.ok) : 0;
    bench_cpu_ms_ = s.ok ? bench_cpu_ms_ / static_cast<double>(s.ok) : 0;
    return s;
}

void Fleet::big_push() {
    importer_ = std::make_unique<Tablet>();
    importer_->name = "importer";
    importer_->replica = std::make_unique<Replica>((replica_dir_ / "importer.db").string());
    importer_->token = issue_token(pki_.token_key_pem, {.user = "fleet-importer", .role = Role::admin});
    checked_round(*importer_, "the importer's first sync", true);  // what the fleet wrote, before timing

    // A registration list: people of a care unit, in no group the bystander
    // is in. One registration first, to learn how many changes one makes.
    std::int64_t written = 0;
    auto register_people = [&](std::int64_t n) {
        importer_->replica->batch([&](Writes& w) {
            for (std::int64_t i = 0; i < n; ++i, ++written)
                w.register_person("Imported " + std::to_string(written), Profession::health_care_worker,
                                  world_.import_org);
        });
    };
    register_people(1);
    const auto first = importer_->replica->outbox(1);
    const auto per_write =
        std::max<std::int64_t>(1, first.empty() ? 1 : static_cast<std::int64_t>(first.front().changes.size()));
    const std::int64_t total = (a_.big_push + per_write - 1) / per_write;
    while (written < total) register_people(std::min<std::int64_t>(1000, total - written));
    importer_->writes = importer_->replica->outbox_size();
    big_push_changes_ = 0;
    for (const auto& e : importer_->replica->outbox(static_cast<std::size_t>(importer_->writes)))
        big_push_changes_ += static_cast<std::int64_t>(e.changes.size());

    // The push is over once the server has acknowledged every change (or
    // the round has moved on), as the client reports it after each batch.
    std::atomic<bool> pushed{false};
    std::atomic<Clock::rep> pushed_at{0};
    auto push_over = [&pushed, &pushed_at] {
        if (!pushed.exchange(true)) pushed_at = Clock::now().time_since_epoch().count();
    };
    SyncOptions o;
    o.on_progress = [push_over, total = big_push_changes_](const SyncProgress& p) {
        if (p.changes_pushed >= total || p.phase == SyncPhase::pulling || p.phase == SyncPhase::done) push_over();
    };
    importer_->clients.clear();  // a client that says when the push is over
    SyncClient& importer_client = client_of(*importer_, 0, std::move(o));
    SyncResult result;
    const auto start = Clock::now();
    std::thread importer([&] {
        result = importer_client.sync();
        push_over();
    });
    // The bystander's no-op rounds, 20 ms apart, while the push runs.
    std::vector<std::pair<Clock::time_point, double>> rounds;  // started, ms
    const auto deadline = start + 10min;
    try {
        do {
            const auto t = Clock::now();
            const auto r = round(*bystander_);
            rounds.emplace_back(t, ms_between(t, Clock::now()));
            if (!r.ok()) errors_.add("bystander: " + std::string(to_string(r.outcome)) + ": " + r.message);
            if (r.changes_pushed != 0 || r.changes_pulled != 0)
                errors_.add("bystander: a round that should have had nothing to do moved " +
                            std::to_string(r.changes_pushed + r.changes_pulled) + " changes");
            if (!pushed) std::this_thread::sleep_for(20ms);
        } while (!pushed && Clock::now() < deadline);
    } catch (...) {
        importer.join();
        throw;
    }
    importer.join();
    importer_->clients.clear();  // its on_progress points here
    if (!result.ok())
        errors_.add("big push: " + std::string(to_string(result.outcome)) + ": " + result.message);
    else if (!result.rejected.empty())
        errors_.add("big push: the server refused " + std::to_string(result.rejected.size()) + " writes");
    const Clock::time_point push_end{Clock::duration(pushed_at.load())};
    big_push_s_ = ms_between(start, push_end) / 1000.0;
    std::vector<double> lat;  // the rounds that began during the push (the first one always counts)
    for (const auto& [t, ms] : rounds)
        if (t < push_end || lat.empty()) lat.push_back(ms);
    std::sort(lat.begin(), lat.end());
    bystander_rounds_ = lat.size();
    bystander_p50_ = quantile(lat, 0.5);
    bystander_max_ = lat.empty() ? 0 : lat.back();
}

void Fleet::final_syncs() {
    std::vector<Tablet*> all;
    for (auto& t : tablets_) all.push_back(t.get());
    all.push_back(bystander_.get());
    all.push_back(admin_.get());
    if (importer_) all.push_back(importer_.get());
    // Twice: the first pass pushes what is left, the second pulls what the
    // others pushed in the first.
    for (const char* pass : {"final push", "final pull"}) {
        Pool pool(a_.clients);
        for (Tablet* t : all)
            pool.post([&, t, pass] {
                try {
                    checked_round(*t, pass, true);
                } catch (const std::exception& e) {
                    errors_.add(std::string(pass) + ": " + t->name + ": " + e.what());
                }
            });
        if (!pool.wait_idle(900s)) throw std::runtime_error(std::string(pass) + " took over 15 minutes");
    }
    // The reference: a fresh admin replica pulls everything the server holds.
    Tablet reference;
    reference.name = "reference";
    reference_path_ = (replica_dir_ / "reference.db").string();
    reference.replica = std::make_unique<Replica>(reference_path_);
    reference.token = admin_->token;
    checked_round(reference, "the reference's pull", true);
}

void Fleet::stop_servers() {
    for (std::size_t k = 0; k < servers_.size(); ++k) {
        server_peak_rss_mib_ = std::max(server_peak_rss_mib_, servers_[k]->peak_rss_mib());
        const int status = servers_[k]->stop();
        if (status != 0)
            errors_.add("lindra-server " + std::to_string(k) + " exited with status " + std::to_string(status) +
                        "; its log:\n" + servers_[k]->log_tail());
    }
}

bool Fleet::check_exactly_once() {
    const auto counts =
        a_.store == "sqlite" ? log_counts_sqlite((dir_ / "server.db").string()) : log_counts_postgres(a_.db);
    std::vector<const Tablet*> all;
    for (auto& t : tablets_) all.push_back(t.get());
    all.push_back(bystander_.get());
    all.push_back(admin_.get());
    if (importer_) all.push_back(importer_.get());
    std::size_t bad = 0;
    for (const Tablet* t : all) {
        writes_checked_ += t->writes;
        const auto it = counts.find(t->replica->device_id());
        const OriginCount c = it == counts.end() ? OriginCount{} : it->second;
        if (c.entries != t->writes || c.distinct_seqs != t->writes) {
            if (bad++ < 10)
                check_lines_.push_back("exactly once: " + t->name + " made " + std::to_string(t->writes) +
                                       " writes; the server's log holds " + std::to_string(c.entries) +
                                       " entries of it with " + std::to_string(c.distinct_seqs) + " distinct seqs");
        }
    }
    // SQLite: a store of this run only, so no other origin may be in it.
    const auto writers =
        static_cast<std::size_t>(std::count_if(all.begin(), all.end(), [](const Tablet* t) { return t->writes > 0; }));
    if (a_.store == "sqlite" && counts.size() != writers) {
        ++bad;
        check_lines_.push_back("exactly once: the server's log has entries of " + std::to_string(counts.size()) +
                               " origins; " + std::to_string(writers) + " of the bench's tablets wrote");
    }
    check_differences_ += bad;
    return bad == 0;
}

bool Fleet::check_convergence() {
    std::vector<TabletView> views;
    auto view = [](const Tablet& t) {
        return TabletView{t.name, t.replica->path(), t.person, {t.group}, t.members, t.mentor};
    };
    for (auto& t : tablets_) views.push_back(view(*t));
    views.push_back(view(*bystander_));
    const auto c = compare_with_reference(reference_path_, views, 10);
    for (const auto& l : c.lines) check_lines_.push_back("converged: " + l);
    check_differences_ += c.differences;
    rows_compared_ = c.rows;
    tablets_compared_ = views.size();
    return c.differences == 0;
}

void Fleet::report(const Summary& s) const {
    std::printf(
        "fleet: %d tablets, %d lindra-server process%s (%s), %.0f rounds/s offered for %.0f s, %d client threads\n",
        a_.devices, a_.servers, a_.servers == 1 ? "" : "es", a_.store.c_str(), a_.rate, a_.duration, a_.clients);
    std::printf("  rounds: %zu ok, %zu failed, %zu late (of %zu due); %.1f rounds/s achieved; %lld writes\n", s.ok,
                s.failed, s.late, s.scheduled, s.achieved, static_cast<long long>(s.writes));
    std::printf(
        "  latency from the scheduled start: p50 %.1f ms, p95 %.1f ms, p99 %.1f ms, max %.1f ms"
        " (sync() alone: p50 %.1f ms, p99 %.1f ms)\n",
        s.p50, s.p95, s.p99, s.max, s.service_p50, s.service_p99);
    std::printf(
        "  server: CPU %.2f ms a round, and %.2f ms waiting for a CPU; busy %.0f%% of the time; peak RSS %.1f MiB\n"
        "  the bench's own CPU: %.2f ms a round\n",
        server_cpu_ms_, server_wait_ms_, server_busy_pct_, server_peak_rss_mib_, bench_cpu_ms_);
    std::printf("  load average: %s at the start, %s at the end\n", load_start_.c_str(), load_end_.c_str());
    if (a_.big_push > 0)
        std::printf(
            "  big push: %lld changes in %.2f s; the bystander's no-op rounds meanwhile: %zu, p50 %.1f ms, max %.1f "
            "ms\n",
            static_cast<long long>(big_push_changes_), big_push_s_, bystander_rounds_, bystander_p50_, bystander_max_);
    std::printf(
        "  checks: each of %lld writes in the server's log exactly once: %s; %zu tablets hold exactly"
        " their rows (%zu compared): %s\n",
        static_cast<long long>(writes_checked_), exactly_once_ ? "yes" : "NO", tablets_compared_, rows_compared_,
        converged_ ? "yes" : "NO");
    for (const auto& l : check_lines_) std::printf("    %s\n", l.c_str());
    if (round_errors_.count() > 0) {
        std::printf("  failed rounds: %zu; the first:\n", round_errors_.count());
        for (const auto& m : round_errors_.messages()) std::printf("    %s\n", m.c_str());
    }
    if (errors_.count() > 0) {
        std::printf("  errors: %zu; the first:\n", errors_.count());
        for (const auto& m : errors_.messages()) std::printf("    %s\n", m.c_str());
    }
    if (!a_.json) return;
    std::string errors = "[";
    for (const auto& m : errors_.messages()) errors += (errors.size() > 1 ? ", " : "") + json_string(m);
    for (const auto& m : check_lines_) errors += (errors.size() > 1 ? ", " : "") + json_string(m);
    errors += "]";
    std::printf(
        "{\"devices\": %d, \"servers\": %d, \"store\": %s, \"client_threads\": %d, \"duration_s\": %.1f,"
        " \"offered_rounds_per_s\": %.1f, \"achieved_rounds_per_s\": %.1f, \"rounds_ok\": %zu, \"rounds_failed\": %zu,"
        " \"rounds_late\": %zu, \"rounds_due\": %zu, \"writes\": %lld,"
        " \"latency_p50_ms\": %.1f, \"latency_p95_ms\": %.1f, \"latency_p99_ms\": %.1f, \"latency_max_ms\": %.1f,"
        " \"sync_p50_ms\": %.1f, \"sync_p99_ms\": %.1f,"
        " \"server_cpu_ms_per_round\": %.2f, \"server_cpu_wait_ms_per_round\": %.2f, \"server_busy_pct\": %.1f, "
        "\"server_peak_rss_mib\": %.1f, "
        "\"bench_cpu_ms_per_round\": %.2f,"
        " \"load_average_start\": %s, \"load_average_end\": %s,"
        " \"big_push_changes\": %lld, \"big_push_s\": %.2f, \"bystander_rounds\": %zu,"
        " \"bystander_p50_ms\": %.1f, \"bystander_max_ms\": %.1f,"
        " \"writes_checked\": %lld, \"rows_compared\": %zu, \"exactly_once\": %s, \"converged\": %s,"
        " \"errors\": %s, \"seed\": %llu}\n",
        a_.devices, a_.servers, json_string(a_.store).c_str(), a_.clients, a_.duration, a_.rate, s.achieved, s.ok,
        s.failed, s.late, s.scheduled, static_cast<long long>(s.writes), s.p50, s.p95, s.p99, s.max, s.service_p50,
        s.service_p99, server_cpu_ms_, server_wait_ms_, server_busy_pct_, server_peak_rss_mib_, bench_cpu_ms_,
        json_string(load_start_).c_str(), json_string(load_end_).c_str(), static_cast<long long>(big_push_changes_),
        big_push_s_, bystander_rounds_, bystander_p50_, bystander_max_, static_cast<long long>(writes_checked_),
        rows_compared_, exactly_once_ ? "true" : "false", converged_ ? "true" : "false", errors.c_str(),
        static_cast<unsigned long long>(a_.seed));
}

int Fleet::run() {
    // Every tablet holds a replica open (its file, WAL and shared memory).
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) == 0) {
        limit.rlim_cur = limit.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &limit);
        ::getrlimit(RLIMIT_NOFILE, &limit);
        const auto need = static_cast<rlim_t>(a_.devices) * 3 + static_cast<rlim_t>(a_.clients) * 4 + 100;
        if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < need)
            throw std::runtime_error("the open-files limit (" + std::to_string(limit.rlim_cur) + ") is too low for " +
                                     std::to_string(a_.devices) + " tablets; raise it (ulimit -n)");
    }
    dir_ = make_temp_dir();
    std::error_code ec;
    if (!a_.replica_dir.empty())
        replica_dir_ = a_.replica_dir;
    else if (std::filesystem::is_directory("/dev/shm", ec) && ::access("/dev/shm", W_OK) == 0)
        replica_dir_ = "/dev/shm";
    else
        replica_dir_ = dir_;
    if (replica_dir_ != dir_) replica_dir_ /= dir_.filename();
    std::filesystem::create_directories(replica_dir_);

    struct Cleanup {
        Fleet& f;
        ~Cleanup() {
            f.tablets_.clear();  // close the replicas before their files go
            f.admin_.reset();
            f.importer_.reset();
            f.bystander_.reset();
            f.io_.reset();
            for (auto& s : f.servers_) s.reset();
            std::error_code ec;
            if (f.a_.keep) {
                std::fprintf(stderr, "lindra-bench fleet: kept %s and %s\n", f.dir_.c_str(), f.replica_dir_.c_str());
                return;
            }
            std::filesystem::remove_all(f.dir_, ec);
            std::filesystem::remove_all(f.replica_dir_, ec);
        }
    } cleanup{*this};

    pki_ = make_pki(dir_);
    start_servers();
    io_ = std::make_unique<IoPool>(2);
    std::fprintf(stderr, "fleet: seed %llu; seeding %d tablets...\n", static_cast<unsigned long long>(a_.seed),
                 a_.devices);
    seed();
    std::fprintf(stderr, "fleet: %.0f s of rounds at %.0f rounds/s...\n", a_.duration, a_.rate);
    const Summary s = timed_phase();
    if (a_.big_push > 0) {
        std::fprintf(stderr, "fleet: a big push of %lld changes...\n", static_cast<long long>(a_.big_push));
        big_push();
    }
    std::fprintf(stderr, "fleet: final syncs and checks...\n");
    final_syncs();
    stop_servers();
    exactly_once_ = check_exactly_once();
    converged_ = check_convergence();
    report(s);
    // Rounds that failed under load are figures, not failures; the checks are.
    return exactly_once_ && converged_ && errors_.count() == 0 ? 0 : 1;
}

}  // namespace

int fleet(int argc, char** argv) {
    FleetArgs args;
    try {
        args = parse_args(argc, argv);
    } catch (const UsageError& e) {
        return usage(e.what());
    }
    try {
        Fleet f(std::move(args));
        return f.run();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "lindra-bench fleet: %s\n", e.what());
        return 1;
    }
}

}  // namespace lindra::bench
