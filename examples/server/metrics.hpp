// lindra-server's Prometheus metrics: the library's ServerObserver mapped
// to prometheus-cpp, whose registry the admin listener serves as /metrics.
// The library itself knows nothing of Prometheus (docs/decisions.md).
// Thread-safe, as prometheus-cpp's metrics are.
#pragma once

#include <lindra/server.hpp>

#include <memory>
#include <string>

namespace server_cli {

class Metrics final : public lindra::ServerObserver {
public:
    Metrics();
    ~Metrics() override;

    // The registry in Prometheus' text format.
    std::string scrape() const;
    // A SIGHUP's reload: "ok" or "failed".
    void reloaded(bool ok);

    void session_opened() override;
    void session_closed(std::string_view outcome, std::chrono::nanoseconds length) override;
    void refused(std::string_view code) override;
    void store_call(std::string_view operation, std::chrono::nanoseconds took) override;
    void pushed(std::size_t applied, std::size_t rejected, std::size_t certificates) override;
    void pulled(std::size_t changes, std::size_t purged_rows) override;
    void bytes(std::size_t received, std::size_t sent) override;
    void turned_away(std::string_view reason, std::uint64_t count) override;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace server_cli
