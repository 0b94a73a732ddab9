// The changeset baseline of `lindra-bench sync` moves every row and reports
// plausible figures.
#include "changeset.hpp"

#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <set>

using lindra::Id;
using lindra::bench::make_progress_rows;
using lindra::bench::run_changeset;

TEST_CASE("progress rows are deterministic: 20 modules per person, one group") {
    const auto rows = make_progress_rows(60);
    const auto again = make_progress_rows(60);
    REQUIRE(rows.size() == 60);
    std::set<Id> ids, persons, modules, groups;
    for (std::size_t i = 0; i < rows.size(); ++i) {
        const auto& r = rows[i];
        CHECK(r.id == again[i].id);
        CHECK(r.id == Id::derive("module_progress", {r.person, r.module, r.group}));
        CHECK(r.status == "completed");
        ids.insert(r.id);
        persons.insert(r.person);
        modules.insert(r.module);
        groups.insert(r.group);
    }
    CHECK(ids.size() == 60);
    CHECK(persons.size() == 3);
    CHECK(modules.size() == 20);
    CHECK(groups.size() == 1);
    CHECK(rows[0].person == rows[19].person);
    CHECK(rows[19].person != rows[20].person);
}

TEST_CASE("run_changeset moves 2,000 rows from A through the server to B") {
    lindra::test::TempDir dir;
    const auto rows = make_progress_rows(2000);
    const auto result = run_changeset(rows, dir.path());  // throws unless B holds every row
    CHECK(result.seconds > 0);
    CHECK(result.changeset_bytes > rows.size() * 30);
    CHECK(result.bytes_per_row >= 30);
    CHECK(result.bytes_per_row <= 200);
}

TEST_CASE("run_changeset throws when the rows conflict") {
    lindra::test::TempDir dir;
    auto rows = make_progress_rows(40);
    rows.push_back(rows.front());  // the same primary key twice: A's insert fails
    CHECK_THROWS_AS(run_changeset(rows, dir.path()), std::runtime_error);
}
