#!/usr/bin/env bash
# ftpsh benchmark: every figure is taken in one run and reported as a ratio to a
# floor measured in the same run, because the machine is shared and noisy, with
# the goal from issue 14 beside it.
#
#   bench/run.sh                 # everything (needs ~4 GiB free in $TMPDIR)
#   bench/run.sh transfer peers  # or any of the sections below
#
# Sections:
#   transfer  1 GiB random file: md5sum vs `ftpsh get` over loopback (first and repeated
#             download, and buffered writes for comparison), put, peak RSS of both sides
#   echo      10,000 echo round trips on one connection, both CPU placements, vs a C-level floor
#   parallel  8 concurrent downloads of a 256 MiB file: aggregate throughput vs md5sum
#   small     2,000 files of 4 KiB: get -r and put -r vs a local write+fsync+rename loop,
#             and vs `sftp -r` both ways (when an sshd can run)
#   peers     the 1 GiB file through OpenSSH's sftp (default cipher, aes128-gcm, and
#             sftp followed by md5sum), vs md5sum
#   tls       `ftpsh --tls` get of the 1 GiB file vs md5sum and vs sftp aes128-gcm, peak RSS
#             (skipped with a note while ftpsh-server has no --tls)
#   ssh       `ftpsh ssh://` get through the same sshd and cipher vs sftp aes128-gcm
#             (skipped with a note while ftpsh has no --remote-command)
#   sessions  1,000 authenticated idle sessions (bench/sessions.py): server RSS and a new
#             client's echo latency, vs the same with no idle session
#   many      64 concurrent gets of 64 distinct 16 MiB files, all verified: aggregate vs md5sum
#
# The peers, small (sftp -r), tls (sftp row) and ssh sections start a throw-away sshd
# on a free loopback port with its own host key, client key and config in the work
# directory, stopped at exit. When sshd is missing and the bench runs as root, it
# installs openssh-server with apt-get (services kept from starting by a temporary
# policy-rc.d); otherwise those rows are skipped with a note.
#
# Environment: BENCH_SIZE_MIB (1024), BENCH_RUNS (3), BENCH_SESSIONS (1000),
# BENCH_MANY (64 clients of BENCH_MANY_MIB=16 MiB each), BENCH_BIN (a directory with
# ftpsh and ftpsh-server to measure instead of building this tree's release binaries).
set -euo pipefail
cd "$(dirname "$0")/.."
all_sections="transfer echo parallel small peers tls ssh sessions many"
sections=${*:-$all_sections}
for s in $sections; do
    [[ " $all_sections " == *" $s "* ]] || { echo "unknown section '$s' (sections: $all_sections)" >&2; exit 2; }
done
want() { [[ " $sections " == *" $1 "* ]]; }
SIZE_MIB=${BENCH_SIZE_MIB:-1024}
RUNS=${BENCH_RUNS:-3}
SESSIONS=${BENCH_SESSIONS:-1000}
MANY=${BENCH_MANY:-64}
MANY_MIB=${BENCH_MANY_MIB:-16}

if [ -n "${BENCH_BIN:-}" ]; then
    # Binaries built elsewhere (e.g. another worktree's target/release).
    BIN=$(cd "$BENCH_BIN" && pwd)
else
    cargo build --release --quiet --bins
    BIN=$PWD/target/release
fi
BENCH=$PWD/bench
work=$(mktemp -d "${TMPDIR:-/tmp}/ftpsh-bench.XXXXXX")
server_pid= sshd_pid= holder_pid= load_pid= policy_made=
cleanup() {
    set +e
    if [ -n "$server_pid" ]; then
        pkill -TERM -P "$server_pid" 2>/dev/null
        kill "$server_pid" 2>/dev/null
    fi
    [ -n "$holder_pid" ] && kill "$holder_pid" 2>/dev/null
    [ -n "$sshd_pid" ] && kill "$sshd_pid" 2>/dev/null
    [ -n "$load_pid" ] && kill "$load_pid" 2>/dev/null
    [ -n "$policy_made" ] && rm -f "$policy_made"
    # Clients started in the background by a section that failed half-way.
    local j
    for j in $(jobs -p); do kill "$j" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
mkdir -p "$work/root" "$work/local"
export FTPSH_TOKEN=bench-token-0123456789 NO_COLOR=1
# A TLS client records fingerprints it was told to trust: keep them out of ~.
export FTPSH_KNOWN_SERVERS=$work/known_servers

now() { date +%s.%N; }
elapsed() { python3 -c "print(f'{$2 - $1:.3f}')"; }
median() { tr ' ' '\n' | sort -g | awk 'NF {a[++n]=$1} END {print a[int((n+1)/2)]}'; }
ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }
calc() { python3 -c "print(f'{$1:$2}')"; }
rss_mib() { awk -F': ' '/Maximum resident set size/ {printf "%.1f", $2/1024}' "$1"; }
# Seconds a command takes (its output discarded).
timed() {
    local t0 t1
    t0=$(now)
    "$@" > /dev/null
    t1=$(now)
    elapsed "$t0" "$t1"
}

