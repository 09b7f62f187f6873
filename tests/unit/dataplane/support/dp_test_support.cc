// Test support: packet builders, checksums, SA pairs, Gateway, reference ESP.
#include "tests/unit/dataplane/support/dp_test_support.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_mempool.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "dataplane/esp/esp_inbound.h"
#include "dataplane/esp/esp_outbound.h"
#include "shared/wire.h"

namespace segw::dp::testing {

using shared::EspAlgorithm;
using shared::IpAddress;

void MbufLeakCheck::SetUp() { in_use_at_start_ = rte_mempool_in_use_count(packet_pool()); }

void MbufLeakCheck::TearDown() {
  EXPECT_EQ(rte_mempool_in_use_count(packet_pool()), in_use_at_start_)
      << "mbufs taken by this test were not given back";
}

// --- bytes, addresses, checksums --------------------------------------------

Bytes from_hex(std::string_view text) {
  Bytes out;
  int high = -1;
  for (char c : text) {
    int v;
    if (c >= '0' && c <= '9') v = c - '0';
    else if (c >= 'a' && c <= 'f') v = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') v = c - 'A' + 10;
    else continue;
    if (high < 0) {
      high = v;
    } else {
      out.push_back(static_cast<uint8_t>(high << 4 | v));
      high = -1;
    }
  }
  EXPECT_LT(high, 0) << "odd number of hex digits in test data";
  return out;
}

std::string to_hex(std::span<const uint8_t> bytes) {
  std::string s;
  char b[3];
  for (uint8_t v : bytes) {
    std::snprintf(b, sizeof(b), "%02x", v);
    s += b;
  }
  return s;
}

IpAddress address(std::string_view text) {
  auto a = IpAddress::parse(text);
  if (!a) ADD_FAILURE() << "test setup: '" << text << "' is not an address";
  return a.value_or(IpAddress{});
}

shared::IpPrefix prefix(std::string_view text) {
  auto p = shared::IpPrefix::parse(text);
  if (!p) ADD_FAILURE() << "test setup: '" << text << "' is not a prefix";
  return p.value_or(shared::IpPrefix{});
}

shared::TrafficSelector selector(std::string_view prefix_text) {
  return shared::TrafficSelector::from_prefix(prefix(prefix_text));
}

uint32_t ones_sum(std::span<const uint8_t> data, uint32_t sum) {
  for (size_t i = 0; i + 1 < data.size(); i += 2) sum += uint32_t{data[i]} << 8 | data[i + 1];
  if (data.size() % 2) sum += uint32_t{data.back()} << 8;
  return sum;
}

uint16_t fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

bool ipv4_header_checksum_ok(const uint8_t* ip) {
  size_t length = (ip[0] & 0x0f) * 4u;
  return fold(ones_sum({ip, length})) == 0xffff;
}

namespace {
uint32_t ipv6_pseudo_header_sum(const uint8_t* ip, uint32_t l4_length, uint8_t next_header) {
  uint32_t sum = ones_sum({ip + 8, 32});  // source and destination
  sum += l4_length >> 16;
  sum += l4_length & 0xffff;
  sum += next_header;
  return sum;
}
}  // namespace

bool ipv6_l4_checksum_ok(const uint8_t* ip) {
  uint32_t length = shared::load_be16(ip + 4);
  return fold(ones_sum({ip + 40, length}, ipv6_pseudo_header_sum(ip, length, ip[6]))) == 0xffff;
}

// --- packet builders --------------------------------------------------------

namespace {
void fill_payload(uint8_t* p, size_t n, uint32_t seed) {
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; ++i) {
    x = x * 1103515245u + 12345u;
    p[i] = static_cast<uint8_t>(x >> 16);
  }
}
}  // namespace

Bytes make_ipv4_udp(const IpAddress& source, const IpAddress& destination, uint16_t source_port,
                    uint16_t destination_port, size_t total_length, uint32_t seed, bool dont_fragment) {
  EXPECT_GE(total_length, 28u);
  Bytes p(total_length, 0);
  p[0] = 0x45;
  shared::store_be16(&p[2], static_cast<uint16_t>(total_length));
  shared::store_be16(&p[4], static_cast<uint16_t>(seed * 7 + 1));  // identification
  shared::store_be16(&p[6], dont_fragment ? 0x4000 : 0);
  p[8] = 63;
  p[9] = shared::kIpProtocolUdp;
  std::memcpy(&p[12], source.bytes(), 4);
  std::memcpy(&p[16], destination.bytes(), 4);
  shared::store_be16(&p[10], static_cast<uint16_t>(~fold(ones_sum({p.data(), 20}))));
  uint8_t* udp = &p[20];
  shared::store_be16(udp, source_port);
  shared::store_be16(udp + 2, destination_port);
  shared::store_be16(udp + 4, static_cast<uint16_t>(total_length - 20));
  fill_payload(udp + 8, total_length - 28, seed);
  uint32_t sum = ones_sum({&p[12], 8}) + shared::kIpProtocolUdp + static_cast<uint32_t>(total_length - 20);
  uint16_t checksum = static_cast<uint16_t>(~fold(ones_sum({udp, total_length - 20}, sum)));
  shared::store_be16(udp + 6, checksum == 0 ? 0xffff : checksum);
  return p;
}

