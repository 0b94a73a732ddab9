#include "store/transaction.hpp"

namespace lindra::store {

// BEGIN/COMMIT run as cached statements: a write transaction per API call is
// the common case, and re-parsing them each time is measurable.
Transaction::Transaction(Database& db, Mode mode) : db_(db) {
    db_.cached(mode == Mode::write ? "BEGIN IMMEDIATE" : "BEGIN")->run();
}

Transaction::~Transaction() {
    if (done_) return;
    try {
        // SQLite may already have rolled back (e.g. after SQLITE_FULL).
        if (db_.in_transaction()) db_.cached("ROLLBACK")->run();
    } catch (...) {
        // Nothing more a destructor can do; the connection rolls back on close.
    }
}

void Transaction::commit() {
    db_.cached("COMMIT")->run();
    done_ = true;
}

}  // namespace lindra::store
