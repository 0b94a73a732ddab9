// Comparing names as people do: "øystein" is "Øystein".
#pragma once

#include <string>
#include <string_view>

namespace lindra {

// `s` in lower case for the Latin letters of Nordic and other European names
// (A-Z, U+00C0-U+00DE, Latin Extended-A); other text passes through
// unchanged. The result has the same length in bytes as `s`.
std::string fold_case(std::string_view s);

}  // namespace lindra