Bytes make_ipv6_udp(const IpAddress& source, const IpAddress& destination, uint16_t source_port,
                    uint16_t destination_port, size_t total_length, uint32_t seed) {
  EXPECT_GE(total_length, 48u);
  Bytes p(total_length, 0);
  shared::store_be32(&p[0], 0x60000000u | (seed & 0xfffff));  // flow label from the seed
  shared::store_be16(&p[4], static_cast<uint16_t>(total_length - 40));
  p[6] = shared::kIpProtocolUdp;
  p[7] = 63;
  std::memcpy(&p[8], source.bytes(), 16);
  std::memcpy(&p[24], destination.bytes(), 16);
  uint8_t* udp = &p[40];
  shared::store_be16(udp, source_port);
  shared::store_be16(udp + 2, destination_port);
  shared::store_be16(udp + 4, static_cast<uint16_t>(total_length - 40));
  fill_payload(udp + 8, total_length - 48, seed);
  uint32_t length = static_cast<uint32_t>(total_length - 40);
  uint16_t checksum =
      static_cast<uint16_t>(~fold(ones_sum({udp, length}, ipv6_pseudo_header_sum(p.data(), length, 17))));
  shared::store_be16(udp + 6, checksum == 0 ? 0xffff : checksum);
  return p;
}

Bytes ethernet(std::span<const uint8_t> l3, uint16_t ether_type, const rte_ether_addr& destination,
               const rte_ether_addr& source) {
  Bytes f(14 + l3.size());
  std::memcpy(&f[0], destination.addr_bytes, 6);
  std::memcpy(&f[6], source.addr_bytes, 6);
  shared::store_be16(&f[12], ether_type);
  std::memcpy(&f[14], l3.data(), l3.size());
  return f;
}

namespace {
Bytes ip_frame(const IpAddress& source, const IpAddress& destination, uint8_t protocol,
               std::span<const uint8_t> l4) {
  Bytes ip;
  if (source.is_ipv4()) {
    ip.assign(20 + l4.size(), 0);
    ip[0] = 0x45;
    shared::store_be16(&ip[2], static_cast<uint16_t>(ip.size()));
    ip[8] = 64;
    ip[9] = protocol;
    std::memcpy(&ip[12], source.bytes(), 4);
    std::memcpy(&ip[16], destination.bytes(), 4);
    shared::store_be16(&ip[10], static_cast<uint16_t>(~fold(ones_sum({ip.data(), 20}))));
    std::memcpy(&ip[20], l4.data(), l4.size());
    return ethernet(ip, RTE_ETHER_TYPE_IPV4, kAccessMac, kAccessNextHop);
  }
  ip.assign(40 + l4.size(), 0);
  ip[0] = 0x60;
  shared::store_be16(&ip[4], static_cast<uint16_t>(l4.size()));
  ip[6] = protocol;
  ip[7] = 64;
  std::memcpy(&ip[8], source.bytes(), 16);
  std::memcpy(&ip[24], destination.bytes(), 16);
  std::memcpy(&ip[40], l4.data(), l4.size());
  if (protocol == shared::kIpProtocolUdp) {
    uint32_t length = static_cast<uint32_t>(l4.size());
    uint16_t c = static_cast<uint16_t>(
        ~fold(ones_sum({&ip[40], length}, ipv6_pseudo_header_sum(ip.data(), length, protocol))));
    shared::store_be16(&ip[46], c == 0 ? 0xffff : c);
  }
  return ethernet(ip, RTE_ETHER_TYPE_IPV6, kAccessMac, kAccessNextHop);
}
}  // namespace

Bytes udp_frame(const IpAddress& source, const IpAddress& destination, uint16_t source_port,
                uint16_t destination_port, std::span<const uint8_t> payload) {
  Bytes udp(8 + payload.size(), 0);
  shared::store_be16(&udp[0], source_port);
  shared::store_be16(&udp[2], destination_port);
  shared::store_be16(&udp[4], static_cast<uint16_t>(udp.size()));
  std::memcpy(&udp[8], payload.data(), payload.size());
  return ip_frame(source, destination, shared::kIpProtocolUdp, udp);
}

Bytes outer_frame(const shared::PathDescriptor& path, std::span<const uint8_t> esp) {
  if (path.udp_encapsulation) return udp_frame(path.local, path.remote, path.local_port, path.remote_port, esp);
  return ip_frame(path.local, path.remote, shared::kIpProtocolEsp, esp);
}

// --- mbufs ------------------------------------------------------------------

rte_mbuf* to_mbuf(std::span<const uint8_t> frame) {
  rte_mbuf* m = rte_pktmbuf_alloc(packet_pool());
  if (m == nullptr) {
    ADD_FAILURE() << "packet pool empty";
    return nullptr;
  }
  auto* data = rte_pktmbuf_append(m, static_cast<uint16_t>(frame.size()));
  if (data == nullptr) {
    ADD_FAILURE() << "frame of " << frame.size() << " bytes does not fit an mbuf";
    rte_pktmbuf_free(m);
    return nullptr;
  }
  if (!frame.empty()) std::memcpy(data, frame.data(), frame.size());
  return m;
}

