#!/usr/bin/env bash
# segw set-up, idempotent: Debian packages, hugepages, build. Sourced or run
# by tools/segw-demo and tools/run-tests; safe to run again at any time.
#   SEGW_BUILD_DIR   build directory (default: build)
#   SEGW_HUGEPAGES   2 MB hugepages to reserve at least (default: 1024)
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${SEGW_BUILD_DIR:-$top/build}
hugepages=${SEGW_HUGEPAGES:-1024}

packages=(
  build-essential g++ pkg-config meson ninja-build
  libdpdk-dev dpdk dpdk-dev libipsec-mb-dev
  libboost-program-options-dev libboost-dev libcpp-httplib-dev nlohmann-json3-dev curl
  libgtest-dev libgmock-dev libbenchmark-dev libpcap-dev libssl-dev
  python3-scapy python3-jsonschema python3-yaml ethtool tshark tcpreplay tcpdump iproute2 procps
  spin
  charon-systemd strongswan-swanctl libcharon-extra-plugins libstrongswan-standard-plugins
  iptables conntrack iputils-ping openssl
  user-mode-linux kmod
  clang libclang-rt-14-dev
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "segw setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # tshark asks whether non-root users may capture; answer no, quietly.
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# DPDK memory: 2 MB hugepages on hugetlbfs.
if [ "$(id -u)" = 0 ]; then
  mkdir -p /dev/hugepages
  mountpoint -q /dev/hugepages || mount -t hugetlbfs nodev /dev/hugepages
  current=$(cat /proc/sys/vm/nr_hugepages)
  if [ "$current" -lt "$hugepages" ]; then
    echo "$hugepages" > /proc/sys/vm/nr_hugepages
    echo "segw setup: hugepages $current -> $(cat /proc/sys/vm/nr_hugepages)"
  fi
else
  echo "segw setup: not root, hugepages left as they are ($(cat /proc/sys/vm/nr_hugepages))" >&2
fi

if [ ! -f "$build_dir/build.ninja" ]; then
  meson setup "$build_dir" "$top" --buildtype=release
fi
ninja -C "$build_dir"
