// main() of the data plane unit tests: EAL without hugepages, PCI or shared
// config (any user, any machine, several test processes at once), one mbuf
// pool, then every test.
#include <gtest/gtest.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_mbuf.h>

#include <cstdio>

#include "tests/unit/dataplane/support/dp_test_support.h"

namespace segw::dp::testing {
namespace {
rte_mempool* pool = nullptr;
}  // namespace

rte_mempool* packet_pool() { return pool; }

}  // namespace segw::dp::testing

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  char program[] = "segw-dataplane-tests";
  char no_huge[] = "--no-huge";
  char memory_flag[] = "-m";
  char memory_mb[] = "2048";
  char no_pci[] = "--no-pci";
  char no_shconf[] = "--no-shconf";
  char lcores_flag[] = "-l";
  char lcores[] = "0";
  char log_level[] = "--log-level=error";
  char* eal_argv[] = {program, no_huge, memory_flag, memory_mb, no_pci, no_shconf, lcores_flag, lcores, log_level};
  int eal_argc = static_cast<int>(sizeof(eal_argv) / sizeof(eal_argv[0]));
  if (rte_eal_init(eal_argc, eal_argv) < 0) {
    std::fprintf(stderr, "rte_eal_init failed: %s\n", rte_strerror(rte_errno));
    return 1;
  }
  // 2176-byte buffers: 128 headroom + 2048 data, room for a 1500-byte frame
  // plus the largest ESP overhead.
  segw::dp::testing::pool = rte_pktmbuf_pool_create("dp_test_pool", 8191, 256, 0,
                                                    RTE_MBUF_DEFAULT_BUF_SIZE, 0);
  if (segw::dp::testing::pool == nullptr) {
    std::fprintf(stderr, "rte_pktmbuf_pool_create failed: %s\n", rte_strerror(rte_errno));
    return 1;
  }
  int rc = RUN_ALL_TESTS();
  rte_mempool_free(segw::dp::testing::pool);
  rte_eal_cleanup();
  return rc;
}
