// ESP outbound burst: route, sequence, pad, encrypt, outer header.
#include "dataplane/esp/esp_outbound.h"

#include <rte_fib.h>
#include <rte_fib6.h>
#include <rte_ip.h>
#include <rte_prefetch.h>
#include <rte_udp.h>

#include "dataplane/esp/sa_counter_run.h"
#include "dataplane/frag/fragment.h"
#include "shared/wire.h"

namespace segw::dp {

namespace {

struct OutboundItem {
  rte_mbuf* m;
  EspSa* sa;
  const Path* path;
  uint8_t* esp;
  uint32_t padded_length;   // inner + padding + trailer (the encrypted part after the IV)
  alignas(16) uint8_t nonce[12];
  alignas(16) uint8_t aad[12];
};

// CBC IVs must be unpredictable (RFC 3602 3). We encrypt a per-packet nonce
// (sequence number || SPI) as the first block with a zero IV: the first
// ciphertext block E_K(nonce) is the packet's IV, as NIST SP 800-38A
// Appendix C recommends, at the cost of one AES block and no RNG call.
alignas(16) constexpr uint8_t kZeroIv[16] = {};

inline uint32_t align_up(uint32_t value, uint32_t block) { return (value + block - 1) / block * block; }

}  // namespace

uint32_t max_inner_size(const EspSa& sa, const Path& path, uint16_t access_mtu) {
  uint32_t overhead = path.header_length + sizeof(shared::EspHeader) + sa.iv_length + sa.icv_length;
  if (access_mtu <= overhead + sa.block_size) return 0;
  // Largest padded payload that fits, minus the 2-byte trailer.
  uint32_t padded = (access_mtu - overhead) / sa.block_size * sa.block_size;
  return padded - 2;
}

uint16_t esp_outbound_burst(EspContext& ctx, rte_mbuf** packets, uint16_t count, rte_mbuf** out,
                            rte_mbuf** to_core, uint16_t* to_core_count) {
  *to_core_count = 0;
  if (count > kMaxEspBurst) count = kMaxEspBurst;
  // Pass 1: routes for the whole burst with one bulk lookup per family.
  uint32_t ipv4_destinations[kMaxEspBurst];
  uint8_t ipv6_destinations[kMaxEspBurst][16];
  uint64_t ipv4_next_hops[kMaxEspBurst];
  uint64_t ipv6_next_hops[kMaxEspBurst];
  uint16_t ipv4_index[kMaxEspBurst];
  uint16_t ipv6_index[kMaxEspBurst];
  uint16_t ipv4_count = 0, ipv6_count = 0;
  uint64_t next_hop[kMaxEspBurst];
  for (uint16_t i = 0; i < count; ++i) {
    rte_mbuf* m = packets[i];
    const uint8_t* l3 = rte_pktmbuf_mtod_offset(m, const uint8_t*, m->l2_len);
    if (RTE_ETH_IS_IPV4_HDR(m->packet_type)) {
      ipv4_destinations[ipv4_count] = shared::load_be32(l3 + 16);
      ipv4_index[ipv4_count++] = i;
    } else {
      std::memcpy(ipv6_destinations[ipv6_count], l3 + 24, 16);
      ipv6_index[ipv6_count++] = i;
    }
  }
  if (ipv4_count) rte_fib_lookup_bulk(ctx.tables->ipv4_routes(), ipv4_destinations, ipv4_next_hops, ipv4_count);
  if (ipv6_count) rte_fib6_lookup_bulk(ctx.tables->ipv6_routes(), ipv6_destinations, ipv6_next_hops, ipv6_count);
  for (uint16_t k = 0; k < ipv4_count; ++k) next_hop[ipv4_index[k]] = ipv4_next_hops[k];
  for (uint16_t k = 0; k < ipv6_count; ++k) next_hop[ipv6_index[k]] = ipv6_next_hops[k];

  // Sweeps that only start loads, so that with traffic spread over many SAs
  // the burst's cache misses overlap instead of queueing one after another:
  // table slots, then SA lines, then what the SA points to, then the paths.
  EspSa* sas[kMaxEspBurst];
  for (uint16_t i = 0; i < count; ++i) {
    const std::atomic<EspSa*>* slot = next_hop[i] == SaTables::kNoRoute
                                          ? nullptr
                                          : ctx.tables->outbound_slot(static_cast<uint32_t>(next_hop[i] - 1));
    if (slot) rte_prefetch0(slot);
  }
  for (uint16_t i = 0; i < count; ++i) {
    sas[i] = next_hop[i] == SaTables::kNoRoute ? nullptr
                                               : ctx.tables->outbound_at(static_cast<uint32_t>(next_hop[i] - 1));
    if (sas[i]) rte_prefetch0(sas[i]);
  }
  for (uint16_t i = 0; i < count; ++i) {
    EspSa* sa = sas[i];
    if (sa == nullptr) continue;
    rte_prefetch0(sa->tunnel);
    sa->keys->prefetch();
    rte_prefetch0(&sa->sequence);
    rte_prefetch0(&sa->counters);
  }
  for (uint16_t i = 0; i < count; ++i) {
    if (sas[i] == nullptr) continue;
    const auto* path_lines = reinterpret_cast<const uint8_t*>(sas[i]->tunnel->path.load(std::memory_order_relaxed));
    rte_prefetch0(path_lines);
    rte_prefetch0(path_lines + 64);  // the header template starts on the second line
  }

  // Pass 2: SA, MTU (fragment or ICMP), building the work list.
  OutboundItem items[kMaxEspBurst];
  uint16_t item_count = 0;
  for (uint16_t i = 0; i < count; ++i) {
    rte_mbuf* m = packets[i];
    if (next_hop[i] == SaTables::kNoRoute) [[unlikely]] {
      drop_packet(ctx, m, DropReason::kNoRoute);
      continue;
    }
    EspSa* sa = sas[i];
    if (sa == nullptr) [[unlikely]] {
      drop_packet(ctx, m, DropReason::kNoSa);
      continue;
    }
    const Path* path = sa->tunnel->path.load(std::memory_order_acquire);
    uint32_t inner_length = m->pkt_len - m->l2_len;
    uint32_t limit = max_inner_size(*sa, *path, ctx.access_mtu);
    if (inner_length > limit) [[unlikely]] {
      bool ipv4 = RTE_ETH_IS_IPV4_HDR(m->packet_type);
      bool df = false;
      if (ipv4) {
        auto* ip = rte_pktmbuf_mtod_offset(m, const rte_ipv4_hdr*, m->l2_len);
        df = rte_be_to_cpu_16(ip->fragment_offset) & RTE_IPV4_HDR_DF_FLAG;
      }
      if (ipv4 && (!df || ctx.df_policy == DfPolicy::kIgnore)) {
        rte_mbuf* pieces[kMaxFragmentsPerPacket];
        uint16_t room = static_cast<uint16_t>(std::min<int>(kMaxFragmentsPerPacket, kMaxEspBurst - item_count));
        uint16_t n = fragment_ipv4(m, limit, ctx.pool, pieces, room);
        if (n == 0) {
          drop_packet(ctx, m, DropReason::kFragmentError, sa);
          continue;
        }
        rte_pktmbuf_free(m);
        bump(ctx.counters->fragments_created, n);
        for (uint16_t f = 0; f < n; ++f) items[item_count++] = {pieces[f], sa, path, nullptr, 0, {}, {}};
        continue;
      }
      // DF set (or IPv6, which routers never fragment): tell the sender.
      bool have_source = ipv4 ? ctx.have_core_ipv4 : ctx.have_core_ipv6;
      uint32_t mtu_report = ipv4 ? limit : std::max<uint32_t>(limit, 1280);
      if (have_source) {
        rte_mbuf* error = make_too_big_error(m, !ipv4, mtu_report, ipv4 ? ctx.core_ipv4 : ctx.core_ipv6, ctx.pool);
        if (error) {
          // make_too_big_error mirrors the offending frame's MACs; its
          // destination MAC need not be ours (promiscuous port, multicast).
          // Like every frame out of the core port: from our MAC to the next hop.
          auto* eth = rte_pktmbuf_mtod(error, rte_ether_hdr*);
          eth->src_addr = ctx.core_mac;
          eth->dst_addr = ctx.core_next_hop;
          to_core[(*to_core_count)++] = error;
          bump(ctx.counters->icmp_sent);
        }
      }
      drop_packet(ctx, m, DropReason::kMtuExceeded, sa);
      continue;
    }
    items[item_count++] = {m, sa, path, nullptr, 0, {}, {}};
  }

  // Pass 3: sequence numbers, headers, trailers, crypto jobs.
  IMB_JOB* jobs[kMaxEspBurst];
  uint32_t available = IMB_GET_NEXT_BURST(ctx.crypto, item_count, jobs);
  uint16_t job_count = 0;
  SaCounterRun counted;
  for (uint16_t k = 0; k < item_count; ++k) {
    OutboundItem& it = items[k];
    rte_mbuf* m = it.m;
    EspSa* sa = it.sa;
    const Path* path = it.path;
    if (counted.hard_limit_reached(sa)) [[unlikely]] {
      drop_packet(ctx, m, DropReason::kLifetimeExpired, sa);
      continue;
    }
    // Unique even when several workers send on one SA.
    uint64_t sequence = sa->sequence.fetch_add(1, std::memory_order_relaxed) + 1;
    if (!sa->esn && sequence > 0xffffffffull) [[unlikely]] {
      // RFC 4303 3.3.3: the counter must not cycle; the SA needs a rekey.
      drop_packet(ctx, m, DropReason::kSequenceOverflow, sa);
      continue;
    }
    if (job_count >= available) [[unlikely]] {
      drop_packet(ctx, m, DropReason::kCryptoError, sa);
      continue;
    }
    bool inner_ipv6 = !RTE_ETH_IS_IPV4_HDR(m->packet_type);
    uint32_t inner_length = m->pkt_len - m->l2_len;
    it.padded_length = align_up(inner_length + 2, sa->block_size);
    uint32_t pad = it.padded_length - inner_length - 2;
    uint32_t header_length = path->header_length + sizeof(shared::EspHeader) + sa->iv_length;
    uint32_t trailer_length = pad + 2 + sa->icv_length;
    if (uint32_t{rte_pktmbuf_headroom(m)} + m->l2_len < sizeof(rte_ether_hdr) + header_length ||
        rte_pktmbuf_tailroom(m) < trailer_length) [[unlikely]] {
      drop_packet(ctx, m, DropReason::kNoBuffer, sa);
      continue;
    }
    rte_pktmbuf_adj(m, m->l2_len);
    auto* frame = reinterpret_cast<uint8_t*>(rte_pktmbuf_prepend(m, static_cast<uint16_t>(sizeof(rte_ether_hdr) + header_length)));
    auto* trailer = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, static_cast<uint16_t>(trailer_length)));
    auto* eth = reinterpret_cast<rte_ether_hdr*>(frame);
    eth->dst_addr = ctx.access_next_hop;
    eth->src_addr = ctx.access_mac;
    eth->ether_type = rte_cpu_to_be_16(path->ipv6 ? RTE_ETHER_TYPE_IPV6 : RTE_ETHER_TYPE_IPV4);
    uint8_t* outer = frame + sizeof(rte_ether_hdr);
    std::memcpy(outer, path->header_template, path->header_length);  // not more: the ESP header follows
    uint32_t esp_length = sizeof(shared::EspHeader) + sa->iv_length + it.padded_length + sa->icv_length;
    uint32_t ip_length = path->header_length + esp_length;
    uint32_t ip_header_length;
    if (!path->ipv6) {
      auto* ip = reinterpret_cast<rte_ipv4_hdr*>(outer);
      ip->total_length = rte_cpu_to_be_16(static_cast<uint16_t>(ip_length));
      ip->packet_id = rte_cpu_to_be_16(static_cast<uint16_t>(sequence));
      ip->hdr_checksum = rte_ipv4_cksum(ip);
      ip_header_length = sizeof(rte_ipv4_hdr);
    } else {
      auto* ip = reinterpret_cast<rte_ipv6_hdr*>(outer);
      ip->payload_len = rte_cpu_to_be_16(static_cast<uint16_t>(ip_length - sizeof(rte_ipv6_hdr)));
      ip_header_length = sizeof(rte_ipv6_hdr);
    }
    if (path->udp_encapsulation) {
      auto* udp = reinterpret_cast<rte_udp_hdr*>(outer + ip_header_length);
      udp->dgram_len = rte_cpu_to_be_16(static_cast<uint16_t>(sizeof(rte_udp_hdr) + esp_length));
    }
    uint8_t* esp = outer + path->header_length;
    it.esp = esp;
    shared::store_be32(esp, sa->spi);
    shared::store_be32(esp + 4, static_cast<uint32_t>(sequence));
    // Trailer: 1, 2, 3, ... padding, pad length, next header (RFC 4303 2.4-2.6).
    for (uint32_t p = 0; p < pad; ++p) trailer[p] = static_cast<uint8_t>(p + 1);
    trailer[pad] = static_cast<uint8_t>(pad);
    trailer[pad + 1] = inner_ipv6 ? shared::kIpProtocolIpv6 : shared::kIpProtocolIpv4;
    uint8_t* icv = trailer + pad + 2;

