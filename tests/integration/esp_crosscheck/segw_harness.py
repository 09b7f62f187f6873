"""Harness for the ESP cross-check: tunnels, configuration, scapy SAs, runs.

The independent implementation is scapy's SecurityAssociation
(scapy.layers.ipsec). scapy 2.5 applies extended sequence numbers (RFC 4303
2.2.1) only to AEAD algorithms; for AES-CBC + HMAC with ESN this module lets
scapy build and encrypt the packet and computes the ICV itself with Python's
hmac over ESP header || IV || ciphertext || seq-high (RFC 4303 2.2.1,
Appendix A3), the one step scapy lacks.
"""

import hashlib
import hmac
import ipaddress
import json
import os
import struct
import subprocess
import time

from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.ipsec import ESP, SecurityAssociation, IPSecIntegrityError
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import RawPcapReader, PcapWriter

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

# segw algorithm name -> what scapy and the checks need.
ALGORITHMS = {
    "aes-gcm-128": dict(crypt="AES-GCM", key=16, auth=None, ikey=0, icv=16, iv=8, block=4),
    "aes-gcm-256": dict(crypt="AES-GCM", key=32, auth=None, ikey=0, icv=16, iv=8, block=4),
    "aes-cbc-128-hmac-sha1-96": dict(crypt="AES-CBC", key=16, auth="HMAC-SHA1-96", ikey=20, icv=12,
                                     iv=16, block=16, digest=hashlib.sha1),
    "aes-cbc-256-hmac-sha1-96": dict(crypt="AES-CBC", key=32, auth="HMAC-SHA1-96", ikey=20, icv=12,
                                     iv=16, block=16, digest=hashlib.sha1),
    "aes-cbc-128-hmac-sha256-128": dict(crypt="AES-CBC", key=16, auth="SHA2-256-128", ikey=32, icv=16,
                                        iv=16, block=16, digest=hashlib.sha256),
    "aes-cbc-256-hmac-sha256-128": dict(crypt="AES-CBC", key=32, auth="SHA2-256-128", ikey=32, icv=16,
                                        iv=16, block=16, digest=hashlib.sha256),
}

GATEWAY_V4 = "192.0.2.1"
GATEWAY_V6 = "2001:db8:1::1"
CORE_V4 = "10.0.0.1"
CORE_V6 = "fd00::1"
ACCESS_NEXT_HOP = "02:00:00:00:0a:01"
CORE_NEXT_HOP = "02:00:00:00:0c:01"
SEGW_MAC = "02:00:00:00:00:fe"   # destination of frames we feed in (ports are promiscuous)
NAT_T_PORT = 4500
LOCAL_SELECTOR = "10.0.0.0/8, fd00::/16"

# ESP overhead the MTU checks need, independent of segw's own tables.
IPV4_HEADER = 20
IPV6_HEADER = 40
UDP_HEADER = 8
ESP_HEADER = 8


class Failures:
    """Collects failures (never raises), so one run reports everything."""

    def __init__(self):
        self.items = []
        self.checks = 0

    def check(self, condition, what, expected=None, actual=None):
        self.checks += 1
        if condition:
            return True
        message = what
        if expected is not None or actual is not None:
            message += "\n      expected: %s\n      actual:   %s" % (short(expected), short(actual))
        self.items.append(message)
        print("FAIL: " + message, flush=True)
        return False

    def fail(self, what):
        return self.check(False, what)


def short(value, limit=400):
    if isinstance(value, (bytes, bytearray)):
        text = value.hex()
        return (text[:limit] + "...(%d bytes)" % len(value)) if len(text) > limit else text + " (%d bytes)" % len(value)
    text = repr(value)
    return text[:limit] + "..." if len(text) > limit else text


