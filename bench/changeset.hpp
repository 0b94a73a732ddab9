// The hand-rolled alternative to lindra's sync: SQLite session-extension
// changesets, shipped device A -> server -> device B over loopback TCP and
// applied with sqlite3changeset_apply. `lindra-bench sync` runs it as the
// baseline on the same rows it syncs through lindra.
#pragma once

#include <lindra/id.hpp>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace lindra::bench {

// One module_progress write, the same rows lindra's sync bench moves.
struct ProgressRow {
    Id id, person, module, group;  // id = Id::derive("module_progress", {person, module, group})
    std::int64_t attempt, best_score, time_spent_s, first_completed_at;
    std::string status;  // "completed"
};

// Deterministic rows: persons repeat 20 times each (20 modules), one group.
std::vector<ProgressRow> make_progress_rows(int count);

struct ChangesetResult {
    double seconds = 0;               // from the start of sending A's changeset to B's last applied row
    std::size_t changeset_bytes = 0;  // bytes on the wire from A to the server (changeset + 8-byte length prefix)
    double bytes_per_row = 0;
};

// Device A inserts `rows` into a fresh SQLite file in `dir` under a session
// (untimed) and takes the changeset. Timed: A sends it over loopback TCP to a
// server thread, which applies it to its own file in one transaction and
// forwards the same bytes to device B, which applies it too. Timing ends when
// B's apply has committed. Throws std::runtime_error on any failure,
// including B not holding rows.size() module_progress rows.
ChangesetResult run_changeset(const std::vector<ProgressRow>& rows, const std::filesystem::path& dir);

}  // namespace lindra::bench
