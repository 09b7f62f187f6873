// GoogleTest printers for shared/ value types, so a failed EXPECT_EQ shows
// "10.0.1.0" instead of a dump of 17 bytes.
#pragma once

#include <ostream>
#include <string_view>

#include <gtest/gtest.h>

#include "shared/ip_address.h"
#include "shared/sa_descriptor.h"

namespace segw::shared {

// Found by argument-dependent lookup, so they must live in the types' namespace.
inline void PrintTo(const IpAddress& address, std::ostream* os) { *os << address.to_string(); }
inline void PrintTo(const IpPrefix& prefix, std::ostream* os) { *os << prefix.to_string(); }
inline void PrintTo(const TrafficSelector& selector, std::ostream* os) {
  *os << selector.to_string();
}
inline void PrintTo(const PathDescriptor& path, std::ostream* os) {
  *os << path.local.to_string() << ":" << path.local_port << " -> " << path.remote.to_string()
      << ":" << path.remote_port << (path.udp_encapsulation ? " udp" : " esp");
}

}  // namespace segw::shared

namespace segw::shared::testing {

// Parses `text`, failing the current test (not aborting) if it does not parse.
inline IpAddress address(std::string_view text) {
  auto parsed = IpAddress::parse(text);
  if (!parsed) {
    ADD_FAILURE() << "test setup: '" << text << "' is not an address";
    return {};
  }
  return *parsed;
}

inline IpPrefix prefix(std::string_view text) {
  auto parsed = IpPrefix::parse(text);
  if (!parsed) {
    ADD_FAILURE() << "test setup: '" << text << "' is not a prefix";
    return {};
  }
  return *parsed;
}

}  // namespace segw::shared::testing
