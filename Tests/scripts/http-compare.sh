#!/usr/bin/env bash
# HTTP side by side: gnetd's http service, nginx (Debian's nginx-light) and the plain-C
# responder (gnet-c-http), all answering the same 13-byte body, measured with wrk keep-alive
# (depth 1) and pipelined (depth 16, like TechEmpower plaintext) in two configurations:
#   pinned:   1 worker each, server on CPU 0, wrk on CPU 1
#   unpinned: 2 workers each (the C responder is single-threaded: pinned only), wrk unpinned
# gnetd-log is gnetd with its access log on (pinned only).
# For each configuration and depth all servers run at once and are measured in turn, ROUNDS
# times (default 3), the order rotating each round, so that the machine's drift falls on all
# of them alike. Reports per server the median of the rounds' requests/s, p99 and server CPU
# time per request (all the server's processes and threads, from /proc/PID/task/*/schedstat),
# how busy the server's CPU time and wrk's were over the run (a busy wrk is the ceiling), then
# ratios as the median (and range) of the per-round ratios. Needs: apt-get install nginx-light wrk.
# usage: Tests/scripts/http-compare.sh [seconds per run, default 5]
# Subsets: CONFIGS="pinned", DEPTHS="16", SERVERS="gnetd gnetd-log" (space-separated); ROUNDS=5.
set -euo pipefail
cd "$(dirname "$0")/../.."
source Tests/scripts/compare-lib.sh
seconds="${1:-5}"
rounds="${ROUNDS:-3}"
compare_begin http-compare gnet-c-http
write_pipeline_lua "$work/pipeline.lua"

start_server() {  # name workers pin -> sets port and pid
  local name=$1 workers=$2 pin=$3 prefix=()
  [ "$pin" = yes ] && prefix=(taskset -c 0)
  case $name in
    gnetd|gnetd-log)
      local log=""
      [ "$name" = gnetd-log ] && log="access_log: $work/access.log"
      rm -f "$work/access.log"
      cat > "$work/$name.yaml" <<YAML
workers: $workers
log_level: warning
control: { socket: $work/$name.yaml.sock }
services:
  - name: web
    protocol: http
    listen: ["tcp://127.0.0.1:0"]
    $log
    routes:
      - { path: /, body: "Hello, World!", content_type: text/plain }
YAML
      start_gnetd "$work/$name.yaml" "${prefix[@]}" ;;
    nginx)
      start_nginx 'location / { default_type text/plain; return 200 "Hello, World!"; }' "$workers" "${prefix[@]}" ;;
    c)
      "${prefix[@]}" "$bin/gnet-c-http" 0 > "$work/c.out" & pid=$!
      pids+=("$pid")
      for _ in $(seq 50); do port=$(sed -n 's/listening on //p' "$work/c.out"); [ -n "$port" ] && break; sleep 0.1; done ;;
  esac
}

raw="$work/raw"
: > "$raw"
for config in ${CONFIGS:-pinned unpinned}; do
  if [ $config = pinned ]; then workers=1; pin=yes; servers="c nginx gnetd gnetd-log"; load=(taskset -c 1); else workers=2; pin=no; servers="nginx gnetd"; load=(); fi
  for depth in ${DEPTHS:-1 16}; do
    declare -A port_of=() pid_of=()
    chosen=()
    for server in $servers; do
      case " ${SERVERS:-$servers} " in *" $server "*) ;; *) continue ;; esac
      start_server "$server" "$workers" "$pin"
      port_of[$server]=$port; pid_of[$server]=$pid; chosen+=("$server")
      "${load[@]}" wrk -t1 -c100 -d1s -s "$work/pipeline.lua" "http://127.0.0.1:$port/" -- "$depth" >/dev/null 2>&1 || true
    done
    for round in $(seq "$rounds"); do
      # The order rotates from round to round, so that no server always follows the same one.
      n=${#chosen[@]}
      order=()
      for i in $(seq 0 $((n - 1))); do order+=("${chosen[$(( (i + round) % n ))]}"); done
      for server in "${order[@]}"; do
        measure "$config $server $depth $round" "${pid_of[$server]}" "$seconds" -s "$work/pipeline.lua" "http://127.0.0.1:${port_of[$server]}/" -- "$depth"
      done
    done
    for server in "${chosen[@]}"; do kill "${pid_of[$server]}" 2>/dev/null || true; wait "${pid_of[$server]}" 2>/dev/null || true; done
    pids=()
  done
done

python3 - "$raw" "$rounds" <<'PY'
import sys, statistics
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
rounds = sys.argv[2]
def ms(p):  # wrk's latency text → milliseconds
    for unit, f in (("us", 1e-3), ("ms", 1.0), ("s", 1e3)):
        if p.endswith(unit): return float(p[:-len(unit)]) * f
    return float("nan")
runs = {}
for config, server, depth, rnd, rps, p99, cpu, server_busy, wrk_busy in rows:
    runs.setdefault((config, depth, server), {})[int(rnd)] = (int(rps), p99, int(cpu), float(server_busy), float(wrk_busy))
print(f"Medians of {rounds} interleaved rounds:\n")
print("| config | server | depth | req/s | p99 | server CPU ns/req | server CPU busy | wrk busy |\n|---|---|---:|---:|---:|---:|---:|---:|")
for (config, depth, server), r in runs.items():
    v = list(r.values())
    p99s = sorted(v, key=lambda x: ms(x[1]))
    print(f"| {config} | {server} | {depth} | {int(statistics.median(x[0] for x in v))} | {p99s[len(p99s)//2][1]} | {int(statistics.median(x[2] for x in v))} "
          f"| {statistics.median(x[3] for x in v):.0%} | {statistics.median(x[4] for x in v):.0%} |")
print("\nRatios, median (range) of the per-round ratios:\n")
print("| config | depth | what | median | range |\n|---|---:|---|---:|---|")
def ratio(config, depth, a, b, i, label):
    ra, rb = runs.get((config, depth, a)), runs.get((config, depth, b))
    if not ra or not rb: return
    q = [ra[k][i] / rb[k][i] for k in ra if k in rb and rb[k][i] > 0]
    if q: print(f"| {config} | {depth} | {label} | {statistics.median(q):.2f}× | {min(q):.2f}–{max(q):.2f} |")
for config, depth in sorted({(k[0], k[1]) for k in runs}, key=lambda k: (k[0] != "pinned", int(k[1]))):
    ratio(config, depth, "gnetd", "nginx", 0, "gnetd ÷ nginx req/s")
    ratio(config, depth, "c", "nginx", 0, "C ÷ nginx req/s (the reference's own standing)")
    ratio(config, depth, "gnetd", "c", 2, "gnetd ÷ C CPU/request")
    ratio(config, depth, "gnetd-log", "gnetd", 0, "gnetd-log ÷ gnetd req/s")
    ra, rb = runs.get((config, depth, "gnetd")), runs.get((config, depth, "nginx"))
    if ra and rb and depth == "1":
        better = sum(1 for k in ra if k in rb and ms(ra[k][1]) <= ms(rb[k][1]))
        print(f"| {config} | {depth} | gnetd p99 ≤ nginx p99 | {better} of {len(ra)} rounds | |")
PY