rte_mbuf* to_chained_mbuf(std::span<const uint8_t> frame, uint16_t segment_bytes) {
  rte_mbuf* head = nullptr;
  size_t offset = 0;
  do {
    size_t length = std::min<size_t>(segment_bytes, frame.size() - offset);
    rte_mbuf* segment = to_mbuf(frame.subspan(offset, length));
    if (segment == nullptr) {
      rte_pktmbuf_free(head);
      return nullptr;
    }
    if (head == nullptr) {
      head = segment;
    } else if (rte_pktmbuf_chain(head, segment) != 0) {
      ADD_FAILURE() << "too many segments";
      rte_pktmbuf_free(segment);
      rte_pktmbuf_free(head);
      return nullptr;
    }
    offset += length;
  } while (offset < frame.size());
  return head;
}

Bytes to_bytes(const rte_mbuf* m) {
  Bytes b(m->pkt_len);
  // Returns a pointer into the mbuf when the data is contiguous, else copies.
  const void* p = rte_pktmbuf_read(m, 0, m->pkt_len, b.data());
  if (p != nullptr && p != b.data()) std::memcpy(b.data(), p, m->pkt_len);
  return b;
}

void free_all(std::vector<rte_mbuf*>& packets) {
  for (rte_mbuf* m : packets) rte_pktmbuf_free(m);
  packets.clear();
}

Bytes inner_of(const rte_mbuf* m) {
  Bytes b = to_bytes(m);
  if (b.size() < 14) return {};
  return Bytes(b.begin() + 14, b.end());
}

// --- SA descriptors ---------------------------------------------------------

const char* to_string(OuterKind kind) {
  switch (kind) {
    case OuterKind::kIpv4Udp: return "ipv4_udp";
    case OuterKind::kIpv4Raw: return "ipv4_raw";
    case OuterKind::kIpv6Udp: return "ipv6_udp";
    case OuterKind::kIpv6Raw: return "ipv6_raw";
  }
  return "unknown";
}

shared::PathDescriptor path_a_to_b(OuterKind kind) {
  shared::PathDescriptor p;
  bool v6 = kind == OuterKind::kIpv6Udp || kind == OuterKind::kIpv6Raw;
  p.local = v6 ? Endpoints::a_ipv6() : Endpoints::a_ipv4();
  p.remote = v6 ? Endpoints::b_ipv6() : Endpoints::b_ipv4();
  p.local_port = 61000;
  p.remote_port = 4500;
  p.udp_encapsulation = kind == OuterKind::kIpv4Udp || kind == OuterKind::kIpv6Udp;
  return p;
}

shared::PathDescriptor mirror(const shared::PathDescriptor& path) {
  shared::PathDescriptor m = path;
  std::swap(m.local, m.remote);
  std::swap(m.local_port, m.remote_port);
  return m;
}

namespace {
shared::SaDescriptor base_descriptor(const TunnelSpec& spec) {
  shared::SaDescriptor d;
  d.spi = spec.spi;
  d.algorithm = spec.algorithm;
  d.esn = spec.esn;
  d.replay_window = spec.replay_window;
  d.tunnel_id = spec.tunnel_id;
  const auto& props = shared::properties(spec.algorithm);
  for (int i = 0; i < props.cipher_key_length; ++i)
    d.cipher_key[i] = static_cast<uint8_t>(spec.key_seed * 31 + i * 7 + 1);
  for (int i = 0; i < props.integrity_key_length; ++i)
    d.integrity_key[i] = static_cast<uint8_t>(spec.key_seed * 17 + i * 11 + 3);
  if (props.aead)
    for (int i = 0; i < 4; ++i) d.salt[i] = static_cast<uint8_t>(spec.key_seed * 5 + i + 0x40);
  d.lifetime = spec.lifetime;
  return d;
}

void copy_selectors(const std::vector<shared::TrafficSelector>& from,
                    std::array<shared::TrafficSelector, shared::kMaxSelectors>& to, uint8_t& count) {
  count = static_cast<uint8_t>(from.size());
  for (size_t i = 0; i < from.size(); ++i) to[i] = from[i];
}
}  // namespace

shared::SaDescriptor outbound_sa(const TunnelSpec& spec) {
  shared::SaDescriptor d = base_descriptor(spec);
  d.direction = shared::SaDirection::kOutbound;
  d.path = spec.path;
  copy_selectors(spec.sources, d.local_selectors, d.local_selector_count);
  copy_selectors(spec.destinations, d.remote_selectors, d.remote_selector_count);
  d.set_name("test-out");
  return d;
}

shared::SaDescriptor inbound_sa(const TunnelSpec& spec) {
  shared::SaDescriptor d = base_descriptor(spec);
  d.direction = shared::SaDirection::kInbound;
  d.path = mirror(spec.path);
  copy_selectors(spec.destinations, d.local_selectors, d.local_selector_count);
  copy_selectors(spec.sources, d.remote_selectors, d.remote_selector_count);
  d.set_name("test-in");
  return d;
}

// --- Gateway ----------------------------------------------------------------

SaTableConfig small_config(uint32_t capacity) {
  SaTableConfig c;
  c.capacity = capacity;
  c.ipv4_tbl8_groups = 256;
  c.ipv6_tbl8_groups = 256;
  c.max_routes = 4096;
  c.max_workers = 8;
  c.socket_id = 0;
  return c;
}

