// Forward-only schema migrations keyed on PRAGMA user_version.
#pragma once

#include "store/database.hpp"

#include <functional>
#include <span>

namespace lindra::store {

struct Migration {
    std::int64_t version;  // user_version after this step; 1, 2, 3, ...
    std::function<void(Database&)> apply;
};

// Runs every step above the file's user_version, each in its own
// transaction that also sets user_version, so a failing step leaves the file
// at the previous version. A file newer than the last step is refused with
// Errc::schema_too_new and left untouched.
void migrate(Database& db, std::span<const Migration> steps);

}  // namespace lindra::store
