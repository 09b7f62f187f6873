# IKEv2 interop harness library: netns topology, private charon instances, test PKI.
#
# Sourced by the interop scripts (bash, root). Everything a run creates carries
# the run's prefix (namespaces) or lies under the run's directory (configs,
# sockets, logs, keys), so parallel runs do not collide; ikx_teardown undoes it
# all and kills only the processes this run started, by PID.
#
#   dev1 ──┐                 "internet"                  core side
#   dev2 ──┴─ nat ─────────────────────────── gw ───────────────────── core
#   192.168.1.0/24   198.51.100.0/24 (gw .1)     10.0.0.0/24, 2001:db8:c::/64
#   (lan bridge .1)  SNAT to 198.51.100.2:PORTS  pools 10.64.0.0/24, fd00:64::/120
#
# Knobs (set before sourcing or before calling the functions that read them):
#   IKX_PREFIX     namespace prefix (default ikx<pid>)
#   IKX_DIR        run directory (default: a fresh mktemp -d /tmp/ikx.XXXXXX; keep
#                  it short: vici socket paths must fit in 108 bytes)
#   IKX_KEEP       1: ikx_teardown leaves IKX_DIR (logs, configs) in place
#   IKX_NAT_PORTS  SNAT source port range for UDP/TCP, "" = plain MASQUERADE
#   IKX_WITH_DEV2  1: topo_create also builds dev2 behind the same NAT
#   IKX_MOBIKE     mobike setting of the initiator connections (default no)
#   IKX_RESPONDER  responder implementation: strongswan | segw (see below)
#   IKX_PSK        the pre-shared key both ends use
#   IKX_DPD_DELAY  dpd_delay of the initiator connections (default: unset, no line)
#   IKX_SEGW_REMAP segw profile's `remap =` (verify|follow|off; default: unset, no line)
#   IKX_SEGW_COUNTERS_REFRESH_MS  segw-dataplane [channel] counters_refresh_ms (default 100)
#   IKX_ATK_IP     the attacker's address on the "internet" (attacker_create; default 198.51.100.66)
#   IKX_NAT_PUBLIC_IP2  a second public address of the NAT (nat_set_public_ip; default 198.51.100.3)
#
# Responder plug-in contract (select with IKX_RESPONDER=<impl>):
#   responder_config_<impl> AUTH OUT   write the responder config for AUTH
#                                      (psk | rsa | ecdsa) to the path OUT
#   start_responder_<impl> CONF NS     start it in namespace NS on
#                                      IKX_GW_ACCESS_IP, return once it answers IKE
#   stop_responder_<impl>              stop it (kill by PID, idempotent)
#   responder_start AUTH / responder_stop dispatch to them.

[ -n "${IKX_LIB_LOADED:-}" ] && return 0
IKX_LIB_LOADED=1

# ---------------------------------------------------------------- addressing
IKX_PREFIX=${IKX_PREFIX:-ikx$$}
IKX_NS_DEV1=$IKX_PREFIX-dev1
IKX_NS_DEV2=$IKX_PREFIX-dev2
IKX_NS_NAT=$IKX_PREFIX-nat
IKX_NS_GW=$IKX_PREFIX-gw
IKX_NS_CORE=$IKX_PREFIX-core
IKX_NS_ATK=$IKX_PREFIX-atk        # only after attacker_create (remap tests)

IKX_LAN_GW=192.168.1.1            # nat, LAN side (bridge "lan")
IKX_DEV1_IP=192.168.1.10          # dev1 "eth0"
IKX_DEV2_IP=192.168.1.11          # dev2 "eth0"
IKX_NAT_PUBLIC_IP=198.51.100.2    # nat "wan": what the gateway sees
IKX_GW_ACCESS_IP=198.51.100.1     # gw "acc": IKE/ESP endpoint
IKX_NAT_PUBLIC_IP2=${IKX_NAT_PUBLIC_IP2:-198.51.100.3}  # nat "wan", second address (nat_set_public_ip)
IKX_ATK_IP=${IKX_ATK_IP:-198.51.100.66}                 # attacker on the "internet" (attacker_create)
IKX_GW_CORE_IP=10.0.0.1           # gw "core"
IKX_GW_CORE_IP6=2001:db8:c::1
IKX_CORE_IP=10.0.0.10             # core "eth0"
IKX_CORE_IP6=2001:db8:c::10
IKX_CORE_NET=10.0.0.0/24
IKX_CORE_NET6=2001:db8:c::/64
IKX_POOL4=10.64.0.0/24            # virtual IPs handed out by the responder
IKX_POOL6=fd00:64::/120

IKX_GW_ID=segw.example
IKX_DEV1_ID=dev1.fap.example
IKX_DEV2_ID=dev2.fap.example
IKX_NAT_PORTS=${IKX_NAT_PORTS-40000-40999}
IKX_MOBIKE=${IKX_MOBIKE:-no}
IKX_RESPONDER=${IKX_RESPONDER:-strongswan}
IKX_PSK=${IKX_PSK:-segw-interop-test-psk-0123456789}

