# segw-demo's building blocks: the namespaces of a small access network,
# strongSwan femtocells, segw itself. Sourced by tools/segw-demo (bash, root).
#
#   fap1 ── home1 (NAT) ──┐
#   fap1 ╌╌ lte   (NAT) ──┤   "internet"                        core
#   fap2 ── home2 (NAT) ──┼── isp ────────── gw (segw) ───────── core host
#   ...                   │   router        acc      core        10.0.0.10
#   fapN ── homeN (NAT) ──┘  198.51.100.254  198.51.100.1  10.0.0.1
#
# Every home router hides its femtocell (192.168.1.10, the same private
# address in every home, as in real life) behind its own public address
# 203.0.113.(4i+2) and a UDP port from 40000-40999: the gateway sees each
# femtocell only as that public address:port. The isp namespace routes
# between the home routers and the gateway's access port. fap1 also has a
# second way out, a mobile network with its own carrier NAT (lte, public
# 203.0.113.250), used for the MOBIKE move.
#
# Everything this creates carries DEMO_PREFIX (namespaces) or lies under
# DEMO_DIR; demo_teardown removes it all and ends only the processes it
# started, by PID.

DEMO_PREFIX=${DEMO_PREFIX:-segw-demo}
DEMO_PSK=segw-demo-psk-do-not-deploy
DEMO_GW_ACCESS_IP=198.51.100.1
DEMO_ISP_GW_IP=198.51.100.254
DEMO_GW_CORE_IP=10.0.0.1
DEMO_CORE_IP=10.0.0.10
DEMO_CORE_NET=10.0.0.0/24
DEMO_POOL=10.64.0.0/24
DEMO_FAP_LAN_IP=192.168.1.10
DEMO_LTE_FAP_IP=100.64.0.10
DEMO_LTE_PUBLIC_IP=203.0.113.250
DEMO_API=http://127.0.0.1:8443
DEMO_PIDS=()            # every background process the demo started
DEMO_CHARON_PIDS=()     # charon of fap i at index i

