#!/usr/bin/env bash
# The veth testbed, in network namespaces this script creates:
#
#   bridge:   [xs-gen] gen0 ──veth── dutA [xs-dut] dutB ──veth── sink0 [xs-sink]
#             10.211.0.1/24                                        10.211.0.2/24
#             (xdpsched --iface dutA --out dutB runs in xs-dut: a transparent wire)
#
#   reflect:  [xs-gen] gen0 ──veth── dutA [xs-dut]     (xdpsched --iface dutA reflects)
#
#   direct:   [xs-gen] gen0 ──veth── sink0 [xs-sink]   (no DUT: xdpgen's own accuracy
#             and overhead, kernel-free baselines)
#
# The addresses exist only inside these namespaces. The endpoints keep the
# kernel's defaults: GRO off, TX checksum offload on (their TCP/UDP frames
# reach the DUT with partial checksums, which xdpsched completes: its
# --checksum). XS_GRO=on turns GRO on at the endpoints (what XDP_REDIRECT
# into a veth needs: xdpsched --fail-open redirect); XS_TX=off turns their
# TX checksum offload off (full checksums from the senders).
#
# Usage: scripts/testbed.sh up [bridge|reflect|direct] | down | status
# `up` is idempotent (tears down an old testbed first); `down` always succeeds.
set -euo pipefail

NS_GEN=xs-gen
NS_DUT=xs-dut
NS_SINK=xs-sink
GEN_IP=10.211.0.1
SINK_IP=10.211.0.2
GRO=${XS_GRO:-off}
TX=${XS_TX:-on}

down() {
    for ns in $NS_GEN $NS_DUT $NS_SINK; do
        # A killed xdpsched's control sockets there (named by the namespace's
        # inode) would outlive it.
        local ino
        ino=$(stat -L -c %i "/run/netns/$ns" 2>/dev/null || true)
        if [ -n "$ino" ]; then
            rm -f /run/xdpsched/*."$ino".sock
        fi
        ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
        ip netns del "$ns" 2>/dev/null || true
    done
}

# Carrier comes up asynchronously (link-watch delay): wait for it, bounded.
wait_carrier() {
    for _ in $(seq 50); do
        local ok=1
        for l in $1; do
            [ "$(ip netns exec "${l%%:*}" cat "/sys/class/net/${l#*:}/carrier" 2>/dev/null)" = 1 ] || ok=0
        done
        [ $ok = 1 ] && return
        sleep 0.1
    done
}

up() {
    local mode=${1:-bridge}
    down
    ip netns add $NS_GEN
    if [ "$mode" = direct ]; then
        ip netns add $NS_SINK
        ip link add gen0 netns $NS_GEN type veth peer name sink0 netns $NS_SINK
        ip netns exec $NS_GEN ethtool -K gen0 tx "$TX" gro "$GRO" >/dev/null
        ip netns exec $NS_SINK ethtool -K sink0 tx "$TX" gro "$GRO" >/dev/null
        ip -n $NS_GEN addr add $GEN_IP/24 dev gen0
        ip -n $NS_SINK addr add $SINK_IP/24 dev sink0
        ip -n $NS_GEN link set lo up
        ip -n $NS_SINK link set lo up
        ip -n $NS_SINK link set sink0 up
        ip -n $NS_GEN link set gen0 up
        wait_carrier "$NS_GEN:gen0 $NS_SINK:sink0"
        return
    fi
    ip netns add $NS_DUT
    # XS_QUEUES=N: veths with N RX/TX queues each (xdpsched --queues N).
    local q="numtxqueues ${XS_QUEUES:-1} numrxqueues ${XS_QUEUES:-1}"
    ip link add gen0 netns $NS_GEN $q type veth peer name dutA netns $NS_DUT $q
    if [ "$mode" = bridge ]; then
        ip netns add $NS_SINK
        ip link add dutB netns $NS_DUT $q type veth peer name sink0 netns $NS_SINK $q
    fi
    # Offloads first: changing them on a running veth can leave its peer without carrier.
    ip netns exec $NS_GEN ethtool -K gen0 tx "$TX" gro "$GRO" >/dev/null
    ip -n $NS_GEN addr add $GEN_IP/24 dev gen0
    ip -n $NS_GEN link set lo up
    ip -n $NS_DUT link set lo up
    if [ "$mode" = bridge ]; then
        ip netns exec $NS_SINK ethtool -K sink0 tx "$TX" gro "$GRO" >/dev/null
        ip -n $NS_SINK addr add $SINK_IP/24 dev sink0
        ip -n $NS_SINK link set lo up
        ip -n $NS_DUT link set dutB up
        ip -n $NS_SINK link set sink0 up
    fi
    ip -n $NS_DUT link set dutA up
    ip -n $NS_GEN link set gen0 up
    local links="$NS_GEN:gen0 $NS_DUT:dutA"
    [ "$mode" = bridge ] && links="$links $NS_DUT:dutB $NS_SINK:sink0"
    wait_carrier "$links"
    if [ "$mode" != bridge ]; then
        # Reflect: the DUT side answers nothing itself; give it an address so the
        # generator's ARP for a fake peer has somewhere to go.
        ip -n $NS_GEN neigh add $SINK_IP lladdr 02:00:00:00:00:02 dev gen0
    fi
}

status() {
    ip netns list
    for ns in $NS_GEN $NS_DUT $NS_SINK; do
        ip netns pids "$ns" >/dev/null 2>&1 && ip -n "$ns" -brief link 2>/dev/null | sed "s/^/$ns: /" || true
    done
}

case "${1:-}" in
    up) up "${2:-bridge}" ;;
    down) down ;;
    status) status ;;
    *)
        echo "usage: $0 up [bridge|reflect|direct] | down | status" >&2
        exit 2
        ;;
esac
