// libFuzzer target: the IKEv2 engine as responder (the gateway: PSK
// profile, address pools; fuzz_gateway.h) fed untrusted datagrams from peers
// in 203.0.113.0/24 to 198.51.100.1:500/4500. Each input is used twice:
//   1. whole, as one datagram from 203.0.113.10:500;
//   2. as a sequence of records (fuzz_gateway.h), so that an IKE_SA_INIT
//      that happens to be valid can be followed by IKE_AUTH and the rest;
//      kRecordPatchSpiR writes the SPIr the gateway last chose into a
//      record, so later messages find the half-open IKE SA (the SPI is
//      random: a fuzzer could never guess it).
// A fake clock moves past half_open_timeout_s before each phase, so every
// phase starts with no IKE SA left over from earlier inputs (replies go
// nowhere and no peer can authenticate, so no SA outlives that). poll()
// runs after every datagram. The engine must never crash, leak or hit UB.
//
// SEGW_FUZZ_ENGINE_STATS=1 prints the gateway's counters at exit (how
// deep the inputs went). SEGW_FUZZ_WRITE_SEEDS=DIR makes the binary write its seed corpora
// (DIR/engine, DIR/message) from real exchanges and exit (seed_writer.h).
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "controlplane/config/controlplane_config.h"
#include "controlplane/dp_link/recording_sa_installer.h"
#include "controlplane/ike/engine/engine.h"
#include "tests/fuzz/fuzz_gateway.h"
#include "tests/fuzz/seed_writer.h"

namespace segw::fuzz {
namespace {

using cp::dp_link::IkeDatagram;
using shared::IpAddress;

constexpr uint64_t kSecond = 1'000'000'000;
constexpr uint64_t kRecordClockStep = kSecond / 4;

// Keeps nothing of what the gateway sends but the SPIr of its responses.
class CaptureTransport final : public cp::dp_link::IkeTransport {
 public:
  shared::Status send(const IkeDatagram& datagram) override {
    const auto& m = datagram.message;
    if (m.size() >= 16) {
      uint64_t spi_r = 0;
      for (size_t i = 8; i < 16; ++i) spi_r = spi_r << 8 | m[i];
      if (spi_r != 0) last_spi_r = spi_r;
    }
    ++sent;
    return {};
  }
  void set_receiver(cp::dp_link::IkeReceiver) override {}

  uint64_t last_spi_r = 0;
  uint64_t sent = 0;
};

struct Gateway {
  cp::config::ControlPlaneConfig config;
  cp::dp_link::RecordingSaInstaller installer;
  CaptureTransport transport;
  std::unique_ptr<cp::ike::Engine> engine;
  uint64_t now = 1000 * kSecond;
  IpAddress local;

  // Past every half-open timeout: what earlier inputs left is gone.
  void start_phase() {
    now += (uint64_t(config.daemon.half_open_timeout_s) + 1) * kSecond;
    engine->poll();
    installer.clear();
    transport.last_spi_r = 0;
  }

  void deliver(std::span<const uint8_t> message, uint8_t flags) {
    now += ((flags >> kRecordClockShift) & kRecordClockMask) * kRecordClockStep;
    const bool natt = (flags & kRecordNatT) != 0;
    const uint16_t port = natt ? 4500 : 500;
    unsigned host = 10 + ((flags >> kRecordHostShift) & kRecordHostMask);
    IkeDatagram d;
    d.local = {local, port};
    d.remote = {*IpAddress::parse("203.0.113." + std::to_string(host)), port};
    d.non_esp_marker = natt;
    d.arrival_time_ns = now;
    d.message.assign(message.begin(), message.end());
    if ((flags & kRecordPatchSpiR) != 0 && d.message.size() >= 16)
      for (size_t i = 0; i < 8; ++i)
        d.message[8 + i] = uint8_t(transport.last_spi_r >> (56 - 8 * i));
    engine->handle_datagram(d);
    engine->poll();
  }
};

Gateway* gateway = nullptr;

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "ike_engine_fuzzer: %s\n", what.c_str());
  std::exit(1);
}

void build_gateway() {
  auto g = std::make_unique<Gateway>();
  auto parsed = cp::config::parse_controlplane_config(gateway_config_text(), "fuzz-gateway.conf");
  if (!parsed.ok()) die("gateway config: " + parsed.error());
  g->config = std::move(*parsed);
  g->local = *IpAddress::parse(kGatewayAddress);
  Gateway* raw = g.get();
  auto engine = cp::ike::Engine::create(g->config, cp::ike::EngineOptions::from(g->config.daemon),
                                        g->transport, g->installer, [raw] { return raw->now; });
  if (!engine.ok()) die("gateway engine: " + engine.error());
  g->engine = std::move(*engine);
  g->engine->set_event_handler([](const cp::ike::EngineEvent&) {});
  gateway = g.release();  // lives as long as the process (libFuzzer never returns)
}

void print_stats() {
  const auto& s = gateway->engine->stats();
#define SEGW_FUZZ_PRINT_COUNTER(name) std::fprintf(stderr, "engine stat %s: %llu\n", #name, \
                                                   static_cast<unsigned long long>(s.name));
  SEGW_ENGINE_COUNTERS(SEGW_FUZZ_PRINT_COUNTER)
#undef SEGW_FUZZ_PRINT_COUNTER
  std::fprintf(stderr, "engine stat datagrams sent: %llu\n",
               static_cast<unsigned long long>(gateway->transport.sent));
}

}  // namespace
}  // namespace segw::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* dir = std::getenv("SEGW_FUZZ_WRITE_SEEDS")) {
    auto written = segw::fuzz::write_seed_corpora(dir);
    if (!written.ok()) {
      std::fprintf(stderr, "ike_engine_fuzzer: seeds: %s\n", written.error().c_str());
      std::exit(1);
    }
    std::fprintf(stderr, "ike_engine_fuzzer: wrote %zu seed files under %s\n", *written, dir);
    std::exit(0);
  }
  segw::fuzz::build_gateway();
  if (std::getenv("SEGW_FUZZ_ENGINE_STATS") != nullptr) std::atexit(segw::fuzz::print_stats);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace segw::fuzz;
  Gateway& g = *gateway;
  std::span<const uint8_t> input(data, size);

  g.start_phase();
  g.deliver(input, 0);

  g.start_phase();
  size_t offset = 0;
  for (size_t records = 0; records < kMaxRecords && offset + kRecordHeaderSize <= size; ++records) {
    uint8_t flags = data[offset];
    size_t length = size_t(data[offset + 1]) << 8 | data[offset + 2];
    offset += kRecordHeaderSize;
    length = std::min(length, size - offset);
    g.deliver(input.subspan(offset, length), flags);
    offset += length;
  }
  return 0;
}
