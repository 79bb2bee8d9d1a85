#!/usr/bin/env bash
# Two builds of gnet-bench side by side, for a change to a hot path: callgrind instructions per
# 64 B echo and per pipelined HTTP request (the difference between a short and a long run, over
# the extra messages: start-up cancels out), then HTTP on the wire, server pinned on CPU 0 and
# wrk on CPU 1, ROUNDS alternating rounds (default 3) at depth 16 and 1: requests/s and the
# server's CPU time per request. Needs valgrind and wrk.
# usage: Tests/scripts/ab-compare.sh BEFORE/gnet-bench AFTER/gnet-bench
set -euo pipefail
source "$(dirname "$0")/compare-lib.sh"
[ $# = 2 ] || { echo "usage: $0 BEFORE AFTER (two gnet-bench binaries)" >&2; exit 2; }
rounds="${ROUNDS:-3}"
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT
write_pipeline_lua "$work/pipeline.lua"
wait_port() { for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
total_ir() { grep -E "^(totals|summary):" "$1" | head -1 | awk '{print $2}'; }

# callgrind: $1 binary, $2 echo|http -> instructions per message
instructions() {
  local bin="$work/stripped" ir=() n=()
  objcopy --strip-debug "$1" "$bin"
  for size in small large; do
    local port; port=$(free_port)
    if [ "$2" = echo ]; then
      valgrind --tool=callgrind --callgrind-out-file="$work/cg.out" "$bin" serve --port "$port" >/dev/null 2>&1 & pids+=($!)
      wait_port "$port"
      local count=$([ $size = small ] && echo 20000 || echo 60000)
      "$1" load --port "$port" --connections 10 --size 64 --messages $count >/dev/null 2>&1
      n+=($count)
    else
      valgrind --tool=callgrind --callgrind-out-file="$work/cg.out" "$bin" serve-http --port "$port" >/dev/null 2>&1 & pids+=($!)
      wait_port "$port"
      n+=($(wrk -t1 -c10 -d$([ $size = small ] && echo 2 || echo 6)s -s "$work/pipeline.lua" "http://127.0.0.1:$port/" -- 16 2>/dev/null | awk '/requests in/{print $1}'))
    fi
    kill -TERM "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true
    ir+=($(total_ir "$work/cg.out"))
  done
  python3 -c "print('%.1f' % ((${ir[1]} - ${ir[0]}) / (${n[1]} - ${n[0]})))"
}

for kind in echo http; do
  echo "callgrind $kind: before $(instructions "$1" $kind), after $(instructions "$2" $kind) instructions per message"
done
for depth in 16 1; do
  for round in $(seq "$rounds"); do
    for side in before after; do
      bin=$([ $side = before ] && echo "$1" || echo "$2")
      port=$(free_port)
      taskset -c 0 "$bin" serve-http --port "$port" >/dev/null 2>&1 & pid=$!; pids+=($pid)
      wait_port "$port"
      t0=$(awk '{print $14 + $15}' /proc/$pid/stat)
      rps=$(taskset -c 1 wrk -t1 -c50 -d4s -s "$work/pipeline.lua" "http://127.0.0.1:$port/" -- $depth 2>/dev/null | awk '/Requests\/sec/{print $2}')
      t1=$(awk '{print $14 + $15}' /proc/$pid/stat)
      kill "$pid"; wait "$pid" 2>/dev/null || true
      echo "wire depth $depth round $round $side: $rps req/s, $(python3 -c "print('%.3f' % (($t1 - $t0) * 1e6 / $(getconf CLK_TCK) / ($rps * 4)))") µs CPU per request"
    done
  done
done
