#!/usr/bin/env python3
"""A daemon's footprint: start to READY=1 (on a NOTIFY_SOCKET this script listens on), the
median of RUNS starts, then Rss, Pss and Private_Dirty of each idle process (smaps_rollup).
Every process started is stopped (SIGTERM, or SIGQUIT for nginx) before the next run.
usage: Tests/scripts/footprint.py NAME RUNS -- ARGV...
  e.g. footprint.py gnetd 10 -- /usr/sbin/gnetd --config my.yaml
       footprint.py nginx 1 -- nginx -c my-nginx.conf -g 'daemon off;'   (memory only)"""
import os, signal, socket, statistics, subprocess, sys, tempfile, time

def rollup(pid):
    out = {}
    for line in open(f"/proc/{pid}/smaps_rollup"):
        parts = line.split()
        if parts[0] in ("Rss:", "Pss:", "Private_Dirty:"):
            out[parts[0][:-1]] = int(parts[1])
    return out

def children(pid):
    try:
        return [int(p) for p in open(f"/proc/{pid}/task/{pid}/children").read().split()]
    except OSError:
        return []

if len(sys.argv) < 5 or sys.argv[3] != "--":
    sys.exit(__doc__)
name, runs, argv = sys.argv[1], int(sys.argv[2]), sys.argv[4:]
notifies = name != "nginx"
times = []
with tempfile.TemporaryDirectory() as tmp:
    for i in range(runs):
        path = os.path.join(tmp, "notify.sock")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.bind(path)
        s.settimeout(30)
        t0 = time.monotonic()
        p = subprocess.Popen(argv, env=dict(os.environ, NOTIFY_SOCKET=path), stderr=subprocess.DEVNULL)
        try:
            if notifies:
                while "READY=1" not in s.recv(4096).decode(errors="replace"):
                    pass
                times.append((time.monotonic() - t0) * 1000)
            else:
                time.sleep(1)
            if i == runs - 1:
                time.sleep(2)  # idle
                procs = [("supervisor/master", p.pid)] + [("worker", c) for c in children(p.pid)]
                for role, pid in procs:
                    r = rollup(pid)
                    print(f"{name} {role} pid {pid}: Rss {r['Rss']} kB  Pss {r['Pss']} kB  Private_Dirty {r['Private_Dirty']} kB")
                print(f"{name} total Pss {sum(rollup(pid)['Pss'] for _, pid in procs)} kB over {len(procs)} processes")
        finally:
            p.send_signal(signal.SIGTERM if notifies else signal.SIGQUIT)
            p.wait(timeout=60)
            s.close()
            os.unlink(path)
if times:
    print(f"{name} start-to-READY over {len(times)} runs: median {statistics.median(times):.1f} ms "
          f"(min {min(times):.1f}, max {max(times):.1f})")
