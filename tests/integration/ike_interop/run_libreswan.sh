#!/usr/bin/env bash
# Interop test with libreswan as the IKEv2 initiator: pluto runs in a
# User-Mode-Linux guest ("dev3", 192.168.1.20 on the NAT's LAN bridge, through
# a tap device in the nat namespace), because libreswan needs kernel ESP (XFRM)
# and this host kernel has none; the UML kernel has it as modules. The
# responder is the one IKX_RESPONDER names (strongswan: the reference, or segw).
# One guest boot per scenario. Each scenario checks: pluto up, IKE SA + Child SA
# established, the negotiated IKE and ESP algorithms, the gateway's
# authentication method, a virtual IPv4 from the pool (libreswan modecfg
# client), NAT detected and ESP in UDP 4500 (kernel SA in the guest) through
# the NAT mapping, pings both ways through the tunnel with the kernel SA
# counters and the NAT's UDP 4500 counters moving, and a clean delete (with
# segw: its data plane is left without SA). Exit 0 only when every check passed.
#
# Usage (root): bash tests/integration/ike_interop/run_libreswan.sh
#   IKX_RESPONDER=segw             segw as the responder (default strongswan)
#   IKX_LS_SCENARIOS="psk-gcm"     AUTH-SUITE list (AUTH psk|rsa|ecdsa, SUITE gcm|cbc);
#                                  default: psk-gcm psk-cbc rsa-gcm ecdsa-gcm
#   IKX_KEEP=1                     keep the run directory (logs, configs, dumps)
#   IKX_LS_PLUTODEBUG=base         pluto's debug log (plutodebug=, default none)
#   IKX_LS_CACHE=DIR               where the unpacked libreswan tree is cached
#                                  (default /var/cache/segw-test/libreswan)
#
# Needs: user-mode-linux (linux.uml), kmod (modprobe in the guest), and apt
# access once to fetch libreswan: its Debian package conflicts with
# strongSwan's, so it is never installed; `apt-get download` fetches it and
# the libraries it needs that this host lacks, and dpkg-deb -x unpacks them
# into the cache. pluto, whack and addconn run from there (LD_LIBRARY_PATH).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export IKX_WITH_DEV2=0
# shellcheck source=lib.sh
source "$here/lib.sh"

[ "$(id -u)" = 0 ] || ikx_die "run as root (network namespaces, tap device)"
IKX_UML_BIN=${IKX_UML_BIN:-/usr/bin/linux.uml}
for cmd in ip iptables conntrack openssl ping modprobe dpkg-deb apt-get "$IKX_UML_BIN"; do
  command -v "$cmd" >/dev/null || ikx_die "missing $cmd (tools/setup.sh installs it)"
done
[ "$IKX_RESPONDER" = segw ] || command -v swanctl >/dev/null || ikx_die "missing swanctl"

IKX_LS_CACHE=${IKX_LS_CACHE:-/var/cache/segw-test/libreswan}
IKX_DEV3_ID=dev3.fap.example
IKX_DEV3_IP=192.168.1.20          # the guest's eth0, on the NAT's LAN bridge
IKX_LS_TAP=lan3                   # tap device in the nat namespace, port of "lan"
# Guest kernel modules: XFRM user API, ESP (IPv4), the AEAD/CBC transforms.
IKX_LS_MODULES="cryptomgr xfrm_user esp4 gcm ghash_generic ctr seqiv echainiv authenc cbc sha256_generic hmac"

scenarios=${IKX_LS_SCENARIOS:-psk-gcm psk-cbc rsa-gcm ecdsa-gcm}
passed=0
failed=0
failed_names=()
scenario=
LS_UML_PID=

