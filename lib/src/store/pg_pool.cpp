// Pool: connections made lazily, lost ones dropped and replaced.
#include "store/pg.hpp"

#include <libpq-fe.h>

namespace lindra::store::pg {

Pool::Pool(std::string conninfo, PoolOptions options) : conninfo_(std::move(conninfo)), options_(std::move(options)) {
    if (options_.size == 0) throw Error(Errc::invalid_argument, "PostgreSQL pool of size 0");
}

Pool::~Pool() = default;

Pool::Lease::~Lease() {
    if (pool_) pool_->release(std::move(conn_));
}

Pool::Lease Pool::acquire() { return acquire(options_.acquire_timeout); }

Pool::Lease Pool::acquire(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::unique_lock lock(mutex_);
    for (;;) {
        while (!idle_.empty()) {
            std::unique_ptr<Connection> conn = std::move(idle_.back());
            idle_.pop_back();
            ++leased_;
            lock.unlock();
            if (conn->alive()) return Lease(this, std::move(conn));
            conn.reset();  // closed by the server while idle: replace it
            lock.lock();
            --leased_;
        }
        if (leased_ < options_.size) {
            ++leased_;  // the slot is taken while connecting, outside the lock
            lock.unlock();
            try {
                return Lease(this, std::make_unique<Connection>(conninfo_, options_.connect));
            } catch (...) {
                lock.lock();
                --leased_;
                freed_.notify_one();
                throw;
            }
        }
        if (freed_.wait_until(lock, deadline) == std::cv_status::timeout && idle_.empty() &&
            leased_ >= options_.size)
            throw Error(Errc::busy, "all " + std::to_string(options_.size) +
                                        " PostgreSQL connections stayed in use for " +
                                        std::to_string(timeout.count()) + " ms");
    }
}

void Pool::release(std::unique_ptr<Connection> conn) noexcept {
    // A connection left inside a transaction or a pipeline, or lost, is not
    // handed to the next user.
    const bool reuse = conn && conn->ok() && !conn->in_transaction() &&
                       PQpipelineStatus(conn->native()) == PQ_PIPELINE_OFF;
    if (!reuse) conn.reset();  // closes outside the lock
    {
        std::lock_guard lock(mutex_);
        --leased_;
        if (reuse) idle_.push_back(std::move(conn));
    }
    freed_.notify_one();
}

std::size_t Pool::open() const {
    std::lock_guard lock(mutex_);
    return idle_.size() + leased_;
}

}  // namespace lindra::store::pg
