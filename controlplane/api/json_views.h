// JSON views of the IKE engine's state for the REST API and segwctl: IKE
// SAs with their child SAs, the engine's counters, engine events. What the
// engine's info structs hold and no more: NEVER key material (the info
// structs carry none, and nothing here reaches for it). SPIs are hex strings
// (16 digits for IKE SPIs, 8 for ESP SPIs) so that no JSON reader rounds
// them; addresses are strings; times are seconds.
//
// Threads: pure functions of their arguments; any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "controlplane/ike/engine/engine.h"
#include "shared/channel/dataplane_statistics.h"

namespace segw::cp::api {

// "0123456789abcdef" (`digits` lower-case hex digits, zero-padded).
std::string spi_hex(uint64_t spi, int digits);

// {"address": "198.51.100.7", "port": 4500}
nlohmann::json endpoint_view(const ike::OuterEndpoint& endpoint);

// `now_ns`: the engine's clock (CLOCK_MONOTONIC in the daemon), to turn its
// timestamps into ages: established_age_s (seconds since it came up; null
// before) and rekey_in_s (seconds until we rekey it; null when we do not
// schedule one).
nlohmann::json child_sa_view(const ike::ChildSaInfo& child, uint64_t now_ns);
nlohmann::json ike_sa_view(const ike::IkeSaInfo& sa, uint64_t now_ns);

// Every SEGW_ENGINE_COUNTERS counter by its name, and the gauges under
// "gauges".
nlohmann::json stats_view(const ike::EngineStats& stats);

// One event for /v1/events: kind, ike_sa, detail, inner_ipv4 (null when
// none), remote {address, port}, time (UTC, RFC 3339 with milliseconds,
// from `unix_ms`), and "sa": the IKE SA's view when `sa` is given.
nlohmann::json event_view(const ike::EngineEvent& event, const std::optional<ike::IkeSaInfo>& sa,
                          uint64_t now_ns, uint64_t unix_ms);

// GET /v1/pools: name, family, range, lease_prefix_length, size, in_use,
// never_used, excluded. A lease: address, prefix_length, ike_sa, peer_id.
nlohmann::json pool_view(const ike::PoolInfo& pool);
nlohmann::json lease_view(const ike::LeaseInfo& lease);

// GET /v1/dataplane: the data plane's ports, workers, drops by reason,
// queue depths and channel counters; `now_ns` (CLOCK_MONOTONIC) turns the
// refresh time into an age.
nlohmann::json dataplane_view(const shared::channel::DataPlaneStatisticsSnapshot& statistics, uint64_t now_ns);

// Appends the segw_dataplane_* families (Prometheus text format) to `out`.
void append_dataplane_metrics(std::string& out, const shared::channel::DataPlaneStatisticsSnapshot& statistics);

// "2026-11-24T22:55:35.123Z"
std::string rfc3339_utc(uint64_t unix_ms);

}  // namespace segw::cp::api
