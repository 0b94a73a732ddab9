// The checks `lindra-bench fleet` makes after its run: every write reached
// the server exactly once (the server's log, counted per origin), and every
// tablet holds exactly the rows it may read, as the server has them (an
// admin replica that pulled everything is the reference).
#pragma once

#include <lindra/id.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace lindra::bench {

// Log entries of one origin (a device id) in the server's log.
struct OriginCount {
    std::int64_t entries = 0;
    std::int64_t distinct_seqs = 0;
};

// From a stopped server's SQLite store, opened read-only. Throws
// std::runtime_error if it has no log that can be counted.
std::map<Id, OriginCount> log_counts_sqlite(const std::string& db_path);
// From a PostgreSQL database, through psql.
std::map<Id, OriginCount> log_counts_postgres(const std::string& connection);

// What one tablet may read: catalog rows, and of its groups the group rows,
// its members' person rows, and its own per-person rows (a mentor: every
// member's).
struct TabletView {
    std::string name;
    std::string path;  // the replica file
    Id person;
    std::vector<Id> groups;
    std::vector<Id> people;  // person rows it may read: itself and the members of its groups
    bool mentor = false;
};

struct Comparison {
    std::size_t rows = 0;            // tablet rows that matched the reference
    std::size_t differences = 0;     // rows missing, extra or different
    std::vector<std::string> lines;  // the first differences, in words
};

// Compares each tablet's rows with what it should hold of the reference
// (every difference counts; at most `max_lines` are described).
Comparison compare_with_reference(const std::string& reference_path, const std::vector<TabletView>& tablets,
                                  std::size_t max_lines);

}  // namespace lindra::bench
