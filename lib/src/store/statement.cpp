#include "store/statement.hpp"

#include "store/database.hpp"

#include <lindra/error.hpp>

#include <sqlite3.h>

#include <utility>

namespace lindra::store {

Statement::Statement(sqlite3* db, std::string_view sql) : db_(db), stmt_(nullptr) {
    const int rc =
        sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr);
    if (rc != SQLITE_OK) throw_sqlite(db, rc, sql);
}

Statement::~Statement() {
    sqlite3_finalize(stmt_);
}

Statement::Statement(Statement&& other) noexcept : db_(other.db_), stmt_(std::exchange(other.stmt_, nullptr)) {}

Statement& Statement::operator=(Statement&& other) noexcept {
    if (this != &other) {
        sqlite3_finalize(stmt_);
        db_ = other.db_;
        stmt_ = std::exchange(other.stmt_, nullptr);
    }
    return *this;
}

namespace {
void check_bind(sqlite3* db, int rc) {
    if (rc != SQLITE_OK) throw_sqlite(db, rc, "bind");
}
}  // namespace

Statement& Statement::bind(int i, std::int64_t v) {
    check_bind(db_, sqlite3_bind_int64(stmt_, i, v));
    return *this;
}

Statement& Statement::bind(int i, std::string_view v) {
    check_bind(db_, sqlite3_bind_text64(stmt_, i, v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8));
    return *this;
}

Statement& Statement::bind(int i, std::span<const std::uint8_t> blob) {
    check_bind(db_, sqlite3_bind_blob64(stmt_, i, blob.data(), blob.size(), SQLITE_TRANSIENT));
    return *this;
}

Statement& Statement::bind(int i, const Value& v) {
    switch (v.index()) {
        case 1:
            return bind(i, std::get<std::int64_t>(v));
        case 2:
            return bind(i, std::string_view(std::get<std::string>(v)));
        case 3:
            return bind(i, std::get<Id>(v));
        default:
            return bind_null(i);
    }
}

Statement& Statement::bind_null(int i) {
    check_bind(db_, sqlite3_bind_null(stmt_, i));
    return *this;
}

bool Statement::step() {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    throw_sqlite(db_, rc, sqlite3_sql(stmt_));
}

void Statement::run() {
    while (step()) {
    }
}

void Statement::reset() noexcept {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
}

bool Statement::is_null(int col) const {
    return sqlite3_column_type(stmt_, col) == SQLITE_NULL;
}

std::int64_t Statement::int64(int col) const {
    return sqlite3_column_int64(stmt_, col);
}

std::string Statement::text(int col) const {
    const auto* p = sqlite3_column_text(stmt_, col);
    const int n = sqlite3_column_bytes(stmt_, col);
    return p ? std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(n)) : std::string();
}

std::span<const std::uint8_t> Statement::blob(int col) const {
    const auto* p = static_cast<const std::uint8_t*>(sqlite3_column_blob(stmt_, col));
    const int n = sqlite3_column_bytes(stmt_, col);
    return {p, static_cast<std::size_t>(n)};
}

Id Statement::id(int col) const {
    auto b = blob(col);
    if (b.size() != 16) throw Error(Errc::corrupt, "an id column does not hold 16 bytes");
    Id id;
    std::copy(b.begin(), b.end(), id.bytes.begin());
    return id;
}

Value Statement::value(int col) const {
    switch (sqlite3_column_type(stmt_, col)) {
        case SQLITE_INTEGER:
            return int64(col);
        case SQLITE_TEXT:
            return text(col);
        case SQLITE_BLOB:
            return id(col);
        case SQLITE_NULL:
            return std::monostate{};
        default:
            throw Error(Errc::corrupt, "unexpected floating-point column");
    }
}

int Statement::column_count() const {
    return sqlite3_column_count(stmt_);
}

}  // namespace lindra::store