Gateway::Gateway(const SaTableConfig& config) {
  auto created = SaTables::create(config);
  if (!created) {
    ADD_FAILURE() << "SaTables::create: " << created.error();
  } else {
    tables = std::move(created.value());
  }
  ctx.crypto = crypto.get();
  ctx.tables = tables.get();
  ctx.counters = &counters;
  ctx.pool = packet_pool();
  ctx.core_mac = kCoreMac;
  ctx.core_next_hop = kCoreNextHop;
  ctx.access_mac = kAccessMac;
  ctx.access_next_hop = kAccessNextHop;
  ctx.access_mtu = 1500;
  ctx.core_ipv4 = address("10.255.0.1");
  ctx.core_ipv6 = address("fd00:ff::1");
  ctx.have_core_ipv4 = true;
  ctx.have_core_ipv6 = true;
  for (const IpAddress& ours : {Endpoints::a_ipv4(), Endpoints::b_ipv4()})
    std::memcpy(&access.ipv4_be[access.ipv4_count++], ours.bytes(), 4);
  for (const IpAddress& ours : {Endpoints::a_ipv6(), Endpoints::b_ipv6()})
    std::memcpy(access.ipv6[access.ipv6_count++], ours.bytes(), 16);
}

void Gateway::install(const shared::SaDescriptor& descriptor) {
  shared::Status s = tables->install(descriptor);
  EXPECT_TRUE(s.ok()) << "install SPI " << std::hex << descriptor.spi << ": " << s.error();
}

uint64_t Gateway::total_drops() const {
  uint64_t total = 0;
  for (const auto& d : counters.drops) total += d.load(std::memory_order_relaxed);
  return total;
}

namespace {
std::string summarize(const std::atomic<uint64_t> (&drops)[kDropReasonCount]) {
  std::string text;
  for (int i = 0; i < kDropReasonCount; ++i) {
    uint64_t n = drops[i].load(std::memory_order_relaxed);
    if (n == 0) continue;
    if (!text.empty()) text += ' ';
    text += std::string(to_string(static_cast<DropReason>(i))) + "=" + std::to_string(n);
  }
  return text;
}
}  // namespace

std::string drop_summary(const WorkerCounters& counters) { return summarize(counters.drops); }
std::string drop_summary(const SaCounters& counters) { return summarize(counters.drops); }
std::string Gateway::drop_summary() const { return summarize(counters.drops); }

std::vector<rte_mbuf*> Gateway::encapsulate(const std::vector<Bytes>& inner, std::vector<rte_mbuf*>* to_core,
                                            uint16_t burst) {
  std::vector<rte_mbuf*> frames;
  for (const Bytes& ip : inner) {
    bool v6 = (ip[0] >> 4) == 6;
    rte_mbuf* m = to_mbuf(ethernet(ip, v6 ? RTE_ETHER_TYPE_IPV6 : RTE_ETHER_TYPE_IPV4, kCoreMac, kCoreNextHop));
    if (m) frames.push_back(m);
  }
  return encapsulate_frames(std::move(frames), to_core, burst);
}

std::vector<rte_mbuf*> Gateway::encapsulate_frames(std::vector<rte_mbuf*> frames,
                                                   std::vector<rte_mbuf*>* to_core, uint16_t burst) {
  std::vector<rte_mbuf*> out;
  std::vector<rte_mbuf*> ready;
  for (rte_mbuf* m : frames) {
    DropReason reason;
    if (!classify_core(m, &reason)) {
      ADD_FAILURE() << "classify_core rejected a test frame: " << to_string(reason);
      rte_pktmbuf_free(m);
      continue;
    }
    ready.push_back(m);
  }
  rte_mbuf* encapsulated[kMaxEspBurst];
  rte_mbuf* errors[kMaxEspBurst];
  for (size_t i = 0; i < ready.size(); i += burst) {
    uint16_t n = static_cast<uint16_t>(std::min<size_t>(burst, ready.size() - i));
    uint16_t error_count = 0;
    uint16_t good = esp_outbound_burst(ctx, &ready[i], n, encapsulated, errors, &error_count);
    out.insert(out.end(), encapsulated, encapsulated + good);
    for (uint16_t e = 0; e < error_count; ++e) {
      if (to_core) to_core->push_back(errors[e]);
      else rte_pktmbuf_free(errors[e]);
    }
  }
  return out;
}

std::vector<rte_mbuf*> Gateway::decapsulate(std::vector<rte_mbuf*> frames, uint16_t burst) {
  std::vector<rte_mbuf*> esp;
  for (rte_mbuf* m : frames) {
    DropReason reason = DropReason::kCount;
    AccessClass kind = classify_access(m, access, &reason);
    if (kind != AccessClass::kEsp) {
      ADD_FAILURE() << "classify_access: " << to_string(kind)
                    << (kind == AccessClass::kDrop ? std::string(" ") + to_string(reason) : std::string());
      rte_pktmbuf_free(m);
      continue;
    }
    esp.push_back(m);
  }
  std::vector<rte_mbuf*> out;
  rte_mbuf* decapsulated[kMaxEspBurst];
  for (size_t i = 0; i < esp.size(); i += burst) {
    uint16_t n = static_cast<uint16_t>(std::min<size_t>(burst, esp.size() - i));
    uint16_t good = esp_inbound_burst(ctx, &esp[i], n, decapsulated);
    out.insert(out.end(), decapsulated, decapsulated + good);
  }
  return out;
}

// --- reference ESP ----------------------------------------------------------

