#!/usr/bin/env bash
# gnet-resp side by side with Debian's redis-server (persistence off), redis-benchmark -c 50,
# PING, SET and GET at pipeline depth 1 and 16. Pinned: one gnet-resp worker and redis-server
# (one thread) each on CPU 0 in its own turn, redis-benchmark on CPU 1. The servers run at
# once and are measured in turn, ROUNDS times (default 3), the order alternating. Reports the
# median requests/s, server CPU time per request (schedstat), and the per-round ratios.
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

cat > "$work/resp.yaml" <<YAML
workers: 1
log_level: warning
control: { socket: $work/resp.yaml.sock }
services:
  - name: kv
    protocol: resp
    listen: ["tcp://127.0.0.1:0"]
YAML
taskset -c 0 "$bin/gnet-resp" --config "$work/resp.yaml" & gp=$!; pids+=("$gp")
gport=""
for _ in $(seq 100); do
  gport=$("$bin/gnetctl" -s "$work/resp.yaml.sock" status --json 2>/dev/null | python3 -c "import json,sys; print(json.load(sys.stdin)[\"services\"][0][\"listen\"][0].rsplit(\":\",1)[1])" 2>/dev/null || true)
  [ -n "$gport" ] && break; sleep 0.1
done
rport=$((20000 + RANDOM % 20000))
taskset -c 0 redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no --daemonize no --logfile "$work/redis.log" & rp=$!; pids+=("$rp")
for _ in $(seq 50); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.1; done

raw="$work/raw"; : > "$raw"
for depth in ${DEPTHS:-1 16}; do
  for test in ${TESTS:-ping_mbulk set get}; do
    for round in $(seq "$rounds"); do
      order="gnet-resp redis"; [ $((round % 2)) = 0 ] && order="redis gnet-resp"
      for s in $order; do
        if [ $s = redis ]; then port=$rport; pid=$rp; else port=$gport; pid=$gp; fi
        before=$(cpu_ns "$pid")
        out=$(taskset -c 1 redis-benchmark -p "$port" -c 50 -n "$requests" -P "$depth" -t "$test" -q --csv 2>&1)
        after=$(cpu_ns "$pid")
        rps=$(echo "$out" | awk -F'"' '$2!="" && $2!="test" {print $4; exit}')
        echo "$depth $test $s $round ${rps%.*} $(( (after - before) / requests ))" >> "$raw"
      done
    done
  done
done

python3 - "$raw" "$rounds" <<'PY'
import sys, statistics
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
runs = {}
for depth, test, server, rnd, rps, cpu in rows:
    runs.setdefault((int(depth), test, server), {})[int(rnd)] = (float(rps or 0), int(cpu))
print(f"Medians of {sys.argv[2]} interleaved rounds (pinned: server on CPU 0, redis-benchmark -c 50 on CPU 1):\n")
print("| depth | test | server | req/s | server CPU ns/req |\n|---:|---|---|---:|---:|")
for (depth, test, server), r in sorted(runs.items()):
    v = list(r.values())
    print(f"| {depth} | {test} | {server} | {int(statistics.median(x[0] for x in v))} | {int(statistics.median(x[1] for x in v))} |")
print("\n| depth | test | gnet-resp ÷ redis req/s | gnet-resp ÷ redis CPU/request |\n|---:|---|---:|---:|")
for depth, test in sorted({(k[0], k[1]) for k in runs}):
    a, b = runs.get((depth, test, "gnet-resp")), runs.get((depth, test, "redis"))
    if not a or not b: continue
    q = [a[k][0] / b[k][0] for k in a if k in b and b[k][0] > 0]
    c = [a[k][1] / b[k][1] for k in a if k in b and b[k][1] > 0]
    print(f"| {depth} | {test} | {statistics.median(q):.2f}× ({min(q):.2f}–{max(q):.2f}) | {statistics.median(c):.2f}× ({min(c):.2f}–{max(c):.2f}) |")
PY
