// ESP as the peer of an inbound SA sends it, made by segw's own outbound
// code: the SA's descriptor mirrored (direction outbound, path and selectors
// swapped) is installed in a private SaTables and esp_outbound_burst encrypts.
// Needs an initialised EAL (no ports); main lcore only.
#pragma once

#include <rte_mempool.h>

#include <cstdint>
#include <functional>
#include <memory>

#include "dataplane/esp/crypto.h"
#include "dataplane/esp/esp_context.h"
#include "dataplane/sad/sa_table.h"
#include "shared/result.h"
#include "shared/sa_descriptor.h"

namespace segw::pcapgen {

// The descriptor the peer of `inbound` uses to send on it: same SPI, keys,
// algorithm and ESN; direction outbound; path mirrored (the peer's address
// and port become local); local and remote selectors swapped; no lifetimes.
shared::SaDescriptor mirror_for_peer(const shared::SaDescriptor& inbound);

class PeerEncryptor {
 public:
  struct Options {
    uint8_t destination_mac[6] = {0x02, 0, 0, 0, 0, 0x01};  // the gateway's access port
    uint8_t source_mac[6] = {0x02, 0, 0, 0, 0, 0x02};       // the peer's side
  };
  // Errors: no mempool or SA table memory (more EAL memory: -m).
  static shared::Result<std::unique_ptr<PeerEncryptor>> create(const Options& options);
  ~PeerEncryptor();
  PeerEncryptor(const PeerEncryptor&) = delete;
  PeerEncryptor& operator=(const PeerEncryptor&) = delete;

  // Frames `count` copies of the inner IP packet `inner` (inner_size bytes,
  // at most kMaxInnerPacket) as ESP on `inbound`'s path, sequence numbers
  // 1..count in order, and hands each Ethernet frame to `emit` (valid during
  // the call only). The mirrored SA is installed for the call and removed
  // after. Errors: the install failed (descriptor invalid), or a packet was
  // dropped by the outbound code (its drop reason is named).
  shared::Status encrypt(const shared::SaDescriptor& inbound, const uint8_t* inner, uint32_t inner_size,
                         uint64_t count, const std::function<void(const uint8_t* frame, uint32_t length)>& emit);

 private:
  PeerEncryptor() = default;

  rte_mempool* pool_ = nullptr;
  std::unique_ptr<dp::SaTables> tables_;
  dp::CryptoManager crypto_;
  dp::WorkerCounters counters_;
  dp::EspContext context_;
};

}  // namespace segw::pcapgen