ReferenceSa ReferenceSa::from(const shared::SaDescriptor& d) {
  const auto& props = shared::properties(d.algorithm);
  ReferenceSa r;
  r.algorithm = d.algorithm;
  r.spi = d.spi;
  r.esn = d.esn;
  r.cipher_key.assign(d.cipher_key.begin(), d.cipher_key.begin() + props.cipher_key_length);
  r.integrity_key.assign(d.integrity_key.begin(), d.integrity_key.begin() + props.integrity_key_length);
  if (props.aead) r.salt.assign(d.salt.begin(), d.salt.end());
  return r;
}

Bytes with_trailer(std::span<const uint8_t> inner, unsigned block, uint8_t next_header) {
  Bytes p(inner.begin(), inner.end());
  size_t padded = (inner.size() + 2 + block - 1) / block * block;
  size_t pad = padded - inner.size() - 2;
  for (size_t i = 0; i < pad; ++i) p.push_back(static_cast<uint8_t>(i + 1));
  p.push_back(static_cast<uint8_t>(pad));
  p.push_back(next_header);
  return p;
}

namespace {
const EVP_CIPHER* cipher_for(EspAlgorithm a) {
  switch (a) {
    case EspAlgorithm::kAesGcm128: return EVP_aes_128_gcm();
    case EspAlgorithm::kAesGcm256: return EVP_aes_256_gcm();
    case EspAlgorithm::kAesCbc128HmacSha1:
    case EspAlgorithm::kAesCbc128HmacSha256: return EVP_aes_128_cbc();
    case EspAlgorithm::kAesCbc256HmacSha1:
    case EspAlgorithm::kAesCbc256HmacSha256: return EVP_aes_256_cbc();
  }
  ADD_FAILURE() << "reference: unknown algorithm " << static_cast<int>(a);
  return EVP_aes_256_cbc();
}

const EVP_MD* digest_for(EspAlgorithm a) {
  return (a == EspAlgorithm::kAesCbc128HmacSha1 || a == EspAlgorithm::kAesCbc256HmacSha1) ? EVP_sha1()
                                                                                          : EVP_sha256();
}

struct CipherCtx {
  EVP_CIPHER_CTX* p = EVP_CIPHER_CTX_new();
  ~CipherCtx() { EVP_CIPHER_CTX_free(p); }
};

// GCM (RFC 4106): nonce = salt || explicit IV, AAD = SPI || [seq high] || seq low.
bool gcm(const ReferenceSa& sa, bool encrypt, std::span<const uint8_t> aad, std::span<const uint8_t> nonce,
         std::span<const uint8_t> in, uint8_t* out, uint8_t* tag) {
  CipherCtx c;
  int n = 0;
  bool ok = EVP_CipherInit_ex(c.p, cipher_for(sa.algorithm), nullptr, nullptr, nullptr, encrypt ? 1 : 0) == 1 &&
            EVP_CIPHER_CTX_ctrl(c.p, EVP_CTRL_GCM_SET_IVLEN, 12, nullptr) == 1 &&
            EVP_CipherInit_ex(c.p, nullptr, nullptr, sa.cipher_key.data(), nonce.data(), encrypt ? 1 : 0) == 1 &&
            EVP_CipherUpdate(c.p, nullptr, &n, aad.data(), static_cast<int>(aad.size())) == 1 &&
            (in.empty() || EVP_CipherUpdate(c.p, out, &n, in.data(), static_cast<int>(in.size())) == 1);
  if (!ok) return false;
  if (!encrypt && EVP_CIPHER_CTX_ctrl(c.p, EVP_CTRL_GCM_SET_TAG, 16, tag) != 1) return false;
  if (EVP_CipherFinal_ex(c.p, out + in.size(), &n) != 1) return false;  // tag mismatch on decrypt
  if (encrypt && EVP_CIPHER_CTX_ctrl(c.p, EVP_CTRL_GCM_GET_TAG, 16, tag) != 1) return false;
  return true;
}

bool cbc(const ReferenceSa& sa, bool encrypt, std::span<const uint8_t> iv, std::span<const uint8_t> in,
         uint8_t* out) {
  CipherCtx c;
  int n = 0;
  int m = 0;
  return EVP_CipherInit_ex(c.p, cipher_for(sa.algorithm), nullptr, sa.cipher_key.data(), iv.data(),
                           encrypt ? 1 : 0) == 1 &&
         EVP_CIPHER_CTX_set_padding(c.p, 0) == 1 &&
         EVP_CipherUpdate(c.p, out, &n, in.data(), static_cast<int>(in.size())) == 1 &&
         EVP_CipherFinal_ex(c.p, out + n, &m) == 1;
}

// HMAC (RFC 2104) truncated to the algorithm's ICV (RFC 2404, RFC 4868).
Bytes truncated_hmac(EspAlgorithm algorithm, std::span<const uint8_t> key, std::span<const uint8_t> data) {
  uint8_t md[EVP_MAX_MD_SIZE];
  unsigned md_length = 0;
  bool ok = HMAC(digest_for(algorithm), key.data(), static_cast<int>(key.size()), data.data(), data.size(), md,
                 &md_length) != nullptr;
  EXPECT_TRUE(ok) << "OpenSSL HMAC";
  unsigned icv = shared::properties(algorithm).icv_length;
  return Bytes(md, md + std::min(icv, md_length));
}

// HMAC over SPI..ciphertext (and the ESN high bits appended, RFC 4303 2.2.1), truncated.
Bytes esp_hmac(const ReferenceSa& sa, uint64_t sequence, std::span<const uint8_t> covered) {
  Bytes data(covered.size() + (sa.esn ? 4 : 0));
  if (!covered.empty()) std::memcpy(data.data(), covered.data(), covered.size());
  if (sa.esn) shared::store_be32(&data[covered.size()], static_cast<uint32_t>(sequence >> 32));
  return truncated_hmac(sa.algorithm, sa.integrity_key, data);
}

Bytes gcm_aad(const ReferenceSa& sa, uint64_t sequence) {
  Bytes aad(sa.esn ? 12 : 8);
  shared::store_be32(&aad[0], sa.spi);
  if (sa.esn) shared::store_be64(&aad[4], sequence);
  else shared::store_be32(&aad[4], static_cast<uint32_t>(sequence));
  return aad;
}
}  // namespace

