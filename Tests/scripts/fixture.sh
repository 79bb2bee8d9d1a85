#!/usr/bin/env bash
# Builds Tests/fixtures/custom-daemon — a package of its own that depends on this one by path
# and writes a daemon ("greeter", service kind "greet") with public API alone — and runs it
# once: a bad setting refused by --check with its location, start on a configuration with its
# own setting with systemd's NOTIFY_SOCKET pointing at a listener here (READY=1, RELOADING=1,
# STOPPING=1 as a Type=notify unit would get them), one request, its counter in `gnetctl stats`,
# a reload to a new setting (and a refused one), stop. Every process it starts is stopped by PID
# whatever happens.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
swift build --package-path Tests/fixtures/custom-daemon --scratch-path .build-fixture >/dev/null
swift build --product gnetctl >/dev/null
bin=$(swift build --package-path Tests/fixtures/custom-daemon --scratch-path .build-fixture --show-bin-path)/greeter
gnetctl=$(swift build --show-bin-path)/gnetctl
work=$(mktemp -d /tmp/gnet-fixture-XXXXXX)
pid=""
listener=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; [ -n "$listener" ] && kill "$listener" 2>/dev/null; rm -rf "$work"' EXIT
fail() { echo "fixture: $*" >&2; exit 1; }
# What systemd would hear: every datagram on the notify socket, one line each.
python3 -u -c "
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(sys.argv[1])
print('listening', flush=True)
while True:
    print(s.recv(4096).decode().replace(chr(10), ' '), flush=True)" "$work/notify.sock" > "$work/notify.log" & listener=$!
notified() {  # waits (bounded) until the notify log has a line matching $1, after line $2
    for _ in $(seq 200); do
        tail -n +"$(( ${2:-0} + 1 ))" "$work/notify.log" | grep -q -- "$1" && return 0
        sleep 0.05
    done
    fail "no '$1' on the notify socket: $(cat "$work/notify.log")"
}
notified listening

cat > "$work/greeter.yaml" <<YAML
workers: 1
control: { socket: $work/control.sock }
services:
  - name: hi
    protocol: greet
    listen: ["tcp://127.0.0.1:0"]
    greeting: bonjour
YAML
"$bin" --check --config "$work/greeter.yaml" >/dev/null || fail "--check refused a good configuration"
sed 's/greeting: bonjour/greeting: ""/' "$work/greeter.yaml" > "$work/bad.yaml"
if "$bin" --check --config "$work/bad.yaml" 2> "$work/check.err"; then fail "--check accepted an empty greeting"; fi
grep -q "bad.yaml:7:15: services\[0\].greeting: one non-empty line" "$work/check.err" || fail "no location in: $(cat "$work/check.err")"
NOTIFY_SOCKET="$work/notify.sock" "$bin" --config "$work/greeter.yaml" 2> "$work/greeter.err" & pid=$!
notified "READY=1"
port=$("$gnetctl" -c "$work/greeter.yaml" status --json | python3 -c "import json,sys; print(json.load(sys.stdin)['services'][0]['listen'][0].rsplit(':',1)[1])")
[ -n "$port" ] || fail "greeter did not start: $(cat "$work/greeter.err")"
answer=$(python3 -c "
import socket; s=socket.create_connection(('127.0.0.1', $port)); s.sendall(b'world\n'); print(s.recv(100).decode().strip())")
[ "$answer" = "bonjour, world" ] || fail "answer: $answer"
stats=$("$gnetctl" -c "$work/greeter.yaml" stats)
echo "$stats" | grep -q "^greeter 1.0 pid $pid" || fail "stats does not name the daemon: $stats"
echo "$stats" | grep -q "^service hi: active .*;  greetings 1$" || fail "no counter in stats: $stats"
# A reload brings the new setting to a new generation of workers; a bad one changes nothing.
sed -i 's/greeting: bonjour/greeting: salut/' "$work/greeter.yaml"
mark=$(wc -l < "$work/notify.log")
"$gnetctl" -c "$work/greeter.yaml" reload >/dev/null || fail "gnetctl reload"
notified "RELOADING=1" "$mark"
notified "READY=1" "$mark"
answer=$(python3 -c "
import socket; s=socket.create_connection(('127.0.0.1', $port)); s.sendall(b'monde\n'); print(s.recv(100).decode().strip())")
[ "$answer" = "salut, monde" ] || fail "answer after the reload: $answer"
sed -i 's/greeting: salut/greeting: ""/' "$work/greeter.yaml"
if "$gnetctl" -c "$work/greeter.yaml" reload 2> "$work/reload.err"; then fail "a reload with an empty greeting was accepted"; fi
grep -q "greeting: one non-empty line" "$work/reload.err" || fail "the refused reload does not say why: $(cat "$work/reload.err")"
"$gnetctl" -c "$work/greeter.yaml" stop >/dev/null || fail "gnetctl stop"
wait "$pid" || fail "greeter exited non-zero"
pid=""
notified "STOPPING=1"
echo "fixture: a daemon of its own (greeter, kind greet) built on the public API: checked, started (READY=1 to NOTIFY_SOCKET), answered, counted, reloaded (RELOADING=1, READY=1; a bad reload refused), stopped (STOPPING=1)"
