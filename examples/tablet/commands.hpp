// The commands of lindra-tablet.
#pragma once

#include "cli.hpp"

#include <span>

namespace tablet {

// The command table, in the order the usage text lists it.
std::span<const Command> commands();

// seed-demo (seed.cpp).
void seed_demo(Session& s);

// certificate, verify, revoke, issuer-keys (certificates.cpp).
void cmd_certificate(Session& s);
void cmd_verify(Session& s);
void cmd_revoke(Session& s);
void cmd_issuer_keys(Session& s);

// sync, sign-out (sync.cpp).
void cmd_sync(Session& s);
void cmd_sign_out(Session& s);

}  // namespace tablet
