// The course certificate's rule (DESIGN §10), read from rows. Per person,
// course and group: every required module of the course passed (at or
// above its pass score where it has one); at least the course's
// `required_gatherings` of the group's held gatherings attended (present);
// a mentor's confirmation; the membership active or completed. Written once:
// the server issues by it (server/certificates.cpp) and the coordinator's
// report says by it what is still missing.
#pragma once

#include "model/row_source.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace lindra::model {

struct ModuleResult {
    Id module;
    std::int64_t ordinal = 0;
    std::string title;
    std::optional<std::int64_t> pass_score;
    std::optional<std::int64_t> best_score;
    bool passed = false;
};

struct GatheringResult {
    Id gathering;
    std::int64_t ordinal = 0;
    std::string title;
    std::optional<std::int64_t> scheduled_at;  // ms since the epoch
    bool attended = false;                     // present
};

struct Completion {
    Id person, group, course;
    std::string membership_status;      // "" if the person is not a member
    std::vector<ModuleResult> modules;  // the course's required modules, by ordinal
    std::vector<GatheringResult> held;  // the group's held gatherings, by ordinal
    std::int64_t required_gatherings = 0;
    std::optional<Id> confirmed_by;  // the mentor
    std::int64_t confirmed_at = 0;   // ms since the epoch

    std::size_t modules_passed() const;
    std::size_t attended() const;
    bool member() const { return membership_status == "active" || membership_status == "completed"; }
    bool met() const;
    // What keeps the rule from being met, one line each, in words; empty if met.
    std::vector<std::string> lacking() const;
};

// The ids of the server's certificate rows a tablet looks up: an issuer key
// by its kid, and the one status list.
Id issuer_key_id(std::string_view kid);
// "urn:uuid:...": how a credential names a row.
std::string urn(const Id& id);

// A certificate's serial ("7Q2M-K9XD-4HRA"): unique per (person, course,
// group), so per server, stable across retries, servers and restores, and
// derived from its id, which the signed credential names.
std::string certificate_serial(const Id& certificate);
Id status_list_id();

// The rule for `person` in `group` (whose course it is), as the rows are now;
// nothing if the group does not exist or is deleted.
std::optional<Completion> completion(RowSource& rows, const Id& person, const Id& group);

}  // namespace lindra::model