# Proposal suites the initiator offers, by short name (one connection each).
declare -gA IKX_IKE_PROPOSAL=([gcm]=aes256gcm16-prfsha256-ecp256 [cbc]=aes128-sha256-modp2048)
declare -gA IKX_ESP_PROPOSAL=([gcm]=aes256gcm16 [cbc]=aes128-sha256)

# Charon instances this run started: NAME -> pid / namespace / directory.
declare -gA IKX_CHARON_PID=() IKX_CHARON_NS=() IKX_CHARON_DIR=() IKX_CHARON_CONFDIR=()
IKX_TOPO_UP=0

ikx_log() { printf '[ikx] %s\n' "$*"; }
ikx_die() { printf '[ikx] FATAL: %s\n' "$*" >&2; exit 1; }

# Creates IKX_DIR if the caller did not choose one. Idempotent.
ikx_init_dir() {
  if [ -z "${IKX_DIR:-}" ]; then
    IKX_DIR=$(mktemp -d /tmp/ikx.XXXXXX)
  fi
  mkdir -p "$IKX_DIR"
}

# ---------------------------------------------------------------- topology

# Runs a command inside a namespace of this run: ikx_ns NS CMD...
ikx_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# A veth pair between two namespaces: ikx_veth NS_A IF_A NS_B IF_B.
# Interface names only need to be unique inside their own namespace.
ikx_veth() {
  ip link add "$2" netns "$1" type veth peer name "$4" netns "$3"
  ip -n "$1" link set "$2" up
  ip -n "$3" link set "$4" up
}

ikx_ns_base() {  # NS: create, loopback up, no surprises from sysctl defaults
  ip netns add "$1"
  ip -n "$1" link set lo up
  ikx_ns "$1" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
}

# Adds a device namespace behind the NAT: ikx_add_device NS IP PORTNAME.
ikx_add_device() {
  local ns=$1 ip=$2 port=$3
  ikx_ns_base "$ns"
  ikx_veth "$ns" eth0 "$IKX_NS_NAT" "$port"
  ip -n "$IKX_NS_NAT" link set "$port" master lan
  ip -n "$ns" addr add "$ip/24" dev eth0
  ip -n "$ns" route add default via "$IKX_LAN_GW"
}

# Builds dev1 (and dev2 if IKX_WITH_DEV2=1), nat, gw, core. Call ikx_trap first
# so a failure half-way is still torn down.
topo_create() {
  ikx_init_dir
  IKX_TOPO_UP=1
  local ns
  for ns in "$IKX_NS_NAT" "$IKX_NS_GW" "$IKX_NS_CORE"; do ikx_ns_base "$ns"; done

  # nat: LAN bridge, WAN towards the gateway, source NAT out of "wan".
  ip -n "$IKX_NS_NAT" link add lan type bridge
  ip -n "$IKX_NS_NAT" link set lan up
  ip -n "$IKX_NS_NAT" addr add "$IKX_LAN_GW/24" dev lan
  ikx_veth "$IKX_NS_NAT" wan "$IKX_NS_GW" acc
  ip -n "$IKX_NS_NAT" addr add "$IKX_NAT_PUBLIC_IP/24" dev wan
  ikx_ns "$IKX_NS_NAT" sysctl -qw net.ipv4.ip_forward=1
  nat_set_ports "$IKX_NAT_PORTS"
  # Counters only (no target): IKE/ESP in UDP 4500 crossing the NAT.
  ikx_ns "$IKX_NS_NAT" iptables -A FORWARD -i lan -o wan -p udp --dport 4500
  ikx_ns "$IKX_NS_NAT" iptables -A FORWARD -i wan -o lan -p udp --sport 4500

  ikx_add_device "$IKX_NS_DEV1" "$IKX_DEV1_IP" lan1
  if [ "${IKX_WITH_DEV2:-0}" = 1 ]; then
    ikx_add_device "$IKX_NS_DEV2" "$IKX_DEV2_IP" lan2
  fi

  # gw: access side on the "internet", core side towards the core host.
  ip -n "$IKX_NS_GW" addr add "$IKX_GW_ACCESS_IP/24" dev acc
  ikx_veth "$IKX_NS_GW" core "$IKX_NS_CORE" eth0
  ip -n "$IKX_NS_GW" addr add "$IKX_GW_CORE_IP/24" dev core
  ip -n "$IKX_NS_GW" addr add "$IKX_GW_CORE_IP6/64" dev core nodad
  ikx_ns "$IKX_NS_GW" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1

  # core: knows the pools live behind the gateway (replies go back to gw).
  ip -n "$IKX_NS_CORE" addr add "$IKX_CORE_IP/24" dev eth0
  ip -n "$IKX_NS_CORE" addr add "$IKX_CORE_IP6/64" dev eth0 nodad
  ip -n "$IKX_NS_CORE" route add "$IKX_POOL4" via "$IKX_GW_CORE_IP"
  ip -n "$IKX_NS_CORE" -6 route add "$IKX_POOL6" via "$IKX_GW_CORE_IP6"
  ikx_log "topology up: prefix $IKX_PREFIX, dir $IKX_DIR"
}