# The summary at the end: one Markdown row per figure, with its floor and goal.
summary=$work/summary.md
# figure WHAT MEASURED FLOOR VALUE OP TARGET: prints "VALUE (goal OP TARGET: met)"
# and records the row. OP is >= or <=; an empty OP means no goal (a peer).
figure() {
    local what=$1 measured=$2 floor=$3 value=$4 op=$5 target=$6 verdict=
    if [ -n "$op" ]; then
        verdict=$(python3 -c "v, t = $value, $target; print('met' if (v >= t if '$op' == '>=' else v <= t) else 'NOT met')")
        verdict=" (goal $op $target: $verdict)"
    fi
    echo "  => $what: $value$verdict   [$measured; floor: $floor]"
    printf '| %s | %s | %s | %s%s |\n' "$what" "$measured" "$floor" "$value" "$verdict" >> "$summary"
}
skip() {
    echo "  SKIPPED $1: $2"
    printf '| %s | skipped: %s | | |\n' "$1" "$2" >> "$summary"
}
section() {
    echo
    echo "== $1   (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
}

# The load average every 5 s during the run, summarised at the end.
python3 -c '
import sys, time
while True:
    with open("/proc/loadavg") as f, open(sys.argv[1], "a") as out:
        out.write(f.read().split()[0] + "\n")
    time.sleep(5)
' "$work/load.log" &
load_pid=$!

# start_server [ARGS...]: a server on a free loopback port under time(1); sets
# server_pid (time's), spid (the server's), addr, and fingerprint (with --tls).
start_server() {
    : > "$work/server.out"
    /usr/bin/time -v -o "$work/server.time" "$BIN/ftpsh-server" --root "$work/root" \
        --listen 127.0.0.1:0 --quiet --allow-exec "$@" > "$work/server.out" &
    server_pid=$!
    local want_line='^listening on'
    [[ " $* " == *" --tls "* ]] && want_line='^fingerprint '
    for _ in $(seq 200); do
        grep -q "$want_line" "$work/server.out" 2>/dev/null && break
        kill -0 "$server_pid" 2>/dev/null || { echo "ftpsh-server $* did not start" >&2; server_pid=; return 1; }
        sleep 0.05
    done
    addr=$(sed -n 's/^listening on //p' "$work/server.out")
    fingerprint=$(sed -n 's/^fingerprint //p' "$work/server.out")
    [ -n "$addr" ] || { echo "ftpsh-server $* printed no address" >&2; return 1; }
    spid=$(pgrep -P "$server_pid" -x ftpsh-server || echo "$server_pid")
}
stop_server() {
    # time(1) is the parent: signal the server itself, then wait for time's report.
    pkill -TERM -P "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
}

# The client's arguments before the address (e.g. --tls --fingerprint ...).
client_args=()
# One timed `ftpsh get big.bin` into an empty local directory; prints seconds.
# Extra arguments are environment assignments for the client.
timed_get() {
    rm -f "$work/local/big.bin"
    local t0 t1
    t0=$(now)
    (cd "$work/local" && env "$@" /usr/bin/time -v -o "$work/client.time" \
        "$BIN/ftpsh" "${client_args[@]}" "$addr" --norc -c "get big.bin" > /dev/null)
    t1=$(now)
    elapsed "$t0" "$t1"
}

# The 1 GiB (BENCH_SIZE_MIB) random file the transfer, peers, tls and ssh sections share.
big=$work/root/big.bin
ensure_big() {
    if [ ! -f "$big" ]; then
        head -c "$((SIZE_MIB << 20))" /dev/urandom > "$big"
    fi
    cat "$big" > /dev/null
}
rate() { python3 -c "print(f'{$SIZE_MIB/$1:.0f}')"; }

