#!/usr/bin/env bash
# The systemd units and deployment examples in configs/systemd/ are valid:
#  1. systemd-analyze verify accepts each unit (ExecStart paths pointed at the
#     freshly built binaries) with no message at all: verify exits 0 on an
#     unknown key or a bad value and only prints a warning, so any output
#     fails; a deliberately broken copy must fail the same check;
#  2. every $VAR / ${VAR} an Exec line uses is set in the unit's env file;
#  3. example-dataplane.conf and example-controlplane.conf pass
#     --check-config, and so does every ```ini block of configs/DEPLOYMENT.md
#     (completed with the sections a file needs).
# Usage: verify_units.sh BUILD_DIR SOURCE_DIR
set -u
build=${1:?build dir}
source=${2:?source dir}
units=$source/configs/systemd
guide=$source/configs/DEPLOYMENT.md
dataplane=$build/dataplane/segw-dataplane
controlplane=$build/controlplane/daemon/segw-controlplane
segwctl_dp=$build/controlplane/tools/segwctl-dp
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }

command -v systemd-analyze >/dev/null || { echo "FAIL: systemd-analyze not found"; exit 1; }
for b in "$dataplane" "$controlplane" "$segwctl_dp"; do
  [ -x "$b" ] || { echo "FAIL: $b not built"; exit 1; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/units" "$tmp/etc"

# 1. systemd-analyze verify, with the build's binaries and env files in $tmp.
for unit in "$units"/*.service; do
  sed -e "s|/usr/local/bin/segw-dataplane|$dataplane|g" \
      -e "s|/usr/local/bin/segw-controlplane|$controlplane|g" \
      -e "s|/usr/local/bin/segwctl-dp|$segwctl_dp|g" \
      -e "s|EnvironmentFile=/etc/default/|EnvironmentFile=$tmp/etc/|" \
      "$unit" > "$tmp/units/$(basename "$unit")"
done
for env in "$units"/*.env; do cp "$env" "$tmp/etc/$(basename "$env" .env)"; done
verify() {  # verify UNIT_FILE: 0 only if verify exits 0 and prints nothing
  local out rc
  out=$(cd "$tmp/units" && SYSTEMD_UNIT_PATH="$tmp/units:" systemd-analyze verify --man=no "$1" 2>&1)
  rc=$?
  if [ $rc -ne 0 ] || [ -n "$out" ]; then
    printf '%s\n' "$out" | sed 's/^/    /'
    return 1
  fi
}
for unit in "$tmp"/units/*.service; do
  name=$(basename "$unit")
  if verify "$unit"; then ok "systemd-analyze verify $name"; else fail "systemd-analyze verify $name"; fi
done
# The check itself: a unit with an unknown key, a bad value, a missing binary.
mkdir -p "$tmp/broken"
for breakage in 's/^NoNewPrivileges=yes/NoNewPrivilegez=yes/' 's/^Restart=on-failure/Restart=sometimes/' \
                "s|^ExecStart=$dataplane|ExecStart=$tmp/no-such-binary|"; do
  sed -e "$breakage" "$tmp/units/segw-dataplane.service" > "$tmp/broken/segw-dataplane.service"
  if cmp -s "$tmp/broken/segw-dataplane.service" "$tmp/units/segw-dataplane.service"; then
    fail "self-check: '$breakage' changed nothing in segw-dataplane.service"
  elif verify "$tmp/broken/segw-dataplane.service" >/dev/null; then
    fail "self-check: a broken unit ('$breakage') passed the verify check"
  else
    ok "self-check: a broken unit ('$breakage') fails the verify check"
  fi
done

# 2. Variables used on Exec lines are set in the unit's env file.
for unit in "$units"/*.service; do
  name=$(basename "$unit" .service)
  env_file=$(sed -n 's|^EnvironmentFile=-\{0,1\}/etc/default/||p' "$unit")
  [ -n "$env_file" ] || { fail "$name: no EnvironmentFile=/etc/default/..."; continue; }
  [ -f "$units/$env_file.env" ] || { fail "$name: configs/systemd/$env_file.env missing"; continue; }
  vars=$(grep -E '^Exec[A-Za-z]*=' "$unit" | grep -oE '\$\{?[A-Za-z_][A-Za-z0-9_]*' | tr -d '${' | sort -u)
  for var in $vars; do
    if grep -qE "^$var=" "$units/$env_file.env"; then ok "$name: \$$var set in $env_file.env"
    else fail "$name: \$$var used but not set in $env_file.env"; fi
  done
done

# 3. Example configurations and the guide's ```ini blocks pass --check-config.
mkdir -p "$tmp/etc/segw/certs"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$tmp/etc/segw/api.token"
if ! openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=segw-api \
       -keyout "$tmp/etc/segw/certs/api.key" -out "$tmp/etc/segw/certs/api.pem" >/dev/null 2>&1; then
  fail "openssl could not make the API test certificate"
fi
check_dataplane() {  # FILE LABEL
  local out
  if out=$("$dataplane" --check-config -c "$1" 2>&1); then ok "segw-dataplane --check-config $2"
  else fail "segw-dataplane --check-config $2: $out"; fi
}
check_controlplane() {  # FILE LABEL (FILE in $tmp/etc/segw: api.token, certs/)
  local out
  if out=$("$controlplane" --check-config -c "$1" 2>&1); then ok "segw-controlplane --check-config $2"
  else fail "segw-controlplane --check-config $2: $out"; fi
}
check_dataplane "$units/example-dataplane.conf" example-dataplane.conf
cp "$units/example-controlplane.conf" "$tmp/etc/segw/controlplane.conf"
check_controlplane "$tmp/etc/segw/controlplane.conf" example-controlplane.conf
# Sanity: an unknown key is refused by both.
printf '[dataplane]\nno_such_key = 1\n' | cat - "$units/example-dataplane.conf" > "$tmp/bad-dp.conf"
"$dataplane" --check-config -c "$tmp/bad-dp.conf" >/dev/null 2>&1 && fail "segw-dataplane accepted an unknown key"
printf '[controlplane]\nno_such_key = 1\n' > "$tmp/etc/segw/bad-cp.conf"
sed -n '/^\[pool/,$p' "$units/example-controlplane.conf" >> "$tmp/etc/segw/bad-cp.conf"
"$controlplane" --check-config -c "$tmp/etc/segw/bad-cp.conf" >/dev/null 2>&1 && fail "segw-controlplane accepted an unknown key"

[ -f "$guide" ] || { fail "configs/DEPLOYMENT.md missing"; guide=/dev/null; }
for f in example-dataplane.conf example-controlplane.conf segw-dataplane.service segw-controlplane.service; do
  grep -q "systemd/$f" "$guide" || fail "DEPLOYMENT.md does not reference configs/systemd/$f"
done
# Each ```ini block: completed with the sections the file needs.
awk -v dir="$tmp" '/^```ini/ {n++; f = sprintf("%s/block%02d.ini", dir, n); inside = 1; next}
                   /^```/ {inside = 0; next} inside {print > f}' "$guide"
for block in "$tmp"/block*.ini; do
  [ -f "$block" ] || break
  label="DEPLOYMENT.md ini block $(basename "$block" .ini | tr -dc 0-9)"
  if grep -qE '^\[(dataplane|channel|port |sa )' "$block"; then
    cp "$block" "$tmp/dp.conf"
    grep -q '^\[port access\]' "$block" || printf '\n[port access]\ndevice = net_null0\nnext_hop_mac = 02:00:00:00:00:01\naddress = 192.0.2.1\n' >> "$tmp/dp.conf"
    grep -q '^\[port core\]' "$block" || printf '\n[port core]\ndevice = net_null1\nnext_hop_mac = 02:00:00:00:00:02\n' >> "$tmp/dp.conf"
    check_dataplane "$tmp/dp.conf" "$label"
  elif grep -qE '^\[(controlplane|profile |pool |secret )' "$block"; then
    cp "$block" "$tmp/etc/segw/cp.conf"
    grep -q '^\[profile ' "$block" || printf '\n[secret skeleton]\nid = %%any\npsk = 0x000102030405060708090a0b0c0d0e0f\n\n[profile skeleton]\nlocal_id = fqdn:gw.example\n' >> "$tmp/etc/segw/cp.conf"
    check_controlplane "$tmp/etc/segw/cp.conf" "$label"
  else
    fail "$label: neither a data plane nor a control plane configuration"
  fi
done

echo "$failures failure(s)"
[ "$failures" -eq 0 ]
