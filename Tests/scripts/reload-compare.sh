#!/usr/bin/env bash
# Reloads under load, side by side: gnetd's http service and nginx (reuseport, keep-alive), each
# under wrk -t1 -c50 --timeout 2s, kept-alive and then pipelined ×16, while it is reloaded
# RELOADS times (default 50), one second apart, its worker count going 1 → 3 → 2 → 1 …
# (gnetctl reload; nginx -s reload after rewriting worker_processes). wrk does not retry: every
# request cut by a reload is a socket error or a missing answer. Reports, per server and mode,
# requests, wrk's socket errors (connect, read, write, timeout) and non-2xx answers.
# usage: Tests/scripts/reload-compare.sh        (RELOADS=5 for a short run; SERVERS="gnetd")
set -euo pipefail
cd "$(dirname "$0")/../.."
source Tests/scripts/compare-lib.sh
reloads="${RELOADS:-50}"
servers="${SERVERS:-gnetd nginx}"
compare_begin reload-compare
write_pipeline_lua "$work/pipeline.lua"
counts=(1 3 2)

gnetd_config() {  # workers -> the config file
  cat > "$work/gnetd.yaml" <<YAML
workers: $1
drain_timeout: 30s
control: { socket: $work/gnetd.yaml.sock }
services:
  - name: web
    protocol: http
    listen: ["tcp://127.0.0.1:${port:-0}"]
    routes:
      - { path: /, body: "Hello, World!" }
YAML
}

nginx_body='location / { default_type text/plain; return 200 "Hello, World!"; }'
for server in $servers; do
  for depth in 1 16; do
    case $server in
      gnetd) port=""; gnetd_config 2; start_gnetd "$work/gnetd.yaml" 2>> "$work/gnetd.log"; gnetd_config 2 ;;  # the port fixed for the reloads
      nginx) start_nginx "$nginx_body" 2 ;;
    esac
    # nginx -s reload needs the listen port to stay the same: start_nginx wrote it in its file.
    conf="$work/nginx-$port.conf"
    wrk -t1 -c50 --timeout 2s -d$((reloads + 4))s -s "$work/pipeline.lua" "http://127.0.0.1:$port/" -- "$depth" > "$work/wrk.out" 2>&1 &
    wrk_pid=$!; pids+=("$wrk_pid")
    sleep 2
    failed=0
    for i in $(seq "$reloads"); do
      n=${counts[$((i % 3))]}
      case $server in
        gnetd) gnetd_config "$n"; "$bin/gnetctl" -s "$work/gnetd.yaml.sock" reload > /dev/null 2>&1 || failed=$((failed + 1)) ;;
        nginx) sed -i "s/^worker_processes .*/worker_processes $n;/" "$conf"; nginx -c "$conf" -s reload 2>/dev/null || failed=$((failed + 1)) ;;
      esac
      sleep 1
    done
    wait "$wrk_pid" || true
    out=$(cat "$work/wrk.out")
    requests=$(echo "$out" | sed -n 's/^ *\([0-9]*\) requests in.*/\1/p')
    errors=$(echo "$out" | sed -n 's/.*Socket errors: \(.*\)/\1/p')
    non2xx=$(echo "$out" | sed -n 's/.*Non-2xx or 3xx responses: *\([0-9]*\)/\1/p')
    echo "$server depth $depth: $reloads reloads ($failed failed), ${requests:-0} requests, socket errors: ${errors:-none}, non-2xx: ${non2xx:-0}"
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
done
