// The commands of lindra-tablet.
#pragma once

#include "cli.hpp"

#include <span>

namespace tablet {

// The command table, in the order the usage text lists it.
std::span<const Command> commands();

// seed-demo (seed.cpp).
void seed_demo(Session& s);

}  // namespace tablet
