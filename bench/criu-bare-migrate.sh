#!/usr/bin/env bash
# bench/criu-bare-migrate.sh MODE MIB NETNS_A IP_A NETNS_B IP_B MEMECHO WORK
#
# The bare-CRIU anchor of bench/migrate-bench.py (tools `criu` and `criu-lazy`): CRIU 4.2 alone
# moves a plain process holding MIB MiB of touched, incompressible memory (MEMECHO with port 0,
# in a PID namespace of its own) from network namespace A to B over TCP, with nothing of cryo:
# no container, no cgroup, no relays, no TLS: CRIU with its own defaults (TCP between the
# namespaces, images on disk, no auto-dedup) on this machine.
#   MODE stop-and-copy: `criu page-server` in B, `criu dump --page-server` in A sends it the
#                       pages, the other images are copied, `criu restore` in B.
#   MODE lazy:          `criu dump --lazy-pages` in A serves the pages, the other images are
#                       copied, `criu lazy-pages` and `criu restore --lazy-pages` in B; the
#                       pages arrive on demand and in the background until lazy-pages exits.
# Prints one JSON line of milliseconds. Runs in a private mount namespace of its own (CRIU
# refuses to dump a process whose mounts include the host's shared netns binds).
set -Eeuo pipefail
if [ -z "${CRIU_BARE_INNER:-}" ]; then
    exec env CRIU_BARE_INNER=1 unshare -m --propagation private "$0" "$@"
fi
# Nothing inherited may reach the process: CRIU would have to dump it (fd 255 is bash's script).
for f in /proc/$$/fd/*; do
    n=${f##*/}
    if [ "$n" -gt 2 ] && [ "$n" -ne 255 ]; then eval "exec $n>&-"; fi
done
mid="" mode=$1 mib=$2 nsa=$3 ipa=$4 nsb=$5 ipb=$6 memecho=$7 work=$8
d=$work/criu-bare-dump d2=$work/criu-bare-target
rm -rf "$d" "$d2"
mkdir -p "$d" "$d2"
now() { date +%s%N; }
ms() { echo $(( ($2 - $1) / 1000000 )); }
inA() { nsenter --net="/run/netns/$nsa" "$@"; }
inB() { nsenter --net="/run/netns/$nsb" "$@"; }
listening() { nsenter --net="/run/netns/$1" ss -ltnH "sport = :$2" | grep -q .; }
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    [ -f "$work/criu-bare.pid" ] && kill -9 "$(cat "$work/criu-bare.pid")" 2>/dev/null || true
    rm -f "$work/criu-bare.pid"
}
trap cleanup EXIT
# A failed step says which, with CRIU's own reasons.
trap 'echo "criu-bare: line $LINENO failed: $BASH_COMMAND" >&2; grep -h "Error" "$d"/*.log "$d2"/*.log 2>/dev/null | grep -v RLIMIT_NOFILE >&2 || true' ERR

# The process: pid 1 of its own PID namespace, in A, stdio on /dev/null.
inA unshare -p -f setsid "$memecho" "$mib" 0 </dev/null >/dev/null 2>&1 &
holder=$!
pids+=("$holder")
pid=""
# nsenter forks unshare, which forks the process: the holder's grandchild.
for _ in $(seq 1 200); do
    mid=$(pgrep -P "$holder" || true)
    [ -n "$mid" ] && pid=$(pgrep -x memecho -P "$mid" || true)
    [ -n "$pid" ] && break
    sleep 0.01
done
[ -n "$pid" ] || { echo "criu-bare: the process did not start" >&2; exit 1; }
pids+=("$mid" "$pid")
want=$(( mib * 1024 * 98 / 100 ))
for _ in $(seq 1 3000); do
    rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
    [ "$rss" -ge "$want" ] && break
    sleep 0.01
done
sleep 0.2

case $mode in
stop-and-copy)
    port=27300
    inB criu page-server -D "$d2" --address "$ipb" --port $port -o page-server.log &
    pids+=($!)
    ps=$!
    for _ in $(seq 1 500); do listening "$nsb" $port && break; sleep 0.01; done
    t0=$(now)
    inA criu dump -t "$pid" -D "$d" --page-server --address "$ipb" --port $port -o dump.log
    wait "$ps"
    t1=$(now)
    cp "$d"/*.img "$d2"/
    inB criu restore -D "$d2" -d --pidfile "$work/criu-bare.pid" -o restore.log
    t2=$(now)
    echo "{\"total\": $(ms "$t0" "$t2"), \"dump\": $(ms "$t0" "$t1"), \"restore\": $(ms "$t1" "$t2"), \"bytes\": $(du -sb "$d2" | cut -f1)}"
    ;;
lazy)
    port=27301
    t0=$(now)
    inA criu dump -t "$pid" -D "$d" --lazy-pages --address "$ipa" --port $port -o dump.log &
    dump=$!
    pids+=("$dump")
    for _ in $(seq 1 3000); do listening "$nsa" $port && break; sleep 0.002; done
    t1=$(now)
    cp "$d"/*.img "$d2"/
    inB criu lazy-pages --page-server --address "$ipa" --port $port -D "$d2" -o lazy-pages.log &
    lazy=$!
    pids+=("$lazy")
    for _ in $(seq 1 500); do [ -S "$d2/lazy-pages.socket" ] && break; sleep 0.002; done
    inB criu restore -D "$d2" --lazy-pages -d --pidfile "$work/criu-bare.pid" -o restore.log
    t2=$(now)
    wait "$lazy"
    t3=$(now)
    wait "$dump" || true
    echo "{\"total\": $(ms "$t0" "$t3"), \"dump\": $(ms "$t0" "$t1"), \"restore\": $(ms "$t1" "$t2"), \"resumed\": $(ms "$t0" "$t2"), \"pages\": $(ms "$t2" "$t3")}"
    ;;
*) echo "criu-bare: MODE is stop-and-copy or lazy" >&2; exit 2 ;;
esac
