// Seed corpora for the IKE fuzzers, taken from real exchanges: the
// gateway of fuzz_gateway.h and an initiator Engine (a device) in one
// process, joined by an in-memory network that can put a NAT between them.
// Every datagram of every exchange (IKE_SA_INIT, IKE_AUTH, CREATE_CHILD_SA,
// INFORMATIONAL, both directions) seeds the message fuzzer; the device's
// requests seed the engine fuzzer, alone (IKE_SA_INIT) and as a record
// sequence (fuzz_gateway.h) that patches in the gateway's SPIr.
#pragma once

#include <cstddef>
#include <string>

#include "shared/result.h"

namespace segw::fuzz {

// Writes DIR/message/*.bin and DIR/engine/*.bin (directories created,
// files of the same names replaced). Returns how many files it wrote.
// Errors: a configuration or engine that does not build, an exchange that
// does not complete, a file that cannot be written.
shared::Result<size_t> write_seed_corpora(const std::string& dir);

}  // namespace segw::fuzz
