// One client's conversation with the server, without I/O: frames in,
// frames out (net/ moves the bytes). Also the entry point for fuzzing the
// server's message handling.
#pragma once

#include "net/handler.hpp"
#include "server/auth.hpp"
#include "server/store.hpp"

#include <chrono>
#include <functional>
#include <optional>
#include <string>

namespace lindra::server {

// What all sessions of one server share.
struct SessionContext {
    ServerStore& store;  // safe from any thread
    const Authenticator& auth;
    protocol::Limits limits;
    std::function<void(std::string_view)> log;  // may be empty
    std::function<std::int64_t()> wall_clock_ms;  // token expiry is checked against it
    ServerObserver* observer = nullptr;           // may be null
};

class ServerSession final : public net::Session {
public:
    ServerSession(SessionContext& context, std::string peer);

    std::size_t max_frame() const override;
    bool authenticated() const override { return identity_.has_value(); }
    net::Reply on_frame(std::span<const std::uint8_t> body) override;
    net::Reply on_bad_frame(const protocol::ProtocolError& error) override;
    void on_close(std::string_view reason) override;

private:
    net::Reply hello(const protocol::Hello& m);
    net::Reply push(const protocol::Push& m);
    net::Reply pull(const protocol::Pull& m);
    // An Error frame, then the connection closes.
    net::Reply refuse(protocol::ErrorCode code, const std::string& message);
    // Runs the store call `f`, named `operation`, timed for the observer.
    template <class F>
    auto timed(std::string_view operation, F&& f);
    net::Reply handle(std::span<const std::uint8_t> body);

    SessionContext& context_;
    std::string peer_;
    std::optional<Identity> identity_;  // set by a successful Hello
    std::uint16_t schema_ = 0;          // the device's data model, from its Hello
    Id device_{};
    std::size_t pushed_ = 0, pulled_ = 0, rejected_ = 0, purged_ = 0;
    std::string refused_;  // why the session was refused, for the log
    bool unavailable_ = false;  // the store was, when the session ended
    std::chrono::steady_clock::time_point opened_ = std::chrono::steady_clock::now();
};

}  // namespace lindra::server