class Tunnel:
    """One tunnel = an inbound and an outbound SA sharing one path."""

    def __init__(self, index, algorithm, outer_ipv6, udp, esn, rng, replay_window=None, peer_port=None,
                 extra_remote_selector=None):
        self.index = index
        self.algorithm = algorithm
        self.props = ALGORITHMS[algorithm]
        self.outer_ipv6 = outer_ipv6
        self.udp = udp
        self.esn = esn
        self.replay_window = replay_window
        # segw keeps 31 characters of an SA name: keep "NAME-out" shorter.
        short_algorithm = algorithm.replace("aes-", "").replace("-hmac-sha1-96", "s1") \
            .replace("-hmac-sha256-128", "s256").replace("-", "")
        self.name = "t%d-%s-%s%s%s" % (index, short_algorithm,
                                       "v6" if outer_ipv6 else "v4", "udp" if udp else "esp",
                                       "-esn" if esn else "")
        self.spi_in = 0x51000000 | (0x100 + index)     # low bits = inbound table index
        self.spi_out = 0xA2000000 | (0x300 + index)
        self.gateway = GATEWAY_V6 if outer_ipv6 else GATEWAY_V4
        self.peer = ("2001:db8:ffff::%x" % (0x10 + index)) if outer_ipv6 else ("198.51.100.%d" % (10 + index))
        self.peer_port = peer_port if peer_port is not None else 30000 + index   # NAT-translated
        self.local_port = NAT_T_PORT
        self.remote_v4 = ipaddress.ip_network("172.16.%d.0/24" % index)
        self.remote_v6 = ipaddress.ip_network("2001:db8:100:%x::/64" % index)
        self.extra_remote_selector = extra_remote_selector

        def key(n):
            return bytes(rng.getrandbits(8) for _ in range(n))
        p = self.props
        self.key_in, self.key_out = key(p["key"]), key(p["key"])
        self.ikey_in, self.ikey_out = key(p["ikey"]), key(p["ikey"])
        gcm = p["crypt"] == "AES-GCM"
        self.salt_in, self.salt_out = (key(4), key(4)) if gcm else (b"", b"")

    # ---- addresses behind the peer and behind the gateway ----
    def remote_host(self, ipv6, n=5):
        return str((self.remote_v6 if ipv6 else self.remote_v4)[n])

    def core_host(self, ipv6, n=7):
        return ("fd00::%x" % n) if ipv6 else ("10.1.%d.%d" % (self.index, n))

    # ---- configuration ----
    def config(self):
        lines = []
        for direction, spi, key, ikey, salt in (("inbound", self.spi_in, self.key_in, self.ikey_in, self.salt_in),
                                                ("outbound", self.spi_out, self.key_out, self.ikey_out, self.salt_out)):
            lines.append("[sa %s-%s]" % (self.name, "in" if direction == "inbound" else "out"))
            lines.append("direction = %s" % direction)
            lines.append("spi = 0x%08x" % spi)
            lines.append("algorithm = %s" % self.algorithm)
            lines.append("encryption_key = %s" % key.hex())
            if ikey:
                lines.append("integrity_key = %s" % ikey.hex())
            if salt:
                lines.append("salt = %s" % salt.hex())
            lines.append("esn = %s" % ("yes" if self.esn else "no"))
            if direction == "inbound" and self.replay_window:
                lines.append("replay_window = %d" % self.replay_window)
            lines.append("local_address = %s" % self.gateway)
            lines.append("remote_address = %s" % self.peer)
            lines.append("local_port = %d" % self.local_port)
            lines.append("remote_port = %d" % self.peer_port)
            lines.append("udp_encapsulation = %s" % ("yes" if self.udp else "no"))
            lines.append("local_selector = %s" % LOCAL_SELECTOR)
            extra = ", " + self.extra_remote_selector if self.extra_remote_selector else ""
            lines.append("remote_selector = %s, %s%s" % (self.remote_v4, self.remote_v6, extra))
            lines.append("tunnel = %s" % self.name)
            lines.append("")
        return "\n".join(lines)

    # ---- scapy SAs ----
    def _scapy_sa(self, spi, key, ikey, salt, src, dst, sport, dport):
        p = self.props
        outer = IPv6(src=src, dst=dst) if self.outer_ipv6 else IP(src=src, dst=dst)
        return SecurityAssociation(
            ESP, spi=spi, crypt_algo=p["crypt"], crypt_key=key + salt,
            auth_algo=p["auth"], auth_key=ikey if ikey else None,
            tunnel_header=outer,
            nat_t_header=UDP(sport=sport, dport=dport) if self.udp else None,
            esn_en=self.esn, esn=0)

    def peer_sa(self):
        """What the peer uses to send to segw (segw's inbound SA)."""
        return self._scapy_sa(self.spi_in, self.key_in, self.ikey_in, self.salt_in,
                              self.peer, self.gateway, self.peer_port, NAT_T_PORT)

    def gateway_sa(self):
        """segw's outbound SA, as the peer decrypts it."""
        return self._scapy_sa(self.spi_out, self.key_out, self.ikey_out, self.salt_out,
                              self.gateway, self.peer, self.local_port, self.peer_port)

    # ---- peer -> gateway ----
    def encrypt_from_peer(self, sa, inner, sequence, source=None, sport=None, destination=None):
        """Outer IP(v6) packet carrying `inner` with full 64-bit `sequence`."""
        high, low = sequence >> 32, sequence & 0xffffffff
        if not self.esn and high:
            raise ValueError("sequence > 32 bits without ESN")
        sa.seq_num = low
        sa.esn = high
        packet = sa.encrypt(inner.copy())
        if self.esn and self.props["auth"]:
            set_esn_hmac(packet, self.ikey_in, self.props, high)
        if source is not None:
            packet.src = source
        if destination is not None:
            packet.dst = destination
        if sport is not None:
            packet[UDP].sport = sport
        # Lengths, IPv4 header checksum; UDP checksum 0 over IPv4 (RFC 3948
        # 2.1), a real one over IPv6 (RFC 8200 8.1). scapy 2.5 freezes the
        # NAT-T UDP length at 8 over IPv4 (it builds IP/UDP before adding
        # ESP): recompute it.
        if self.udp:
            packet[UDP].len = None
        if self.udp and self.outer_ipv6:
            packet[UDP].chksum = None
        if not self.outer_ipv6:
            packet.chksum = None
        return packet.__class__(bytes(packet))

    def craft_from_peer(self, sequence, body, next_header, padding=None, pad_length=None):
        """ESP-in-UDP/IPv4 built by hand for AES-GCM inbound SAs (RFC 4106:
        nonce = salt || IV, AAD = SPI || [seq-high] || seq-low), for trailers
        scapy cannot produce. padding None = RFC 4303 default padding to a
        4-byte boundary; pad_length overrides the pad length byte."""
        if self.props["crypt"] != "AES-GCM" or self.outer_ipv6 or not self.udp:
            raise ValueError("craft_from_peer supports AES-GCM over IPv4/UDP only")
        if padding is None:
            count = -(len(body) + 2) % 4
            padding = bytes(range(1, count + 1))
        trailer = bytes([len(padding) if pad_length is None else pad_length, next_header])
        plaintext = body + padding + trailer
        header = struct.pack("!LL", self.spi_in, sequence & 0xffffffff)
        aad = header[:4] + struct.pack("!L", sequence >> 32) + header[4:] if self.esn else header
        iv = struct.pack("!Q", sequence ^ 0x5a5a5a5a5a5a5a5a)
        esp = header + iv + AESGCM(self.key_in).encrypt(self.salt_in + iv, plaintext, aad)
        packet = IP(src=self.peer, dst=self.gateway) / UDP(sport=self.peer_port, dport=NAT_T_PORT, chksum=0) / Raw(esp)
        return IP(bytes(packet))

    def decrypt_from_gateway(self, sa, esp_bytes, high=0):
        """scapy decrypts one ESP packet of segw's outbound SA; returns inner bytes.

        Raises IPSecIntegrityError when the ICV does not verify."""
        outer = IPv6(src=self.gateway, dst=self.peer) if self.outer_ipv6 else IP(src=self.gateway, dst=self.peer)
        packet = outer.__class__(bytes(outer / ESP(esp_bytes)))
        sa.esn = high
        if self.esn and self.props["auth"]:
            verify_esn_hmac(packet[ESP], self.ikey_out, self.props, high)
            inner = sa.decrypt(packet, verify=False)
        else:
            inner = sa.decrypt(packet)
        return bytes(inner)

    def decrypt_trailer(self, esp_bytes, high=0):
        """Plaintext (inner || padding || pad length || next header) of one of
        segw's outbound ESP packets, decrypted with `cryptography` directly so
        the padding bytes can be checked (scapy drops them)."""
        p = self.props
        iv = esp_bytes[8:8 + p["iv"]]
        body = esp_bytes[8 + p["iv"]:]
        if p["crypt"] == "AES-GCM":
            aad = esp_bytes[:4] + struct.pack("!L", high) + esp_bytes[4:8] if self.esn else esp_bytes[:8]
            return AESGCM(self.key_out).decrypt(self.salt_out + iv, body, aad)
        ciphertext = body[:-p["icv"]]
        decryptor = Cipher(algorithms.AES(self.key_out), modes.CBC(iv)).decryptor()
        return decryptor.update(ciphertext) + decryptor.finalize()


