// Plain-text output: aligned tables and local dates.
#pragma once

#include "common/progress.hpp"

#include <lindra/replica.hpp>
#include <lindra/sync.hpp>

#include <cstdint>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

namespace tablet {

// Columns padded to their widest cell, counted in the columns a terminal
// gives them (lindra::text_width) so names like "Nils Sæther" line up. The
// last column is not padded.
class Table {
  public:
    void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
    void print(std::ostream& out, int indent = 2) const;

  private:
    std::vector<std::vector<std::string>> rows_;
};

// Local time, "YYYY-MM-DD HH:MM" and "YYYY-MM-DD".
std::string local_datetime(lindra::Timestamp ms);
std::string local_date(lindra::Timestamp ms);
// `days` from now at hh:00 local time (DST-aware).
lindra::Timestamp local_time_in_days(int days, int hour);

// Seconds as whole minutes, rounded.
std::string minutes(std::int64_t seconds);

// "1 write", "4 writes (10 changes)": a user's writes and the field changes
// they carry, in the words every command uses (docs/decisions.md).
using common::counted;
std::string writes_and_changes(std::int64_t writes, std::int64_t changes);

// What a round's purges took, one line per group left or person gone:
// 'no longer a member of group "Fjellvik 1": removed 14 rows'.
std::vector<std::string> purge_lines(const lindra::SyncResult& result);

}  // namespace tablet