# (Re)programs the NAT's source translation: nat_set_ports "40000-40999" maps
# UDP/TCP to that port range, "" keeps source ports (plain MASQUERADE). Flushes
# conntrack so the next packet of an existing flow takes a new mapping: that is
# how a NAT-remap test changes the device's public port under a live IKE SA.
nat_set_ports() {
  local ports=$1 proto
  ikx_ns "$IKX_NS_NAT" iptables -t nat -F POSTROUTING
  # The attacker's packets cross the NAT untranslated (attacker_create only).
  if [ "${IKX_ATK_UP:-0}" = 1 ]; then
    ikx_ns "$IKX_NS_NAT" iptables -t nat -A POSTROUTING -s "$IKX_ATK_IP" -j ACCEPT
  fi
  if [ -n "$ports" ]; then
    for proto in udp tcp; do
      ikx_ns "$IKX_NS_NAT" iptables -t nat -A POSTROUTING -o wan -p "$proto" \
        -j SNAT --to-source "$IKX_NAT_PUBLIC_IP:$ports"
    done
  fi
  ikx_ns "$IKX_NS_NAT" iptables -t nat -A POSTROUTING -o wan -j MASQUERADE
  IKX_NAT_PORTS=$ports
  nat_flush_conntrack
}

# nat_set_ports's effect in one iptables-restore transaction: RANGE ("" =
# keep ports), then conntrack -F. For remaps under live traffic: with
# iptables-nft, nat_set_ports's "-F POSTROUTING" then "-A ..." lets packets of
# existing flows leave untranslated (the private source address) for the few
# milliseconds in between; here the chain is never seen empty.
nat_set_ports_atomic() {
  local ports=$1 proto
  {
    echo "*nat"
    echo "-F POSTROUTING"
    [ "${IKX_ATK_UP:-0}" = 1 ] && echo "-A POSTROUTING -s $IKX_ATK_IP -j ACCEPT"
    if [ -n "$ports" ]; then
      for proto in udp tcp; do
        echo "-A POSTROUTING -o wan -p $proto -j SNAT --to-source $IKX_NAT_PUBLIC_IP:$ports"
      done
    fi
    echo "-A POSTROUTING -o wan -j MASQUERADE"
    echo "COMMIT"
  } | ikx_ns "$IKX_NS_NAT" iptables-restore --noflush
  IKX_NAT_PORTS=$ports
  nat_flush_conntrack
}

# Forgets every NAT mapping (conntrack -F in nat).
nat_flush_conntrack() { ikx_ns "$IKX_NS_NAT" conntrack -F >/dev/null 2>&1 || true; }

# Current NAT mappings, one conntrack line each (for logs and remap tests).
nat_show_conntrack() { ikx_ns "$IKX_NS_NAT" conntrack -L -p udp 2>/dev/null || true; }

# Packet count of UDP 4500 crossing the NAT: nat_count_4500 out|in.
nat_count_4500() {
  local line=3; [ "$1" = in ] && line=4
  ikx_ns "$IKX_NS_NAT" iptables -L FORWARD -v -x -n | awk -v l="$line" 'NR==l {print $1}'
}

# Moves the NAT to another public address: nat_set_public_ip IP (e.g.
# $IKX_NAT_PUBLIC_IP2). Adds IP to "wan" if it is not there, SNATs to it from
# now on (same port range) and flushes conntrack: the device's next packet
# leaves from IP. The gateway reaches IP through the NAT's wan MAC as before.
nat_set_public_ip() {
  local ip=$1
  ip -n "$IKX_NS_NAT" -4 addr show dev wan | grep -q "inet $ip/" ||
    ip -n "$IKX_NS_NAT" addr add "$ip/24" dev wan
  IKX_NAT_PUBLIC_IP=$ip
  nat_set_ports_atomic "$IKX_NAT_PORTS"
}

# An attacker on the "internet": namespace $IKX_NS_ATK with IKX_ATK_IP/32 on
# its eth0, a veth to the nat namespace ("atk" there, proxy ARP on). The nat
# routes IKX_ATK_IP to it and forwards its packets to the gateway without
# translation, so the gateway sees them from IKX_ATK_IP and answers there
# (segw-dataplane sends everything on the access side to the NAT's wan MAC).
attacker_create() {
  [ "${IKX_ATK_UP:-0}" = 1 ] && return 0
  ikx_ns_base "$IKX_NS_ATK"
  ikx_veth "$IKX_NS_ATK" eth0 "$IKX_NS_NAT" atk
  ip -n "$IKX_NS_ATK" addr add "$IKX_ATK_IP/32" dev eth0
  ip -n "$IKX_NS_ATK" route add 198.51.100.0/24 dev eth0
  ikx_ns "$IKX_NS_NAT" sysctl -qw net.ipv4.conf.atk.proxy_arp=1
  ip -n "$IKX_NS_NAT" route add "$IKX_ATK_IP/32" dev atk
  IKX_ATK_UP=1
  # Re-program the NAT so the attacker is exempt from SNAT (flushes conntrack).
  nat_set_ports "$IKX_NAT_PORTS"
}