# libreswan proposal syntax for the harness's two suites (same algorithms as
# IKX_IKE_PROPOSAL / IKX_ESP_PROPOSAL, which segw's profile accepts).
declare -A ls_ike=([gcm]="aes_gcm256-sha2_256;dh19" [cbc]="aes128-sha2_256;modp2048")
declare -A ls_esp=([gcm]="aes_gcm256" [cbc]="aes128-sha2_256")
declare -A ls_authby=([psk]=secret [rsa]=rsasig [ecdsa]=ecdsa)
# What pluto logs for them, and what the guest kernel's SA shows.
declare -A want_ike=([gcm]="cipher=AES_GCM_16_256 integ=n/a prf=HMAC_SHA2_256 group=DH19"
                     [cbc]="cipher=AES_CBC_128 integ=HMAC_SHA2_256_128 prf=HMAC_SHA2_256 group=MODP2048")
declare -A want_esp=([gcm]="xfrm=AES_GCM_16_256-NONE" [cbc]="xfrm=AES_CBC_128-HMAC_SHA2_256_128")
declare -A want_auth_name=([psk]=PSK [rsa]="RSA certificate" [ecdsa]="ECDSA certificate")
declare -A want_auth=([psk]="authenticated peer using authby=secret and ID_FQDN '@$IKX_GW_ID'"
  [rsa]="RSA with SHA2_256' digital signature using peer certificate '@$IKX_GW_ID' issued by CA 'O=segw test, CN=segw test CA'"
  [ecdsa]="P-256 ECDSA with SHA2_256' digital signature using peer certificate '@$IKX_GW_ID' issued by CA 'O=segw test, CN=segw test CA'")
declare -A want_xfrm=([gcm]="aead rfc4106(gcm(aes))" [cbc]="enc cbc(aes)")

check() {
  local what=$1 out rc=0; shift
  out=$("$@" 2>&1) || rc=$?
  if [ $rc = 0 ]; then
    passed=$((passed + 1)); printf '  ok    [%s] %s%s\n' "$scenario" "$what" "${out:+: $out}"
  else
    failed=$((failed + 1)); failed_names+=("$scenario: $what")
    printf '  FAIL  [%s] %s%s\n' "$scenario" "$what" "${out:+: $out}"
  fi
  return 0
}

# ---------------------------------------------------------------- libreswan tree

