# Shared by the side-by-side comparisons (http-compare.sh, static-compare.sh): sourced, not run,
# from the repository's top directory.

compare_begin() {  # name extra-products... -> checks the tools, builds, sets bin, work and pids; cleans up at exit
  local name=$1; shift
  command -v nginx >/dev/null && command -v wrk >/dev/null || { echo "needs nginx and wrk (apt-get install nginx-light wrk)" >&2; exit 2; }
  local product
  for product in gnetd gnetctl "$@"; do swift build -c release --product "$product" >/dev/null; done
  bin=.build/release
  work=$(mktemp -d "/tmp/gnet-$name-XXXXXX")
  chmod 755 "$work"
  pids=()
  trap 'for p in "${pids[@]:-}"; do kill "$p" 2>/dev/null || true; done; sleep 0.3; rm -rf "$work"' EXIT
}

cpu_ns() {  # total CPU ns of a process tree (the pid and its children, every thread)
  local total=0 p
  for p in "$1" $(pgrep -P "$1" || true); do
    for f in /proc/"$p"/task/*/schedstat; do [ -r "$f" ] && total=$((total + $(cut -d' ' -f1 "$f"))); done
  done
  echo "$total"
}

start_gnetd() {  # yaml-file [prefix...] -> sets port and pid; the yaml names control socket $1.sock
  local yaml=$1; shift
  "$@" "$bin/gnetd" --config "$yaml" & pid=$!
  pids+=("$pid")
  port=""
  for _ in $(seq 100); do
    port=$("$bin/gnetctl" -s "$yaml.sock" status --json 2>/dev/null | python3 -c "import json,sys; print(json.load(sys.stdin)[\"services\"][0][\"listen\"][0].rsplit(\":\",1)[1])" 2>/dev/null || true)
    [ -n "$port" ] && break
    sleep 0.1
  done
  [ -n "$port" ] || { echo "gnetd ($yaml) did not start" >&2; exit 1; }
}

start_nginx() {  # server-block-contents workers [prefix...] -> sets port and pid
  local body=$1 workers=$2; shift 2
  port=$((20000 + RANDOM % 20000))
  cat > "$work/nginx-$port.conf" <<NGINX
worker_processes $workers;
daemon off;
pid $work/nginx-$port.pid;
error_log $work/nginx.err warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 100000000;
  sendfile on;
  tcp_nopush on;
  server { listen 127.0.0.1:$port; $body }
}
NGINX
  "$@" nginx -c "$work/nginx-$port.conf" & pid=$!
  pids+=("$pid")
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
}

measure() {  # label pid seconds wrk-args (URL included)... -> appends "label rps p99 cpu_ns/req server_busy wrk_busy" to $raw
  local label=$1 pid=$2 seconds=$3; shift 3
  local before began out after ended busy requests rps p99
  before=$(cpu_ns "$pid"); began=$(date +%s%N)
  # bash's time reports wrk's own CPU: how busy the load generator was.
  out=$( { TIMEFORMAT='wrk-time %R %U %S'; time "${load[@]}" wrk -t1 -c100 -d"${seconds}s" --latency "$@"; } 2>&1 )
  after=$(cpu_ns "$pid"); ended=$(date +%s%N)
  busy=$(echo "$out" | awk -v s=$((after - before)) -v w=$((ended - began)) '/^wrk-time/ { printf "%.2f %.2f", s / w, ($3 + $4) / $2 }')
  requests=$(echo "$out" | sed -n 's/^ *\([0-9]*\) requests in.*/\1/p')
  rps=$(echo "$out" | sed -n 's/^Requests\/sec: *\([0-9.]*\)/\1/p')
  p99=$(echo "$out" | sed -n 's/^ *99% *\([0-9.a-z]*\)$/\1/p')
  if echo "$out" | grep -q "Non-2xx"; then echo "measure: $label answered non-2xx: $out" >&2; exit 1; fi
  echo "$label ${rps%.*} ${p99:--} $(( (after - before) / (${requests:-0} > 0 ? ${requests:-1} : 1) )) ${busy:-0 0}" >> "$raw"
}

write_pipeline_lua() {  # file -> a wrk script sending its first argument's number of requests at once (default 1)
  cat > "$1" <<'LUA'
init = function(args)
  local r = {}
  for i = 1, tonumber(args[1]) or 1 do r[i] = wrk.format() end
  req = table.concat(r)
end
request = function() return req end
LUA
}
