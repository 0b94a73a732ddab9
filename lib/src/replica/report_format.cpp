// The completion report as CSV and as a terminal table (lindra/report.hpp).
#include <lindra/report.hpp>

#include <ctime>

namespace lindra {
namespace {

std::string format_time(Timestamp ms, const char* format, bool utc) {
    const auto t = static_cast<std::time_t>(ms / 1000);
    std::tm tm{};
    if (utc)
        gmtime_r(&t, &tm);
    else
        localtime_r(&t, &tm);
    char buf[32];
    return std::string(buf, std::strftime(buf, sizeof buf, format, &tm));
}

std::string utc(const std::optional<Timestamp>& ms) {
    return ms ? format_time(*ms, "%Y-%m-%dT%H:%M:%SZ", true) : std::string();
}
std::string local_date(Timestamp ms) {
    return format_time(ms, "%Y-%m-%d", false);
}

std::string joined(const std::vector<std::string>& items) {
    std::string out;
    for (const auto& item : items) out += (out.empty() ? "" : "; ") + item;
    return out;
}

std::string csv_field(const std::string& s) {
    // A spreadsheet runs a cell that starts like a formula; names are typed
    // by the candidates themselves.
    const bool formula = !s.empty() && std::string_view("=+-@\t\r").find(s.front()) != std::string_view::npos;
    const std::string text = formula ? "'" + s : s;
    if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
    std::string out = "\"";
    for (char c : text) {
        if (c == '"') out += '"';
        out += c;
    }
    return out + '"';
}

std::string yes_no(bool v) {
    return v ? "yes" : "no";
}

// Control characters (C0, DEL, C1) as U+FFFD, so a name cannot move the
// cursor or colour the terminal, or break the columns.
std::string printable(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        const auto b = static_cast<unsigned char>(s[i]);
        const bool c1 = b == 0xC2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) >= 0x80 &&
                        static_cast<unsigned char>(s[i + 1]) <= 0x9F;
        if (b < 0x20 || b == 0x7F || c1) {
            out += "\xEF\xBF\xBD";
            if (c1) ++i;
        } else {
            out += s[i];
        }
    }
    return out;
}

std::string of(int n, int of) {
    return std::to_string(n) + "/" + std::to_string(of);
}

std::string confirmation(const CompletionReportRow& r) {
    if (!r.confirmed) return "no";
    std::string out = "yes";
    if (!r.confirmed_by_name.empty()) out += ", " + r.confirmed_by_name;
    if (r.confirmed_at && *r.confirmed_at > 0) out += ", " + local_date(*r.confirmed_at);
    return out;
}

std::string certificate(const CompletionReportRow& r) {
    switch (r.certificate) {
        case CertificateState::issued:
            return "issued " + r.serial + (r.issued_at ? ", " + local_date(*r.issued_at) : "");
        case CertificateState::revoked:
            return "revoked " + r.serial + ", " + local_date(r.revoked_at.value_or(0)) + ": " +
                   (r.revocation_reason.empty() ? "no reason given" : r.revocation_reason);
        case CertificateState::missing:
            return r.lacking.empty() ? "missing: the rule is met; the server issues it once it has these records (sync)"
                                     : "missing: " + joined(r.lacking);
    }
    return "?";
}

}  // namespace

std::string completion_report_csv(const CompletionReport& report) {
    std::string out =
        "organization,group,course,person,person_id,membership,modules_passed,modules_required,"
        "gatherings_attended,gatherings_held,gatherings_required,confirmed,confirmed_by,confirmed_at,rule_met,"
        "certificate,serial,issued_at,revoked_at,revocation_reason,lacking\r\n";
    for (const auto& r : report.rows) {
        const std::vector<std::string> cells = {r.organization_name,
                                                r.group_name,
                                                r.course_title,
                                                r.display_name,
                                                r.person.to_string(),
                                                std::string(to_string(r.status)),
                                                std::to_string(r.modules_passed),
                                                std::to_string(r.modules_required),
                                                std::to_string(r.gatherings_attended),
                                                std::to_string(r.gatherings_held),
                                                std::to_string(r.gatherings_required),
                                                yes_no(r.confirmed),
                                                r.confirmed_by_name,
                                                r.confirmed ? utc(r.confirmed_at) : std::string(),
                                                yes_no(r.met),
                                                std::string(to_string(r.certificate)),
                                                r.serial,
                                                utc(r.issued_at),
                                                utc(r.revoked_at),
                                                r.revocation_reason,
                                                joined(r.lacking)};
        for (std::size_t i = 0; i < cells.size(); ++i) out += (i ? "," : "") + csv_field(cells[i]);
        out += "\r\n";
    }
    return out;
}

std::string completion_report_table(const CompletionReport& report) {
    if (report.rows.empty()) return "no candidates in " + printable(report.scope) + "\n";
    std::string out;
    std::vector<std::vector<std::string>> table;
    for (std::size_t i = 0; i < report.rows.size(); ++i) {
        const auto& r = report.rows[i];
        if (i == 0 || r.group != report.rows[i - 1].group) {
            if (i > 0) out += aligned_columns(table) + "\n";
            table = {{"candidate", "modules", "gatherings", "confirmed", "certificate"}};
            out += printable(r.group_name) + " - " + printable(r.course_title) + ", " + printable(r.organization_name) +
                   "\n  the course asks for " + std::to_string(r.modules_required) + " modules passed and " +
                   std::to_string(r.gatherings_required) + " gatherings attended\n";
        }
        table.push_back({printable(member_name(r.display_name, r.status)), of(r.modules_passed, r.modules_required),
                         of(r.gatherings_attended, r.gatherings_held), printable(confirmation(r)),
                         printable(certificate(r))});
    }
    return out + aligned_columns(table);
}

}  // namespace lindra