def set_esn_hmac(packet, ikey, props, high):
    """Replace the ICV scapy computed (without ESN) by the ESN one."""
    esp = packet[ESP]
    icv_length = props["icv"]
    body = bytes(esp.data[:-icv_length])
    header = struct.pack("!LL", esp.spi, esp.seq)
    icv = hmac.new(ikey, header + body + struct.pack("!L", high), props["digest"]).digest()[:icv_length]
    esp.data = body + icv


def verify_esn_hmac(esp, ikey, props, high):
    icv_length = props["icv"]
    data = bytes(esp.data)
    header = struct.pack("!LL", esp.spi, esp.seq)
    computed = hmac.new(ikey, header + data[:-icv_length] + struct.pack("!L", high),
                        props["digest"]).digest()[:icv_length]
    if not hmac.compare_digest(computed, data[-icv_length:]):
        raise IPSecIntegrityError("ESN HMAC mismatch")


def max_inner(tunnel, access_mtu):
    """Largest inner packet that fits access_mtu once encapsulated (RFC 4303
    2.4: payload || padding || 2-byte trailer aligned to the block size)."""
    p = tunnel.props
    overhead = (IPV6_HEADER if tunnel.outer_ipv6 else IPV4_HEADER) + (UDP_HEADER if tunnel.udp else 0) \
        + ESP_HEADER + p["iv"] + p["icv"]
    best = 0
    for length in range(access_mtu):
        padded = (length + 2 + p["block"] - 1) // p["block"] * p["block"]
        if overhead + padded <= access_mtu:
            best = length
    return best