# --- The throw-away sshd --------------------------------------------------------
sshd_state=   # empty: not tried yet; "up"; or why it cannot run
install_sshd() {
    # Debian starts a freshly installed sshd on port 22 for everyone: a temporary
    # policy-rc.d (exit 101) keeps every service from starting during the install.
    local rc=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        policy_made=/usr/sbin/policy-rc.d
    fi
    { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y openssh-server; } \
        > "$work/apt.log" 2>&1 || rc=$?
    [ -n "$policy_made" ] && rm -f "$policy_made"
    policy_made=
    [ "$rc" = 0 ] || tail -5 "$work/apt.log" | sed 's/^/  apt-get: /'
    return "$rc"
}
ensure_sshd() {
    if [ -n "$sshd_state" ]; then [ "$sshd_state" = up ]; return; fi
    local sshd
    sshd=$(command -v sshd || echo /usr/sbin/sshd)
    if [ ! -x "$sshd" ]; then
        if [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
            echo "  (no sshd here: running apt-get update and apt-get install -y openssh-server;"
            echo "   services are kept from starting, the bench starts its own sshd on loopback)"
            if ! install_sshd; then
                sshd_state="no sshd, and installing openssh-server failed (see above)"
                return 1
            fi
        else
            sshd_state="no sshd, and not root to install openssh-server"
            return 1
        fi
    fi
    for tool in ssh sftp ssh-keygen; do
        command -v "$tool" > /dev/null || { sshd_state="no $tool (openssh-client)"; return 1; }
    done
    local d=$work/ssh
    mkdir -p "$d"
    chmod 700 "$d"
    ssh-keygen -q -t ed25519 -N '' -f "$d/host_key"
    ssh-keygen -q -t ed25519 -N '' -f "$d/client_key"
    cp "$d/client_key.pub" "$d/authorized_keys"
    # sshd (as root) needs its privilege-separation directory.
    [ "$(id -u)" = 0 ] && mkdir -p /run/sshd && chmod 755 /run/sshd
    ssh_user=$(id -un)
    local tries
    for tries in 1 2 3; do
        sshd_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        cat > "$d/sshd_config" <<EOF
Port $sshd_port
ListenAddress 127.0.0.1
HostKey $d/host_key
PidFile $d/sshd.pid
AuthorizedKeysFile $d/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
Subsystem sftp internal-sftp
MaxStartups 100:30:200
LogLevel ERROR
EOF
        "$sshd" -D -e -f "$d/sshd_config" 2> "$d/sshd.log" &
        sshd_pid=$!
        ssh_opts=(-i "$d/client_key" -o StrictHostKeyChecking=no -o "UserKnownHostsFile=$d/known_hosts"
            -o BatchMode=yes -o LogLevel=ERROR)
        for _ in $(seq 50); do
            if ssh "${ssh_opts[@]}" -p "$sshd_port" "$ssh_user@127.0.0.1" true 2> /dev/null; then
                sshd_state=up
                echo "  (sshd $("$sshd" -V 2>&1 | head -1 || true) on 127.0.0.1:$sshd_port for this run, as $ssh_user)"
                return 0
            fi
            kill -0 "$sshd_pid" 2> /dev/null || break
            sleep 0.1
        done
        kill "$sshd_pid" 2> /dev/null || true
        wait "$sshd_pid" 2> /dev/null || true
        sshd_pid=
    done
    sshd_state="the bench's sshd did not accept a login: $(tail -1 "$d/sshd.log")"
    return 1
}
# sftp_batch FILE [SFTP OPTIONS...]: seconds to run the batch FILE through sftp.
sftp_batch() {
    local batch=$1
    shift
    timed sftp -q -b "$batch" -P "$sshd_port" "${ssh_opts[@]}" "$@" "$ssh_user@127.0.0.1"
}
gcm=aes128-gcm@openssh.com
printf 'get %s %s\n' "$big" "$work/local/sftp.bin" > "$work/sftp-get.batch"
# One timed sftp download of the big file with aes128-gcm (the TLS and SSH rows' peer).
sftp_gcm_get() {
    rm -f "$work/local/sftp.bin"
    sftp_batch "$work/sftp-get.batch" -c "$gcm"
}

server_help=$("$BIN/ftpsh-server" --help 2>&1 || true)
client_help=$("$BIN/ftpsh" --help 2>&1 || true)

echo "ftpsh benchmark, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "MD5: $("$BIN/ftpsh" --version)"
echo "sections: $sections; BENCH_SIZE_MIB=$SIZE_MIB BENCH_RUNS=$RUNS"

if want transfer; then
    section "transfer: ${SIZE_MIB} MiB random file, warm cache, median of $RUNS"
    ensure_big
    start_server
    md5s=() pairs=() firsts=() repeats=() buffered=() puts=() coldputs=()
    for i in $(seq "$RUNS"); do
        md5s+=("$(timed md5sum "$big")")
        # Two passes at once: what a first download costs at least, as both ends hash.
        t0=$(now); md5sum "$big" > /dev/null & md5sum "$big" > /dev/null; wait $!; t1=$(now)
        pairs+=("$(elapsed "$t0" "$t1")")
        # A new mtime makes the server forget the digest: it hashes while sending.
        touch "$big"
        firsts+=("$(timed_get)")
        first_rss_client=$(rss_mib "$work/client.time")
        # The server now remembers the digest and sends with sendfile.
        buffered+=("$(timed_get FTPSH_DIRECT_IO=0)")
        repeats+=("$(timed_get)")
        # And back: an upload of the original file, in the page cache like the
        # file md5sum reads (warm cache, as the get's source is).
        t0=$(now)
        (cd "$work/local" && "$BIN/ftpsh" "$addr" --norc -c "put $big up-$i.bin" > /dev/null)
        t1=$(now)
        puts+=("$(elapsed "$t0" "$t1")")
        cmp "$big" "$work/root/up-$i.bin"
        rm -f "$work/root/up-$i.bin"
        # The copy just downloaded is not in the page cache (written with
        # O_DIRECT), and the disk may still be busy with it: what the put
        # figure measured until 2026-12-01 (see bench/README.md).
        t0=$(now)
        (cd "$work/local" && "$BIN/ftpsh" "$addr" --norc -c "put big.bin up-$i.bin" > /dev/null)
        t1=$(now)
        coldputs+=("$(elapsed "$t0" "$t1")")
        cmp "$big" "$work/root/up-$i.bin"
        rm -f "$work/root/up-$i.bin"
    done
    stop_server
    cmp "$big" "$work/local/big.bin"
    server_rss=$(rss_mib "$work/server.time")
    # The same first download where no libcrypto can be loaded: both ends use
    # md-5's portable Rust (what a machine without OpenSSL's library gets).
    FTPSH_MD5=rust start_server
    portables=()
    for i in $(seq "$RUNS"); do
        touch "$big"
        portables+=("$(timed_get FTPSH_MD5=rust)")
    done
    stop_server
    cmp "$big" "$work/local/big.bin"
    m=$(echo "${md5s[*]}" | median)
    f=$(echo "${firsts[*]}" | median)
    r=$(echo "${repeats[*]}" | median)
    b=$(echo "${buffered[*]}" | median)
    p=$(echo "${pairs[*]}" | median)
    u=$(echo "${puts[*]}" | median)
    cu=$(echo "${coldputs[*]}" | median)
    o=$(echo "${portables[*]}" | median)
    echo "md5sum:                          ${m} s  ($(rate "$m") MiB/s)   runs: ${md5s[*]}"
    echo "two md5sum at once:              ${p} s  (the floor of a first download: both ends hash)"
    echo "ftpsh get, first download:       ${f} s  ($(rate "$f") MiB/s)   runs: ${firsts[*]}   ratio $(ratio "$m" "$f") (goal >= 0.90), $(ratio "$p" "$f") of the two-pass floor"
    echo "  same, portable MD5 both ends:  ${o} s  ($(rate "$o") MiB/s)   runs: ${portables[*]}   ratio $(ratio "$m" "$o")   (FTPSH_MD5=rust)"
    echo "ftpsh get, repeated download:    ${r} s  ($(rate "$r") MiB/s)   runs: ${repeats[*]}   ratio $(ratio "$m" "$r") (goal >= 1.2)"
    echo "  same, FTPSH_DIRECT_IO=0:       ${b} s  ($(rate "$b") MiB/s)   runs: ${buffered[*]}   ratio $(ratio "$m" "$b")"
    echo "ftpsh put (both ends hash):      ${u} s  ($(rate "$u") MiB/s)   runs: ${puts[*]}   ratio $(ratio "$m" "$u") (goal >= 0.85)"
    echo "  same, source not in page cache: ${cu} s  ($(rate "$cu") MiB/s)   runs: ${coldputs[*]}   ratio $(ratio "$m" "$cu")   (the copy just downloaded, written with O_DIRECT)"
    echo "ratio = ftpsh throughput / md5sum throughput"
    echo "(first: both sides hash, two MD5 passes on $(nproc) CPUs; repeated: the server remembers the digest)"
    echo "peak RSS: client $(rss_mib "$work/client.time") MiB, server $server_rss MiB   goal <= 16 MiB each"
    floor="md5sum $m s ($(rate "$m") MiB/s)"
    figure "first ${SIZE_MIB} MiB get (both ends hash)" "$f s, $(rate "$f") MiB/s" "$floor" "$(ratio "$m" "$f")" ">=" 0.90
    figure "repeated ${SIZE_MIB} MiB get" "$r s, $(rate "$r") MiB/s" "$floor" "$(ratio "$m" "$r")" ">=" 1.2
    figure "first ${SIZE_MIB} MiB put" "$u s, $(rate "$u") MiB/s" "$floor" "$(ratio "$m" "$u")" ">=" 0.85
    repeat_rss_client=$(rss_mib "$work/client.time")
    figure "peak RSS, get, client (MiB)" "first get $first_rss_client MiB, repeated $repeat_rss_client MiB" "-" "$(calc "max($first_rss_client, $repeat_rss_client)" .1f)" "<=" 16
    figure "peak RSS, get/put, server (MiB)" "whole server run" "-" "$server_rss" "<=" 16
    rm -f "$work/local/big.bin"
fi

if want echo; then
    section "echo: 10,000 round trips on one connection"
    python3 - "$work/echo.script" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("echo ping\n" * 10000)
PY
    start_server
    for placement in "same CPU:0:0" "different CPUs:0:1"; do
        IFS=: read -r label ccpu scpu <<< "$placement"
        taskset -pc "$scpu" "$spid" > /dev/null
        e=$(timed taskset -c "$ccpu" "$BIN/ftpsh" "$addr" --norc -f "$work/echo.script")
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
        echo "floor (C ping-pong over loopback TCP), $label: $(python3 -c "print(f'{$floor:,.0f}')") round trips/s; ftpsh/floor = $(ratio "$ours" "$floor") (goal >= 0.8)"
        figure "echo, $label (pinned)" "$(calc "$ours" ,.0f)/s" "C ping-pong $(calc "$floor" ,.0f)/s" "$(ratio "$ours" "$floor")" ">=" 0.8
    done
fi

if want parallel; then
    section "parallel: 8 concurrent downloads of a 256 MiB file"
    head -c $((256 << 20)) /dev/urandom > "$work/root/p.bin"
    cat "$work/root/p.bin" > /dev/null
    m=$(timed md5sum "$work/root/p.bin")
    start_server
    t0=$(now)
    pids=()
    for i in $(seq 8); do
        mkdir -p "$work/local/p$i"
        (cd "$work/local/p$i" && "$BIN/ftpsh" "$addr" --norc -c "get p.bin" > /dev/null) &
        pids+=($!)
    done
    for pid in "${pids[@]}"; do wait "$pid"; done
    t1=$(now)
    stop_server
    p=$(elapsed "$t0" "$t1")
    for i in $(seq 8); do cmp "$work/root/p.bin" "$work/local/p$i/p.bin"; done
    echo "md5sum of one copy: ${m} s ($(python3 -c "print(f'{256/$m:.0f}')") MiB/s)"
    echo "8 downloads: ${p} s, aggregate $(python3 -c "print(f'{8*256/$p:.0f}')") MiB/s = $(python3 -c "print(f'{(8*256/$p)/(256/$m):.2f}')") x md5sum"
    figure "8 concurrent gets of 256 MiB (same file)" "aggregate $(calc "8*256/$p" .0f) MiB/s" "md5sum $(calc "256/$m" .0f) MiB/s" "$(calc "(8*256/$p)/(256/$m)" .2f)" "" ""
    rm -rf "$work/local"/p* "$work/root/p.bin"
fi

if want small; then
    section "small: 2,000 files of 4 KiB in a tree, median of $RUNS"
    python3 - "$work/root/tree" <<'PY'
import os, sys
root = sys.argv[1]
for d in range(20):
    os.makedirs(f"{root}/d{d:02}", exist_ok=True)
    for f in range(100):
        with open(f"{root}/d{d:02}/f{f:03}.bin", "wb") as fh:
            fh.write(os.urandom(4096))
PY
    # The durability floor: what ftpsh does per file (write, fsync, rename), locally.
    write_floor() {
        python3 - "$work/floor" <<'PY'
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
        rm -rf "$work/floor"
    }
    have_sftp=
    ensure_sshd && have_sftp=1
    printf 'get -r %s %s\n' "$work/root/tree" "$work/local/sftptree" > "$work/sftp-tree-get.batch"
    # Into the existing root: the copy lands in root/sftptree.
    printf 'put -r %s %s\n' "$work/local/sftptree" "$work/root" > "$work/sftp-tree-put.batch"
    start_server
    floors=() gets=() puts=() sgets=() sputs=()
    for i in $(seq "$RUNS"); do
        rm -rf "$work/local/tree" "$work/root/tree2" "$work/local/sftptree" "$work/root/sftptree"
        # Each timed run starts from a file system with nothing left to write:
        # what one run leaves dirty (sftp syncs nothing) is not the next
        # one's to flush (ftpsh's syncfs, or a journal commit, would wait for it).
        sync
        floors+=("$(write_floor)")
        sync
        gets+=("$(cd "$work/local" && timed "$BIN/ftpsh" "$addr" --norc -c "get -r tree")")
        diff -r "$work/root/tree" "$work/local/tree"
        sync
        puts+=("$(cd "$work/local" && timed "$BIN/ftpsh" "$addr" --norc -c "put -r tree tree2")")
        diff -r "$work/root/tree" "$work/root/tree2"
        if [ -n "$have_sftp" ]; then
            sync
            sgets+=("$(sftp_batch "$work/sftp-tree-get.batch")")
            diff -r "$work/root/tree" "$work/local/sftptree"
            sync
            sputs+=("$(sftp_batch "$work/sftp-tree-put.batch")")
            diff -r "$work/root/tree" "$work/root/sftptree"
        fi
    done
    stop_server
    floor=$(echo "${floors[*]}" | median)
    g=$(echo "${gets[*]}" | median)
    p=$(echo "${puts[*]}" | median)
    fps() { python3 -c "print(f'{2000/$1:,.0f}')"; }
    echo "floor (write+fsync+rename 2,000 files locally): ${floor} s = $(fps "$floor") files/s   runs: ${floors[*]}"
    echo "get -r: ${g} s = $(fps "$g") files/s   runs: ${gets[*]}   $(ratio "$g" "$floor") x the floor's time (goal <= 1.2)"
    echo "put -r: ${p} s = $(fps "$p") files/s   runs: ${puts[*]}   $(ratio "$p" "$floor") x the floor's time (goal <= 1.2)"
    ffloor="write+fsync+rename $floor s, $(fps "$floor") files/s"
    figure "get -r 2,000 x 4 KiB, x the floor's time" "$g s, $(fps "$g") files/s" "$ffloor" "$(ratio "$g" "$floor")" "<=" 1.2
    figure "put -r 2,000 x 4 KiB, x the floor's time" "$p s, $(fps "$p") files/s" "$ffloor" "$(ratio "$p" "$floor")" "<=" 1.2
    if [ -n "$have_sftp" ]; then
        sg=$(echo "${sgets[*]}" | median)
        sp=$(echo "${sputs[*]}" | median)
        # sftp neither fsyncs nor verifies: compared with, not held to the floor.
        echo "sftp -r get: ${sg} s = $(fps "$sg") files/s   runs: ${sgets[*]}   ftpsh get -r is $(ratio "$sg" "$g") x as fast (goal >= 2)"
        echo "sftp -r put: ${sp} s = $(fps "$sp") files/s   runs: ${sputs[*]}   ftpsh put -r is $(ratio "$sp" "$p") x as fast (goal >= 2)"
        echo "(sftp writes without fsync and verifies nothing)"
        figure "get -r vs sftp -r (speed-up)" "ftpsh $g s" "sftp -r get $sg s ($(fps "$sg") files/s)" "$(ratio "$sg" "$g")" ">=" 2
        figure "put -r vs sftp -r (speed-up)" "ftpsh $p s" "sftp -r put $sp s ($(fps "$sp") files/s)" "$(ratio "$sp" "$p")" ">=" 2
    else
        skip "sftp -r (small)" "$sshd_state"
    fi
    rm -rf "$work/local/tree" "$work/local/sftptree" "$work/root/tree2" "$work/root/sftptree" "$work/root/tree"
fi

if want peers; then
    section "peers: ${SIZE_MIB} MiB through OpenSSH's sftp, median of $RUNS"
    if ensure_sshd; then
        ensure_big
        md5s=() defaults=() verified=() gcms=()
        for i in $(seq "$RUNS"); do
            md5s+=("$(timed md5sum "$big")")
            rm -f "$work/local/sftp.bin"
            s=$(sftp_batch "$work/sftp-get.batch")
            # "sftp then md5sum": the verified way with sftp, the copy hashed after.
            v=$(timed md5sum "$work/local/sftp.bin")
            defaults+=("$s")
            verified+=("$(calc "$s + $v" .3f)")
            gcms+=("$(sftp_gcm_get)")
        done
        cmp "$big" "$work/local/sftp.bin"
        rm -f "$work/local/sftp.bin"
        m=$(echo "${md5s[*]}" | median)
        d=$(echo "${defaults[*]}" | median)
        v=$(echo "${verified[*]}" | median)
        g=$(echo "${gcms[*]}" | median)
        echo "md5sum:                     ${m} s ($(rate "$m") MiB/s)   runs: ${md5s[*]}"
        echo "sftp, default cipher:       ${d} s ($(rate "$d") MiB/s)   runs: ${defaults[*]}   ratio $(ratio "$m" "$d")"
        echo "sftp -c $gcm: ${g} s ($(rate "$g") MiB/s)   runs: ${gcms[*]}   ratio $(ratio "$m" "$g")"
        echo "sftp then md5sum:           ${v} s ($(rate "$v") MiB/s)   runs: ${verified[*]}   ratio $(ratio "$m" "$v")"
        echo "(peers: no goal of their own; ftpsh's TLS and SSH rows are compared with the aes128-gcm row)"
        floor="md5sum $m s ($(rate "$m") MiB/s)"
        figure "sftp get, default cipher (peer)" "$d s, $(rate "$d") MiB/s" "$floor" "$(ratio "$m" "$d")" "" ""
        figure "sftp get, $gcm (peer)" "$g s, $(rate "$g") MiB/s" "$floor" "$(ratio "$m" "$g")" "" ""
        figure "sftp get then md5sum (peer, verified)" "$v s, $(rate "$v") MiB/s" "$floor" "$(ratio "$m" "$v")" "" ""
    else
        skip "sftp rows (peers)" "$sshd_state"
    fi
fi

if want tls; then
    section "tls: ${SIZE_MIB} MiB get over TLS on loopback, median of $RUNS"
    if ! grep -q -- --tls <<< "$server_help"; then
        skip "get over TLS" "this ftpsh-server has no --tls yet (issue 12)"
    elif ! grep -q -- --tls <<< "$client_help"; then
        skip "get over TLS" "this ftpsh has no --tls yet (issue 12)"
    else
        ensure_big
        identity=()
        grep -q -- --identity <<< "$server_help" && identity=(--identity "$work/identity")
        start_server --tls "${identity[@]}"
        [ -n "$fingerprint" ] || { echo "ftpsh-server --tls printed no fingerprint line" >&2; exit 1; }
        client_args=(--tls --fingerprint "$fingerprint")
        have_sftp=
        ensure_sshd && have_sftp=1
        md5s=() firsts=() repeats=() gcms=()
        for i in $(seq "$RUNS"); do
            md5s+=("$(timed md5sum "$big")")
            touch "$big"
            firsts+=("$(timed_get)")
            tls_rss_client=$(rss_mib "$work/client.time")
            repeats+=("$(timed_get)")
            [ -n "$have_sftp" ] && gcms+=("$(sftp_gcm_get)")
        done
        client_args=()
        stop_server
        cmp "$big" "$work/local/big.bin"
        rm -f "$work/local/big.bin" "$work/local/sftp.bin"
        tls_rss_server=$(rss_mib "$work/server.time")
        m=$(echo "${md5s[*]}" | median)
        f=$(echo "${firsts[*]}" | median)
        r=$(echo "${repeats[*]}" | median)
        echo "md5sum:                        ${m} s ($(rate "$m") MiB/s)   runs: ${md5s[*]}"
        echo "ftpsh --tls get, first:        ${f} s ($(rate "$f") MiB/s)   runs: ${firsts[*]}   ratio $(ratio "$m" "$f") (goal >= 0.75)"
        echo "ftpsh --tls get, repeated:     ${r} s ($(rate "$r") MiB/s)   runs: ${repeats[*]}   ratio $(ratio "$m" "$r")"
        echo "peak RSS over TLS: client $tls_rss_client MiB (first get), server $tls_rss_server MiB   goal <= 16 MiB each"
        floor="md5sum $m s ($(rate "$m") MiB/s)"
        figure "first ${SIZE_MIB} MiB get over TLS" "$f s, $(rate "$f") MiB/s" "$floor" "$(ratio "$m" "$f")" ">=" 0.75
        figure "repeated ${SIZE_MIB} MiB get over TLS" "$r s, $(rate "$r") MiB/s" "$floor" "$(ratio "$m" "$r")" ">=" 0.75
        if [ -n "$have_sftp" ]; then
            g=$(echo "${gcms[*]}" | median)
            echo "sftp -c $gcm:   ${g} s ($(rate "$g") MiB/s)   runs: ${gcms[*]}   TLS first get is $(ratio "$g" "$f") x as fast (goal >= 1.3)"
            figure "first get over TLS vs sftp aes128-gcm (speed-up)" "ftpsh --tls $f s" "sftp -c $gcm $g s ($(rate "$g") MiB/s)" "$(ratio "$g" "$f")" ">=" 1.3
        else
            skip "TLS vs sftp aes128-gcm" "$sshd_state"
        fi
        figure "peak RSS over TLS, client (MiB)" "first get" "-" "$tls_rss_client" "<=" 16
        figure "peak RSS over TLS, server (MiB)" "whole server run" "-" "$tls_rss_server" "<=" 16
    fi
fi

if want ssh; then
    section "ssh: ${SIZE_MIB} MiB get over ssh:// (same sshd, $gcm), median of $RUNS"
    if ! grep -q remote-command <<< "$client_help"; then
        skip "get over SSH" "this ftpsh has no --remote-command (no ssh:// transport) yet (issue 12)"
    elif ! grep -q -- --stdio <<< "$server_help"; then
        skip "get over SSH" "this ftpsh-server has no --stdio yet (issue 12)"
    elif ! ensure_sshd; then
        skip "get over SSH" "$sshd_state"
    else
        ensure_big
        saved_addr=${addr:-}
        addr="ssh://$ssh_user@127.0.0.1:$sshd_port$work/root"
        client_args=(--remote-command "$BIN/ftpsh-server")
        ssh_cmd="ssh -i $work/ssh/client_key -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR -c $gcm"
        md5s=() gets=() gcms=() cached=() cats=()
        # A digest remembered across sessions needs a file (--digest-cache;
        # by default one under ~/.cache, which the first row turns off).
        no_dc=
        grep -q -- --no-digest-cache <<< "$server_help" && no_dc=--no-digest-cache
        dc=$work/ssh-digests
        rm -f "$dc"
        for i in $(seq "$RUNS"); do
            md5s+=("$(timed md5sum "$big")")
            gcms+=("$(sftp_gcm_get)")
            # Each ssh:// session starts its own ftpsh-server --stdio; without its
            # digest cache file both ends hash every time.
            client_args=(--remote-command "$BIN/ftpsh-server $no_dc")
            gets+=("$(timed_get "FTPSH_SSH=$ssh_cmd")")
            # The server's digest from the cache file (filled by the first
            # run, before the clock: this row is a repeated download).
            client_args=(--remote-command "$BIN/ftpsh-server --digest-cache $dc")
            [ -f "$dc" ] || timed_get "FTPSH_SSH=$ssh_cmd" > /dev/null
            cached+=("$(timed_get "FTPSH_SSH=$ssh_cmd")")
            # The floor of a verified download with no server-side hashing:
            # the bytes through the same ssh, hashed at this end.
            cats+=("$(timed bash -c "$ssh_cmd -p $sshd_port $ssh_user@127.0.0.1 cat $big | md5sum")")
        done
        client_args=()
        addr=$saved_addr
        cmp "$big" "$work/local/big.bin"
        cmp "$big" "$work/local/sftp.bin"
        rm -f "$work/local/big.bin" "$work/local/sftp.bin"
        m=$(echo "${md5s[*]}" | median)
        f=$(echo "${gets[*]}" | median)
        g=$(echo "${gcms[*]}" | median)
        echo "md5sum:                        ${m} s ($(rate "$m") MiB/s)   runs: ${md5s[*]}"
        echo "sftp -c $gcm:   ${g} s ($(rate "$g") MiB/s)   runs: ${gcms[*]}   ratio $(ratio "$m" "$g")"
        echo "ftpsh ssh:// get (verified):   ${f} s ($(rate "$f") MiB/s)   runs: ${gets[*]}   ratio $(ratio "$m" "$f"); $(ratio "$g" "$f") x the sftp row (goal >= 1.0)"
        c=$(echo "${cached[*]}" | median)
        k=$(echo "${cats[*]}" | median)
        echo "ftpsh ssh:// get, --digest-cache (repeated): ${c} s ($(rate "$c") MiB/s)   runs: ${cached[*]}   $(ratio "$g" "$c") x the sftp row"
        echo "ssh cat | md5sum (floor with no server hashing): ${k} s   runs: ${cats[*]}   $(ratio "$g" "$k") x the sftp row"
        echo "peak RSS over SSH: client $(rss_mib "$work/client.time") MiB (the ssh child not included)"
        figure "get over ssh:// vs sftp aes128-gcm (speed-up)" "ftpsh $f s, $(rate "$f") MiB/s; $(ratio "$m" "$f") x md5sum" "sftp -c $gcm $g s ($(rate "$g") MiB/s)" "$(ratio "$g" "$f")" ">=" 1.0
        figure "same, repeated with --digest-cache" "ftpsh $c s" "sftp -c $gcm $g s; ssh cat into md5sum $k s ($(ratio "$g" "$k") x sftp)" "$(ratio "$g" "$c")" "" ""
    fi
fi

if want sessions; then
    section "sessions: $SESSIONS authenticated idle sessions"
    vmrss_mib() { awk '/^VmRSS/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }
    threads() { awk '/^Threads/ {print $2}' "/proc/$1/status"; }
    # Median wall time (ms) of 20 new `ftpsh ADDR -c echo` processes: start-up,
    # connect, handshake and one round trip, what a user waits for.
    client_echo_ms() {
        local times=() i
        for i in $(seq 20); do
            times+=("$(timed "$BIN/ftpsh" "$addr" --norc -c "echo ping")")
        done
        echo "${times[*]}" | median | awk '{printf "%.1f", $1 * 1000}'
    }
    need_fds=$((SESSIONS * 2 + 256))
    [ "$(ulimit -n)" -ge "$need_fds" ] || ulimit -n "$need_fds" 2> /dev/null || true
    start_server --max-connections $((SESSIONS + 64))
    rss0=$(vmrss_mib "$spid") threads0=$(threads "$spid")
    read -r rt0 rtmax0 < <(python3 "$BENCH/sessions.py" echo "$addr" 20)
    wall0=$(client_echo_ms)
    python3 "$BENCH/sessions.py" hold "$addr" "$SESSIONS" > "$work/hold.out" &
    holder_pid=$!
    for _ in $(seq 1200); do
        grep -q '^ready\|^failed' "$work/hold.out" && break
        kill -0 "$holder_pid" 2> /dev/null || break
        sleep 0.1
    done
    if grep -q '^ready' "$work/hold.out"; then
        read -r _ opened took < "$work/hold.out"
        sleep 1
        rss1=$(vmrss_mib "$spid") threads1=$(threads "$spid")
        read -r rt1 rtmax1 < <(python3 "$BENCH/sessions.py" echo "$addr" 20)
        wall1=$(client_echo_ms)
        rss_after=$(vmrss_mib "$spid")
        kill "$holder_pid"
        wait "$holder_pid" || true
        holder_pid=
        echo "idle sessions opened and authenticated: $opened in $took s"
        echo "server RSS: $rss1 MiB with $opened idle sessions ($threads1 threads), $rss0 MiB with none ($threads0 threads); $rss_after MiB after the echoes   goal <= 256 MiB"
        echo "new client's echo, one connection, median of 20 round trips: $rt1 ms (largest $rtmax1 ms); with no idle session $rt0 ms (largest $rtmax0 ms)"
        echo "new ftpsh process -c echo (start-up, connect, token, echo), median of 20: $wall1 ms; with no idle session $wall0 ms   goal <= 100 ms"
        figure "server RSS with $opened idle sessions (MiB)" "$rss1 MiB, $threads1 threads" "$rss0 MiB with no session" "$rss1" "<=" 256
        figure "new client's echo with $opened idle sessions (ms, median of 20)" "round trip $rt1 ms on a new connection" "$wall0 ms / $rt0 ms with no session" "$wall1" "<=" 100
    else
        kill "$holder_pid" 2> /dev/null || true
        wait "$holder_pid" 2> /dev/null || true
        holder_pid=
        echo "could not hold $SESSIONS sessions: $(cat "$work/hold.out")"
        figure "$SESSIONS idle sessions" "$(cat "$work/hold.out")" "-" 0 ">=" 1
    fi
    stop_server
fi

if want many; then
    total=$((MANY * MANY_MIB))
    section "many: $MANY concurrent gets of $MANY distinct ${MANY_MIB} MiB files, median of $RUNS"
    mkdir -p "$work/root/many"
    head -c "$((total << 20))" /dev/urandom | split -b "${MANY_MIB}M" -d -a 3 - "$work/root/many/f"
    files=("$work/root/many"/f*)
    cat "${files[@]}" > /dev/null
    start_server
    md5s=() alls=() failed=0
    for i in $(seq "$RUNS"); do
        md5s+=("$(timed md5sum "${files[@]}")")
        # New mtimes: the server hashes every file while sending (first downloads).
        touch "${files[@]}"
        rm -rf "$work/local/many"
        for j in $(seq "$MANY"); do mkdir -p "$work/local/many/c$j"; done
        pids=()
        t0=$(now)
        for j in $(seq "$MANY"); do
            f=$(basename "${files[$((j - 1))]}")
            (cd "$work/local/many/c$j" && exec "$BIN/ftpsh" "$addr" --norc -c "get many/$f" > /dev/null 2> err) &
            pids+=($!)
        done
        for pid in "${pids[@]}"; do wait "$pid" || failed=$((failed + 1)); done
        t1=$(now)
        alls+=("$(elapsed "$t0" "$t1")")
        for j in $(seq "$MANY"); do
            f=$(basename "${files[$((j - 1))]}")
            cmp "${files[$((j - 1))]}" "$work/local/many/c$j/$f" || failed=$((failed + 1))
        done
    done
    stop_server
    many_rss=$(rss_mib "$work/server.time")
    [ "$failed" = 0 ] || cat "$work"/local/many/c*/err | sort | uniq -c | head -5
    rm -rf "$work/local/many" "$work/root/many"
    m=$(echo "${md5s[*]}" | median)
    a=$(echo "${alls[*]}" | median)
    echo "md5sum of the $MANY files (${total} MiB): ${m} s ($(calc "$total/$m" .0f) MiB/s)   runs: ${md5s[*]}"
    echo "$MANY gets at once: ${a} s, aggregate $(calc "$total/$a" .0f) MiB/s   runs: ${alls[*]}   = $(ratio "$m" "$a") x md5sum (goal >= 0.8); failed or differing: $failed; server peak RSS $many_rss MiB"
    figure "$MANY concurrent gets of ${MANY_MIB} MiB (distinct files, $failed failed)" "aggregate $(calc "$total/$a" .0f) MiB/s" "md5sum $(calc "$total/$m" .0f) MiB/s" "$(ratio "$m" "$a")" ">=" 0.8
    [ "$failed" = 0 ] || { echo "$failed of the $MANY gets failed or differ" >&2; exit 1; }
fi

section "summary (goals from issue 14)"
kill "$load_pid" 2> /dev/null || true
load_pid=
python3 - "$work/load.log" <<'PY'
import sys
xs = [float(l) for l in open(sys.argv[1]) if l.strip()]
if xs:
    print(f"load average (1 min) during the run: min {min(xs):.2f}, mean {sum(xs)/len(xs):.2f}, "
          f"max {max(xs):.2f} ({len(xs)} samples, every 5 s)")
PY
echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, $(uname -r), BENCH_SIZE_MIB=$SIZE_MIB, BENCH_RUNS=$RUNS"
echo
echo "| what | measured | floor in the same run | ratio or value (goal) |"
echo "| --- | --- | --- | --- |"
cat "$summary" 2> /dev/null || true
