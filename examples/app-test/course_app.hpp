// A slice of a tablet app for the course: what a candidate's screen does
// when a module is finished, and how the app syncs and tells the user.
// Its test (course_app_test.cpp) runs it against lindra's MockServer.
#pragma once

#include <lindra/replica.hpp>
#include <lindra/sync.hpp>

#include <string>

namespace course_app {

class CandidateApp {
public:
    CandidateApp(const std::string& db_path, lindra::SyncOptions server, lindra::Id person);

    // The candidate finished a module: the score and the time it took are
    // saved at once, whether or not there is a network.
    void finish_module(const lindra::Id& module, const lindra::Id& group, int score, std::int64_t seconds);
    // The "Sync" button: what the status line says afterwards.
    std::string sync_now();
    lindra::Replica& replica() { return replica_; }

private:
    lindra::Replica replica_;
    lindra::SyncOptions server_;
    lindra::Id person_;
};

}  // namespace course_app
