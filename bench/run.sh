#!/usr/bin/env bash
# ftpsh benchmark: every figure is taken in one run and reported as a ratio to a
# floor measured in the same run, because the machine is shared and noisy.
#
#   bench/run.sh            # everything (needs ~3 GiB free in $TMPDIR)
#   bench/run.sh transfer   # or: echo, parallel, small
#
# Sections:
#   transfer  1 GiB random file: md5sum vs `ftpsh get` over loopback (first and repeated
#             download, and buffered writes for comparison), peak RSS of both sides
#   echo      10,000 echo round trips on one connection, both CPU placements, vs a C-level floor
#   parallel  8 concurrent downloads of a 256 MiB file: aggregate throughput vs md5sum
#   small     2,000 files of 4 KiB: get -r and put -r vs a local write+fsync+rename loop
set -euo pipefail
cd "$(dirname "$0")/.."
sections=${*:-transfer echo parallel small}
SIZE_MIB=${BENCH_SIZE_MIB:-1024}
RUNS=${BENCH_RUNS:-3}

cargo build --release --quiet --bins
BIN=$PWD/target/release
work=$(mktemp -d "${TMPDIR:-/tmp}/ftpsh-bench.XXXXXX")
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/root" "$work/local"
export FTPSH_TOKEN=bench-token NO_COLOR=1

now() { date +%s.%N; }
elapsed() { python3 -c "print(f'{$2 - $1:.3f}')"; }
median() { tr ' ' '\n' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }
rss_mib() { awk -F': ' '/Maximum resident set size/ {printf "%.1f", $2/1024}' "$1"; }

start_server() {
    /usr/bin/time -v -o "$work/server.time" "$BIN/ftpsh-server" --root "$work/root" \
        --listen 127.0.0.1:0 --quiet --allow-exec > "$work/server.out" &
    server_pid=$!
    for _ in $(seq 100); do
        grep -q '^listening on' "$work/server.out" 2>/dev/null && break
        sleep 0.05
    done
    addr=$(sed -n 's/^listening on //p' "$work/server.out")
}
stop_server() {
    # time(1) is the parent: signal the server itself, then wait for time's report.
    pkill -TERM -P "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
}

echo "ftpsh benchmark, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, $(uname -r)"
echo "MD5: $("$BIN/ftpsh" --version)"

