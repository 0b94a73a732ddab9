// Shared tablets: one replica file per user in the app's directory, and
// signing out, which pushes what is pending and then deletes that user's
// files, overwritten first, or keeps them and says what would be lost.
#include "store/wipe.hpp"
#include "support/mock_course.hpp"

#include <lindra/error.hpp>
#include <lindra/sync.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>

namespace lindra::test {
namespace {

namespace fs = std::filesystem;

// Ola's course (support/mock_course.hpp) with Kari in the same group, and
// the tablet directory both use in turn.
struct SharedTablet : MockCourse {
    SharedTablet() {
        mock.seed([&](Writes& w) {
            kari = w.register_person("Kari Hansen", Profession::health_care_worker, org);
            w.add_member(group, kari, MemberRole::candidate);
        });
        kari_token = mock.token({.user = "kari", .role = Role::candidate, .person = kari});
        fs::create_directory(tablet_dir);
    }

    SyncResult sync(Replica& r, const std::string& t) {
        SyncClient client(r, mock.client_options(t));
        return client.sync();
    }
    // The files of the tablet directory whose bytes hold `marker`.
    std::vector<std::string> files_holding(const std::string& marker) const {
        std::vector<std::string> found;
        for (const auto& e : fs::directory_iterator(tablet_dir)) {
            std::ifstream in(e.path(), std::ios::binary);
            const std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
            if (bytes.find(marker) != std::string::npos) found.push_back(e.path().filename().string());
        }
        return found;
    }
    std::size_t file_count() const {
        return static_cast<std::size_t>(std::distance(fs::directory_iterator(tablet_dir), fs::directory_iterator()));
    }

