// A transaction guard: begins in its constructor, commit() commits, the
// destructor rolls back if commit() was not reached. Never throws from the
// destructor.
#pragma once

#include "store/database.hpp"

namespace lindra::store {

class Transaction {
  public:
    enum class Mode {
        // BEGIN IMMEDIATE takes the write lock at once, so a writer never
        // fails half way with SQLITE_BUSY on lock upgrade.
        write,
        // BEGIN (deferred): a consistent snapshot for reads.
        read,
    };
    explicit Transaction(Database& db, Mode mode = Mode::write);
    ~Transaction();
    Transaction(const Transaction&) = delete;
    Transaction& operator=(const Transaction&) = delete;

    void commit();

  private:
    Database& db_;
    bool done_ = false;
};

}  // namespace lindra::store
