#!/usr/bin/env python3
"""Load for packaging/test-systemd's upgrade step: HTTP clients on kept-alive connections and
long-lived echo connections, until the file STOP exists, then a JSON summary on stdout.

usage: upgrade-load.py HTTP_PORT ECHO_PORT STOP_FILE [HTTP_CLIENTS ECHO_CLIENTS]

An HTTP client sends GET / and reads the whole answer; an answer with `Connection: close` is
followed by a new connection (that is the server draining, not a failure); a request that gets
no complete 200 answer is a failure. An echo client sends a line every 50 ms on one connection
for the whole run and checks each echo; a connection that ends or a wrong echo is a cut."""
import json, os, socket, sys, threading, time

http_port, echo_port, stop_file = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
http_clients = int(sys.argv[4]) if len(sys.argv) > 4 else 8
echo_clients = int(sys.argv[5]) if len(sys.argv) > 5 else 4
lock = threading.Lock()
totals = {"http_ok": 0, "http_failed": 0, "http_reconnects": 0, "echo_ok": 0, "echo_cut": 0, "errors": []}

def note(key, n=1, error=None):
    with lock:
        totals[key] += n
        if error and len(totals["errors"]) < 10:
            totals["errors"].append(error)

def read_answer(sock, buffer):
    """One HTTP answer from sock: (status, close?, rest of buffer)."""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError("closed before the head")
        buffer += chunk
    head, _, rest = buffer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    fields = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
    length = int(fields.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError("closed in the body")
        rest += chunk
    return status, fields.get("connection", "").lower() == "close", rest[length:]

def http_client():
    sock, buffer = None, b""
    while not os.path.exists(stop_file):
        try:
            if sock is None:
                sock = socket.create_connection(("127.0.0.1", http_port), timeout=5)
                buffer = b""
            sock.sendall(b"GET / HTTP/1.1\r\nHost: upgrade\r\n\r\n")
            status, close, buffer = read_answer(sock, buffer)
            if status == 200:
                note("http_ok")
            else:
                note("http_failed", error=f"status {status}")
            if close:
                sock.close()
                sock = None
                note("http_reconnects")
        except Exception as e:  # noqa: BLE001 - every failure is counted and reported
            note("http_failed", error=f"http: {e!r}")
            if sock:
                sock.close()
            sock = None
            time.sleep(0.05)
        time.sleep(0.005)

def echo_client(n):
    try:
        sock = socket.create_connection(("127.0.0.1", echo_port), timeout=5)
    except Exception as e:  # noqa: BLE001
        note("echo_cut", error=f"echo connect: {e!r}")
        return
    i = 0
    while not os.path.exists(stop_file):
        line = f"client {n} line {i}\n".encode()
        try:
            sock.sendall(line)
            got = b""
            while len(got) < len(line):
                chunk = sock.recv(len(line) - len(got))
                if not chunk:
                    raise EOFError("connection ended")
                got += chunk
            if got != line:
                raise ValueError(f"echo {got!r} for {line!r}")
            note("echo_ok")
        except Exception as e:  # noqa: BLE001
            note("echo_cut", error=f"echo: {e!r}")
            return
        i += 1
        time.sleep(0.05)
    sock.close()

threads = [threading.Thread(target=http_client) for _ in range(http_clients)]
threads += [threading.Thread(target=echo_client, args=(n,)) for n in range(echo_clients)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps(totals))
