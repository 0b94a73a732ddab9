// The coordinator's completion report as text: CSV for spreadsheets and an
// aligned table for a terminal (Replica::completion_report makes the
// report), and the text widths such a table is aligned by.
//
// Thread-safety: these are plain functions of their arguments, safe from
// any thread. They never throw but std::bad_alloc.
#pragma once

#include <lindra/replica.hpp>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace lindra {

// RFC 4180 CSV: a header line, then one line per candidate, CRLF line ends,
// fields with a comma, quote or line break quoted (quotes doubled). Times
// are UTC, RFC 3339 ("2026-12-06T19:40:00Z"); `lacking` joins its items
// with "; ". A cell a spreadsheet would take for a formula (it begins with
// =, +, -, @, a tab or a carriage return; names are typed by the
// candidates) gets a leading apostrophe. Columns: organization, group,
// course, person, person_id, membership, modules_passed, modules_required,
// gatherings_attended, gatherings_held, gatherings_required, confirmed
// (yes/no), confirmed_by, confirmed_at, rule_met (yes/no), certificate
// (issued/revoked/missing), serial, issued_at, revoked_at,
// revocation_reason, lacking.
std::string completion_report_csv(const CompletionReport& report);

// A table per group for a terminal: a heading with the group, course,
// organization and what the course asks for, then one aligned line per
// candidate (modules, gatherings, confirmation, certificate, and for a
// missing certificate what is lacking). Dates are in the process's local
// time zone. Control characters in names are shown as U+FFFD.
std::string completion_report_table(const CompletionReport& report);

// The columns a terminal gives `text` (UTF-8): one per character, none for
// combining marks and zero-width characters, two for East Asian wide and
// fullwidth characters and emoji. A byte that is not UTF-8 counts as one.
std::size_t text_width(std::string_view text);

// `rows` as lines of columns, each padded to the column's widest cell by
// text_width() with two spaces between columns, the last column not padded;
// every line starts with `indent` spaces and ends with '\n'.
std::string aligned_columns(const std::vector<std::vector<std::string>>& rows, int indent = 2);

}  // namespace lindra
