// Validation of field values against the schema table.
#pragma once

#include <lindra/change.hpp>
#include <lindra/error.hpp>
#include <lindra/schema.hpp>

#include <string>

namespace lindra::model {

// "entity.field", the name errors use.
std::string qualified_name(const EntityDef& e, const FieldDef& f);

// The error about field `f`: "entity.field: what", with Error::field() set.
Error field_error(Errc code, const EntityDef& e, const FieldDef& f, std::string_view what);

// Whether the field may hold "no value" (see FieldDef::nullable).
bool takes_null(const FieldDef& f) noexcept;
// Whether a new row must be given this field.
bool required_on_create(const FieldDef& f) noexcept;

// Whether an error message may show the value it refuses: yes to the app
// that passed it; never in the server's answer to a peer (a refusal's
// reason travels back to the device and into logs).
enum class Quote { value, none };

// The error for a value outside an enum field's allowed set.
[[noreturn]] void throw_bad_enum(const EntityDef& e, const FieldDef& f, std::string_view value,
                                 Quote quote = Quote::value);

// Throws lindra::Error naming the field when `v` is not a valid value of `f`
// (wrong type, enum value outside the set, out of range, too long, bad UTF-8).
void validate(const EntityDef& e, const FieldDef& f, const Value& v, Quote quote = Quote::value);

// Throws Error(invalid_argument) if rows of `e` may not be deleted: rows
// identified by other rows (a derived id) would come back under the same
// id, and a tombstone is final, so deleting a membership would bar its
// person from the group for good, and a certificate or a revocation is
// never taken back.
void check_deletable(const EntityDef& e);

}  // namespace lindra::model
