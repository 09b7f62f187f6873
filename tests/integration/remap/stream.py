#!/usr/bin/python3
"""Sequence-numbered UDP streams and packet evidence for the NAT-remap test.

Stdlib only (Debian's /usr/bin/python3). Every time is CLOCK_REALTIME in
nanoseconds, the clock `date +%s%N`, tcpdump and every network namespace of
this host share, so times taken in different namespaces compare directly.

Subcommands:
  run        one end of a bidirectional stream: sends a numbered datagram every
             --interval-ms to --peer, logs what it sends and receives
  gap        downlink evidence from a `run` log: packets received, lost and the
             longest silence inside a time window
  sniff      AF_PACKET on a LAN interface: prints the UDP payloads of fresh
             ESP-in-UDP packets from --src (length-framed, on stdout)
  resend     reads `sniff`'s frames on stdin and sends each payload from its own
             socket (the attacker's address/port) to the gateway
  replay     sends the ESP-in-UDP payloads of a capture from its own socket
  ike-init   counts IKE_SA_INIT messages in a capture (a re-run of IKE)
  ike-count  counts what a capture holds from the gateway: IKE requests (and
             their distinct message IDs, INFORMATIONAL only) and ESP packets
  sync       waits until tcpdump has written a capture up to a given time
  wire       the interruption on the wire: first uplink ESP packet on a NAT
             mapping to the first downlink ESP packet delivered to it

The `run` log has one line per packet: `S seq t_ns` (sent) and
`R seq t_recv_ns t_sent_ns` (received; t_sent is the peer's send time).
"""

import argparse
import json
import os
import select
import signal
import socket
import struct
import sys
import time

MAGIC = b"SGWS"
HEADER = struct.Struct("!4sQQ")   # magic, sequence, send time (ns)
PAYLOAD_SIZE = 64
SO_NO_CHECK = 11      # <asm-generic/socket.h>

now_ns = time.time_ns


def write_pidfile(path):
    if path:
        with open(path, "w") as f:
            f.write("%d\n" % os.getpid())


class Stop(Exception):
    pass


def on_term(_signum, _frame):
    raise Stop()


def endpoint(text):
    host, _, port = text.rpartition(":")
    return host, int(port)


# ---------------------------------------------------------------- run

def cmd_run(a):
    write_pidfile(a.pidfile)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    # No UDP checksum (0 = none, RFC 768). The veths offload it: the packet
    # leaves with a partial checksum, which segw-dataplane (net_af_packet,
    # no virtio-net header) encrypts as it is, and the device's kernel drops
    # the datagram as corrupt. Pings are not hit: ICMP is summed in software.
    s.setsockopt(socket.SOL_SOCKET, SO_NO_CHECK, 1)
    s.bind((a.bind, a.port))
    s.setblocking(False)
    peer = (a.peer, a.port)
    interval = int(a.interval_ms * 1e6)
    log = open(a.log, "w", buffering=1 << 16)
    seq = 0
    start = now_ns()
    next_send = start
    last_flush = start
    end = start + int(a.duration * 1e9) if a.duration else None
    pad = b"\0" * (PAYLOAD_SIZE - HEADER.size)
    try:
        while True:
            t = now_ns()
            if end and t >= end:
                break
            if t >= next_send:
                seq += 1
                try:
                    s.sendto(HEADER.pack(MAGIC, seq, t) + pad, peer)
                    log.write("S %d %d\n" % (seq, t))
                except OSError as e:   # no route while the tunnel is down: keep counting
                    log.write("E %d %d %s\n" % (seq, t, e.errno))
                next_send += interval
                # Starved for a while (2 cores, busy-polling data plane):
                # resume the schedule rather than bursting to catch up.
                if t - next_send > 20 * interval:
                    next_send = t + interval
            if t - last_flush > 50_000_000:
                log.flush()
                last_flush = t
            wait = max(0.0, (next_send - now_ns()) / 1e9)
            r, _, _ = select.select([s], [], [], wait)
            if r:
                while True:
                    try:
                        data = s.recv(2048)
                    except BlockingIOError:
                        break
                    t = now_ns()
                    if len(data) >= HEADER.size:
                        magic, rseq, sent = HEADER.unpack_from(data)
                        if magic == MAGIC:
                            log.write("R %d %d %d\n" % (rseq, t, sent))
    except Stop:
        pass
    log.flush()
    log.close()


