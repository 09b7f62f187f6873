#!/bin/sh
# PID 1 of the User-Mode-Linux guest that runs libreswan's pluto as an IKEv2
# initiator (run_libreswan.sh boots one guest per scenario).
#
# The guest's root is the host's / through hostfs, mounted read-only; the only
# writable host path is the scenario directory IKXDIR (kernel command line
# "ikxdir=...", which the kernel hands to init as an environment variable),
# mounted rw over itself. Everything else the guest writes goes to a tmpfs on
# /run. The guest kernel (Debian's user-mode-linux) has XFRM and ESP as
# modules, which the host kernel lacks: that is why pluto runs in here.
#
# Contract with the host (files in IKXDIR):
#   in:  guest.env (sourced: LS_ROOT, CONN, GUEST_IP, LAN_GW, CORE_IP,
#        GO_TIMEOUT), ipsec.conf, ipsec.secrets, nss/ (NSS database)
#   out: guest.log (this script's trace), pluto.log, result (key=value lines),
#        dumps (ip/xfrm/whack state), state ("up" | "failed", written once the
#        initiation is over)
#   in:  go (the host finished its checks from the outside; tear down and
#        power off)
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t tmpfs -o mode=0755 tmpfs /run
D=${ikxdir:?ikxdir= missing on the kernel command line}
mount -t hostfs -o "$D" hostfs "$D" || { echo "guest: cannot mount $D"; echo o > /proc/sysrq-trigger; }
exec > "$D/guest.log" 2>&1
set -x
. "$D/guest.env"

result() { echo "$1=$2" >> "$D/result"; }
poweroff() {
  sync
  echo o > /proc/sysrq-trigger
  sleep 10
}

# Kernel IPsec: the modules of the UML kernel, found through a modprobe root
# on tmpfs (the host has no /lib/modules to mount them on).
mkdir -p /run/modroot/lib
ln -s /usr/lib/uml/modules /run/modroot/lib/modules
# The kernel's own module requests (crypto templates such as
# rfc4106(gcm(aes)) are instantiated on demand) go through the same root.
printf '#!/bin/sh\nexec /usr/sbin/modprobe -d /run/modroot "$@"\n' > /run/modprobe
chmod 755 /run/modprobe
echo /run/modprobe > /proc/sys/kernel/modprobe
for m in $MODULES; do modprobe -d /run/modroot "$m" || result modprobe_failed "$m"; done

ip link set lo up
ip link set eth0 up
ip addr add "$GUEST_IP/24" dev eth0
ip route add default via "$LAN_GW"

# pluto from the unpacked package tree; everything it writes is in IKXDIR or /run.
# pluto runs its helpers from the compiled-in /usr/libexec/ipsec (addconn at
# start-up), which the host does not have: the guest gets a tmpfs
# /usr/libexec holding links to the host's entries plus ipsec -> the tree.
mkdir -p /run/libexec.host
mount --bind /usr/libexec /run/libexec.host
mount -t tmpfs -o mode=0755 tmpfs /usr/libexec
for e in /run/libexec.host/*; do ln -s "$e" "/usr/libexec/${e##*/}"; done
ln -sfn "$LS_ROOT/usr/libexec/ipsec" /usr/libexec/ipsec
export LD_LIBRARY_PATH=$LS_ROOT/usr/lib/x86_64-linux-gnu
X=/usr/libexec/ipsec
mkdir -p /run/pluto
"$X/pluto" --nofork --config "$D/ipsec.conf" --secretsfile "$D/ipsec.secrets" \
  --ipsecdir "$D" --nssdir "$D/nss" --rundir /run/pluto --logfile "$D/pluto.log" \
  --no-dnssec > "$D/pluto.stdout" 2>&1 &
pluto_pid=$!
i=0
while [ ! -S /run/pluto/pluto.ctl ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
whack() { "$X/whack" --ctlsocket /run/pluto/pluto.ctl "$@"; }
if [ -S /run/pluto/pluto.ctl ]; then result pluto up; else result pluto down; fi

"$X/addconn" --config "$D/ipsec.conf" --ctlsocket /run/pluto/pluto.ctl "$CONN" > "$D/addconn.out" 2>&1
result addconn $?
whack --listen > /dev/null 2>&1
timeout 40 "$X/whack" --ctlsocket /run/pluto/pluto.ctl --initiate --name "$CONN" > "$D/initiate.out" 2>&1
result initiate $?

# The lease: _updown.xfrm puts it on lo (scope 50) and routes the remote
# subnet with src = the lease.
vip=$(ip -4 -o addr show | awk '{print $4}' | cut -d/ -f1 | grep -v -x -e "$GUEST_IP" -e 127.0.0.1 | head -1)
result vip "$vip"
set +x   # the dumps without the trace of their commands
{
  echo "---- whack --trafficstatus"; whack --trafficstatus
  echo "---- ip addr"; ip addr
  echo "---- ip route (all tables)"; ip route show table all | grep -v -E '^(local|broadcast|multicast|fe80|ff00)'
  echo "---- ip xfrm state"; ip -s xfrm state
  echo "---- ip xfrm policy"; ip xfrm policy
} > "$D/dumps.up" 2>&1
set -x

if [ -n "$vip" ]; then
  # Through the tunnel: the route to the core net carries src = the VIP.
  ping -n -c 3 -i 0.2 -W 2 -I "$vip" "$CORE_IP" > "$D/ping.out" 2>&1
  result ping_rc $?
  echo up > "$D/state"
else
  echo failed > "$D/state"
fi

# The host pings the VIP from the core side and looks at the NAT; then "go".
i=0
while [ ! -e "$D/go" ] && [ $i -lt "$((GO_TIMEOUT * 5))" ]; do sleep 0.2; i=$((i + 1)); done
set +x
{
  echo "---- ip -s xfrm state (after the host's checks)"; ip -s xfrm state
  echo "---- whack --trafficstatus"; whack --trafficstatus
} > "$D/dumps.after" 2>&1
set -x

whack --delete --name "$CONN" > "$D/delete.out" 2>&1
result delete $?
whack --shutdown > /dev/null 2>&1
i=0
while kill -0 "$pluto_pid" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
result finished 1
poweroff
