#!/usr/bin/env bash
# Soak: gnetd serving every built-in service (echo on TCP, UDP and Unix; http with an access
# log; push; framed) to continuous clients for SECONDS (default 60, the short form CI runs; the
# long form is e.g. `RELOAD_EVERY=300 Tests/scripts/soak.sh 3600`), reloaded every
# RELOAD_EVERY seconds (default 10), with silent control clients dropped by a short control
# idle timeout all along. Fails when a client sees an error or a wrong answer, a reload fails,
# a worker exits other than by draining after a reload, the supervisor's descriptors or memory
# grow, or a worker generation ends with more memory than the first one did.
# GNETD=path picks the binary (default: .build/debug/gnetd, built by `swift build`).
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds="${1:-60}"
every="${RELOAD_EVERY:-10}"
case "$seconds$every" in *[!0-9]*|'') echo "usage: [RELOAD_EVERY=s] $0 [seconds]" >&2; exit 2 ;; esac
gnetd="${GNETD:-.build/debug/gnetd}"
[ -x "$gnetd" ] || { echo "no $gnetd (run swift build first)" >&2; exit 2; }
work=$(mktemp -d /tmp/gnet-soak-XXXXXX)
pid=""; load=""
cleanup() {
  [ -n "$load" ] && kill "$load" 2>/dev/null || true
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid"; for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cat > "$work/gnetd.yaml" <<YAML
workers: 2
drain_timeout: 5s
log_level: warning
control: { socket: $work/control.sock, idle_timeout: 2s }
services:
  - { name: echo, protocol: echo, listen: ["tcp://127.0.0.1:0", "udp://127.0.0.1:0", "unix://$work/echo.sock"] }
  - name: web
    protocol: http
    listen: ["tcp://127.0.0.1:0"]
    access_log: $work/access.log
    keepalive_timeout: 2s
    routes:
      - { path: /, body: "Hello, World!", content_type: text/plain }
  - { name: ticker, protocol: push, listen: ["tcp://127.0.0.1:0"], interval: 100ms, message: "tick" }
  - { name: lines, protocol: framed, listen: ["unix://$work/lines.sock"], codec: { type: line } }
YAML
"$gnetd" --check --config "$work/gnetd.yaml" >/dev/null
"$gnetd" --config "$work/gnetd.yaml" 2> "$work/gnetd.err" & pid=$!
gnetctl() { "$(dirname "$gnetd")/gnetctl" -s "$work/control.sock" "$@"; }
status=""
for _ in $(seq 150); do status=$(gnetctl status --json 2>/dev/null || true); [ -n "$status" ] && echo "$status" | grep -q '"ok":true' && break; sleep 0.1; done
[ -n "$status" ] || { echo "soak: gnetd did not come up" >&2; cat "$work/gnetd.err" >&2; exit 1; }
echo "$status" > "$work/status.json"

rss_kb() { awk '/^VmRSS/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
fds() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
workers() { pgrep -P "$pid" | tr '\n' ' '; }

python3 - "$work" "$seconds" > "$work/load.out" 2>&1 <<'PY' &
import http.client, json, os, random, socket, sys, threading, time
work, seconds = sys.argv[1], float(sys.argv[2])
st = json.load(open(f"{work}/status.json"))
addr = {s["name"]: s["listen"] for s in st["services"]}
def hp(a):
    host, port = a.split("://", 1)[1].rsplit(":", 1)
    return host, int(port)
tcp_echo = hp(next(a for a in addr["echo"] if a.startswith("tcp")))
udp_echo = hp(next(a for a in addr["echo"] if a.startswith("udp")))
web = hp(addr["web"][0]); ticker = hp(addr["ticker"][0])
end = time.time() + seconds
lock = threading.Lock()
counts, errors = {}, []
def ok(kind):
    with lock: counts[kind] = counts.get(kind, 0) + 1
def err(kind, what):
    with lock: errors.append(f"{kind}: {what}")

def exact(s, n):
    out = b""
    while len(out) < n:
        b = s.recv(n - len(out))
        if not b: raise EOFError(f"closed after {len(out)} of {n} bytes")
        out += b
    return out

def echo_tcp():
    long = None
    while time.time() < end:
        p = os.urandom(random.randint(1, 4096))
        try:  # a short connection: connect, echo, close
            with socket.create_connection(tcp_echo, timeout=10) as s:
                s.sendall(p)
                if exact(s, len(p)) != p: err("echo-tcp", "wrong bytes")
                else: ok("echo-tcp")
        except Exception as e:
            err("echo-tcp", repr(e))
        try:  # a long connection, across reloads
            if long is None: long = socket.create_connection(tcp_echo, timeout=10)
            long.sendall(p)
            if exact(long, len(p)) != p: err("echo-tcp-long", "wrong bytes")
            else: ok("echo-tcp-long")
        except (EOFError, ConnectionResetError, BrokenPipeError):
            # A worker draining after a reload closes what is still open at drain_timeout (a
            # reset when an echo was in flight): by design for a protocol with no way to say
            # "finish"; the client reconnects.
            if long: long.close()
            long = None; ok("reconnect")
        except Exception as e:
            err("echo-tcp-long", repr(e)); long = None

def echo_unix(path, kind):
    while time.time() < end:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(10); s.connect(path)
                for i in range(50):
                    line = f"{kind} {i} {random.random()}\n".encode()
                    s.sendall(line)
                    if exact(s, len(line)) != line: err(kind, "wrong bytes"); break
                    ok(kind)
        except Exception as e:
            err(kind, repr(e))

def echo_udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1)
    while time.time() < end:
        p = os.urandom(random.randint(1, 1200))
        for attempt in range(3):  # datagrams may be lost; three in a row may not
            try:
                s.sendto(p, udp_echo)
                d, _ = s.recvfrom(2048)
                if d == p: ok("echo-udp"); break
            except socket.timeout:
                continue
        else:
            err("echo-udp", "three datagrams unanswered")
        time.sleep(0.002)

def web_client():
    c = None; used = 0
    while time.time() < end:
        try:
            if c is None: c = http.client.HTTPConnection(*web, timeout=10); used = 0
            c.request("GET", f"/?n={random.randint(0, 1 << 30)}")
            r = c.getresponse(); body = r.read()
            if r.status != 200 or body != b"Hello, World!": err("http", f"{r.status} {body[:40]!r}")
            else: ok("http")
            used += 1
            if r.getheader("Connection", "").lower() == "close": c.close(); c = None
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as e:
            # A kept-alive connection the server closed as idle or drained: RFC 9112 §9.3.1
            # lets a client retry an idempotent request on a new connection, once.
            c = None
            if used == 0: err("http", f"fresh connection failed: {e!r}")
            else: ok("http-retry")
        except Exception as e:
            err("http", repr(e)); c = None

def push_client():
    while time.time() < end:
        try:
            with socket.create_connection(ticker, timeout=5) as s:
                got = b""
                while got.count(b"tick") < 2:
                    b = s.recv(4096)
                    if not b: raise EOFError("closed")
                    got += b
                ok("push")
        except EOFError:
            ok("reconnect")
        except Exception as e:
            err("push", repr(e))

def silent_control():
    while time.time() < end - 3:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(10); s.connect(f"{work}/control.sock")
                t = time.time()
                if s.recv(1) != b"": err("control", "answered a silent client")
                elif not 1.5 <= time.time() - t <= 6: err("control", f"dropped after {time.time() - t:.1f}s (idle_timeout 2s)")
                else: ok("control-idle-drop")
        except Exception as e:
            err("control", repr(e))

threads = [threading.Thread(target=f, args=a) for f, a in
           [(echo_tcp, ()), (echo_tcp, ()), (echo_udp, ()), (web_client, ()), (web_client, ()), (push_client, ()),
            (echo_unix, (f"{work}/echo.sock", "echo-unix")), (echo_unix, (f"{work}/lines.sock", "framed")),
            (silent_control, ())]]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps({"counts": counts, "errors": errors[:20], "error_count": len(errors)}))