# Unpacks libreswan and the libraries it needs that are not installed into
# IKX_LS_CACHE/root (idempotent; a lock serialises parallel runs). Sets LS_ROOT.
ls_dep_names() {  # DEB: its Depends, first alternative, names only
  dpkg-deb -f "$1" Depends | tr ',' '\n' | sed -E 's/\|.*//; s/\(.*\)//; s/:any//; s/[[:space:]]//g' | grep .
}
ls_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
ls_fetch() {
  local root=$IKX_LS_CACHE/root dl deb p want have
  mkdir -p "$IKX_LS_CACHE"
  exec 9> "$IKX_LS_CACHE/lock"
  flock 9
  if [ ! -f "$IKX_LS_CACHE/stamp" ] || [ ! -x "$root/usr/libexec/ipsec/pluto" ]; then
    dl=$(mktemp -d "$IKX_LS_CACHE/dl.XXXXXX")
    chmod 755 "$dl"   # apt-get download drops to the _apt user where it can
    ( cd "$dl" && apt-get download -q libreswan 2>&1 | grep -v -E '^W: Download is performed unsandboxed' ) || true
    ls "$dl"/libreswan_*.deb > /dev/null 2>&1 || ikx_die "apt-get download libreswan failed"
    # Only libraries: the programs libreswan's scripts call (host, iptables,
    # iproute2) or data (dns-root-data) are not used here.
    for _ in 1 2; do  # two levels of dependencies
      want=
      for deb in "$dl"/*.deb; do
        for p in $(ls_dep_names "$deb"); do
          case $p in dns-root-data|host|iproute2|iproute|iptables|debconf|debconf-2.0|python3) continue ;; esac
          ls_installed "$p" && continue
          have=$(ls "$dl"/"${p}"_*.deb 2>/dev/null || true)
          [ -n "$have" ] || want="$want $p"
        done
      done
      [ -n "$want" ] || break
      # shellcheck disable=SC2046  # one package name per word
      ( cd "$dl" && apt-get download -q $(tr ' ' '\n' <<<"$want" | sort -u) 2>&1 \
          | grep -v -E '^W: Download is performed unsandboxed' ) || true
    done
    rm -rf "$root.new"
    for deb in "$dl"/*.deb; do dpkg-deb -x "$deb" "$root.new"; done
    rm -rf "$root"; mv "$root.new" "$root"
    (cd "$dl" && ls ./*.deb) > "$IKX_LS_CACHE/stamp"
    rm -rf "$dl"
  fi
  flock -u 9
  exec 9>&-
  LS_ROOT=$root
  echo "== libreswan: $(LD_LIBRARY_PATH=$LS_ROOT/usr/lib/x86_64-linux-gnu \
    "$LS_ROOT/usr/libexec/ipsec/pluto" --version 2>&1 | head -1) from $LS_ROOT ($(tr '\n' ' ' < "$IKX_LS_CACHE/stamp"))"
}
ls_tool() {  # TOOL ARGS...: a program of the unpacked tree (usr/bin: NSS tools)
  local t=$1; shift
  LD_LIBRARY_PATH=$LS_ROOT/usr/lib/x86_64-linux-gnu "$LS_ROOT/usr/bin/$t" "$@"
}

# ---------------------------------------------------------------- one guest

# The scenario directory: ipsec.conf, ipsec.secrets, guest.env, nss/ with the
# CA and (certificate scenarios) dev3's certificate and key.
ls_write_config() {  # DIR AUTH SUITE CONN
  local d=$1 auth=$2 suite=$3 conn=$4 p=$IKX_DIR/pki leftcert="# no certificate: PSK" rightca="# PSK"
  mkdir -p "$d/nss"
  if [ "$auth" != psk ]; then
    leftcert="leftcert=dev3-$auth"
    rightca="rightca=%same"
  fi
  sed -e "s|@PLUTODEBUG@|${IKX_LS_PLUTODEBUG:-none}|g; s|@CONN@|$conn|g; s|@AUTH@|$auth|g; s|@SUITE@|$suite|g; s|@DIR@|$d|g" \
      -e "s|@GUEST_IP@|$IKX_DEV3_IP|g; s|@DEV_ID@|@$IKX_DEV3_ID|g; s|@GW_ID@|@$IKX_GW_ID|g" \
      -e "s|@GW_IP@|$IKX_GW_ACCESS_IP|g; s|@CORE_NET@|$IKX_CORE_NET|g" \
      -e "s|@AUTHBY@|${ls_authby[$auth]}|g; s|@LEFTCERT@|$leftcert|g; s|@RIGHTCA@|$rightca|g" \
      -e "s|@IKE@|${ls_ike[$suite]}|g; s|@ESP@|${ls_esp[$suite]}|g" \
      -e "s|@UPDOWN@|$LS_ROOT/usr/libexec/ipsec/_updown.xfrm|g" \
      "$here/libreswan/ipsec.conf.in" > "$d/ipsec.conf"
  sed -e "s|@DEV_ID@|@$IKX_DEV3_ID|g; s|@GW_ID@|@$IKX_GW_ID|g; s|@PSK@|$IKX_PSK|g" \
      "$here/libreswan/ipsec.secrets.in" > "$d/ipsec.secrets"
  chmod 600 "$d/ipsec.secrets"
  cat > "$d/guest.env" <<EOF
LS_ROOT=$LS_ROOT
CONN=$conn
GUEST_IP=$IKX_DEV3_IP
LAN_GW=$IKX_LAN_GW
CORE_IP=$IKX_CORE_IP
GO_TIMEOUT=60
MODULES="$IKX_LS_MODULES"
EOF
  # NSS database (pluto's --nssdir): the test CA, trusted for peers, and the
  # device's certificate + key from a PKCS#12.
  ls_tool certutil -N -d "sql:$d/nss" --empty-password
  ls_tool certutil -A -d "sql:$d/nss" -n segw-test-ca -t "CT,," -a -i "$p/ca.crt"
  if [ "$auth" != psk ]; then
    openssl pkcs12 -export -in "$p/dev3-$auth.crt" -inkey "$p/dev3-$auth.key" -name "dev3-$auth" \
      -passout pass:ikx -out "$d/dev3-$auth.p12"
    ls_tool pk12util -d "sql:$d/nss" -i "$d/dev3-$auth.p12" -W ikx > /dev/null
  fi
}

# Boots the guest in the nat namespace (its tap is a port of the LAN bridge
# there); UML's memory file goes to /dev/shm, its umid directory to DIR/uml.
ls_boot() {  # DIR
  local d=$1
  rm -f "$d/state" "$d/go" "$d/result"
  TMPDIR=/dev/shm ip netns exec "$IKX_NS_NAT" "$IKX_UML_BIN" \
    umid="$IKX_PREFIX-$scenario" uml_dir="$d/uml" mem=256M \
    root=/dev/root rootfstype=hostfs rootflags=/ ro init="$here/libreswan/guest_init.sh" \
    ikxdir="$d" con=null con0=null,fd:1 ssl=null eth0=tuntap,"$IKX_LS_TAP" \
    < /dev/null > "$d/console.log" 2>&1 &
  # ip netns exec execs the binary: $! is UML's main process.
  LS_UML_PID=$!
}

# Stops the guest: it powers off on its own after "go"; otherwise SIGTERM
# (UML kills its own helper processes), then SIGKILL, to that PID only.
ls_stop_guest() {  # WAIT_SECONDS
  local pid=$LS_UML_PID i
  [ -n "$pid" ] || return 0
  for i in $(seq $(( ${1:-0} * 10 ))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
  LS_UML_PID=
}

ls_teardown() {
  ls_stop_guest 0
  ip -n "$IKX_NS_NAT" link del "$IKX_LS_TAP" 2>/dev/null || true
}

# ---------------------------------------------------------------- checks

ls_result() { { sed -n "s/^$1=//p" "$2/result" 2>/dev/null || true; } | tail -1; }

ls_wait_state() {  # DIR TIMEOUT: until the guest wrote DIR/state (0) or died / timed out (1)
  local i
  for i in $(seq $(( $2 * 10 ))); do
    [ -s "$1/state" ] && { cat "$1/state"; return 0; }
    kill -0 "$LS_UML_PID" 2>/dev/null || { echo "guest exited"; return 1; }
    sleep 0.1
  done
  echo "no state after $2 s"; return 1
}

check_established() {  # DIR
  local ike child
  ike=$(grep -m1 -o 'established IKE SA.*' "$1/pluto.log" 2>/dev/null || true)
  child=$(grep -m1 -o 'established Child SA.*' "$1/pluto.log" 2>/dev/null || true)
  echo "initiate rc=$(ls_result initiate "$1"); ${ike:-no IKE SA}; ${child:-no Child SA}" | cut -c1-400
  [ -n "$ike" ] && [ -n "$child" ] && [ "$(ls_result initiate "$1")" = 0 ]
}

check_log_has() {  # FILE PATTERN(fixed) LABEL: the matching log line
  local line
  line=$(grep -m1 -F -- "$2" "$1" 2>/dev/null || true)
  echo "${line:-no \"$2\" in $(basename "$1")}" | sed -E 's/^[A-Z][a-z]{2} [ 0-9]{2} [0-9:.]+ //' | cut -c1-300
  [ -n "$line" ]
}

check_vip() {  # VIP
  echo "virtual IP ${1:-none} in the guest"
  [[ $1 == 10.64.0.* ]]
}

# The guest kernel's SAs: tunnel mode, ESP in UDP 4500, the suite's transform.
check_xfrm() {  # DIR SUITE
  local d=$1/dumps.up n_encap n_alg
  n_encap=$(grep -c 'encap type espinudp sport 4500 dport 4500' "$d" 2>/dev/null || true)
  n_alg=$(grep -c -F "${want_xfrm[$2]}" "$d" 2>/dev/null || true)
  echo "guest xfrm states: $n_encap with espinudp 4500/4500, $n_alg with ${want_xfrm[$2]}"
  [ "${n_encap:-0}" -ge 2 ] && [ "${n_alg:-0}" -ge 2 ]
}

# The mapping of the guest's UDP 4500 in the NAT, and its public port.
nat_port_of() {  # DEV_IP
  nat_show_conntrack | awk -v ip="$1" '
    $0 ~ "src=" ip " " && / sport=4500 / {
      n = 0
      for (i = 1; i <= NF; i++) if ($i ~ /^dport=/) { n++; if (n == 2) { sub("dport=", "", $i); print $i; exit } }
    }'
}
check_nat_mapping() {
  local port lo=${IKX_NAT_PORTS%-*} hi=${IKX_NAT_PORTS#*-}
  port=$(nat_port_of "$IKX_DEV3_IP")
  echo "conntrack: $IKX_DEV3_IP:4500 -> $IKX_NAT_PUBLIC_IP:${port:-none} (SNAT range ${IKX_NAT_PORTS:-none})"
  [ -n "$port" ] || return 1
  [ -z "$IKX_NAT_PORTS" ] || { [ "$port" -ge "$lo" ] && [ "$port" -le "$hi" ]; }
}

check_guest_ping() {  # DIR
  grep -E 'packets transmitted' "$1/ping.out" 2>/dev/null || echo "no ping output"
  grep -q -E ' 3 received, 0% packet loss' "$1/ping.out" 2>/dev/null
}
ping_check() {  # NS DST
  local out
  out=$(ip netns exec "$1" ping -n -c 3 -i 0.2 -W 2 "$2" 2>&1) || true
  grep -E 'packets transmitted' <<<"$out" || echo "$out" | tail -2
  grep -q -E ' 3 received, 0% packet loss' <<<"$out"
}

# Packets counted on the guest's kernel SAs (ip -s xfrm state, "current:"
# lifetime): each of the two SAs has carried at least MIN.
check_xfrm_counters() {  # DIR MIN
  local counts
  counts=$(awk '/lifetime current:/ {getline; gsub(/\(packets\)/, ""); print $2}' "$1/dumps.after" 2>/dev/null | tr '\n' ' ' || true)
  echo "guest SA packet counters: ${counts:-none} (at least $2 each)"
  local n=0 ok=0 c
  for c in $counts; do n=$((n + 1)); if [ "$c" -ge "$2" ]; then ok=$((ok + 1)); fi; done
  [ "$n" -ge 2 ] && [ "$ok" = "$n" ]
}

check_nat_4500() {  # OUT0 IN0 MIN
  local o i
  o=$(nat_count_4500 out); i=$(nat_count_4500 in)
  echo "UDP 4500 through the NAT: out $1 -> $o, in $2 -> $i"
  [ $((o - $1)) -ge "$3" ] && [ $((i - $2)) -ge "$3" ]
}

# strongSwan responder: the peer at the NAT's public address and mapped port.
check_responder_view() {
  local raw host port nat mapped
  raw=$(sa_raw gw | grep "remote-id=$IKX_DEV3_ID " || true)
  host=$(sa_field remote-host <<<"$raw"); port=$(sa_field remote-port <<<"$raw")
  nat=$(sa_field nat-remote <<<"$raw"); mapped=$(nat_port_of "$IKX_DEV3_IP")
  echo "gw sees $IKX_DEV3_ID at ${host}[$port], nat-remote=$nat, vips $(sa_field remote-vips <<<"$raw")"
  [ "$host" = "$IKX_NAT_PUBLIC_IP" ] && [ "$port" = "$mapped" ] && [ "$nat" = yes ]
}

# segw responder: its log names the device and the data plane holds SAs.
segw_sa_count() {
  local n
  n=$("$IKX_SEGW_BUILD/controlplane/tools/segwctl-dp" --channel "$IKX_PREFIX-segw" --directory "$IKX_DIR/segw" \
      dump 2>/dev/null | sed -n 's/^\([0-9][0-9]*\) SAs$/\1/p')
  echo "SAs in the data plane: ${n:-?}"
  [ "${n:-x}" = "$1" ]
}
check_segw_log() {  # PATTERN(ERE)
  local line
  line=$(grep -m1 -E -- "$1" "$IKX_DIR/segw/controlplane.log" 2>/dev/null || true)
  echo "${line:-no /$1/ in controlplane.log}" | cut -c1-300
  [ -n "$line" ]
}

# strongSwan responder: how it verified the device (libreswan's own AUTH).
declare -A want_dev_auth=([psk]="pre-shared key" [rsa]="RSA" [ecdsa]="ECDSA")
check_device_auth() {  # AUTH
  local line
  line=$(grep -o "authentication of '$IKX_DEV3_ID' with [^']* successful" "$IKX_DIR/charon/gw/charon.log" 2>/dev/null | tail -1 || true)
  echo "${line:-no successful authentication of $IKX_DEV3_ID logged}"
  [[ $line == *"${want_dev_auth[$1]}"* ]]
}

# segw's log line for the IKE SA: the device at the NAT's public address and
# mapped port, flagged behind NAT, with a virtual IP.
check_segw_view() {
  local line mapped
  line=$(grep -m1 -E "IKE SA [0-9]+ established peer $IKX_DEV3_ID " "$IKX_DIR/segw/controlplane.log" 2>/dev/null || true)
  mapped=$(nat_port_of "$IKX_DEV3_IP")
  echo "${line:-no IKE SA established with $IKX_DEV3_ID in controlplane.log}"
  [[ $line == *" at $IKX_NAT_PUBLIC_IP:$mapped "*"(behind NAT)"* ]] && [[ $line == *" inner 10.64.0."* ]]
}

# The responder, with dev3's PSK added for strongSwan (its generated config
# only names dev1 and dev2; swanctl merges the second secrets section).
ls_responder_start() {  # AUTH
  local auth=$1 conf
  mkdir -p "$IKX_DIR/responder"
  conf=$IKX_DIR/responder/$IKX_RESPONDER-$auth.conf
  "responder_config_$IKX_RESPONDER" "$auth" "$conf"
  if responder_is_strongswan; then
    cat >> "$conf.d/swanctl.conf" <<EOF
secrets {
  ike-dev3 {
    id-gw = $IKX_GW_ID
    id-dev = $IKX_DEV3_ID
    secret = "$IKX_PSK"
  }
}
EOF
  fi
  "start_responder_$IKX_RESPONDER" "$conf" "$IKX_NS_GW"
}

show_logs() {  # DIR
  echo "---- $1/console.log (UML console, tail)"; tail -n 8 "$1/console.log" 2>/dev/null || true
  echo "---- $1/guest.log (tail)"; tail -n 15 "$1/guest.log" 2>/dev/null || true
  echo "---- $1/pluto.log (tail)"; tail -n 25 "$1/pluto.log" 2>/dev/null || true
  if [ "$IKX_RESPONDER" = segw ]; then
    echo "---- $IKX_DIR/segw/controlplane.log (tail)"; tail -n 25 "$IKX_DIR/segw/controlplane.log" 2>/dev/null || true
  else
    echo "---- charon 'gw' log (tail)"; charon_log_tail gw 25
  fi
}

run_scenario() {
  local auth=${1%-*} suite=${1#*-} d=$IKX_DIR/ls/$1 failed0=$failed vip nat_o nat_i t0
  scenario=$1
  echo "== scenario $scenario: libreswan (UML guest) auth $auth, ike=${ls_ike[$suite]} esp=${ls_esp[$suite]}, responder $IKX_RESPONDER"
  t0=$(date +%s)
  nat_flush_conntrack
  if ! ls_responder_start "$auth"; then check "responder started" false; return 0; fi
  ls_write_config "$d" "$auth" "$suite" "$scenario"
  nat_o=$(nat_count_4500 out); nat_i=$(nat_count_4500 in)
  ls_boot "$d"
  check "guest booted, SA attempt over" ls_wait_state "$d" 90
  check "pluto running in the guest" bash -c 'echo "pluto=$1"; [ "$1" = up ]' _ "$(ls_result pluto "$d")"
  check "IKE SA + Child SA established" check_established "$d"
  check "IKE proposal" check_log_has "$d/pluto.log" "${want_ike[$suite]}"
  check "ESP proposal" check_log_has "$d/pluto.log" "${want_esp[$suite]}"
  check "gateway authenticated by ${want_auth_name[$auth]}" check_log_has "$d/pluto.log" "${want_auth[$auth]}"
  vip=$(ls_result vip "$d")
  check "virtual IP from the pool (modecfg client)" check_vip "$vip"
  check "NAT detected (UDP encapsulation)" check_log_has "$d/pluto.log" "ESPinUDP"
  check "guest kernel SAs: ESP in UDP 4500, ${want_xfrm[$suite]}" check_xfrm "$d" "$suite"
  check "NAT mapping in conntrack" check_nat_mapping
  if responder_is_strongswan; then
    check "responder sees the device behind NAT" check_responder_view
    check "responder authenticated the device by ${want_auth_name[$auth]}" check_device_auth "$auth"
  else
    check "segw established the IKE SA, device behind NAT" check_segw_view
    check "segw data plane holds the SA pair" segw_sa_count 2
  fi
  check "ping guest($vip) -> core $IKX_CORE_IP" check_guest_ping "$d"
  if [ -n "$vip" ]; then
    check "ping core -> guest($vip)" ping_check "$IKX_NS_CORE" "$vip"
  fi
  touch "$d/go"
  ls_stop_guest 30
  # 2 pings x 3 requests (+ the replies): at least 6 packets on each SA.
  check "guest kernel SA counters" check_xfrm_counters "$d" 6
  check "ESP-in-UDP crossed the NAT" check_nat_4500 "$nat_o" "$nat_i" 6
  check "guest deleted the connection, powered off" bash -c 'echo "delete rc=$1 finished=$2"; [ "$1" = 0 ] && [ "$2" = 1 ]' \
    _ "$(ls_result delete "$d")" "$(ls_result finished "$d")"
  if [ "$IKX_RESPONDER" = segw ]; then
    sleep 0.5
    check "segw data plane empty after the peer's DELETE" segw_sa_count 0
    check "segw logged the IKE SA deletion" check_segw_log "IKE SA [0-9]+ deleted peer $IKX_DEV3_ID .*: deleted by the peer\$"
  fi
  echo "   (scenario took $(( $(date +%s) - t0 )) s)"
  [ "$failed" = "$failed0" ] || show_logs "$d"
  responder_stop
}

start=$(date +%s)
ikx_trap
trap 'ls_teardown; ikx_teardown' EXIT
ls_fetch
topo_create
certs_generate
[ -f "$IKX_DIR/pki/dev3-rsa.crt" ] || ikx_cert_issue dev3-rsa rsa "$IKX_DEV3_ID" clientAuth
[ -f "$IKX_DIR/pki/dev3-ecdsa.crt" ] || ikx_cert_issue dev3-ecdsa ecdsa "$IKX_DEV3_ID" clientAuth
# The guest's NIC: a tap in the nat namespace, a port of the LAN bridge (the
# UML process runs in that namespace and opens it by name).
ip netns exec "$IKX_NS_NAT" ip tuntap add "$IKX_LS_TAP" mode tap
ip -n "$IKX_NS_NAT" link set "$IKX_LS_TAP" master lan up

for sc in $scenarios; do run_scenario "$sc"; done

echo "== $passed checks passed, $failed failed (libreswan initiator, responder $IKX_RESPONDER, $(( $(date +%s) - start )) s, run dir $IKX_DIR)"
if [ "$failed" != 0 ]; then
  printf '   failed: %s\n' "${failed_names[@]}"
  IKX_KEEP=1
  exit 1
fi
exit 0
