#include "metrics.hpp"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <map>

namespace server_cli {

namespace {

using prometheus::Counter;
using prometheus::Family;
using prometheus::Histogram;

double seconds(std::chrono::nanoseconds d) { return std::chrono::duration<double>(d).count(); }

// One metric per value of a label known in advance (never an id: the
// values are the closed sets the library reports).
template <class Metric, class... Args>
std::map<std::string, Metric*, std::less<>> by_label(Family<Metric>& family, const char* label,
                                                      std::initializer_list<const char*> values, Args&&... args) {
    std::map<std::string, Metric*, std::less<>> out;
    for (const char* v : values) out[v] = &family.Add({{label, v}}, args...);
    return out;
}

template <class Map>
auto* find(const Map& m, std::string_view key) {
    const auto it = m.find(key);
    return it == m.end() ? nullptr : it->second;
}

}  // namespace

struct Metrics::Impl {
    std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();

    prometheus::Gauge& sessions_open = prometheus::BuildGauge()
                                           .Name("lindra_sessions_open")
                                           .Help("Sessions (connections) open now")
                                           .Register(*registry)
                                           .Add({});
    Counter& sessions = prometheus::BuildCounter()
                            .Name("lindra_sessions_total")
                            .Help("Sessions (connections) opened")
                            .Register(*registry)
                            .Add({});
    std::map<std::string, Counter*, std::less<>> rounds =
        by_label(prometheus::BuildCounter()
                     .Name("lindra_rounds_total")
                     .Help("Sessions ended, by outcome: ok, refused, unavailable (the store), dropped")
                     .Register(*registry),
                 "outcome", {"ok", "refused", "unavailable", "dropped"});
    Histogram& round_seconds = prometheus::BuildHistogram()
                                   .Name("lindra_round_duration_seconds")
                                   .Help("How long sessions lasted, from the connection to its close")
                                   .Register(*registry)
                                   .Add({}, Histogram::BucketBoundaries{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
                                                                        10, 30, 60, 120});
    std::map<std::string, Counter*, std::less<>> refusals = by_label(
        prometheus::BuildCounter()
            .Name("lindra_refusals_total")
            .Help("Error frames sent, by protocol error code")
            .Register(*registry),
        "code",
        {"unauthenticated", "permission_denied", "invalid_argument", "frame_too_large", "unsupported_version",
         "rate_limited", "internal"});
    std::map<std::string, Histogram*, std::less<>> store_seconds =
        by_label(prometheus::BuildHistogram()
                     .Name("lindra_store_duration_seconds")
                     .Help("How long the store took per message, by operation")
                     .Register(*registry),
                 "operation", {"hello", "push", "pull"},
                 Histogram::BucketBoundaries{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
                                             5, 10, 30});
    Counter& pushed = prometheus::BuildCounter()
                          .Name("lindra_changes_pushed_total")
                          .Help("Field changes pushed and applied")
                          .Register(*registry)
                          .Add({});
    Counter& rejected = prometheus::BuildCounter()
                            .Name("lindra_writes_rejected_total")
                            .Help("Pushed writes refused (PushAck.rejected)")
                            .Register(*registry)
                            .Add({});
    Counter& pulled = prometheus::BuildCounter()
                          .Name("lindra_changes_pulled_total")
                          .Help("Field changes sent in pulls")
                          .Register(*registry)
                          .Add({});
    Counter& purged = prometheus::BuildCounter()
                          .Name("lindra_purged_rows_total")
                          .Help("Rows purged from devices (scopes lost)")
                          .Register(*registry)
                          .Add({});
    Counter& certificates = prometheus::BuildCounter()
                                .Name("lindra_certificates_issued_total")
                                .Help("Course certificates issued")
                                .Register(*registry)
                                .Add({});
    Counter& received = prometheus::BuildCounter()
                            .Name("lindra_received_bytes_total")
                            .Help("Frame bodies received")
                            .Register(*registry)
                            .Add({});
    Counter& sent = prometheus::BuildCounter()
                        .Name("lindra_sent_bytes_total")
                        .Help("Frame bodies sent")
                        .Register(*registry)
                        .Add({});
    std::map<std::string, Counter*, std::less<>> turned_away = by_label(
        prometheus::BuildCounter()
            .Name("lindra_connections_turned_away_total")
            .Help("Connections the limits refused or closed, by reason (counted once a minute at most)")
            .Register(*registry),
        "reason", {"address_cap", "connection_cap", "shed_before_hello", "no_hello_in_time"});
    std::map<std::string, Counter*, std::less<>> reloads =
        by_label(prometheus::BuildCounter()
                     .Name("lindra_reloads_total")
                     .Help("SIGHUP reloads of the certificate and keys, by result")
                     .Register(*registry),
                 "result", {"ok", "failed"});
};

Metrics::Metrics() : impl_(std::make_unique<Impl>()) {}
Metrics::~Metrics() = default;

std::string Metrics::scrape() const { return prometheus::TextSerializer().Serialize(impl_->registry->Collect()); }

void Metrics::reloaded(bool ok) { impl_->reloads.at(ok ? "ok" : "failed")->Increment(); }

void Metrics::session_opened() {
    impl_->sessions_open.Increment();
    impl_->sessions.Increment();
}

void Metrics::session_closed(std::string_view outcome, std::chrono::nanoseconds length) {
    impl_->sessions_open.Decrement();
    if (auto* c = find(impl_->rounds, outcome)) c->Increment();
    impl_->round_seconds.Observe(seconds(length));
}

void Metrics::refused(std::string_view code) {
    if (auto* c = find(impl_->refusals, code)) c->Increment();
}

void Metrics::store_call(std::string_view operation, std::chrono::nanoseconds took) {
    if (auto* h = find(impl_->store_seconds, operation)) h->Observe(seconds(took));
}

void Metrics::pushed(std::size_t applied, std::size_t rejected, std::size_t certificates) {
    impl_->pushed.Increment(static_cast<double>(applied));
    impl_->rejected.Increment(static_cast<double>(rejected));
    impl_->certificates.Increment(static_cast<double>(certificates));
}

void Metrics::pulled(std::size_t changes, std::size_t purged_rows) {
    impl_->pulled.Increment(static_cast<double>(changes));
    impl_->purged.Increment(static_cast<double>(purged_rows));
}

void Metrics::bytes(std::size_t received, std::size_t sent) {
    impl_->received.Increment(static_cast<double>(received));
    impl_->sent.Increment(static_cast<double>(sent));
}

void Metrics::turned_away(std::string_view reason, std::uint64_t count) {
    if (auto* c = find(impl_->turned_away, reason)) c->Increment(static_cast<double>(count));
}

}  // namespace server_cli