    Id kari;
    std::string kari_token;
    std::string tablet_dir = dir.file("tablet");
};

void require_ok(const SyncResult& r) {
    INFO(to_string(r.outcome) << ": " << r.message);
    REQUIRE(r.ok());
}

}  // namespace

TEST_CASE("user_replica_path: one stable file per user, without the user id in its name") {
    const auto ola = user_replica_path("/data/app", "ola@fjordvik.kommune.no");
    CHECK(ola == user_replica_path("/data/app", "ola@fjordvik.kommune.no"));
    CHECK(ola != user_replica_path("/data/app", "kari@fjordvik.kommune.no"));
    CHECK(fs::path(ola).parent_path() == "/data/app");
    CHECK(ola.find("ola") == std::string::npos);
    CHECK(fs::path(ola).filename().string().starts_with("user-"));
    CHECK_THROWS_AS(user_replica_path("/data/app", ""), Error);
}

TEST_CASE("wipe_database_files: zeros over every file before it goes, and never follows a link") {
    TempDir dir;
    const std::string db = dir.file("user.lindra");
    CHECK(store::wipe_database_files(db).empty());  // nothing there: nothing to do

    // A link in place of the WAL is refused; what it points to stays as it was.
    const std::string elsewhere = dir.file("elsewhere.txt");
    std::ofstream(elsewhere) << "someone else's file";
    std::ofstream(db) << "the database";
    fs::create_symlink(elsewhere, db + "-wal");
    CHECK_THROWS_WITH(store::wipe_database_files(db), Catch::Contains(db + "-wal"));
    std::ifstream in(elsewhere);
    CHECK(std::string{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()} == "someone else's file");
    CHECK(fs::exists(db));  // not reached

    fs::remove(db + "-wal");
    std::ofstream(db + "-journal") << "a journal";
    // A second name for the database would keep its data: refused, nothing removed.
    const std::string other_name = dir.file("other-name");
    fs::create_hard_link(db, other_name);
    CHECK_THROWS_WITH(store::wipe_database_files(db), Catch::Contains("hard link"));
    CHECK(fs::exists(db));
    fs::remove(other_name);

    // A descriptor opened before sees what the wipe left in the inode.
    std::ifstream w(db, std::ios::binary);
    const auto removed = store::wipe_database_files(db);
    CHECK(removed == std::vector<std::string>{db + "-journal", db});
    CHECK_FALSE(fs::exists(db));
    CHECK_FALSE(fs::exists(db + "-journal"));
    CHECK(std::string{std::istreambuf_iterator<char>(w), std::istreambuf_iterator<char>()} ==
          std::string(std::string_view("the database").size(), '\0'));
}

TEST_CASE("two users take turns on one tablet: sign-out pushes, then leaves no byte of the user behind") {
    SharedTablet w;
    const std::string ola_path = user_replica_path(w.tablet_dir, "ola");
    const std::string kari_path = user_replica_path(w.tablet_dir, "kari");
    const std::string marker = "ola-marker-7f3c9a2e: what I learnt about breathlessness";

    // Ola's shift: her own file, a reflection, and a write left unsynced.
    Id device_before;
    {
        Replica ola(ola_path);
        device_before = ola.device_id();
        require_ok(w.sync(ola, w.token));
        ola.write_reflection(w.ola, w.group, w.module, marker);
        REQUIRE(ola.outbox_size() == 1);
        REQUIRE_FALSE(w.files_holding(marker).empty());  // the scan below can see it

        const auto r = sign_out(std::move(ola), w.mock.client_options(w.token));
        INFO(to_string(r.sync.outcome) << ": " << r.sync.message);
        CHECK(r.status == SignOutStatus::signed_out);
        CHECK(r.deleted());
        CHECK(r.sync.changes_pushed > 0);
        CHECK(r.pending_writes == 0);
        CHECK(r.refused_writes == 0);
        CHECK_FALSE(r.replica.has_value());
        const auto deleted = [&](const std::string& f) {
            return std::find(r.deleted_files.begin(), r.deleted_files.end(), f) != r.deleted_files.end();
        };
        CHECK(deleted(ola_path));
        CHECK(deleted(ola_path + "-wal"));  // kept at close to be overwritten, not left to SQLite's unlink
    }
    CHECK(w.mock.rows().count("reflection") == 1);  // on the server
    for (const char* suffix : {"", "-wal", "-shm", "-journal"}) CHECK_FALSE(fs::exists(ola_path + suffix));
    CHECK(w.file_count() == 0);
    CHECK(w.files_holding(marker).empty());

    // Kari's shift: a file of her own, with a device id of its own.
    {
        Replica kari(kari_path);
        CHECK(kari.device_id() != device_before);
        require_ok(w.sync(kari, w.kari_token));
        kari.write_reflection(w.kari, w.group, w.module, "Kari's own reflection");
        require_ok(w.sync(kari, w.kari_token));
        CHECK(kari.count("reflection") == 1);  // hers; Ola's is not hers to read
        CHECK(kari.outbox_size() == 0);
    }
    CHECK(w.files_holding(marker).empty());

    // Ola's next shift: a fresh file, a new device, and her reflection back.
    Replica ola(ola_path);
    CHECK(ola.device_id() != device_before);
    CHECK(ola.count("reflection") == 0);
    require_ok(w.sync(ola, w.token));
    CHECK(ola.count("reflection") == 1);
    const auto holding = w.files_holding(marker);
    CHECK_FALSE(holding.empty());
    for (const auto& f : holding) CHECK(f.starts_with(fs::path(ola_path).filename().string()));  // or its -wal
    CHECK(fs::exists(kari_path));  // Kari's file is Kari's business
}

TEST_CASE("sign-out with the server down keeps the file and says what would be lost, and force deletes it") {
    SharedTablet w;
    const std::string path = user_replica_path(w.tablet_dir, "ola");
    Replica ola(path);
    require_ok(w.sync(ola, w.token));
    ola.write_reflection(w.ola, w.group, w.module, "written offline");
    ola.add_time_spent(w.ola, w.module, w.group, 120);
    w.mock.stop();

    auto kept = sign_out(std::move(ola), w.mock.client_options(w.token));
    CHECK(kept.status == SignOutStatus::kept);
    CHECK_FALSE(kept.deleted());
    CHECK(kept.sync.outcome == SyncOutcome::offline);
    CHECK(kept.pending_writes == 2);
    CHECK(kept.refused_writes == 0);
    CHECK(kept.deleted_files.empty());
    CHECK(fs::exists(path));
    REQUIRE(kept.replica.has_value());
    CHECK(kept.replica->outbox_size() == 2);  // handed back, still open and usable
    kept.replica->add_time_spent(w.ola, w.module, w.group, 60);

    const auto forced = sign_out(std::move(*kept.replica), w.mock.client_options(w.token), true);
    CHECK(forced.status == SignOutStatus::forced);
    CHECK(forced.deleted());
    CHECK(forced.pending_writes == 3);
    CHECK_FALSE(forced.replica.has_value());
    CHECK(w.file_count() == 0);
    CHECK(w.files_holding("written offline").empty());

    w.mock.start();
    CHECK(w.mock.rows().count("reflection") == 0);  // lost, as the user was told
}

TEST_CASE("sign-out keeps the file while a refused write is kept, and signs out once it is dismissed") {
    SharedTablet w;
    Id other_group;
    w.mock.seed([&](Writes& s) {
        other_group = s.create_group({.course = w.course, .organization = w.org, .name = "Not Ola's"});
    });
    Replica ola(user_replica_path(w.tablet_dir, "ola"));
    require_ok(w.sync(ola, w.token));
    ola.add_time_spent(w.ola, w.module, other_group, 30);  // Ola is no member there: refused

    auto kept = sign_out(std::move(ola), w.mock.client_options(w.token));
    require_ok(kept.sync);
    CHECK(kept.sync.rejected.size() == 1);
    CHECK(kept.status == SignOutStatus::kept);
    CHECK(kept.pending_writes == 0);
    CHECK(kept.refused_writes == 1);
    REQUIRE(kept.replica.has_value());

    // The app has shown the user what was refused.
    CHECK(kept.replica->dismiss_all_refused() == 1);
    const auto done = sign_out(std::move(*kept.replica), w.mock.client_options(w.token));
    CHECK(done.status == SignOutStatus::signed_out);
    CHECK(w.file_count() == 0);
}

TEST_CASE("sign-out with another user's token deletes nothing") {
    SharedTablet w;
    const std::string path = user_replica_path(w.tablet_dir, "ola");
    Replica ola(path);
    ola.write_reflection(w.ola, w.group, w.module, "Ola's first");
    require_ok(w.sync(ola, w.token));
    ola.write_reflection(w.ola, w.group, w.module, "Ola's second");

    // Ola pushed from this device id: the server refuses Kari's token for it.
    const auto r = sign_out(std::move(ola), w.mock.client_options(w.kari_token));
    CHECK(r.sync.outcome == SyncOutcome::server_error);
    CHECK(r.sync.error_code == "permission_denied");
    CHECK(r.status == SignOutStatus::kept);
    CHECK(r.pending_writes == 1);
    CHECK(fs::exists(path));
}

}  // namespace lindra::test