def read_log(path):
    sent, received = [], []
    with open(path) as f:
        for line in f:
            p = line.split()
            if not p:
                continue
            try:
                if p[0] == "R" and len(p) == 4:
                    received.append((int(p[2]), int(p[1]), int(p[3])))
                elif p[0] in ("S", "E") and len(p) >= 3:
                    sent.append((int(p[2]), int(p[1])))
            except ValueError:   # a line cut short by a concurrent flush
                continue
    return sent, received


# ---------------------------------------------------------------- gap

def cmd_gap(a):
    """Downlink evidence in [since, until] from a receiver's log: packets
    received, the peer's packets sent inside the window that never arrived
    (by sequence number), the longest silence (ms) between two receptions,
    with the window's edges counted as receptions."""
    _, received = read_log(a.log)
    since = a.since
    until = a.until or now_ns()
    win = [r for r in received if since <= r[0] <= until]
    times = [since] + [r[0] for r in win] + [until]
    gaps = [(times[i + 1] - times[i], times[i], times[i + 1]) for i in range(len(times) - 1)]
    longest = max(gaps) if gaps else (0, since, since)
    # Lost: peer sequence numbers sent inside the window (by their send time)
    # that were never received at all.
    got = {r[1] for r in received}
    sent_in = [r for r in received if since <= r[2] <= until]
    lost = None
    if sent_in:
        lo = min(r[1] for r in sent_in)
        hi = max(r[1] for r in sent_in)
        lost = sum(1 for q in range(lo, hi + 1) if q not in got)
    first_after = next((r[0] for r in received if r[0] > since), None)
    out = {
        "received": len(win),
        "lost": lost,
        "longest_gap_ms": round(longest[0] / 1e6, 3),
        "longest_gap_start_ns": longest[1],
        "longest_gap_end_ns": longest[2],
        "first_received_after_since_ms": None if first_after is None else round((first_after - since) / 1e6, 3),
        "last_received_ns": received[-1][0] if received else None,
    }
    print(json.dumps(out))


# ---------------------------------------------------------------- sniff / resend / replay

def is_fresh_esp(payload):
    # ESP in UDP (RFC 3948): a non-zero SPI where IKE has its zero marker;
    # a 1-byte 0xff is a NAT keepalive.
    return len(payload) >= 8 and payload[:4] != b"\0\0\0\0"


def parse_ipv4_udp(frame, offset):
    """(src, sport, dst, dport, payload) of an IPv4/UDP packet at offset, or None."""
    if len(frame) < offset + 20 or frame[offset] >> 4 != 4:
        return None
    ihl = (frame[offset] & 0x0F) * 4
    if frame[offset + 9] != 17:
        return None
    total = struct.unpack_from("!H", frame, offset + 2)[0]
    src = socket.inet_ntoa(frame[offset + 12:offset + 16])
    dst = socket.inet_ntoa(frame[offset + 16:offset + 20])
    u = offset + ihl
    if len(frame) < u + 8:
        return None
    sport, dport, ulen = struct.unpack_from("!HHH", frame, u)
    end = min(len(frame), offset + total, u + ulen)
    return src, sport, dst, dport, bytes(frame[u + 8:end])


def cmd_sniff(a):
    write_pidfile(a.pidfile)
    signal.signal(signal.SIGTERM, on_term)
    # ETH_P_ALL: a bridge port hands its frames to the bridge before any
    # protocol-specific tap would see them; "all" taps run first.
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    s.bind((a.iface, 0))
    out = sys.stdout.buffer
    n = 0
    try:
        while True:
            frame, addr = s.recvfrom(65535)
            if addr[2] == socket.PACKET_OUTGOING:
                continue
            if frame[12:14] != b"\x08\x00":
                continue
            p = parse_ipv4_udp(frame, 14)
            if not p or p[0] != a.src or p[3] != a.dport or not is_fresh_esp(p[4]):
                continue
            out.write(struct.pack("!H", len(p[4])) + p[4])
            out.flush()
            n += 1
    except (Stop, BrokenPipeError):
        pass
    print("sniffed %d" % n, file=sys.stderr)


