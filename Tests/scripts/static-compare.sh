#!/usr/bin/env bash
# Static files side by side: gnetd's http service with a `root` route and nginx (Debian's
# nginx-light, `sendfile on; tcp_nopush on;`) serving the same directory, 4 KiB and 1 MiB
# files, wrk -t1 -c100 keep-alive. Pinned: one worker each on CPU 0, wrk on CPU 1. The servers
# run at once and are measured in turn, ROUNDS times (default 3), the order rotating, so the
# machine's drift falls on both alike. Reports the median requests/s, p99, server CPU time per
# request and how busy each side was, then the per-round ratios' median and range.
# usage: Tests/scripts/static-compare.sh [seconds per run, default 4]; SIZES="4096 1048576"
# Needs: apt-get install nginx-light wrk.
set -euo pipefail
cd "$(dirname "$0")/../.."
source Tests/scripts/compare-lib.sh
seconds="${1:-4}"
rounds="${ROUNDS:-3}"
compare_begin static-compare
mkdir -p "$work/www"
sizes="${SIZES:-4096 1048576}"
for size in $sizes; do head -c "$size" /dev/urandom > "$work/www/f$size.bin"; done
chmod -R a+rX "$work/www"

cat > "$work/gnetd.yaml" <<YAML
workers: 1
log_level: warning
control: { socket: $work/gnetd.yaml.sock }
services:
  - name: web
    protocol: http
    listen: ["tcp://127.0.0.1:0"]
    routes:
      - { path: /, root: $work/www }
YAML
load=(taskset -c 1)
start_gnetd "$work/gnetd.yaml" taskset -c 0; gnetd_port=$port; gnetd_pid=$pid
start_nginx "location / { root $work/www; }" 1 taskset -c 0; nginx_port=$port; nginx_pid=$pid
raw="$work/raw"
: > "$raw"
for size in $sizes; do
  for s in gnetd nginx; do  # warm up, and check both serve the file whole
    p=${s}_port
    got=$(curl -s -o /dev/null -w '%{http_code} %{size_download}' "http://127.0.0.1:${!p}/f$size.bin")
    [ "$got" = "200 $size" ] || { echo "$s serves f$size.bin as: $got" >&2; exit 1; }
    "${load[@]}" wrk -t1 -c100 -d1s "http://127.0.0.1:${!p}/f$size.bin" >/dev/null 2>&1
  done
  for round in $(seq "$rounds"); do
    order="gnetd nginx"; [ $((round % 2)) = 0 ] && order="nginx gnetd"
    for s in $order; do
      p=${s}_port; q=${s}_pid
      measure "$size $s $round" "${!q}" "$seconds" "http://127.0.0.1:${!p}/f$size.bin"
    done
  done
done

python3 - "$raw" "$rounds" <<'PY'
import sys, statistics
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
runs = {}
for size, server, rnd, rps, p99, cpu, sbusy, wbusy in rows:
    runs.setdefault((int(size), server), {})[int(rnd)] = (int(rps), p99, int(cpu), float(sbusy), float(wbusy))
print(f"Medians of {sys.argv[2]} interleaved rounds (pinned: server on CPU 0, wrk -t1 -c100 on CPU 1):\n")
print("| file | server | req/s | p99 | server CPU ns/req | server CPU busy | wrk busy |\n|---:|---|---:|---:|---:|---:|---:|")
for (size, server), r in sorted(runs.items()):
    v = list(r.values())
    print(f"| {size} B | {server} | {int(statistics.median(x[0] for x in v))} | {sorted(x[1] for x in v)[len(v)//2]} "
          f"| {int(statistics.median(x[2] for x in v))} | {statistics.median(x[3] for x in v):.0%} | {statistics.median(x[4] for x in v):.0%} |")
print("\n| file | gnetd ÷ nginx req/s | gnetd ÷ nginx CPU/request |\n|---:|---:|---:|")
for size in sorted({k[0] for k in runs}):
    a, b = runs.get((size, "gnetd")), runs.get((size, "nginx"))
    if not a or not b: continue
    q = [a[k][0] / b[k][0] for k in a if k in b]
    c = [a[k][2] / b[k][2] for k in a if k in b and b[k][2] > 0]
    print(f"| {size} B | {statistics.median(q):.2f}× ({min(q):.2f}–{max(q):.2f}) | {statistics.median(c):.2f}× ({min(c):.2f}–{max(c):.2f}) |")
PY
