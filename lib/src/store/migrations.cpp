#include "store/migrations.hpp"

#include "core/log.hpp"
#include "store/transaction.hpp"

#include <lindra/error.hpp>

#include <string>

namespace lindra::store {

void migrate(Database& db, std::span<const Migration> steps) {
    const std::int64_t latest = steps.empty() ? 0 : steps.back().version;
    const std::int64_t current = db.user_version();
    if (current > latest)
        throw Error(Errc::schema_too_new, db.path() + " has schema version " + std::to_string(current) +
                                              "; this lindra knows up to " + std::to_string(latest));
    for (const auto& step : steps) {
        if (step.version <= current) continue;
        Transaction txn(db);
        // Another connection may have migrated since we looked.
        if (db.user_version() >= step.version) continue;
        step.apply(db);
        db.set_user_version(step.version);
        txn.commit();
        // The file's version, not its path: paths can name the user.
        if (detail::log_enabled(LogLevel::info))
            detail::log(LogLevel::info, "replica", "schema migrated to version " + std::to_string(step.version));
    }
}

}  // namespace lindra::store