def dataplane_config(tunnels, access_in, access_out, core_in, core_out, extra_dataplane=""):
    """access_in/core_in may be None (the port then only transmits)."""
    def device(n, rx, tx):
        spec = "net_pcap%d" % n
        if rx:
            spec += ",rx_pcap=" + rx
        return spec + ",tx_pcap=" + tx
    text = ["# generated by tests/integration/esp_crosscheck",
            "[dataplane]", "stats_interval = 0", extra_dataplane, "",
            "[port access]", "device = " + device(0, access_in, access_out),
            "next_hop_mac = " + ACCESS_NEXT_HOP, "address = %s, %s" % (GATEWAY_V4, GATEWAY_V6), "",
            "[port core]", "device = " + device(1, core_in, core_out),
            "next_hop_mac = " + CORE_NEXT_HOP, "address = %s, %s" % (CORE_V4, CORE_V6), ""]
    for t in tunnels:
        text.append(t.config())
    return "\n".join(text) + "\n"


def write_pcap(path, frames):
    writer = PcapWriter(path, linktype=1, sync=False)
    for frame in frames:
        writer.write(bytes(frame))
    writer.close()
    if not frames:  # PcapWriter writes no header without a packet
        with open(path, "wb") as f:
            f.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1))


def read_pcap(path):
    if not os.path.exists(path):
        return None
    return [bytes(data) for data, _ in RawPcapReader(path)]