# Removes the namespaces (their veths and TUN devices go with them).
topo_destroy() {
  local ns
  for ns in "$IKX_NS_DEV1" "$IKX_NS_DEV2" "$IKX_NS_NAT" "$IKX_NS_GW" "$IKX_NS_CORE" "$IKX_NS_ATK"; do
    ip netns del "$ns" 2>/dev/null || true
  done
  IKX_TOPO_UP=0
  IKX_ATK_UP=0
}

# Stops every charon of this run, removes the topology, then IKX_DIR unless
# IKX_KEEP=1. Safe to call more than once, and from a trap.
ikx_teardown() {
  local name
  for name in "${!IKX_CHARON_PID[@]}"; do stop_charon "$name"; done
  if declare -F "stop_responder_$IKX_RESPONDER" >/dev/null; then
    "stop_responder_$IKX_RESPONDER" || true
  fi
  topo_destroy
  if [ -n "${IKX_DIR:-}" ] && [ -d "$IKX_DIR" ]; then
    if [ "${IKX_KEEP:-0}" = 1 ]; then
      ikx_log "kept $IKX_DIR"
    else
      rm -rf "$IKX_DIR"
    fi
  fi
}

# Installs the teardown on EXIT, and turns INT/TERM into an exit (so EXIT runs).
ikx_trap() {
  trap 'ikx_teardown' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

# ---------------------------------------------------------------- PKI

# One certificate: ikx_cert_issue NAME KEYTYPE(rsa|ecdsa) CN EKU.
# Writes $IKX_DIR/pki/NAME.key (PKCS#8 PEM) and NAME.crt, signed by the test CA,
# with subjectAltName DNS:CN (strongSwan matches FQDN identities against it).
ikx_cert_issue() {
  local name=$1 type=$2 cn=$3 eku=$4 d=$IKX_DIR/pki
  ikx_genkey "$type" "$d/$name.key"
  cat > "$d/$name.ext" <<EOF
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = $eku
subjectAltName = DNS:$cn
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
  openssl req -new -key "$d/$name.key" -subj "/O=segw test/CN=$cn" -out "$d/$name.csr" 2>/dev/null
  openssl x509 -req -in "$d/$name.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" \
    -CAcreateserial -days 3650 -sha256 -extfile "$d/$name.ext" -out "$d/$name.crt" 2>/dev/null
  rm -f "$d/$name.csr" "$d/$name.ext"
}

ikx_genkey() {  # TYPE FILE
  case $1 in
    rsa)   openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$2" 2>/dev/null ;;
    ecdsa) openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$2" 2>/dev/null ;;
    *) ikx_die "unknown key type $1" ;;
  esac
}

# The test PKI under $IKX_DIR/pki: ca.{key,crt} (RSA), gw-rsa / gw-ecdsa
# (segw.example, serverAuth + ikeIntermediate), dev1-rsa / dev1-ecdsa and
# dev2-rsa / dev2-ecdsa (devN.fap.example, clientAuth). Idempotent.
certs_generate() {
  ikx_init_dir
  local d=$IKX_DIR/pki
  [ -f "$d/ca.crt" ] && return 0
  mkdir -p "$d"
  ikx_genkey rsa "$d/ca.key"
  openssl req -x509 -new -key "$d/ca.key" -subj "/O=segw test/CN=segw test CA" -days 3650 -sha256 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$d/ca.crt" 2>/dev/null
  local t
  for t in rsa ecdsa; do
    ikx_cert_issue "gw-$t" "$t" "$IKX_GW_ID" "serverAuth, 1.3.6.1.5.5.7.3.17"
    ikx_cert_issue "dev1-$t" "$t" "$IKX_DEV1_ID" "clientAuth"
    ikx_cert_issue "dev2-$t" "$t" "$IKX_DEV2_ID" "clientAuth"
  done
  ikx_log "test PKI in $d"
}

# ---------------------------------------------------------------- charon

IKX_CHARON_BIN=${IKX_CHARON_BIN:-/usr/sbin/charon-systemd}
# Plugins of each private charon. kernel-libipsec comes BEFORE kernel-netlink:
# both offer the kernel IPsec interface and the first registered wins; this
# kernel has no ESP (CONFIG_INET_ESP unset), so ESP runs in charon over a TUN
# device (ipsec0) and kernel-netlink only does addresses, routes and the IKE
# socket bypass policies.
IKX_CHARON_PLUGINS="random nonce openssl pem pkcs1 pkcs8 x509 pubkey revocation constraints \
kdf aes sha1 sha2 hmac gcm gmp kernel-libipsec kernel-netlink socket-default vici"

