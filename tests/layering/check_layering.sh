#!/usr/bin/env bash
# Keeps the dependency direction of DESIGN.md: dataplane -> shared <- controlplane.
# shared/ is std-only; controlplane/ never sees DPDK; the two processes never
# include each other. Fails with the offending lines.
set -u
top=${1:?usage: check_layering.sh SOURCE_ROOT}
cd "$top" || exit 2
status=0
check() {  # description, folder, extended regex of forbidden includes
  local hits
  hits=$(grep -rnE "^[[:space:]]*#[[:space:]]*include[[:space:]]*[<\"]($3)" "$2" 2>/dev/null)
  if [ -n "$hits" ]; then
    echo "layering violation: $1"
    echo "$hits"
    status=1
  fi
}
check "shared/ must not include DPDK, IPsec-MB, OpenSSL, Boost or either process" shared \
  'rte_|intel-ipsec-mb|openssl/|boost/|dataplane/|controlplane/'
check "controlplane/ must not include DPDK, IPsec-MB or dataplane/" controlplane 'rte_|intel-ipsec-mb|dataplane/'
check "dataplane/ must not include controlplane/ or OpenSSL" dataplane 'controlplane/|openssl/'
# The check itself must see the tree: an empty shared/ would pass vacuously.
[ -f shared/sa_descriptor.h ] || { echo "layering check: shared/sa_descriptor.h not found under $top"; status=1; }
[ $status -eq 0 ] && echo "layering ok"
exit $status
