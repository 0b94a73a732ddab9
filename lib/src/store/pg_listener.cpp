// Listener: LISTEN on one connection, wait with a timeout, reconnect.
#include "store/pg.hpp"

#include <libpq-fe.h>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>

namespace lindra::store::pg {

Listener::Listener(std::string conninfo, std::string channel, ConnectOptions options)
    : conninfo_(std::move(conninfo)), channel_(std::move(channel)), options_(std::move(options)) {
    if (::pipe2(wake_fds_, O_CLOEXEC | O_NONBLOCK) != 0)
        throw Error(Errc::storage, "PostgreSQL listener: cannot make a pipe");
}

Listener::~Listener() {
    for (int fd : wake_fds_)
        if (fd >= 0) ::close(fd);
}

void Listener::interrupt() noexcept {
    const char b = 1;
    [[maybe_unused]] auto n = ::write(wake_fds_[1], &b, 1);  // full pipe: a wake-up is pending anyway
}

bool Listener::connect() {
    try {
        auto conn = std::make_unique<Connection>(conninfo_, options_);
        char* id = PQescapeIdentifier(conn->native(), channel_.data(), channel_.size());
        if (!id) conn->fail(nullptr, "LISTEN " + channel_);
        const std::string sql = std::string("LISTEN ") + id;
        PQfreemem(id);
        conn->exec(sql);
        conn_ = std::move(conn);
        last_error_.clear();
        return true;
    } catch (const lindra::Error& e) {
        last_error_ = e.what();
        return false;
    }
}

bool Listener::collect() {
    while (PGnotify* n = PQnotifies(conn_->native())) {
        received_.push_back({n->relname, n->extra ? n->extra : "", n->be_pid});
        PQfreemem(n);
    }
    return !received_.empty();
}

Listener::Wake Listener::wait(std::chrono::milliseconds timeout) {
    using clock = std::chrono::steady_clock;
    const auto deadline = clock::now() + timeout;
    received_.clear();
    auto interrupted = [&] {
        char buf[64];
        bool any = false;
        while (::read(wake_fds_[0], buf, sizeof buf) > 0) any = true;
        return any;
    };
    if (interrupted()) return Wake::interrupted;
    if (!conn_ || !conn_->ok()) {
        conn_.reset();
        if (connect()) return Wake::resync;
        // The server is down: wait out the timeout, so a caller's loop does
        // not spin, then say so.
        pollfd p{wake_fds_[0], POLLIN, 0};
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - clock::now());
        if (left.count() > 0 && ::poll(&p, 1, static_cast<int>(left.count())) > 0 && interrupted())
            return Wake::interrupted;
        return Wake::resync;
    }
    if (collect()) return Wake::notified;
    for (;;) {
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - clock::now());
        pollfd p[2] = {{PQsocket(conn_->native()), POLLIN, 0}, {wake_fds_[0], POLLIN, 0}};
        const int n = ::poll(p, 2, static_cast<int>(std::max<std::int64_t>(left.count(), 0)));
        if (n < 0 && errno != EINTR) {
            conn_.reset();
            return Wake::resync;
        }
        if (n > 0 && p[1].revents && interrupted()) return Wake::interrupted;
        if (n > 0 && p[0].revents) {
            if (!PQconsumeInput(conn_->native()) || PQstatus(conn_->native()) != CONNECTION_OK) {
                last_error_ = "PostgreSQL listener: connection lost";
                conn_.reset();
                return Wake::resync;
            }
            if (collect()) return Wake::notified;
        }
        if (clock::now() >= deadline) return Wake::timeout;
    }
}

}  // namespace lindra::store::pg