if [[ " $sections " == *" transfer "* ]]; then
    echo
    echo "== transfer: ${SIZE_MIB} MiB random file, warm cache, median of $RUNS"
    head -c "$((SIZE_MIB << 20))" /dev/urandom > "$work/root/big.bin"
    cat "$work/root/big.bin" > /dev/null
    start_server
    # One timed `ftpsh get big.bin` into an empty local directory; prints seconds.
    # Extra arguments are environment assignments for the client.
    timed_get() {
        rm -f "$work/local/big.bin"
        local t0 t1
        t0=$(now)
        (cd "$work/local" && env "$@" /usr/bin/time -v -o "$work/client.time" "$BIN/ftpsh" "$addr" --norc -c "get big.bin" > /dev/null)
        t1=$(now)
        elapsed "$t0" "$t1"
    }
    md5s=() pairs=() firsts=() repeats=() buffered=() puts=()
    for i in $(seq "$RUNS"); do
        t0=$(now); md5sum "$work/root/big.bin" > /dev/null; t1=$(now)
        md5s+=("$(elapsed "$t0" "$t1")")
        # Two passes at once: what a first download costs at least, as both ends hash.
        t0=$(now); md5sum "$work/root/big.bin" > /dev/null & md5sum "$work/root/big.bin" > /dev/null; wait $!; t1=$(now)
        pairs+=("$(elapsed "$t0" "$t1")")
        # A new mtime makes the server forget the digest: it hashes while sending.
        touch "$work/root/big.bin"
        firsts+=("$(timed_get)")
        # The server now remembers the digest and sends with sendfile.
        buffered+=("$(timed_get FTPSH_DIRECT_IO=0)")
        repeats+=("$(timed_get)")
        # And back: an upload of the downloaded copy under a new name.
        t0=$(now)
        (cd "$work/local" && "$BIN/ftpsh" "$addr" --norc -c "put big.bin up-$i.bin" > /dev/null)
        t1=$(now)
        puts+=("$(elapsed "$t0" "$t1")")
        cmp "$work/root/big.bin" "$work/root/up-$i.bin"
        rm -f "$work/root/up-$i.bin"
    done
    stop_server
    cmp "$work/root/big.bin" "$work/local/big.bin"
    # The same first download where no libcrypto can be loaded: both ends use
    # md-5's portable Rust (what a machine without OpenSSL's library gets).
    FTPSH_MD5=rust start_server
    portables=()
    for i in $(seq "$RUNS"); do
        touch "$work/root/big.bin"
        portables+=("$(timed_get FTPSH_MD5=rust)")
    done
    stop_server
    cmp "$work/root/big.bin" "$work/local/big.bin"
    m=$(echo "${md5s[*]}" | median)
    f=$(echo "${firsts[*]}" | median)
    r=$(echo "${repeats[*]}" | median)
    b=$(echo "${buffered[*]}" | median)
    p=$(echo "${pairs[*]}" | median)
    u=$(echo "${puts[*]}" | median)
    rate() { python3 -c "print(f'{$SIZE_MIB/$1:.0f}')"; }
    echo "md5sum:                          ${m} s  ($(rate "$m") MiB/s)   runs: ${md5s[*]}"
    echo "two md5sum at once:              ${p} s  (the floor of a first download: both ends hash)"
    echo "ftpsh get, first download:       ${f} s  ($(rate "$f") MiB/s)   runs: ${firsts[*]}   ratio $(ratio "$m" "$f"), $(ratio "$p" "$f") of the two-pass floor"
    o=$(echo "${portables[*]}" | median)
    echo "  same, portable MD5 both ends:  ${o} s  ($(rate "$o") MiB/s)   runs: ${portables[*]}   ratio $(ratio "$m" "$o")   (FTPSH_MD5=rust)"
    echo "ftpsh get, repeated download:    ${r} s  ($(rate "$r") MiB/s)   runs: ${repeats[*]}   ratio $(ratio "$m" "$r")"
    echo "  same, FTPSH_DIRECT_IO=0:       ${b} s  ($(rate "$b") MiB/s)   runs: ${buffered[*]}   ratio $(ratio "$m" "$b")"
    echo "ftpsh put (both ends hash):      ${u} s  ($(rate "$u") MiB/s)   runs: ${puts[*]}   ratio $(ratio "$m" "$u")"
    echo "ratio = ftpsh throughput / md5sum throughput; goal >= 0.80"
    echo "(first: both sides hash, two MD5 passes on $(nproc) CPUs; repeated: the server remembers the digest)"
    echo "peak RSS: client $(rss_mib "$work/client.time") MiB, server $(rss_mib "$work/server.time") MiB   goal < 32 MiB each"
    rm -f "$work/local/big.bin"
fi

if [[ " $sections " == *" echo "* ]]; then
    echo
    echo "== echo: 10,000 round trips on one connection"
    python3 - "$work/echo.script" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("echo ping\n" * 10000)
PY
    start_server
    spid=$(pgrep -P "$server_pid" ftpsh-server || echo "$server_pid")
    for placement in "same CPU:0:0" "different CPUs:0:1"; do
        IFS=: read -r label ccpu scpu <<< "$placement"
        taskset -pc "$scpu" "$spid" > /dev/null
        t0=$(now)
        taskset -c "$ccpu" "$BIN/ftpsh" "$addr" --norc -f "$work/echo.script" > /dev/null
        t1=$(now)
        e=$(elapsed "$t0" "$t1")
        rate=$(python3 -c "print(f'{10000/$e:.0f}')")
        eval "echo_${ccpu}${scpu}=$rate"
        echo "ftpsh echo, $label: $(python3 -c "print(f'{$rate:,}')") round trips/s (whole run, start-up included)"
    done
    taskset -pc 0-$(( $(nproc) - 1 )) "$spid" > /dev/null
    stop_server
    cc -O2 -o "$work/pingpong" bench/pingpong.c
    for placement in "same CPU:0:0" "different CPUs:0:1"; do
        IFS=: read -r label ccpu scpu <<< "$placement"
        floor=$("$work/pingpong" "$ccpu" "$scpu" 10000)
        ours=$(eval "echo \$echo_${ccpu}${scpu}")
        echo "floor (C ping-pong over loopback TCP), $label: $(python3 -c "print(f'{$floor:,.0f}')") round trips/s; ftpsh/floor = $(ratio "$ours" "$floor")"
    done