Bytes reference_seal(const ReferenceSa& sa, uint64_t sequence, std::span<const uint8_t> iv,
                     std::span<const uint8_t> plaintext) {
  const auto& props = shared::properties(sa.algorithm);
  EXPECT_EQ(iv.size(), props.iv_length) << "reference_seal: IV length for " << props.name;
  EXPECT_EQ(plaintext.size() % props.block_size, 0u) << "reference_seal: plaintext not block aligned";
  // Sized once and filled by offset: growing the vector piecewise trips
  // GCC 12's -Warray-bounds on the inlined memmove (a false positive).
  const size_t ciphertext_at = 8 + iv.size();
  Bytes esp(ciphertext_at + plaintext.size() + props.icv_length);
  shared::store_be32(&esp[0], sa.spi);
  shared::store_be32(&esp[4], static_cast<uint32_t>(sequence));
  if (!iv.empty()) std::memcpy(&esp[8], iv.data(), iv.size());
  uint8_t* icv = esp.data() + ciphertext_at + plaintext.size();
  if (props.aead) {
    Bytes nonce(12);
    std::memcpy(nonce.data(), sa.salt.data(), 4);
    std::memcpy(nonce.data() + 4, iv.data(), 8);
    // OpenSSL writes nothing at the end for GCM; a spare block keeps the
    // final call's output pointer inside the buffer regardless.
    Bytes ciphertext(plaintext.size() + 16);
    uint8_t tag[16];
    bool ok = gcm(sa, true, gcm_aad(sa, sequence), nonce, plaintext, ciphertext.data(), tag);
    EXPECT_TRUE(ok) << "OpenSSL GCM encrypt";
    if (!plaintext.empty()) std::memcpy(&esp[ciphertext_at], ciphertext.data(), plaintext.size());
    std::memcpy(icv, tag, 16);
    return esp;
  }
  Bytes ciphertext(plaintext.size() + 16);
  bool ok = cbc(sa, true, iv, plaintext, ciphertext.data());
  EXPECT_TRUE(ok) << "OpenSSL CBC encrypt";
  if (!plaintext.empty()) std::memcpy(&esp[ciphertext_at], ciphertext.data(), plaintext.size());
  Bytes mac = esp_hmac(sa, sequence, std::span<const uint8_t>(esp).first(ciphertext_at + plaintext.size()));
  std::memcpy(icv, mac.data(), mac.size());
  return esp;
}

std::optional<Bytes> reference_open(const ReferenceSa& sa, uint64_t sequence, std::span<const uint8_t> esp) {
  const auto& props = shared::properties(sa.algorithm);
  size_t overhead = 8u + props.iv_length + props.icv_length;
  if (esp.size() < overhead) return std::nullopt;
  std::span<const uint8_t> iv = esp.subspan(8, props.iv_length);
  std::span<const uint8_t> ciphertext = esp.subspan(8 + props.iv_length, esp.size() - overhead);
  std::span<const uint8_t> icv = esp.subspan(esp.size() - props.icv_length);
  Bytes plain(ciphertext.size() + 16);
  if (props.aead) {
    Bytes nonce(sa.salt);
    nonce.insert(nonce.end(), iv.begin(), iv.end());
    uint8_t tag[16];
    std::memcpy(tag, icv.data(), 16);
    if (!gcm(sa, false, gcm_aad(sa, sequence), nonce, ciphertext, plain.data(), tag)) return std::nullopt;
  } else {
    Bytes expected = esp_hmac(sa, sequence, esp.first(esp.size() - props.icv_length));
    if (!std::equal(expected.begin(), expected.end(), icv.begin())) return std::nullopt;
    if (ciphertext.size() % 16 != 0 || !cbc(sa, false, iv, ciphertext, plain.data())) return std::nullopt;
  }
  plain.resize(ciphertext.size());
  return plain;
}

Bytes reference_gcm_seal(std::span<const uint8_t> key, std::span<const uint8_t> nonce,
                         std::span<const uint8_t> aad, std::span<const uint8_t> plaintext) {
  ReferenceSa sa;
  sa.algorithm = key.size() == 32 ? EspAlgorithm::kAesGcm256 : EspAlgorithm::kAesGcm128;
  sa.cipher_key.assign(key.begin(), key.end());
  Bytes out(plaintext.size() + 16);
  uint8_t tag[16];
  bool ok = gcm(sa, true, aad, nonce, plaintext, out.data(), tag);
  EXPECT_TRUE(ok) << "OpenSSL GCM encrypt";
  std::memcpy(out.data() + plaintext.size(), tag, 16);
  return out;
}