def cmd_resend(a):
    write_pidfile(a.pidfile)
    signal.signal(signal.SIGTERM, on_term)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(endpoint(a.bind))
    to = endpoint(a.to)
    inp = sys.stdin.buffer
    n = 0
    try:
        while True:
            head = inp.read(2)
            if len(head) < 2:
                break
            (length,) = struct.unpack("!H", head)
            data = inp.read(length)
            if len(data) < length:
                break
            s.sendto(data, to)
            n += 1
    except Stop:
        pass
    print("resent %d" % n, file=sys.stderr)
    if a.count_file:
        with open(a.count_file, "w") as f:
            f.write("%d\n" % n)


def read_pcap(path):
    """Yields (t_ns, frame, link_offset) from a classic pcap file."""
    with open(path, "rb") as f:
        head = f.read(24)
        if len(head) < 24:
            return
        magic = struct.unpack("<I", head[:4])[0]
        if magic in (0xA1B2C3D4, 0xA1B23C4D):
            endian = "<"
        else:
            endian = ">"
            magic = struct.unpack(">I", head[:4])[0]
        nano = magic == 0xA1B23C4D
        linktype = struct.unpack(endian + "I", head[20:24])[0]
        offset = {1: 14, 113: 16, 276: 20, 101: 0, 12: 0}.get(linktype)
        if offset is None:
            raise SystemExit("unsupported pcap link type %d" % linktype)
        rec = struct.Struct(endian + "IIII")
        while True:
            h = f.read(16)
            if len(h) < 16:
                return
            sec, frac, incl, _ = rec.unpack(h)
            data = f.read(incl)
            if len(data) < incl:
                return
            yield sec * 1_000_000_000 + (frac if nano else frac * 1000), data, offset


def udp_packets(path):
    for t, frame, off in read_pcap(path):
        if off == 14 and len(frame) >= 14 and frame[12:14] == b"\x81\x00":
            off = 18
        p = parse_ipv4_udp(frame, off)
        if p:
            yield (t,) + p


def cmd_replay(a):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(endpoint(a.bind))
    to = endpoint(a.to)
    n = 0
    for _, src, sport, dst, dport, payload in udp_packets(a.pcap):
        if dport != 4500 or not is_fresh_esp(payload):
            continue
        s.sendto(payload, to)
        n += 1
        time.sleep(a.gap_ms / 1000.0)
    print(json.dumps({"replayed": n}))


# ---------------------------------------------------------------- ike-count / wire

IKE_INFORMATIONAL = 37


def cmd_ike_count(a):
    """What a capture holds from the gateway (src --src IP:PORT) to --dst IP:
    IKE requests (non-ESP marker, then an IKE header without the Response
    flag), their distinct message IDs (INFORMATIONAL only), ESP packets."""
    sip, sport = endpoint(a.src)
    dip, _, dport = a.dst.partition(":")
    dport = int(dport) if dport else None
    req_times, msgids, esp, other = [], set(), 0, 0
    first = last = None
    for t, src, sp, dst, dp, payload in udp_packets(a.pcap):
        if src != sip or sp != sport or dst != dip or (dport is not None and dp != dport):
            continue
        if a.since and t < a.since:
            continue
        if a.until and t > a.until:
            continue
        if len(payload) >= 4 + 28 and payload[:4] == b"\0\0\0\0":
            ike = payload[4:]
            exchange, flags = ike[18], ike[19]
            msgid = struct.unpack_from("!I", ike, 20)[0]
            if not flags & 0x20 and exchange == IKE_INFORMATIONAL:
                req_times.append(t)
                msgids.add(msgid)
                first = t if first is None else first
                last = t
            else:
                other += 1
        elif is_fresh_esp(payload):
            esp += 1
        else:
            other += 1
    span = (last - first) / 1e9 if first is not None and last != first else 0.0
    print(json.dumps({"informational_requests": len(req_times), "distinct_message_ids": len(msgids),
                      "message_ids": sorted(msgids), "esp": esp, "other": other,
                      "first_to_last_s": round(span, 3)}))