# Per-instance strongswan.conf: ikx_charon_conf NAME DIR.
ikx_charon_conf() {
  local name=$1 dir=$2
  cat > "$dir/strongswan.conf" <<EOF
# private strongswan.conf of interop instance '$name' (run $IKX_PREFIX)
charon {
  load_modular = no
  load = $IKX_CHARON_PLUGINS
  # Addresses are per namespace anyway; say it so nothing is shared.
  port = 500
  port_nat_t = 4500
  install_routes = yes
  retransmit_tries = 3
  retransmit_timeout = 1.0
  filelog {
    $name {
      path = $dir/charon.log
      time_format = %H:%M:%S
      ike_name = yes
      append = no
      default = 1
      ike = 2
      cfg = 2
      knl = 2
      esp = 2
    }
  }
  plugins {
    vici {
      socket = unix://$dir/charon.vici
    }
    kernel-libipsec {
      allow_peer_ts = no
    }
  }
}
# charon-systemd reads charon-systemd.* with fallback to charon.*; there is no
# journald here, keep it quiet.
charon-systemd {
  journal {
    default = -1
  }
}
swanctl {
  load = random nonce openssl pem pkcs1 pkcs8 x509
  socket = unix://$dir/charon.vici
}
EOF
}

# start_charon NS NAME CONFDIR
#   Starts a private charon in namespace NS, named NAME (unique in this run),
#   with credentials and swanctl.conf taken from CONFDIR (swanctl layout:
#   swanctl.conf, x509/, x509ca/, private/). Its files (strongswan.conf, vici
#   socket, log) lie in $IKX_DIR/charon/NAME. Returns once swanctl --load-all
#   succeeded; fails (and stops it) otherwise.
start_charon() {
  local ns=$1 name=$2 confdir=$3 dir=$IKX_DIR/charon/$2 i
  [ -n "${IKX_CHARON_PID[$name]:-}" ] && ikx_die "charon '$name' already running"
  mkdir -p "$dir"
  rm -f "$dir/charon.vici"
  ikx_charon_conf "$name" "$dir"
  STRONGSWAN_CONF=$dir/strongswan.conf ip netns exec "$ns" "$IKX_CHARON_BIN" \
    > "$dir/charon.stdout" 2>&1 &
  # ip netns exec execs the binary (no fork), so $! is charon itself.
  IKX_CHARON_PID[$name]=$!
  IKX_CHARON_NS[$name]=$ns
  IKX_CHARON_DIR[$name]=$dir
  IKX_CHARON_CONFDIR[$name]=$confdir
  for i in $(seq 100); do
    if ! kill -0 "${IKX_CHARON_PID[$name]}" 2>/dev/null; then
      ikx_log "charon '$name' died at start-up:"; tail -20 "$dir/charon.stdout" "$dir/charon.log" 2>/dev/null
      unset "IKX_CHARON_PID[$name]"; return 1
    fi
    [ -S "$dir/charon.vici" ] && swanctl "$name" --stats >/dev/null 2>&1 && break
    sleep 0.1
  done
  if ! swanctl "$name" --load-all --noprompt > "$dir/load-all.out" 2>&1; then
    ikx_log "charon '$name': swanctl --load-all failed:"; cat "$dir/load-all.out"
    stop_charon "$name"; return 1
  fi
  ikx_log "charon '$name' up in $ns (pid ${IKX_CHARON_PID[$name]})"
}

# stop_charon NAME: SIGTERM, then SIGKILL after 5 s; only the PID we started.
stop_charon() {
  local name=$1 pid=${IKX_CHARON_PID[$1]:-} i
  [ -z "$pid" ] && return 0
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  unset "IKX_CHARON_PID[$name]"
}

# swanctl NAME ARGS... talks to this run's charon NAME (its vici socket, its
# strongswan.conf, SWANCTL_DIR = its CONFDIR). With a first argument starting
# with '-' it is the plain swanctl binary.
swanctl() {
  case ${1:-} in -*|'') command swanctl "$@"; return ;; esac
  local name=$1; shift
  local cmd=$1; shift
  local dir=$IKX_DIR/charon/$name
  STRONGSWAN_CONF=$dir/strongswan.conf SWANCTL_DIR=${IKX_CHARON_CONFDIR[$name]:-$dir} \
    command swanctl "$cmd" --uri "unix://$dir/charon.vici" "$@"
}

# The raw vici list-sas answer of charon NAME (one line per IKE SA), optional
# filter args (--ike X, --child Y).
sa_raw() { local name=$1; shift; swanctl "$name" --list-sas --noblock --raw "$@" 2>/dev/null || true; }

# First value of KEY in a raw vici dump: sa_field KEY < raw. Lists print as
# "[a b]"; the value is returned without brackets.
sa_field() {
  local v
  v=$(grep -o -E "(^|[ {])$1=(\[[^]]*\]|[^ }]*)" || true)
  v=${v%%$'\n'*}
  sed -E "s/^[ {]?$1=//; s/^\[//; s/\]$//" <<<"$v" | grep . || true
}