    IMB_JOB* job = jobs[job_count++];
    job->src = esp;
    job->dst = esp + sizeof(shared::EspHeader);
    job->cipher_direction = IMB_DIR_ENCRYPT;
    job->chain_order = IMB_ORDER_CIPHER_HASH;
    job->key_len_in_bytes = sa->cipher_key_length;
    job->auth_tag_output = icv;
    job->auth_tag_output_len_in_bytes = sa->icv_length;
    job->user_data = m;
    job->user_data2 = &it;
    if (sa->aead) {
      // RFC 4106 3.1: the explicit IV only has to be unique per key; the
      // sequence number is.
      shared::store_be64(esp + 8, sequence);
      std::memcpy(it.nonce, sa->salt, 4);
      std::memcpy(it.nonce + 4, esp + 8, 8);
      job->dst = esp + 16;
      job->cipher_mode = IMB_CIPHER_GCM;
      job->hash_alg = IMB_AUTH_AES_GMAC;
      job->enc_keys = &sa->keys->gcm;
      job->dec_keys = &sa->keys->gcm;
      job->iv = it.nonce;
      job->iv_len_in_bytes = 12;
      job->cipher_start_src_offset_in_bytes = 16;
      job->msg_len_to_cipher_in_bytes = it.padded_length;
      job->hash_start_src_offset_in_bytes = 16;
      job->msg_len_to_hash_in_bytes = it.padded_length;
      if (sa->esn) {
        std::memcpy(it.aad, esp, 4);
        shared::store_be32(it.aad + 4, static_cast<uint32_t>(sequence >> 32));
        std::memcpy(it.aad + 8, esp + 4, 4);
        job->u.GCM.aad = it.aad;
        job->u.GCM.aad_len_in_bytes = 12;
      } else {
        job->u.GCM.aad = esp;
        job->u.GCM.aad_len_in_bytes = 8;
      }
    } else {
      shared::store_be64(esp + 8, sequence);
      std::memcpy(esp + 16, esp, 4);   // nonce = sequence || SPI || 0
      std::memset(esp + 20, 0, 4);
      job->cipher_mode = IMB_CIPHER_CBC;
      job->hash_alg = sa->hmac_sha256 ? IMB_AUTH_HMAC_SHA_256 : IMB_AUTH_HMAC_SHA_1;
      job->enc_keys = sa->keys->cbc.encrypt_round_keys;
      job->dec_keys = sa->keys->cbc.decrypt_round_keys;
      job->iv = kZeroIv;
      job->iv_len_in_bytes = 16;
      job->cipher_start_src_offset_in_bytes = sizeof(shared::EspHeader);
      job->msg_len_to_cipher_in_bytes = 16 + it.padded_length;
      job->u.HMAC._hashed_auth_key_xor_ipad = sa->keys->cbc.hmac_ipad_state;
      job->u.HMAC._hashed_auth_key_xor_opad = sa->keys->cbc.hmac_opad_state;
      job->hash_start_src_offset_in_bytes = 0;
      uint32_t authenticated = sizeof(shared::EspHeader) + 16 + it.padded_length;
      if (sa->esn) {
        // RFC 4303 2.2.1: high sequence bits are authenticated, not sent;
        // they sit where the ICV will be written.
        shared::store_be32(icv, static_cast<uint32_t>(sequence >> 32));
        authenticated += 4;
      }
      job->msg_len_to_hash_in_bytes = authenticated;
    }
    counted.add(sa, inner_length);
    m->l2_len = sizeof(rte_ether_hdr);
    m->l3_len = ip_header_length;
    m->l4_len = path->udp_encapsulation ? sizeof(rte_udp_hdr) : 0;
    m->packet_type = path->ipv6 ? RTE_PTYPE_L3_IPV6 : RTE_PTYPE_L3_IPV4;
  }

  counted.flush();

  uint32_t completed = 0;
  if (job_count > 0) {
    completed = IMB_SUBMIT_BURST(ctx.crypto, job_count, jobs);
    if (completed == 0 && imb_get_errno(ctx.crypto) != 0) [[unlikely]] {
      for (uint16_t k = 0; k < job_count; ++k) {
        auto* it = static_cast<OutboundItem*>(jobs[k]->user_data2);
        drop_packet(ctx, it->m, DropReason::kCryptoError, it->sa);
      }
      return 0;
    }
    if (completed < job_count)
      completed += IMB_FLUSH_BURST(ctx.crypto, job_count - completed, jobs + completed);
  }

  uint16_t good = 0;
  for (uint32_t k = 0; k < completed; ++k) {
    IMB_JOB* job = jobs[k];
    auto* m = static_cast<rte_mbuf*>(job->user_data);
    auto& it = *static_cast<OutboundItem*>(job->user_data2);
    if (job->status != IMB_STATUS_COMPLETED) [[unlikely]] {
      drop_packet(ctx, m, DropReason::kCryptoError, it.sa);
      continue;
    }
    if (it.path->ipv6 && it.path->udp_encapsulation) {
      // UDP over IPv6 needs a real checksum (RFC 8200 8.1), over ciphertext.
      auto* ip = rte_pktmbuf_mtod_offset(m, rte_ipv6_hdr*, sizeof(rte_ether_hdr));
      auto* udp = reinterpret_cast<rte_udp_hdr*>(ip + 1);
      udp->dgram_cksum = 0;
      udp->dgram_cksum = rte_ipv6_udptcp_cksum(ip, udp);
    }
    out[good++] = m;
  }
  bump(ctx.counters->encapsulated, good);
  return good;
}

}  // namespace segw::dp