def ethernet_pad(frame):
    """Frames shorter than 60 bytes (+FCS) are padded on the wire (IEEE
    802.3); NICs hand the padding up, so segw sees it too."""
    return frame + bytes(max(0, 60 - len(frame)))


def access_frame(packet):
    return ethernet_pad(bytes(Ether(dst=SEGW_MAC, src=ACCESS_NEXT_HOP) / packet))


def core_frame(packet):
    return ethernet_pad(bytes(Ether(dst=SEGW_MAC, src=CORE_NEXT_HOP) / packet))


class RunResult:
    def __init__(self, ok, access_out, core_out, stats, output):
        self.ok = ok
        self.access_out = access_out or []
        self.core_out = core_out or []
        self.stats = stats
        self.output = output

    def sa(self, name):
        for entry in (self.stats or {}).get("sas", []):
            if entry["name"] == name:
                return entry
        return None


def run_dataplane(binary, workdir, label, tunnels, access_frames, core_frames, failures,
                  extra_dataplane="", duration=2):
    """Writes the input pcaps and the configuration, runs segw-dataplane once."""
    run_dir = os.path.join(workdir, label)
    os.makedirs(run_dir, exist_ok=True)
    access_in = os.path.join(run_dir, "access_in.pcap")
    core_in = os.path.join(run_dir, "core_in.pcap")
    access_out = os.path.join(run_dir, "access_out.pcap")
    core_out = os.path.join(run_dir, "core_out.pcap")
    write_pcap(access_in, access_frames)
    write_pcap(core_in, core_frames)
    config_path = os.path.join(run_dir, "segw.conf")
    with open(config_path, "w") as f:
        f.write(dataplane_config(tunnels, access_in, access_out, core_in, core_out, extra_dataplane))
    stats_path = os.path.join(run_dir, "stats.json")
    command = [binary, "-c", config_path, "--duration", str(duration), "--stats-json", stats_path, "--",
               "--no-huge", "-m", "512", "--no-shconf", "-l", "0,1",
               "--file-prefix", "segw-xcheck-%d-%s" % (os.getpid(), label)]
    started = time.monotonic()
    try:
        proc = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
        output = proc.stdout.decode(errors="replace")
        code = proc.returncode
    except subprocess.TimeoutExpired as e:
        output = (e.stdout or b"").decode(errors="replace")
        code = "timeout"
    elapsed = time.monotonic() - started
    print("[%s] segw-dataplane ran %.1f s (%d access + %d core frames in), exit %s" %
          (label, elapsed, len(access_frames), len(core_frames), code), flush=True)
    ok = failures.check(code == 0, "[%s] segw-dataplane exit status (config %s)\n%s" %
                        (label, config_path, output[-3000:]), 0, code)
    stats = None
    if os.path.exists(stats_path):
        with open(stats_path) as f:
            stats = json.load(f)
    else:
        failures.fail("[%s] no stats JSON written (%s)" % (label, stats_path))
        ok = False
    result = RunResult(ok, read_pcap(access_out), read_pcap(core_out), stats, output)
    if stats is not None:
        failures.check(stats.get("mempool_in_use_at_exit") == 0,
                       "[%s] mempool_in_use_at_exit" % label, 0, stats.get("mempool_in_use_at_exit"))
    return result


def check_drops(failures, label, stats, expected):
    """Every global drop counter: the ones named in `expected`, zero otherwise."""
    if stats is None:
        return
    for reason, value in sorted(stats["drops"].items()):
        want = expected.get(reason, 0)
        failures.check(value == want, "[%s] drops.%s" % (label, reason), want, value)
    for reason in expected:
        failures.check(reason in stats["drops"], "[%s] drop reason %s exists in stats JSON" % (label, reason),
                       True, False)
