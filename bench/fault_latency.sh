#!/usr/bin/env bash
# How soon a fault takes effect after its command returns, through the real
# CLI against a real lab (target: within 100 ms). Starts `chaoslab up` in a
# temp dir; a client keeps a Redis connection through the lab's fault proxy
# busy with PINGs (as a replica's pooled connection would be) while
# `chaoslab fault network block --mode reset --no-reset --duration 0` runs;
# the delay is from the command's return to the client's first error
# (0 when the connection was already reset before the command returned).
# Then `fault clear --all` and a new connection, TRIALS times.
# env: TRIALS (default 20), PROFILE (debug|release, default debug).
# Loopback only; everything it starts it stops.
set -euo pipefail
cd "$(dirname "$0")/.."

TRIALS=${TRIALS:-20}
PROFILE=${PROFILE:-debug}
if [ "$PROFILE" = release ]; then
    cargo build --release -q --bin chaoslab
else
    cargo build -q --bin chaoslab
fi
BIN=$PWD/target/$PROFILE/chaoslab
DIR=$(mktemp -d)
UP_PID=
cleanup() {
    if [ -n "$UP_PID" ]; then
        (cd "$DIR" && "$BIN" down >/dev/null 2>&1) || kill "$UP_PID" 2>/dev/null || true
        wait "$UP_PID" 2>/dev/null || true
    fi
    rm -rf "$DIR"
}
trap cleanup EXIT

cat > "$DIR/chaoslab.toml" <<'TOML'
[ingress]
port = 0
[control]
port = 0
[faults]
toxiproxy_port = 0
[autoscaler]
enabled = false
TOML
echo "== fault latency bench: $(date -u +%FT%TZ), $(nproc) cores, $PROFILE build, load: $(cut -d' ' -f1-3 /proc/loadavg)"
(cd "$DIR" && exec "$BIN" up >"$DIR/up.out" 2>&1) &
UP_PID=$!
for _ in $(seq 1 300); do
    [ -f "$DIR/.chaoslab/lab.json" ] && break
    sleep 0.1
done
[ -f "$DIR/.chaoslab/lab.json" ] || { cat "$DIR/up.out"; echo "lab did not start" >&2; exit 1; }

python3 - "$BIN" "$DIR" "$TRIALS" <<'PY'
import json, re, socket, subprocess, sys, threading, time

bin_, dir_, trials = sys.argv[1], sys.argv[2], int(sys.argv[3])
state = json.load(open(f"{dir_}/.chaoslab/lab.json"))
port = int(re.search(r"@127\.0\.0\.1:(\d+) via the fault proxy", state["redis"]).group(1))
password = open(f"{dir_}/.chaoslab/redis/admin.password").read().strip()

def cli(*args):
    subprocess.run([bin_, *args], cwd=dir_, check=True, stdout=subprocess.DEVNULL)

def connect():
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(f"*2\r\n$4\r\nAUTH\r\n${len(password)}\r\n{password}\r\n".encode())
    assert s.recv(64).startswith(b"+OK"), "AUTH"
    return s

delays = []
for trial in range(trials):
    s = connect()
    failed_at = []
    def loop():
        try:
            while True:
                s.sendall(b"*1\r\n$4\r\nPING\r\n")
                if not s.recv(64):
                    break
        except OSError:
            pass
        failed_at.append(time.monotonic())
    t = threading.Thread(target=loop)
    t.start()
    time.sleep(0.2)
    cli("fault", "network", "block", "--mode", "reset", "--no-reset", "--duration", "0")
    returned = time.monotonic()
    t.join(timeout=5)
    s.close()
    if not failed_at:
        print(f"trial {trial}: the connection survived 5 s: the fault did not take effect")
        sys.exit(1)
    delays.append(max(0.0, failed_at[0] - returned) * 1000)
    cli("fault", "clear", "--all")

delays.sort()
p50 = delays[len(delays) // 2]
print(f"reset takes effect after the command returns: p50 {p50:.2f} ms, max {delays[-1]:.2f} ms "
      f"over {trials} trials (target < 100 ms); {sum(d == 0 for d in delays)} already in effect on return")
sys.exit(0 if delays[-1] < 100 else 2)
PY
