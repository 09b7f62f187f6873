// ESP inbound burst: replay, ICV, padding, decapsulation.
#include "dataplane/esp/esp_inbound.h"

#include <rte_ip.h>
#include <rte_prefetch.h>
#include <rte_udp.h>

#include "dataplane/esp/sa_counter_run.h"
#include "shared/wire.h"

namespace segw::dp {

namespace {

// Publishes the latest new outer source of an SA for the control lcore
// (SaCounters::new_source_*): address words first, then the endpoint word
// with release, so a reader that sees the endpoint sees the address too.
void record_new_source(SaCounters& counters, const uint8_t* address, bool ipv4, uint16_t port_be) {
  uint64_t words[2] = {0, 0};
  std::memcpy(words, address, ipv4 ? 4 : 16);
  counters.new_source_address[0].store(words[0], std::memory_order_relaxed);
  counters.new_source_address[1].store(words[1], std::memory_order_relaxed);
  uint32_t family = ipv4 ? 4 : 6;
  counters.new_source_endpoint.store(family << 16 | rte_be_to_cpu_16(port_be), std::memory_order_release);
}

struct InboundState {
  EspSa* sa;
  uint8_t* esp;               // ESP header
  uint64_t sequence;          // full (ESN-inferred) sequence number
  uint32_t payload_length;    // ciphertext after the IV, before the ICV
  alignas(16) uint8_t nonce[12];   // GCM: salt || explicit IV (RFC 4106 4)
  alignas(16) uint8_t aad[12];     // GCM: SPI || [seq high] || seq low (RFC 4106 5)
  alignas(16) uint8_t computed_icv[16];
  alignas(16) uint8_t received_icv[16];
};

// One selector against one end of the inner packet (RFC 7296 3.13.1:
// address range, protocol, port range).
bool selector_matches(const SelectorRange& selector, bool ipv6, const uint8_t* address,
                      uint8_t protocol, bool has_ports, uint16_t port) {
  if (ipv6 ? !selector.contains_ipv6(address) : !selector.contains_ipv4(shared::load_be32(address)))
    return false;
  if (selector.protocol != 0 && selector.protocol != protocol) return false;
  if (selector.port_start != 0 || selector.port_end != 65535) {
    // Non-first fragments carry no ports: RFC 4301 7 lets them through only
    // selectors whose ports are unconstrained.
    if (!has_ports) return false;
    if (port < selector.port_start || port > selector.port_end) return false;
  }
  return true;
}

// Inbound policy check (RFC 4301 5.2): the inner source must be inside one of
// the SA's remote selectors and the destination inside one of its local ones.
bool inner_matches_selectors(const EspSa& sa, const uint8_t* inner, uint32_t inner_total, bool ipv6) {
  const uint8_t* source;
  const uint8_t* destination;
  uint8_t protocol;
  uint32_t l4_offset;
  bool first_fragment = true;
  if (!ipv6) {
    auto* ip = reinterpret_cast<const rte_ipv4_hdr*>(inner);
    source = reinterpret_cast<const uint8_t*>(&ip->src_addr);
    destination = reinterpret_cast<const uint8_t*>(&ip->dst_addr);
    protocol = ip->next_proto_id;
    first_fragment = (rte_be_to_cpu_16(ip->fragment_offset) & RTE_IPV4_HDR_OFFSET_MASK) == 0;
    l4_offset = rte_ipv4_hdr_len(ip);
  } else {
    auto* ip = reinterpret_cast<const rte_ipv6_hdr*>(inner);
    source = ip->src_addr;
    destination = ip->dst_addr;
    protocol = ip->proto;
    l4_offset = sizeof(rte_ipv6_hdr);
  }
  bool has_ports = first_fragment && l4_offset + 4 <= inner_total &&
                   (protocol == shared::kIpProtocolUdp || protocol == shared::kIpProtocolTcp);
  uint16_t source_port = has_ports ? shared::load_be16(inner + l4_offset) : 0;
  uint16_t destination_port = has_ports ? shared::load_be16(inner + l4_offset + 2) : 0;
  // One load: the whole check runs against the set published at that moment.
  const SelectorSet* selectors = sa.selectors.load(std::memory_order_acquire);
  bool remote_ok = false;
  for (int i = 0; i < selectors->remote_count && !remote_ok; ++i)
    remote_ok = selector_matches(selectors->remote()[i], ipv6, source, protocol, has_ports, source_port);
  if (!remote_ok) return false;
  for (int i = 0; i < selectors->local_count; ++i)
    if (selector_matches(selectors->local()[i], ipv6, destination, protocol, has_ports, destination_port))
      return true;
  return false;
}

}  // namespace

uint16_t esp_inbound_burst(EspContext& ctx, rte_mbuf** packets, uint16_t count, rte_mbuf** out) {
  InboundState state[kMaxEspBurst];
  IMB_JOB* jobs[kMaxEspBurst];
  uint16_t live[kMaxEspBurst];  // indexes of packets that reach crypto
  uint16_t live_count = 0;

  // Pass 1, in three sweeps so the cache misses of a burst overlap instead
  // of queueing: with many SAs each packet's table slot, SA line, keys and
  // replay slot are all in DRAM. (a) read SPIs, pull in the table slots;
  // (b) read the slots, pull in the SA lines; (c) check the SPIs, pull in
  // keys and replay slots.
  uint32_t spis[kMaxEspBurst];
  for (uint16_t i = 0; i < count; ++i) {
    rte_mbuf* m = packets[i];
    uint32_t esp_offset = m->l2_len + m->l3_len + m->l4_len;
    auto* esp = rte_pktmbuf_mtod_offset(m, uint8_t*, esp_offset);
    state[i].esp = esp;
    state[i].sa = nullptr;
    if (m->pkt_len < esp_offset + sizeof(shared::EspHeader)) [[unlikely]] {
      drop_packet(ctx, m, DropReason::kTruncated);
      packets[i] = nullptr;
      continue;
    }
    spis[i] = shared::load_be32(esp);
    rte_prefetch0(ctx.tables->inbound_slot(spis[i]));
  }
  for (uint16_t i = 0; i < count; ++i) {
    if (packets[i] == nullptr) continue;
    EspSa* candidate = ctx.tables->inbound_slot(spis[i])->load(std::memory_order_acquire);
    state[i].sa = candidate;
    if (candidate != nullptr) rte_prefetch0(candidate);
  }
  for (uint16_t i = 0; i < count; ++i) {
    rte_mbuf* m = packets[i];
    if (m == nullptr) continue;
    EspSa* sa = state[i].sa;
    // The slot is shared by every SPI with these index bits; the random bits
    // tell ours from a forged or stale one.
    if (sa == nullptr || sa->spi != spis[i]) [[unlikely]] {
      state[i].sa = nullptr;
      drop_packet(ctx, m, DropReason::kUnknownSpi);
      packets[i] = nullptr;
      continue;
    }
    rte_prefetch0(&sa->replay);
    sa->replay.prefetch_slot(shared::load_be32(state[i].esp + 4));
    sa->keys->prefetch();
    // Read after crypto: the counters and the tunnel (whose path the outer
    // source is compared with). The selector set's address is on the
    // replay line just requested; pass 2 pulls the set itself in.
    rte_prefetch0(&sa->counters);
    rte_prefetch0(sa->tunnel);
  }

  // Pass 2: length checks, replay pre-check, crypto jobs.
  uint32_t available = IMB_GET_NEXT_BURST(ctx.crypto, count, jobs);
  for (uint16_t i = 0; i < count; ++i) {
    rte_mbuf* m = packets[i];
    if (m == nullptr) continue;
    InboundState& s = state[i];
    EspSa* sa = s.sa;
    rte_prefetch0(sa->tunnel->path.load(std::memory_order_relaxed));
    rte_prefetch0(sa->selectors.load(std::memory_order_relaxed));
    uint32_t esp_offset = m->l2_len + m->l3_len + m->l4_len;
    uint32_t esp_length = m->pkt_len - esp_offset;
    uint32_t overhead = sizeof(shared::EspHeader) + sa->iv_length + sa->icv_length;
    if (esp_length < overhead + 2 || ((esp_length - overhead) % sa->block_size) != 0) [[unlikely]] {
      drop_packet(ctx, m, DropReason::kTruncated, sa);
      packets[i] = nullptr;
      continue;
    }
    s.payload_length = esp_length - overhead;
    uint32_t sequence_low = shared::load_be32(s.esp + 4);
    s.sequence = sa->replay.infer_sequence(sequence_low);
    if (sa->replay.check(s.sequence) != ReplayVerdict::kAccept && sa->replay.enforced()) [[unlikely]] {
      drop_packet(ctx, m, DropReason::kReplay, sa);
      packets[i] = nullptr;
      continue;
    }
    if ((sa->hard_packets != 0 && sa->counters.packets.load(std::memory_order_relaxed) >= sa->hard_packets) ||
        (sa->hard_bytes != 0 && sa->counters.bytes.load(std::memory_order_relaxed) >= sa->hard_bytes)) [[unlikely]] {
      drop_packet(ctx, m, DropReason::kLifetimeExpired, sa);
      packets[i] = nullptr;
      continue;
    }
    if (live_count >= available) [[unlikely]] {
      drop_packet(ctx, m, DropReason::kCryptoError, sa);
      packets[i] = nullptr;
      continue;
    }
    IMB_JOB* job = jobs[live_count];
    uint8_t* icv = s.esp + sizeof(shared::EspHeader) + sa->iv_length + s.payload_length;
    job->src = s.esp;
    job->dst = s.esp + sizeof(shared::EspHeader) + sa->iv_length;
    job->cipher_start_src_offset_in_bytes = sizeof(shared::EspHeader) + sa->iv_length;
    job->msg_len_to_cipher_in_bytes = s.payload_length;
    job->cipher_direction = IMB_DIR_DECRYPT;
    job->chain_order = IMB_ORDER_HASH_CIPHER;  // verify over ciphertext, then decrypt
    job->key_len_in_bytes = sa->cipher_key_length;
    job->auth_tag_output = s.computed_icv;
    job->auth_tag_output_len_in_bytes = sa->icv_length;
    job->user_data = m;
    job->user_data2 = &s;
    if (sa->aead) {
      std::memcpy(s.nonce, sa->salt, 4);
      std::memcpy(s.nonce + 4, s.esp + sizeof(shared::EspHeader), 8);
      job->cipher_mode = IMB_CIPHER_GCM;
      job->hash_alg = IMB_AUTH_AES_GMAC;
      job->enc_keys = &sa->keys->gcm;
      job->dec_keys = &sa->keys->gcm;
      job->iv = s.nonce;
      job->iv_len_in_bytes = 12;
      job->hash_start_src_offset_in_bytes = job->cipher_start_src_offset_in_bytes;
      job->msg_len_to_hash_in_bytes = s.payload_length;
      if (sa->esn) {
        // RFC 4106 5: AAD = SPI || seq high || seq low.
        std::memcpy(s.aad, s.esp, 4);
        shared::store_be32(s.aad + 4, static_cast<uint32_t>(s.sequence >> 32));
        std::memcpy(s.aad + 8, s.esp + 4, 4);
        job->u.GCM.aad = s.aad;
        job->u.GCM.aad_len_in_bytes = 12;
      } else {
        job->u.GCM.aad = s.esp;
        job->u.GCM.aad_len_in_bytes = 8;
      }
    } else {
      job->cipher_mode = IMB_CIPHER_CBC;
      job->hash_alg = sa->hmac_sha256 ? IMB_AUTH_HMAC_SHA_256 : IMB_AUTH_HMAC_SHA_1;
      job->enc_keys = sa->keys->cbc.encrypt_round_keys;
      job->dec_keys = sa->keys->cbc.decrypt_round_keys;
      job->iv = s.esp + sizeof(shared::EspHeader);
      job->iv_len_in_bytes = 16;
      job->u.HMAC._hashed_auth_key_xor_ipad = sa->keys->cbc.hmac_ipad_state;
      job->u.HMAC._hashed_auth_key_xor_opad = sa->keys->cbc.hmac_opad_state;
      job->hash_start_src_offset_in_bytes = 0;
      uint32_t authenticated = sizeof(shared::EspHeader) + sa->iv_length + s.payload_length;
      if (sa->esn) {
        // RFC 4303 2.2.1: the ICV covers the high sequence bits appended
        // after the payload. Put them where the ICV was (saved first).
        std::memcpy(s.received_icv, icv, sa->icv_length);
        shared::store_be32(icv, static_cast<uint32_t>(s.sequence >> 32));
        authenticated += 4;
      }
      job->msg_len_to_hash_in_bytes = authenticated;
    }
    live[live_count++] = i;
  }

  uint32_t completed = 0;
  if (live_count > 0) {
    completed = IMB_SUBMIT_BURST(ctx.crypto, live_count, jobs);
    if (completed == 0 && imb_get_errno(ctx.crypto) != 0) [[unlikely]] {
      // The library refused the burst (a job we built is invalid): nothing ran.
      for (uint16_t k = 0; k < live_count; ++k)
        drop_packet(ctx, packets[live[k]], DropReason::kCryptoError, state[live[k]].sa);
      return 0;
    }
    if (completed < live_count)
      completed += IMB_FLUSH_BURST(ctx.crypto, live_count - completed, jobs + completed);
  }

  // Pass 3: verify, move the window, strip, check the inner packet.
  uint16_t good = 0;
  SaCounterRun counted;
  for (uint32_t k = 0; k < completed; ++k) {
    IMB_JOB* job = jobs[k];
    auto* m = static_cast<rte_mbuf*>(job->user_data);
    auto& s = *static_cast<InboundState*>(job->user_data2);
    EspSa* sa = s.sa;
    packets[&s - state] = nullptr;
    if (job->status != IMB_STATUS_COMPLETED) [[unlikely]] {
      drop_packet(ctx, m, DropReason::kCryptoError, sa);
      continue;
    }
    uint8_t* plain = s.esp + sizeof(shared::EspHeader) + sa->iv_length;
    const uint8_t* received = (sa->esn && !sa->aead) ? s.received_icv : plain + s.payload_length;
    if (!icv_equal(s.computed_icv, received, sa->icv_length)) [[unlikely]] {
      drop_packet(ctx, m, DropReason::kIcvFailure, sa);
      continue;
    }
    if (sa->replay.update(s.sequence) != ReplayVerdict::kAccept && sa->replay.enforced()) [[unlikely]] {
      drop_packet(ctx, m, DropReason::kReplay, sa);
      continue;
    }
    uint8_t pad_length = plain[s.payload_length - 2];
    uint8_t next_header = plain[s.payload_length - 1];
    if (uint32_t{pad_length} + 2 > s.payload_length) [[unlikely]] {
      drop_packet(ctx, m, DropReason::kBadPadding, sa);
      continue;
    }
    uint32_t inner_length = s.payload_length - 2 - pad_length;
    // RFC 4303 2.4: default padding is 1, 2, 3, ...
    bool padding_ok = true;
    for (uint32_t p = 0; p < pad_length; ++p) padding_ok &= plain[inner_length + p] == p + 1;
    if (!padding_ok) [[unlikely]] {
      drop_packet(ctx, m, DropReason::kBadPadding, sa);
      continue;
    }
    bool inner_ipv6;
    if (next_header == shared::kIpProtocolIpv4) {
      inner_ipv6 = false;
    } else if (next_header == shared::kIpProtocolIpv6) {
      inner_ipv6 = true;
    } else {
      drop_packet(ctx, m, next_header == shared::kIpProtocolNoNext ? DropReason::kDummyPacket
                                                                   : DropReason::kBadNextHeader, sa);
      continue;
    }
    // The inner header's own length, not the ESP payload, ends the inner
    // packet: TFC padding (RFC 4303 2.7) may follow it.
    uint32_t inner_total;
    if (!inner_ipv6) {
      auto* ip = reinterpret_cast<const rte_ipv4_hdr*>(plain);
      if (inner_length < sizeof(rte_ipv4_hdr) || (ip->version_ihl >> 4) != 4 ||
          rte_ipv4_hdr_len(ip) < sizeof(rte_ipv4_hdr)) [[unlikely]] {
        drop_packet(ctx, m, DropReason::kBadInnerPacket, sa);
        continue;
      }
      inner_total = rte_be_to_cpu_16(ip->total_length);
      if (inner_total < rte_ipv4_hdr_len(ip) || inner_total > inner_length) [[unlikely]] {
        drop_packet(ctx, m, DropReason::kBadInnerPacket, sa);
        continue;
      }
    } else {
      auto* ip = reinterpret_cast<const rte_ipv6_hdr*>(plain);
      if (inner_length < sizeof(rte_ipv6_hdr) || (plain[0] >> 4) != 6) [[unlikely]] {
        drop_packet(ctx, m, DropReason::kBadInnerPacket, sa);
        continue;
      }
      inner_total = sizeof(rte_ipv6_hdr) + rte_be_to_cpu_16(ip->payload_len);
      if (inner_total > inner_length) [[unlikely]] {
        drop_packet(ctx, m, DropReason::kBadInnerPacket, sa);
        continue;
      }
    }
    if (!inner_matches_selectors(*sa, plain, inner_total, inner_ipv6)) [[unlikely]] {
      drop_packet(ctx, m, DropReason::kSelectorMismatch, sa);
      continue;
    }
    // The check before crypto sees only earlier bursts (counts move here):
    // checked again, the hard lifetime holds to the packet (RFC 4301 4.4.2.1).
    if (counted.hard_limit_reached(sa)) [[unlikely]] {
      drop_packet(ctx, m, DropReason::kLifetimeExpired, sa);
      continue;
    }

    // A verified packet from another outer address/port is forwarded and
    // counted, never used to move the SA (DESIGN: NAT remapping).
    const Path* path = sa->tunnel->path.load(std::memory_order_acquire);
    const uint8_t* outer = rte_pktmbuf_mtod_offset(m, const uint8_t*, m->l2_len);
    bool same_source;
    bool outer_ipv4 = RTE_ETH_IS_IPV4_HDR(m->packet_type);
    const uint8_t* source_address;
    if (outer_ipv4) {
      auto* ip = reinterpret_cast<const rte_ipv4_hdr*>(outer);
      source_address = reinterpret_cast<const uint8_t*>(&ip->src_addr);
      same_source = !path->ipv6 && std::memcmp(&ip->src_addr, path->remote_address, 4) == 0;
    } else {
      auto* ip = reinterpret_cast<const rte_ipv6_hdr*>(outer);
      source_address = ip->src_addr;
      same_source = path->ipv6 && std::memcmp(ip->src_addr, path->remote_address, 16) == 0;
    }
    uint16_t source_port_be = 0;
    if (m->l4_len != 0) {
      auto* udp = reinterpret_cast<const rte_udp_hdr*>(outer + m->l3_len);
      source_port_be = udp->src_port;
      same_source = same_source && path->udp_encapsulation && udp->src_port == path->remote_port_be;
    } else {
      same_source = same_source && !path->udp_encapsulation;
    }
    if (!same_source) [[unlikely]] {
      sa->counters.new_source_packets.fetch_add(1, std::memory_order_relaxed);
      record_new_source(sa->counters, source_address, outer_ipv4, source_port_be);
      if (ctx.new_source_ring != nullptr &&
          sa->counters.new_source_queued.exchange(1, std::memory_order_acq_rel) == 0) {
        void* notice = reinterpret_cast<void*>(static_cast<uintptr_t>(sa->spi));
        // Ring full: the counter sweep finds it; the next packet may retry.
        if (rte_ring_mp_enqueue(ctx.new_source_ring, notice) != 0)
          sa->counters.new_source_queued.store(0, std::memory_order_relaxed);
      }
    }

    counted.add(sa, inner_total);

    // Frame the inner packet for the core port: Ethernet header right before it.
    uint32_t inner_offset = static_cast<uint32_t>(plain - rte_pktmbuf_mtod(m, uint8_t*));
    rte_pktmbuf_adj(m, static_cast<uint16_t>(inner_offset - sizeof(rte_ether_hdr)));
    rte_pktmbuf_trim(m, static_cast<uint16_t>(m->pkt_len - sizeof(rte_ether_hdr) - inner_total));
    auto* eth = rte_pktmbuf_mtod(m, rte_ether_hdr*);
    eth->dst_addr = ctx.core_next_hop;
    eth->src_addr = ctx.core_mac;
    eth->ether_type = rte_cpu_to_be_16(inner_ipv6 ? RTE_ETHER_TYPE_IPV6 : RTE_ETHER_TYPE_IPV4);
    m->l2_len = sizeof(rte_ether_hdr);
    m->l3_len = 0;
    m->l4_len = 0;
    m->packet_type = inner_ipv6 ? RTE_PTYPE_L3_IPV6 : RTE_PTYPE_L3_IPV4;
    out[good++] = m;
  }
  counted.flush();
  bump(ctx.counters->decapsulated, good);
  return good;
}

}  // namespace segw::dp