demo_ns() { echo "$DEMO_PREFIX-$1"; }
in_ns() { local ns; ns=$(demo_ns "$1"); shift; ip netns exec "$ns" "$@"; }
demo_public_ip() { echo "203.0.113.$((4 * $1 + 2))"; }   # home router i's public address
demo_isp_ip() { echo "203.0.113.$((4 * $1 + 1))"; }      # the isp's end of home link i
demo_mac() { ip -n "$(demo_ns "$1")" -o link show "$2" | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p'; }

demo_ns_create() {  # NAME
  local ns; ns=$(demo_ns "$1")
  ip netns del "$ns" 2>/dev/null || true
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 \
    net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
}

demo_veth() {  # NS_A IF_A NS_B IF_B
  ip link add "$2" netns "$(demo_ns "$1")" type veth peer name "$4" netns "$(demo_ns "$3")"
  ip -n "$(demo_ns "$1")" link set "$2" up
  ip -n "$(demo_ns "$3")" link set "$4" up
}

# A residential NAT: source NAT of everything leaving "wan" to PUBLIC with
# UDP/TCP ports from PORTS. conntrack -F afterwards: the mappings are gone,
# as after a router reboot, and the next packet of every flow gets a new one.
demo_nat_program() {  # NS PUBLIC PORTS
  local ns; ns=$(demo_ns "$1")
  {
    echo "*nat"
    echo "-F POSTROUTING"
    echo "-A POSTROUTING -o wan -p udp -j SNAT --to-source $2:$3"
    echo "-A POSTROUTING -o wan -p tcp -j SNAT --to-source $2:$3"
    echo "-A POSTROUTING -o wan -j SNAT --to-source $2"
    echo "COMMIT"
  } | ip netns exec "$ns" iptables-restore --noflush
  ip netns exec "$ns" conntrack -F >/dev/null 2>&1 || true
}

# A router with a NAT between a LAN (lan, GW_IP/24) and the isp (wan on
# link NUMBER): demo_router NAME NUMBER LAN_GW_IP PUBLIC_IP.
demo_router() {
  local name=$1 link=$2 lan_gw=$3 public=$4
  demo_ns_create "$name"
  demo_veth "$name" wan isp "home$link"
  ip -n "$(demo_ns "$name")" addr add "$public/30" dev wan
  ip -n "$(demo_ns isp)" addr add "$(demo_isp_ip "$link")/30" dev "home$link"
  ip -n "$(demo_ns "$name")" route add default via "$(demo_isp_ip "$link")"
  in_ns "$name" sysctl -qw net.ipv4.ip_forward=1
  ip -n "$(demo_ns "$name")" link add lan type bridge
  ip -n "$(demo_ns "$name")" link set lan up
  ip -n "$(demo_ns "$name")" addr add "$lan_gw/24" dev lan
  demo_nat_program "$name" "$public" 40000-40999
}

# The whole topology for COUNT femtocells.
demo_topology() {  # COUNT
  local count=$1 i
  demo_ns_create isp
  demo_ns_create gw
  demo_ns_create core
  in_ns isp sysctl -qw net.ipv4.ip_forward=1
  demo_veth isp gw gw acc
  ip -n "$(demo_ns isp)" addr add "$DEMO_ISP_GW_IP/24" dev gw
  demo_veth gw core core eth0
  ip -n "$(demo_ns core)" addr add "$DEMO_CORE_IP/24" dev eth0
  ip -n "$(demo_ns core)" route add "$DEMO_POOL" via "$DEMO_GW_CORE_IP"
  for i in $(seq "$count"); do
    demo_router "home$i" "$i" 192.168.1.1 "$(demo_public_ip "$i")"
    demo_ns_create "fap$i"
    demo_veth "fap$i" eth0 "home$i" lan1
    ip -n "$(demo_ns "home$i")" link set lan1 master lan
    ip -n "$(demo_ns "fap$i")" addr add "$DEMO_FAP_LAN_IP/24" dev eth0
    ip -n "$(demo_ns "fap$i")" route add default via 192.168.1.1
  done
  # fap1's mobile uplink: a carrier NAT on isp link 62; the femtocell's
  # interface there stays without an address until it moves.
  demo_router lte 62 100.64.0.1 "$DEMO_LTE_PUBLIC_IP"
  demo_veth fap1 wwan0 lte lan1
  ip -n "$(demo_ns lte)" link set lan1 master lan
  # segw-dataplane takes the gateway's veths (net_af_packet): the kernel
  # there gives them up, and the neighbours know the gateway's MACs
  # statically (segw answers no ARP).
  in_ns gw sysctl -qw net.ipv4.ip_forward=0
  ip -n "$(demo_ns isp)" neigh replace "$DEMO_GW_ACCESS_IP" lladdr "$(demo_mac gw acc)" dev gw nud permanent
  ip -n "$(demo_ns core)" neigh replace "$DEMO_GW_CORE_IP" lladdr "$(demo_mac gw core)" dev eth0 nud permanent
  # The core host's kernel would leave UDP checksums to a NIC that a veth
  # does not have (segw encrypts what it gets): full checksums, please.
  in_ns core ethtool -K eth0 tx off >/dev/null 2>&1 || true
}

# segw-dataplane and segw-controlplane in the gw namespace. Returns once the
# control plane serves its API.
demo_segw_start() {  # BUILD DIR
  local build=$1 dir=$2 i
  echo "segw-demo-api-token-$RANDOM$RANDOM$RANDOM" > "$dir/api-token"
  chmod 600 "$dir/api-token"
  cat > "$dir/dataplane.conf" <<EOF
# segw-dataplane of the demo (configs/README.md documents every key).
[dataplane]
sa_capacity = 4096
stats_interval = 0

[channel]
name = $DEMO_PREFIX
directory = $dir
counters_refresh_ms = 200

[port access]
device = net_af_packet0,iface=acc,qpairs=1
next_hop_mac = $(demo_mac isp gw)
address = $DEMO_GW_ACCESS_IP

[port core]
device = net_af_packet1,iface=core,qpairs=1
next_hop_mac = $(demo_mac core eth0)
address = $DEMO_GW_CORE_IP
EOF
  cat > "$dir/controlplane.conf" <<EOF
# segw-controlplane of the demo (configs/controlplane.md documents every key).
[controlplane]
transport = dataplane
channel = $DEMO_PREFIX
channel_directory = $dir
dataplane_sa_index_bits = 12
api_token_file = api-token

[pool femtocells]
range = $DEMO_POOL

[secret femtocells]
id = %any
psk = $DEMO_PSK

[profile femtocells]
remote_id = *.femto.example
local_id = fqdn:segw.example
local_auth = psk
remote_auth = psk
pools = femtocells
local_subnets = $DEMO_CORE_NET
remap = verify
EOF
  ip netns exec "$(demo_ns gw)" "$build/dataplane/segw-dataplane" -c "$dir/dataplane.conf" -- \
    -l 0,1 --no-huge -m 512 --file-prefix "$DEMO_PREFIX" --log-level=error > "$dir/dataplane.log" 2>&1 &
  DEMO_PIDS+=($!)
  if ! "$build/controlplane/tools/segwctl-dp" --channel "$DEMO_PREFIX" --directory "$dir" \
      wait-ready --wait 30000 > /dev/null 2>&1; then
    echo "segw-demo: segw-dataplane did not come up:" >&2; tail -20 "$dir/dataplane.log" >&2; return 1
  fi
  ip netns exec "$(demo_ns gw)" "$build/controlplane/daemon/segw-controlplane" -c "$dir/controlplane.conf" \
    > "$dir/controlplane.log" 2>&1 &
  DEMO_PIDS+=($!)
  for i in $(seq 100); do
    in_ns gw curl -s -m 1 "$DEMO_API/v1/ready" > /dev/null 2>&1 && return 0
    kill -0 "${DEMO_PIDS[-1]}" 2>/dev/null || break
    sleep 0.1
  done
  echo "segw-demo: segw-controlplane did not start:" >&2; tail -20 "$dir/controlplane.log" >&2
  return 1
}

# strongSwan (charon with kernel-libipsec: this kernel has no ESP) as
# femtocell i, identity fap-i.femto.example, MOBIKE on or off.
DEMO_CHARON_PLUGINS="random nonce openssl pem pkcs1 pkcs8 x509 pubkey kdf aes sha1 sha2 hmac gcm gmp \
kernel-libipsec kernel-netlink socket-default vici"
demo_femtocell_start() {  # I MOBIKE(yes|no) DIR
  local i=$1 mobike=$2 dir=$3/fap$1 n
  mkdir -p "$dir"
  cat > "$dir/strongswan.conf" <<EOF
charon {
  load_modular = no
  load = $DEMO_CHARON_PLUGINS
  install_routes = yes
  retransmit_tries = 3
  retransmit_timeout = 1.0
  filelog {
    fap$i {
      path = $dir/charon.log
      time_format = %H:%M:%S
      default = 1
      ike = 2
    }
  }
  plugins {
    vici { socket = unix://$dir/charon.vici }
  }
}
charon-systemd { journal { default = -1 } }
swanctl { socket = unix://$dir/charon.vici }
EOF
  cat > "$dir/swanctl.conf" <<EOF
connections {
  segw {
    version = 2
    remote_addrs = $DEMO_GW_ACCESS_IP
    proposals = aes256gcm16-prfsha256-ecp256
    vips = 0.0.0.0
    mobike = $mobike
    dpd_delay = 10s
    local { auth = psk
            id = fap-$i.femto.example }
    remote { auth = psk
             id = segw.example }
    children {
      segw {
        remote_ts = $DEMO_CORE_NET
        esp_proposals = aes128gcm16
        dpd_action = restart
      }
    }
  }
}
secrets {
  ike-segw { id-gw = segw.example
             id-fap = fap-$i.femto.example
             secret = "$DEMO_PSK" }
}
EOF
  STRONGSWAN_CONF=$dir/strongswan.conf ip netns exec "$(demo_ns "fap$i")" /usr/sbin/charon-systemd \
    > "$dir/charon.stdout" 2>&1 &
  DEMO_CHARON_PIDS[$i]=$!
  DEMO_PIDS+=($!)
  for n in $(seq 100); do
    [ -S "$dir/charon.vici" ] && demo_swanctl "$i" --stats > /dev/null 2>&1 && break
    kill -0 "${DEMO_CHARON_PIDS[$i]}" 2>/dev/null || { tail -5 "$dir/charon.stdout" >&2; return 1; }
    sleep 0.1
  done
  demo_swanctl "$i" --load-all --noprompt > "$dir/load-all.out" 2>&1 || { cat "$dir/load-all.out" >&2; return 1; }
}

demo_swanctl() {  # I SWANCTL-ARGS...
  local dir=$DEMO_DIR/fap$1; shift
  STRONGSWAN_CONF=$dir/strongswan.conf SWANCTL_DIR=$dir swanctl "$@" --uri "unix://$dir/charon.vici"
}

# The inner address femtocell i got from the gateway (empty until then).
demo_femtocell_vip() {
  demo_swanctl "$1" --list-sas --noblock --raw 2>/dev/null |
    grep -o -E 'local-vips=\[[0-9.]+' | head -1 | sed 's/.*\[//'
}

# Ends everything the demo started (by PID) and removes its namespaces.
demo_teardown() {
  local pid ns
  for pid in "${DEMO_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${DEMO_PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  DEMO_PIDS=()
  # Whatever still runs inside the demo's namespaces is the demo's too
  # (started there by it): ended before the namespaces go, so that nothing
  # lives on in a namespace nobody can reach any more.
  local namespaces
  namespaces=$(ip netns list | awk '{print $1}' | grep -E "^$DEMO_PREFIX-(isp|gw|core|lte|home[0-9]+|fap[0-9]+)\$")
  for ns in $namespaces; do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
  done
  for ns in $namespaces; do
    ip netns del "$ns" 2>/dev/null || true
  done
}
