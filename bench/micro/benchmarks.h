// Registration of the micro benchmarks (names are built at run time, so
// each family registers itself from main() instead of BENCHMARK macros).
// Benchmarks run in registration order; main() registers every benchmark of
// the 1,000,000-tunnel sets last and together, so each such set is built
// once per process (SaSet keeps one large set at a time).
#pragma once

namespace segw::bench {

// Which tunnel counts a family registers.
enum class Scale {
  kSmall,    // 1 and 1,000 tunnels
  kMillion,  // 1,000,000 tunnels
};

// BM_SaLookup/{inbound_spi,inbound_spi_unstaged,outbound_ipv4,outbound_ipv4_sa}/<tunnels>,
// BM_SaLookup/outbound_ipv6/<tunnels> (small scale only)
void register_sa_lookup_benchmarks(Scale scale);
// BM_Replay/{in_order,reordered,esn_in_order,esn_wrap,esn_wrap_reordered}/<window>
void register_replay_window_benchmarks();
// One SA per algorithm: BM_Encap/<algo>/<size>, BM_Decap/<algo>/<size>,
// BM_DecapCopyOnly/<algo>/<size>, BM_EncapCopyOnly/<size>
void register_esp_burst_benchmarks();
// BM_EncapMultiSa/<algo>/<size>/<tunnels>
void register_multi_sa_benchmarks(Scale scale);

}  // namespace segw::bench