Bytes reference_cbc_encrypt(std::span<const uint8_t> key, std::span<const uint8_t> iv,
                            std::span<const uint8_t> plaintext) {
  ReferenceSa sa;
  sa.algorithm = key.size() == 32 ? EspAlgorithm::kAesCbc256HmacSha1 : EspAlgorithm::kAesCbc128HmacSha1;
  sa.cipher_key.assign(key.begin(), key.end());
  Bytes out(plaintext.size() + 16);
  bool ok = cbc(sa, true, iv, plaintext, out.data());
  EXPECT_TRUE(ok) << "OpenSSL CBC encrypt";
  out.resize(plaintext.size());
  return out;
}

Bytes reference_hmac(EspAlgorithm algorithm, std::span<const uint8_t> key, std::span<const uint8_t> data) {
  return truncated_hmac(algorithm, key, data);
}

Bytes aes_ecb_block(std::span<const uint8_t> key, std::span<const uint8_t> block) {
  CipherCtx c;
  Bytes out(32);
  int n = 0;
  int m = 0;
  bool ok = EVP_EncryptInit_ex(c.p, key.size() == 16 ? EVP_aes_128_ecb() : EVP_aes_256_ecb(), nullptr,
                               key.data(), nullptr) == 1 &&
            EVP_CIPHER_CTX_set_padding(c.p, 0) == 1 &&
            EVP_EncryptUpdate(c.p, out.data(), &n, block.data(), 16) == 1 &&
            EVP_EncryptFinal_ex(c.p, out.data() + n, &m) == 1;
  EXPECT_TRUE(ok) << "OpenSSL ECB";
  out.resize(16);
  return out;
}

Bytes gateway_iv(const ReferenceSa& sa, uint64_t sequence) {
  if (shared::properties(sa.algorithm).aead) {
    Bytes iv(8);
    shared::store_be64(iv.data(), sequence);
    return iv;
  }
  Bytes block(16, 0);
  shared::store_be64(&block[0], sequence);
  shared::store_be32(&block[8], sa.spi);
  return aes_ecb_block(sa.cipher_key, block);
}

Bytes pattern_iv(const ReferenceSa& sa, uint64_t seed) {
  Bytes iv(shared::properties(sa.algorithm).iv_length);
  for (size_t i = 0; i < iv.size(); ++i) iv[i] = static_cast<uint8_t>(seed * 29 + i * 13 + 0x5a);
  return iv;
}

std::optional<Bytes> strip_trailer(std::span<const uint8_t> plaintext, uint8_t* next_header) {
  if (plaintext.size() < 2) {
    ADD_FAILURE() << "plaintext of " << plaintext.size() << " bytes has no trailer";
    return std::nullopt;
  }
  size_t pad = plaintext[plaintext.size() - 2];
  *next_header = plaintext.back();
  if (pad + 2 > plaintext.size()) {
    ADD_FAILURE() << "pad length " << pad << " longer than the " << plaintext.size() << "-byte plaintext";
    return std::nullopt;
  }
  size_t payload = plaintext.size() - 2 - pad;
  for (size_t i = 0; i < pad; ++i) {
    if (plaintext[payload + i] != i + 1) {
      ADD_FAILURE() << "padding byte " << i << " is " << int{plaintext[payload + i]} << ", not " << i + 1;
      return std::nullopt;
    }
  }
  return Bytes(plaintext.begin(), plaintext.begin() + static_cast<long>(payload));
}

Bytes sealed_frame(const ReferenceSa& sa, const shared::PathDescriptor& path, uint64_t sequence,
                   std::span<const uint8_t> inner) {
  uint8_t next_header = (inner.empty() || (inner[0] >> 4) == 4) ? shared::kIpProtocolIpv4 : shared::kIpProtocolIpv6;
  Bytes plaintext = with_trailer(inner, shared::properties(sa.algorithm).block_size, next_header);
  return outer_frame(path, reference_seal(sa, sequence, pattern_iv(sa, sequence), plaintext));
}

Bytes esp_of(std::span<const uint8_t> frame) {
  if (frame.size() < 14 + 20) {
    ADD_FAILURE() << "frame of " << frame.size() << " bytes has no IP header";
    return {};
  }
  uint16_t ether_type = shared::load_be16(&frame[12]);
  size_t offset = 14;
  uint8_t protocol;
  if (ether_type == RTE_ETHER_TYPE_IPV4) {
    protocol = frame[offset + 9];
    offset += (frame[offset] & 0x0f) * 4u;
  } else {
    protocol = frame[offset + 6];
    offset += 40;
  }
  if (protocol == shared::kIpProtocolUdp) offset += 8;
  if (offset > frame.size()) {
    ADD_FAILURE() << "frame of " << frame.size() << " bytes ends inside its headers";
    return {};
  }
  return Bytes(frame.begin() + static_cast<long>(offset), frame.end());
}

size_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  size_t pages_total = 0;
  size_t pages_resident = 0;
  statm >> pages_total >> pages_resident;
  return pages_resident * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

// --- worker harness ---------------------------------------------------------