# wait_for_sa NAME CHILD TIMEOUT: until charon NAME has a CHILD_SA named CHILD
# in state INSTALLED (0), or TIMEOUT seconds passed (1).
wait_for_sa() {
  local name=$1 child=$2 timeout=$3 deadline
  deadline=$(( $(date +%s) + timeout ))
  while [ "$(date +%s)" -le "$deadline" ]; do
    if sa_raw "$name" --child "$child" | grep -q -E "name=$child uniqueid=[0-9]+ reqid=[0-9]+ state=INSTALLED"; then
      return 0
    fi
    sleep 0.2
  done
  return 1
}

# Last lines of charon NAME's log (for failure reports).
charon_log_tail() { tail -n "${2:-40}" "$IKX_DIR/charon/$1/charon.log" 2>/dev/null || true; }

# ---------------------------------------------------------------- swanctl configs

# Credential directory for a device: ikx_device_confdir DEV(dev1|dev2) ID OUTDIR.
# Holds the CA, the device's RSA and ECDSA certs and keys, and swanctl.conf with
# one connection per AUTH x SUITE: psk-gcm psk-cbc rsa-gcm rsa-cbc ecdsa-gcm
# ecdsa-cbc (child SA of the same name). Standard proposals only.
ikx_device_confdir() {
  local dev=$1 id=$2 out=$3 p=$IKX_DIR/pki auth suite t
  mkdir -p "$out/x509" "$out/x509ca" "$out/private"
  cp "$p/ca.crt" "$out/x509ca/"
  for t in rsa ecdsa; do
    cp "$p/$dev-$t.crt" "$out/x509/"; cp "$p/$dev-$t.key" "$out/private/"
  done
  {
    echo "# initiator '$dev' ($id) -> responder $IKX_GW_ID at $IKX_GW_ACCESS_IP"
    echo "connections {"
    for auth in psk rsa ecdsa; do
      for suite in gcm cbc; do
        ikx_initiator_conn "$auth-$suite" "$auth" "$suite" "$dev" "$id"
      done
    done
    echo "}"
    cat <<EOF
secrets {
  ike-gw {
    id-gw = $IKX_GW_ID
    id-dev = $id
    secret = "$IKX_PSK"
  }
}
EOF
  } > "$out/swanctl.conf"
}

# One initiator connection: NAME AUTH(psk|rsa|ecdsa) SUITE(gcm|cbc) DEV ID.
ikx_initiator_conn() {
  local name=$1 auth=$2 suite=$3 dev=$4 id=$5 local_auth certs=
  if [ "$auth" = psk ]; then local_auth=psk; else local_auth=pubkey; certs="certs = $dev-$auth.crt"; fi
  cat <<EOF
  $name {
    version = 2
    remote_addrs = $IKX_GW_ACCESS_IP
    proposals = ${IKX_IKE_PROPOSAL[$suite]}
    vips = 0.0.0.0, ::
    mobike = $IKX_MOBIKE
    encap = no${IKX_DPD_DELAY:+
    dpd_delay = $IKX_DPD_DELAY}
    local {
      auth = $local_auth
      id = $id
      $certs
    }
    remote {
      auth = $local_auth
      id = $IKX_GW_ID
    }
    children {
      $name {
        remote_ts = $IKX_CORE_NET, $IKX_CORE_NET6
        esp_proposals = ${IKX_ESP_PROPOSAL[$suite]}
        mode = tunnel
      }
    }
  }
EOF
}

# ---------------------------------------------------------------- responders

# Dispatch: responder_start AUTH, responder_stop. IKX_RESPONDER picks the
# implementation; the config goes to $IKX_DIR/responder/<impl>-<AUTH>.conf.
responder_start() {
  local auth=$1 conf
  mkdir -p "$IKX_DIR/responder"
  conf=$IKX_DIR/responder/$IKX_RESPONDER-$auth.conf
  "responder_config_$IKX_RESPONDER" "$auth" "$conf"
  "start_responder_$IKX_RESPONDER" "$conf" "$IKX_NS_GW"
}
responder_stop() { "stop_responder_$IKX_RESPONDER"; }
# True when the responder is a charon we can query with swanctl (name "gw").
responder_is_strongswan() { [ "$IKX_RESPONDER" = strongswan ]; }

# --- strongSwan as responder (the reference; also needs kernel-libipsec) ---

