// Shared tablets: a user's own replica file, and signing out of it.
#include "replica/core.hpp"
#include "store/wipe.hpp"

#include <lindra/sync.hpp>

#include <filesystem>

namespace lindra {

std::string_view to_string(SignOutStatus status) {
    switch (status) {
        case SignOutStatus::signed_out:
            return "signed out";
        case SignOutStatus::kept:
            return "kept";
        case SignOutStatus::forced:
            return "forced";
    }
    return "?";
}

std::string user_replica_path(const std::string& directory, std::string_view user) {
    if (user.empty()) throw Error(Errc::invalid_argument, "the user id is empty: give the id the user signs in with");
    // The domain keeps these ids apart from the row ids Id::derive makes.
    const Id file = Id::derive("lindra.user-replica-file\n" + std::string(user), {});
    return (std::filesystem::path(directory) / ("user-" + file.to_string() + ".lindra")).string();
}

SignOutResult sign_out(Replica&& replica, const SyncOptions& options, bool force) {
    const std::string where = replica.path();
    if (where.empty() || where == ":memory:" || where.starts_with("file:"))
        throw Error(Errc::invalid_argument, "sign-out deletes a replica file: this replica has none");
    SignOutResult r;
    {
        // Before the replica is taken: bad options leave it with the caller.
        SyncClient client(replica, options);
        r.sync = client.sync();
    }
    Replica owned(std::move(replica));
    r.pending_writes = owned.outbox_size();
    r.refused_writes = static_cast<std::int64_t>(owned.refused_writes().size());
    const bool nothing_lost = r.sync.ok() && r.pending_writes == 0 && r.refused_writes == 0;
    if (!nothing_lost && !force) {
        r.status = SignOutStatus::kept;
        r.replica.emplace(std::move(owned));
        return r;
    }
    const std::string path = owned.path();
    // SQLite would unlink the WAL at close, leaving its frames in freed
    // blocks; kept, it is overwritten below like the main file.
    detail::core_of(owned).db.keep_wal_on_close();
    { const Replica closing(std::move(owned)); }
    r.deleted_files = store::wipe_database_files(path);
    r.status = nothing_lost ? SignOutStatus::signed_out : SignOutStatus::forced;
    return r;
}

}  // namespace lindra