namespace {
// Two ethdevs over four rings, made once: ethdevs cannot be destroyed and
// re-created cheaply, and every harness can share them once drained.
struct RingPort {
  rte_ring* receive = nullptr;   // what the worker reads (we enqueue)
  rte_ring* transmit = nullptr;  // what the worker sends (we dequeue)
  uint16_t port = 0;
};

RingPort make_ring_port(const char* name) {
  RingPort p;
  std::string receive_name = std::string(name) + "_rx";
  std::string transmit_name = std::string(name) + "_tx";
  p.receive = rte_ring_create(receive_name.c_str(), 1024, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
  p.transmit = rte_ring_create(transmit_name.c_str(), 1024, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
  if (p.receive == nullptr || p.transmit == nullptr) {
    std::fprintf(stderr, "test harness: cannot create rings for %s\n", name);
    std::abort();
  }
  int id = rte_eth_from_rings(name, &p.receive, 1, &p.transmit, 1, 0);
  rte_eth_conf conf{};
  if (id < 0 || rte_eth_dev_configure(static_cast<uint16_t>(id), 1, 1, &conf) != 0 ||
      rte_eth_rx_queue_setup(static_cast<uint16_t>(id), 0, 1024, 0, nullptr, packet_pool()) != 0 ||
      rte_eth_tx_queue_setup(static_cast<uint16_t>(id), 0, 1024, 0, nullptr) != 0 ||
      rte_eth_dev_start(static_cast<uint16_t>(id)) != 0) {
    std::fprintf(stderr, "test harness: cannot set up ring port %s\n", name);
    std::abort();
  }
  p.port = static_cast<uint16_t>(id);
  return p;
}

struct RingPorts {
  RingPort access = make_ring_port("segw_test_access");
  RingPort core = make_ring_port("segw_test_core");
};

RingPorts& ring_ports() {
  static RingPorts ports;
  return ports;
}

std::vector<rte_mbuf*> drain(rte_ring* ring) {
  std::vector<rte_mbuf*> packets;
  void* object;
  while (rte_ring_dequeue(ring, &object) == 0) packets.push_back(static_cast<rte_mbuf*>(object));
  return packets;
}

void free_ring_contents(rte_ring* ring) {
  auto packets = drain(ring);
  free_all(packets);
}
}  // namespace

WorkerHarness::WorkerHarness(Gateway& gateway, const WorkerHarnessOptions& options) {
  RingPorts& ports = ring_ports();
  static int instance = 0;
  std::string punt_name = "segw_test_punt_" + std::to_string(instance++);
  punt_ring_ = rte_ring_create(punt_name.c_str(), options.punt_ring_size, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
  EXPECT_NE(punt_ring_, nullptr) << "punt ring";
  WorkerSetup setup;
  setup.queue = 0;
  setup.access_port = ports.access.port;
  setup.core_port = ports.core.port;
  setup.punt_ring = punt_ring_;
  setup.access_addresses = gateway.access;
  setup.esp = gateway.ctx;  // the worker puts in its own crypto manager and counters
  setup.reassembly_flows = options.reassembly_flows;
  setup.reassembly_timeout_ms = options.reassembly_timeout_ms;
  worker_ = std::make_unique<Worker>(setup);
}

WorkerHarness::~WorkerHarness() {
  RingPorts& ports = ring_ports();
  for (rte_ring* ring : {ports.access.receive, ports.access.transmit, ports.core.receive, ports.core.transmit})
    free_ring_contents(ring);
  worker_.reset();  // frees fragments still waiting for reassembly
  free_ring_contents(punt_ring_);
  rte_ring_free(punt_ring_);
}

void WorkerHarness::receive(rte_ring* ring, const std::vector<Bytes>& frames) {
  for (const Bytes& frame : frames) {
    rte_mbuf* m = to_mbuf(frame);
    if (m == nullptr) continue;
    if (rte_ring_enqueue(ring, m) != 0) {
      ADD_FAILURE() << "receive ring full";
      rte_pktmbuf_free(m);
    }
    // Poll as we go so a long list never overflows the 1024-entry ring.
    if (rte_ring_count(ring) >= 256) worker_->poll_once();
  }
  while (rte_ring_count(ring) > 0) worker_->poll_once();
}

void WorkerHarness::receive_on_access(const std::vector<Bytes>& frames) { receive(ring_ports().access.receive, frames); }
void WorkerHarness::receive_on_core(const std::vector<Bytes>& frames) { receive(ring_ports().core.receive, frames); }
std::vector<rte_mbuf*> WorkerHarness::sent_to_core() { return drain(ring_ports().core.transmit); }
std::vector<rte_mbuf*> WorkerHarness::sent_to_access() { return drain(ring_ports().access.transmit); }
std::vector<rte_mbuf*> WorkerHarness::punted() { return drain(punt_ring_); }

void WorkerHarness::leave_core_transmit_room(unsigned slots) {
  rte_ring* ring = ring_ports().core.transmit;
  while (rte_ring_free_count(ring) > slots) {
    rte_mbuf* placeholder = rte_pktmbuf_alloc(packet_pool());
    if (placeholder == nullptr || rte_ring_enqueue(ring, placeholder) != 0) {
      ADD_FAILURE() << "cannot fill the core transmit ring";
      rte_pktmbuf_free(placeholder);
      return;
    }
  }
}

}  // namespace segw::dp::testing