# responder_config_strongswan AUTH OUT: a swanctl.conf accepting both suites,
# any device ID of the test PKI / PSK, handing out IKX_POOL4 and IKX_POOL6,
# local_ts = the core networks. Credentials are copied next to it
# ($OUT.d/, the swanctl directory start_responder_strongswan uses).
responder_config_strongswan() {
  local auth=$1 out=$2 d=$2.d p=$IKX_DIR/pki local_auth certs=
  mkdir -p "$d/x509" "$d/x509ca" "$d/private"
  cp "$p/ca.crt" "$d/x509ca/"
  if [ "$auth" = psk ]; then
    local_auth=psk
  else
    local_auth=pubkey; certs="certs = gw-$auth.crt"
    cp "$p/gw-$auth.crt" "$d/x509/"; cp "$p/gw-$auth.key" "$d/private/"
  fi
  cat > "$out" <<EOF
# strongSwan responder '$IKX_GW_ID' on $IKX_GW_ACCESS_IP, auth $auth
connections {
  segw {
    version = 2
    local_addrs = $IKX_GW_ACCESS_IP
    proposals = ${IKX_IKE_PROPOSAL[gcm]}, ${IKX_IKE_PROPOSAL[cbc]}
    pools = pool4, pool6
    mobike = $IKX_MOBIKE
    local {
      auth = $local_auth
      id = $IKX_GW_ID
      $certs
    }
    remote {
      auth = $local_auth
      id = %any
    }
    children {
      segw {
        local_ts = $IKX_CORE_NET, $IKX_CORE_NET6
        esp_proposals = ${IKX_ESP_PROPOSAL[gcm]}, ${IKX_ESP_PROPOSAL[cbc]}
        mode = tunnel
      }
    }
  }
}
pools {
  pool4 { addrs = $IKX_POOL4 }
  pool6 { addrs = $IKX_POOL6 }
}
secrets {
  ike-dev1 {
    id-gw = $IKX_GW_ID
    id-dev = $IKX_DEV1_ID
    secret = "$IKX_PSK"
  }
  ike-dev2 {
    id-gw = $IKX_GW_ID
    id-dev = $IKX_DEV2_ID
    secret = "$IKX_PSK"
  }
}
EOF
  cp "$out" "$d/swanctl.conf"
}

# start_responder_strongswan CONF NS: charon "gw" in NS with CONF's directory.
start_responder_strongswan() { start_charon "$2" gw "$1.d"; }
stop_responder_strongswan() { stop_charon gw; }

# --- segw as responder (placeholder until the daemon exists) ---
#
# responder_config_segw AUTH OUT
#   Write segw's config for AUTH (psk | rsa | ecdsa) to OUT. Inputs it must use:
#     identity IKX_GW_ID (segw.example) on IKX_GW_ACCESS_IP, ports 500/4500
#     psk:   IKX_PSK for peers IKX_DEV1_ID / IKX_DEV2_ID
#     rsa:   $IKX_DIR/pki/gw-rsa.{crt,key}, trust $IKX_DIR/pki/ca.crt
#     ecdsa: $IKX_DIR/pki/gw-ecdsa.{crt,key}, trust $IKX_DIR/pki/ca.crt
#     proposals: IKE ${IKX_IKE_PROPOSAL[*]}, ESP ${IKX_ESP_PROPOSAL[*]}
#     pools IKX_POOL4 / IKX_POOL6, local_ts IKX_CORE_NET / IKX_CORE_NET6
# start_responder_segw CONF NS
#   Start segw (control plane + data plane) in namespace NS (the gw: interfaces
#   "acc" = IKX_GW_ACCESS_IP/24 and "core" = IKX_GW_CORE_IP/24 and
#   IKX_GW_CORE_IP6/64) with config file CONF; record its PID(s) so
#   stop_responder_segw kills exactly those; return once it listens on UDP 500.
#   The core host routes IKX_POOL4 / IKX_POOL6 to IKX_GW_CORE_IP(6).
IKX_SEGW_PIDS=()   # what start_responder_segw started; stop_responder_segw kills these
IKX_SEGW_BUILD=${IKX_SEGW_BUILD:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)/build}
responder_config_segw() {
  local auth=$1 out=$2 p=$IKX_DIR/pki auth_lines
  if [ "$auth" = psk ]; then
    auth_lines="local_auth = psk
remote_auth = psk"
  else
    auth_lines="local_auth = pubkey
remote_auth = pubkey
certificate_file = $p/gw-$auth.crt
private_key_file = $p/gw-$auth.key
ca_files = $p/ca.crt"
  fi
  cat > "$out" <<EOF
# segw-controlplane for the interop run ($auth), through segw-dataplane's rings.
[controlplane]
transport = dataplane
channel = $IKX_PREFIX-segw
channel_directory = $IKX_DIR/segw
dataplane_sa_index_bits = 12
retransmit_timeout_ms = 500
retransmit_tries = ${IKX_SEGW_TRIES:-5}

[pool v4]
range = $IKX_POOL4

[pool v6]
range = $IKX_POOL6
lease_prefix_length = 128

[secret devices]
id = %any
psk = "$IKX_PSK"

[profile fap]
remote_id = *.fap.example
local_id = fqdn:$IKX_GW_ID
$auth_lines
ike_proposals = ${IKX_IKE_PROPOSAL[gcm]}, ${IKX_IKE_PROPOSAL[cbc]}
esp_proposals = ${IKX_ESP_PROPOSAL[gcm]}-esn-noesn, ${IKX_ESP_PROPOSAL[cbc]}-esn-noesn
pools = v4, v6
local_subnets = $IKX_CORE_NET, $IKX_CORE_NET6
dpd_interval_s = ${IKX_SEGW_DPD:-30}
dpd_timeout_s = ${IKX_SEGW_DPD_TIMEOUT:-150}
child_lifetime_packets = ${IKX_SEGW_CHILD_PACKETS:-0}${IKX_SEGW_REMAP:+
remap = $IKX_SEGW_REMAP}
EOF
}

