#!/usr/bin/env bash
# gnet-resp side by side with Debian's redis-server (persistence off), redis-benchmark -c 50,
# PING, SET and GET at pipeline depth 1 and 16, in two configurations: pinned (one gnet-resp
# worker and one redis thread on CPU 0, redis-benchmark on CPU 1) and shared (two workers
# against redis with two I/O threads, nothing pinned). The servers run at once and are measured
# in turn, ROUNDS times (default 3), the order alternating. Reports the median requests/s,
# server CPU time per request (schedstat), how busy the server and the load generator were
# (a load generator at 100% is the ceiling), and the per-round ratios. CONFIGS="pinned".
# usage: Tests/scripts/resp-compare.sh [requests per test, default 200000]; DEPTHS="1 16";
# TESTS="ping_mbulk set get". Needs: apt-get install redis-server redis-tools.
set -euo pipefail
cd "$(dirname "$0")/../.."
source Tests/scripts/compare-lib.sh
requests="${1:-200000}"
rounds="${ROUNDS:-3}"
command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null || { echo "needs redis-server and redis-tools" >&2; exit 2; }
swift build -c release --product gnet-resp >/dev/null
swift build -c release --product gnetctl >/dev/null
bin=.build/release
work=$(mktemp -d /tmp/gnet-resp-compare-XXXXXX)
pids=()
trap 'for p in "${pids[@]:-}"; do kill "$p" 2>/dev/null || true; done; sleep 0.3; rm -rf "$work"' EXIT

raw="$work/raw"; : > "$raw"
for config in ${CONFIGS:-pinned shared}; do
  # pinned: one worker and one redis thread on CPU 0, the load on CPU 1; shared: two workers
  # and redis-server with two I/O threads, nothing pinned.
  if [ $config = pinned ]; then workers=1; pin=(taskset -c 0); load=(taskset -c 1); threads=(); else workers=2; pin=(); load=(); threads=(--io-threads 2 --io-threads-do-reads yes); fi
  cat > "$work/resp.yaml" <<YAML
workers: $workers
log_level: warning
control: { socket: $work/resp.yaml.sock }
services:
  - name: kv
    protocol: resp
    listen: ["tcp://127.0.0.1:0"]
YAML
  "${pin[@]}" "$bin/gnet-resp" --config "$work/resp.yaml" & gp=$!; pids+=("$gp")
  gport=""
  for _ in $(seq 100); do
    gport=$("$bin/gnetctl" -s "$work/resp.yaml.sock" status --json 2>/dev/null | python3 -c "import json,sys; print(json.load(sys.stdin)[\"services\"][0][\"listen\"][0].rsplit(\":\",1)[1])" 2>/dev/null || true)
    [ -n "$gport" ] && break; sleep 0.1
  done
  rport=$((20000 + RANDOM % 20000))
  "${pin[@]}" redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no --daemonize no --logfile "$work/redis.log" "${threads[@]}" & rp=$!; pids+=("$rp")
  for _ in $(seq 50); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.1; done
  for depth in ${DEPTHS:-1 16}; do
    for test in ${TESTS:-ping_mbulk set get}; do
      for round in $(seq "$rounds"); do
        order="gnet-resp redis"; [ $((round % 2)) = 0 ] && order="redis gnet-resp"
        for s in $order; do
          if [ $s = redis ]; then port=$rport; pid=$rp; else port=$gport; pid=$gp; fi
          before=$(cpu_ns "$pid"); began=$(date +%s%N)
          # bash's time reports redis-benchmark's own CPU: how busy the load generator was.
          out=$( { TIMEFORMAT='load-time %R %U %S'; time "${load[@]}" redis-benchmark -p "$port" -c 50 -n "$requests" -P "$depth" -t "$test" -q --csv; } 2>&1 )
          after=$(cpu_ns "$pid"); ended=$(date +%s%N)
          rps=$(echo "$out" | awk -F'"' '$2!="" && $2!="test" {print $4; exit}')
          busy=$(echo "$out" | awk -v s=$((after - before)) -v w=$((ended - began)) '/^load-time/ { printf "%.2f %.2f", s / w, ($3 + $4) / $2 }')
          echo "$config $depth $test $s $round ${rps%.*} $(( (after - before) / requests )) ${busy:-0 0}" >> "$raw"
        done
      done
    done
  done
  kill "$gp" "$rp"; wait "$gp" "$rp" 2>/dev/null || true
  pids=()
done

python3 - "$raw" "$rounds" <<'PY'
import sys, statistics
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
runs = {}
for config, depth, test, server, rnd, rps, cpu, sbusy, lbusy in rows:
    runs.setdefault((config, int(depth), test, server), {})[int(rnd)] = (float(rps or 0), int(cpu), float(sbusy), float(lbusy))
print(f"Medians of {sys.argv[2]} interleaved rounds (redis-benchmark -c 50):\n")
print("| config | depth | test | server | req/s | server CPU ns/req | server CPU busy | load busy |\n|---|---:|---|---|---:|---:|---:|---:|")
for (config, depth, test, server), r in sorted(runs.items()):
    v = list(r.values())
    print(f"| {config} | {depth} | {test} | {server} | {int(statistics.median(x[0] for x in v))} | {int(statistics.median(x[1] for x in v))} "
          f"| {statistics.median(x[2] for x in v):.0%} | {statistics.median(x[3] for x in v):.0%} |")
print("\n| config | depth | test | gnet-resp ÷ redis req/s | gnet-resp ÷ redis CPU/request |\n|---|---:|---|---:|---:|")
for config, depth, test in sorted({(k[0], k[1], k[2]) for k in runs}):
    a, b = runs.get((config, depth, test, "gnet-resp")), runs.get((config, depth, test, "redis"))
    if not a or not b: continue
    q = [a[k][0] / b[k][0] for k in a if k in b and b[k][0] > 0]
    c = [a[k][1] / b[k][1] for k in a if k in b and b[k][1] > 0]
    print(f"| {config} | {depth} | {test} | {statistics.median(q):.2f}× ({min(q):.2f}–{max(q):.2f}) | {statistics.median(c):.2f}× ({min(c):.2f}–{max(c):.2f}) |")
PY