PY
load=$!

# Warm up, then note the supervisor's descriptors and memory.
sleep 2
sup_fds0=$(fds "$pid"); sup_rss0=$(rss_kb "$pid")
start=$(date +%s); reloads=0; gen_rss=()
while [ $(( $(date +%s) - start )) -lt $(( seconds - 2 )) ]; do
  sleep "$(( every < seconds ? every : seconds ))"
  [ $(( $(date +%s) - start )) -ge $(( seconds - 3 )) ] && break
  rss=0; for w in $(workers); do rss=$(( rss + $(rss_kb "$w") )); done
  gen_rss+=("$rss")
  out=$(gnetctl reload 2>&1) || { echo "soak: reload $((reloads + 1)) failed: $out" >&2; exit 1; }
  reloads=$((reloads + 1))
done
wait "$load" || true
load=""
result=$(tail -1 "$work/load.out")
stats=$(gnetctl stats --json)
sup_rss1=$(rss_kb "$pid")
for _ in $(seq 20); do sup_fds1=$(fds "$pid"); [ "$sup_fds1" -le "$sup_fds0" ] && break; sleep 0.1; done  # gnetctl's connection may still be closing
python3 - "$result" "$stats" "$reloads" "$sup_fds0" "$sup_fds1" "$sup_rss0" "$sup_rss1" "${gen_rss[*]:-}" "$work/gnetd.err" <<'PY'
import json, sys
result, stats = json.loads(sys.argv[1]), json.loads(sys.argv[2])
reloads, fds0, fds1, rss0, rss1 = map(int, sys.argv[3:8])
gens = [int(x) for x in sys.argv[8].split()]
sup = stats["supervisor"]
problems = []
if result["error_count"]: problems.append(f"{result['error_count']} client errors, e.g. {result['errors'][:5]}")
for kind in ("echo-tcp", "echo-udp", "echo-unix", "framed", "http", "push", "control-idle-drop"):
    if result["counts"].get(kind, 0) == 0: problems.append(f"no successful {kind} exchange")
if sup.get("respawns", 0): problems.append(f"{sup['respawns']} worker respawns: {sup.get('last_error')}")
if sup.get("generation") != 1 + reloads: problems.append(f"generation {sup.get('generation')} after {reloads} reloads")
if fds1 > fds0: problems.append(f"supervisor descriptors grew {fds0} → {fds1}")
if rss1 > rss0 + 8 * 1024: problems.append(f"supervisor memory grew {rss0} → {rss1} KiB")
if len(gens) >= 3 and max(gens[2:]) > gens[1] + 16 * 1024: problems.append(f"worker memory per generation grew: {gens} KiB")
print(f"soak: {reloads} reloads; exchanges {json.dumps(result['counts'], sort_keys=True)}")
print(f"soak: supervisor fds {fds0} → {fds1}, RSS {rss0} → {rss1} KiB; workers' RSS at the end of each generation (KiB): {gens}")
if problems:
    for p in problems: print("soak: FAIL:", p, file=sys.stderr)
    print("gnetd's log:", open(sys.argv[9]).read()[-3000:], file=sys.stderr)
    sys.exit(1)
print("soak: ok")
PY