def cmd_ike_init(a):
    """IKE_SA_INIT messages (exchange 34, ports 500/4500, either direction) in
    a capture after --since: a re-run of IKE would show here."""
    n = 0
    for t, src, sp, dst, dp, payload in udp_packets(a.pcap):
        if t < a.since:
            continue
        ike = None
        if 500 in (sp, dp) and len(payload) >= 28:
            ike = payload
        elif 4500 in (sp, dp) and len(payload) >= 32 and payload[:4] == b"\0\0\0\0":
            ike = payload[4:]
        if ike is not None and ike[18] == 34:
            n += 1
    print(json.dumps({"ike_sa_init": n}))


def cmd_sync(a):
    """Waits until tcpdump has written a packet stamped at or after --until
    to the capture (it writes in order, so everything before is there too):
    tcpdump may lag behind the wire on a starved machine. Exit 1 on timeout."""
    deadline = time.monotonic() + a.timeout
    while True:
        last = 0
        for t, _, _ in read_pcap(a.pcap):
            last = t
        if last >= a.until:
            return
        if time.monotonic() >= deadline:
            print("capture %s ends at %d, not yet at %d" % (a.pcap, last, a.until), file=sys.stderr)
            sys.exit(1)
        time.sleep(0.2)


def cmd_wire(a):
    """Interruption on the wire (capture at the NAT's wan side): from the first
    uplink ESP packet from --public (IP:PORT, the new mapping) to --gw after
    --since, to the first downlink ESP packet from --gw to --public after it."""
    pip, pport = endpoint(a.public)
    gip, gport = endpoint(a.gw)
    t_up = t_down = None
    for t, src, sp, dst, dp, payload in udp_packets(a.pcap):
        if t < a.since or not is_fresh_esp(payload):
            continue
        if t_up is None:
            if src == pip and sp == pport and dst == gip and dp == gport:
                t_up = t
            continue
        if src == gip and sp == gport and dst == pip and dp == pport:
            t_down = t
            break
    out = {"first_uplink_ns": t_up, "first_downlink_ns": t_down,
           "interruption_ms": None if t_up is None or t_down is None else round((t_down - t_up) / 1e6, 3)}
    print(json.dumps(out))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("run")
    p.add_argument("--bind", required=True)
    p.add_argument("--peer", required=True)
    p.add_argument("--port", type=int, default=5001)
    p.add_argument("--interval-ms", type=float, default=2.0)
    p.add_argument("--duration", type=float, default=0, help="seconds; 0 = until SIGTERM")
    p.add_argument("--log", required=True)
    p.add_argument("--pidfile")
    p = sub.add_parser("gap")
    p.add_argument("log")
    p.add_argument("--since", type=int, required=True)
    p.add_argument("--until", type=int, default=0)
    p = sub.add_parser("sniff")
    p.add_argument("--iface", required=True)
    p.add_argument("--src", required=True)
    p.add_argument("--dport", type=int, default=4500)
    p.add_argument("--pidfile")
    p = sub.add_parser("resend")
    p.add_argument("--bind", required=True)
    p.add_argument("--to", required=True)
    p.add_argument("--pidfile")
    p.add_argument("--count-file")
    p = sub.add_parser("replay")
    p.add_argument("--pcap", required=True)
    p.add_argument("--bind", required=True)
    p.add_argument("--to", required=True)
    p.add_argument("--gap-ms", type=float, default=1.0)
    p = sub.add_parser("ike-count")
    p.add_argument("pcap")
    p.add_argument("--src", required=True)
    p.add_argument("--dst", required=True)
    p.add_argument("--since", type=int, default=0)
    p.add_argument("--until", type=int, default=0)
    p = sub.add_parser("ike-init")
    p.add_argument("pcap")
    p.add_argument("--since", type=int, default=0)
    p = sub.add_parser("sync")
    p.add_argument("pcap")
    p.add_argument("--until", type=int, required=True)
    p.add_argument("--timeout", type=float, default=10)
    p = sub.add_parser("wire")
    p.add_argument("pcap")
    p.add_argument("--public", required=True)
    p.add_argument("--gw", required=True)
    p.add_argument("--since", type=int, default=0)
    a = ap.parse_args()
    {"run": cmd_run, "gap": cmd_gap, "sniff": cmd_sniff, "resend": cmd_resend, "replay": cmd_replay,
     "ike-count": cmd_ike_count, "ike-init": cmd_ike_init, "sync": cmd_sync, "wire": cmd_wire}[a.cmd](a)


if __name__ == "__main__":
    main()