# The data plane takes the gw namespace's two veths over (net_af_packet): the
# kernel there gives up their addresses, and the neighbours learn the
# gateway's MACs statically (segw-dataplane answers no ARP/ND).
ikx_mac() { ip -n "$1" -o link show "$2" | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p'; }
segw_take_over_gw() {
  local ns=$1 acc_mac core_mac
  [ "${IKX_SEGW_TAKEN:-0}" = 1 ] && return 0
  ip -n "$ns" addr flush dev acc
  ip -n "$ns" addr flush dev core
  ikx_ns "$ns" sysctl -qw net.ipv6.conf.acc.disable_ipv6=1 net.ipv6.conf.core.disable_ipv6=1
  ikx_ns "$ns" sysctl -qw net.ipv4.ip_forward=0
  acc_mac=$(ikx_mac "$ns" acc); core_mac=$(ikx_mac "$ns" core)
  ip -n "$IKX_NS_NAT" neigh replace "$IKX_GW_ACCESS_IP" lladdr "$acc_mac" dev wan nud permanent
  ip -n "$IKX_NS_CORE" neigh replace "$IKX_GW_CORE_IP" lladdr "$core_mac" dev eth0 nud permanent
  ip -n "$IKX_NS_CORE" -6 neigh replace "$IKX_GW_CORE_IP6" lladdr "$core_mac" dev eth0 nud permanent
  IKX_SEGW_TAKEN=1
}

start_responder_segw() {
  local conf=$1 ns=$2 dpconf=${1%.conf}-dataplane.conf dir=$IKX_DIR/segw i
  mkdir -p "$dir"
  segw_take_over_gw "$ns"
  cat > "$dpconf" <<EOF
[dataplane]
sa_capacity = 4096

[channel]
name = $IKX_PREFIX-segw
directory = $dir
counters_refresh_ms = ${IKX_SEGW_COUNTERS_REFRESH_MS:-100}

[port access]
device = net_af_packet0,iface=acc,qpairs=1
next_hop_mac = $(ikx_mac "$IKX_NS_NAT" wan)
address = $IKX_GW_ACCESS_IP

[port core]
device = net_af_packet1,iface=core,qpairs=1
next_hop_mac = $(ikx_mac "$IKX_NS_CORE" eth0)
address = $IKX_GW_CORE_IP, $IKX_GW_CORE_IP6
EOF
  # ip netns exec execs the data plane: $! is its PID (a shell function in
  # the background would leave a subshell's PID and an unkillable child).
  # One log pair per start (dataplane.N.log, controlplane.N.log); the
  # unnumbered names point at the latest.
  IKX_SEGW_RUN=$(( ${IKX_SEGW_RUN:-0} + 1 ))
  ln -sfn "dataplane.$IKX_SEGW_RUN.log" "$dir/dataplane.log"
  ln -sfn "controlplane.$IKX_SEGW_RUN.log" "$dir/controlplane.log"
  ip netns exec "$ns" "$IKX_SEGW_BUILD/dataplane/segw-dataplane" -c "$dpconf" -- -l 0,1 --no-huge -m 512 \
    --file-prefix "$IKX_PREFIX-dp" --no-telemetry --log-level=error > "$dir/dataplane.$IKX_SEGW_RUN.log" 2>&1 &
  IKX_SEGW_PIDS+=($!)
  if ! "$IKX_SEGW_BUILD/controlplane/tools/segwctl-dp" --channel "$IKX_PREFIX-segw" --directory "$dir" \
      wait-ready --wait 30000 > /dev/null 2>&1; then
    echo "[ikx] segw-dataplane did not come up:" >&2; tail -20 "$dir/dataplane.log" >&2; return 1
  fi
  "$IKX_SEGW_BUILD/controlplane/daemon/segw-controlplane" -c "$conf" > "$dir/controlplane.$IKX_SEGW_RUN.log" 2>&1 &
  IKX_SEGW_PIDS+=($!)
  for i in $(seq 100); do
    grep -q "running" "$dir/controlplane.log" 2>/dev/null && return 0
    kill -0 "${IKX_SEGW_PIDS[-1]}" 2>/dev/null || break
    sleep 0.1
  done
  echo "[ikx] segw-controlplane did not start:" >&2; tail -20 "$dir/controlplane.log" >&2
  return 1
}
stop_responder_segw() {
  local pid
  for pid in "${IKX_SEGW_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${IKX_SEGW_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  IKX_SEGW_PIDS=()
}
