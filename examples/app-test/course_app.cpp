#include "course_app.hpp"

namespace course_app {

CandidateApp::CandidateApp(const std::string& db_path, lindra::SyncOptions server, lindra::Id person)
    : replica_(db_path), server_(std::move(server)), person_(person) {}

void CandidateApp::finish_module(const lindra::Id& module, const lindra::Id& group, int score, std::int64_t seconds) {
    replica_.complete_module(person_, module, group, score, seconds);
}

std::string CandidateApp::sync_now() {
    lindra::SyncClient client(replica_, server_);
    const auto r = client.sync();
    switch (r.outcome) {
    case lindra::SyncOutcome::ok:
        return r.rejected.empty() ? "Up to date" : "Synced; " + std::to_string(r.rejected.size()) + " change(s) refused";
    case lindra::SyncOutcome::offline:
        return "Offline: your work is saved on this tablet";
    case lindra::SyncOutcome::auth_failed:
        return "Please sign in again";
    case lindra::SyncOutcome::server_error:
        return r.error_code == "rate_limited" ? "The server is busy; trying again later" : "Sync failed: " + r.message;
    default:
        return "Sync failed: " + r.message;
    }
}

}  // namespace course_app