fi

if [[ " $sections " == *" parallel "* ]]; then
    echo
    echo "== parallel: 8 concurrent downloads of a 256 MiB file"
    head -c $((256 << 20)) /dev/urandom > "$work/root/p.bin"
    cat "$work/root/p.bin" > /dev/null
    t0=$(now); md5sum "$work/root/p.bin" > /dev/null; t1=$(now); m=$(elapsed "$t0" "$t1")
    start_server
    t0=$(now)
    for i in $(seq 8); do
        mkdir -p "$work/local/p$i"
        (cd "$work/local/p$i" && "$BIN/ftpsh" "$addr" --norc -c "get p.bin" > /dev/null) &
    done
    wait $(jobs -p | grep -v "^$server_pid$") 2>/dev/null || true
    t1=$(now)
    stop_server
    p=$(elapsed "$t0" "$t1")
    for i in $(seq 8); do cmp "$work/root/p.bin" "$work/local/p$i/p.bin"; done
    echo "md5sum of one copy: ${m} s ($(python3 -c "print(f'{256/$m:.0f}')") MiB/s)"
    echo "8 downloads: ${p} s, aggregate $(python3 -c "print(f'{8*256/$p:.0f}')") MiB/s = $(python3 -c "print(f'{(8*256/$p)/(256/$m):.2f}')") x md5sum"
    rm -rf "$work/local"/p* "$work/root/p.bin"
fi

if [[ " $sections " == *" small "* ]]; then
    echo
    echo "== small: 2,000 files of 4 KiB in a tree"
    python3 - "$work/root/tree" <<'PY'
import os, sys
root = sys.argv[1]
for d in range(20):
    os.makedirs(f"{root}/d{d:02}", exist_ok=True)
    for f in range(100):
        with open(f"{root}/d{d:02}/f{f:03}.bin", "wb") as fh:
            fh.write(os.urandom(4096))
PY
    floor=$(python3 - "$work/floor" <<'PY'
import os, sys, time
root = sys.argv[1]
data = os.urandom(4096)
t = time.perf_counter()
for d in range(20):
    os.makedirs(f"{root}/d{d:02}", exist_ok=True)
    for f in range(100):
        p = f"{root}/d{d:02}/f{f:03}.bin"
        with open(p + ".tmp", "wb") as fh:
            fh.write(data); fh.flush(); os.fsync(fh.fileno())
        os.rename(p + ".tmp", p)
print(f"{time.perf_counter() - t:.3f}")
PY
)
    start_server
    t0=$(now); (cd "$work/local" && "$BIN/ftpsh" "$addr" --norc -c "get -r tree" > /dev/null); t1=$(now)
    g=$(elapsed "$t0" "$t1")
    diff -r "$work/root/tree" "$work/local/tree"
    t0=$(now); (cd "$work/local" && "$BIN/ftpsh" "$addr" --norc -c "put -r tree tree2" > /dev/null); t1=$(now)
    p=$(elapsed "$t0" "$t1")
    stop_server
    diff -r "$work/root/tree" "$work/root/tree2"
    echo "floor (write+fsync+rename 2,000 files locally): ${floor} s = $(python3 -c "print(f'{2000/$floor:.0f}')") files/s"
    echo "get -r: ${g} s = $(python3 -c "print(f'{2000/$g:.0f}')") files/s, $(ratio "$g" "$floor") x the floor's time"
    echo "put -r: ${p} s = $(python3 -c "print(f'{2000/$p:.0f}')") files/s, $(ratio "$p" "$floor") x the floor's time"
    echo "goal: >= 1,500 files/s each way and within 2x of the floor"
fi
