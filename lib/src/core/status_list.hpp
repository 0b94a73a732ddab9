// The bits of a W3C Bitstring Status List (the certificates' revocation
// list): index 0 is the first byte's most significant bit, and the list
// travels as encodedList, "u" (multibase base64url) + base64url of the
// GZIP of the bytes. Shared by the server that flips bits and the tablet
// that reads them.
//
// Thread-safety: free functions, safe from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace lindra::status_list {

// The least a list holds, 131,072 bits (16 KiB): the specification's
// floor, so that one revocation does not single out its certificate.
inline constexpr std::size_t kMinBytes = 16 * 1024;

// The bytes of a list that holds `entries` bits: kMinBytes, or more in
// steps of kMinBytes.
std::size_t bytes_for(std::int64_t entries);

bool bit(std::string_view bytes, std::int64_t index);
void set_bit(std::string& bytes, std::int64_t index);

std::string encode(std::string_view bytes);
// Nothing if `encoded` is not an encodedList, or holds more than
// `max_bytes` (a list from the server holds at most the schema's bits).
std::optional<std::string> decode(std::string_view encoded, std::size_t max_bytes);

}  // namespace lindra::status_list
