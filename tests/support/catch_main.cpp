// Catch2's main for sanitized builds (tests/CMakeLists.txt says why).
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
