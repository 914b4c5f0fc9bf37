#!/usr/bin/env bash
# Benchmark of `chaoslab load` as a load generator. One fast target (nginx
# from Debian serving a small file on loopback), three generators run the
# same way one after the other:
#   wrk                          -t2 -cN
#   chaoslab load --rate max     --connections N, --threads 1 and 2 (release)
#   Locust FastHttpUser          one process, N users, no think time
# For each: req/s and req per CPU second of the generator (user + system
# time of its process tree, start-up included). Targets: chaoslab ≥ 50 % of
# wrk's req/s, and ≥ 10× Locust's req per CPU second.
#
#   bench/load.sh            # DURATION=10 (seconds) CONNECTIONS=64
#
# Installs nginx-light, wrk (apt) and locust (pip) when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-64}

need=()
command -v nginx >/dev/null || need+=(nginx-light)
command -v wrk >/dev/null || need+=(wrk)
if ((${#need[@]})); then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
command -v locust >/dev/null || python3 -m pip install --quiet locust \
    || python3 -m pip install --quiet --break-system-packages locust

cargo build --release --quiet
BIN=$PWD/target/release/chaoslab
TMP=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL="http://127.0.0.1:$PORT"

cleanup() {
    [ -n "${NGINX_PID:-}" ] && kill "$NGINX_PID" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

mkdir -p "$TMP/www" "$TMP/logs"
chmod 755 "$TMP" "$TMP/www"   # nginx workers run as an unprivileged user
printf 'chaoslab load benchmark target: a small static file.\n' >"$TMP/www/index.html"
cat >"$TMP/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $TMP/nginx.pid;
error_log $TMP/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path $TMP/body; proxy_temp_path $TMP/proxy;
    fastcgi_temp_path $TMP/fcgi; uwsgi_temp_path $TMP/uwsgi; scgi_temp_path $TMP/scgi;
    server {
        listen 127.0.0.1:$PORT;
        root $TMP/www;
    }
}
CONF
nginx -c "$TMP/nginx.conf" -p "$TMP" &
NGINX_PID=$!
for _ in $(seq 100); do
    curl -fs "$URL/index.html" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -fs "$URL/index.html" >/dev/null

# cpu_of OUT CMD…: runs CMD with its output in OUT; prints the CPU seconds
# (user + sys) of its whole process tree.
cpu_of() {
    python3 - "$@" <<'PY'
import resource, subprocess, sys
with open(sys.argv[1], "w") as out:
    subprocess.run(sys.argv[2:], stdout=out, stderr=subprocess.STDOUT, check=False)
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"{r.ru_utime + r.ru_stime:.3f}")
PY
}

cat >"$TMP/bench_locustfile.py" <<'PY'
from locust import FastHttpUser, constant, task

class Bench(FastHttpUser):
    wait_time = constant(0)

    @task
    def index(self):
        self.client.get("/index.html")
PY

echo "machine: $(nproc) CPUs, load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "target: nginx (1 worker) serving $(wc -c <"$TMP/www/index.html") bytes on loopback; ${DURATION}s each, $CONNECTIONS connections"

WRK_CPU=$(cpu_of "$TMP/wrk.txt" wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" "$URL/index.html")
WRK_REQS=$(awk '/requests in/ {print $1}' "$TMP/wrk.txt")
WRK_RPS=$(awk '/Requests\/sec/ {print $2}' "$TMP/wrk.txt")

# chaoslab_run THREADS: sets CL_CPU CL_REQS CL_RPS CL_FAIL.
chaoslab_run() {
    CL_CPU=$(cpu_of "$TMP/chaoslab.txt" "$BIN" load -H "$URL" --task "GET /index.html" --rate max \
        --connections "$CONNECTIONS" --threads "$1" -t "${DURATION}s" -q --json "$TMP/chaoslab.json")
    read -r CL_REQS CL_RPS CL_FAIL < <(python3 -c "
import json; a = json.load(open('$TMP/chaoslab.json'))['aggregated']
print(a['requests'], round(a['rps'], 1), a['failures'])")
}
chaoslab_run 1
CL1_CPU=$CL_CPU CL1_REQS=$CL_REQS CL1_RPS=$CL_RPS CL1_FAIL=$CL_FAIL
chaoslab_run 2

LC_CPU=$(cd "$TMP" && cpu_of "$TMP/locust.txt" locust -f bench_locustfile.py --headless -u "$CONNECTIONS" \
    -r "$CONNECTIONS" -t "${DURATION}s" --host "$URL" --csv "$TMP/locust" --only-summary --loglevel WARNING)
read -r LC_REQS LC_RPS LC_FAIL < <(python3 -c "
import csv
for r in csv.DictReader(open('$TMP/locust_stats.csv')):
    if r['Name'] == 'Aggregated':
        print(r['Request Count'], round(float(r['Requests/s']), 1), r['Failure Count'])")

per_cpu() { python3 -c "print(round($1 / max($2, 0.001)))"; }
WRK_PC=$(per_cpu "$WRK_REQS" "$WRK_CPU")
CL_PC=$(per_cpu "$CL_REQS" "$CL_CPU")
CL1_PC=$(per_cpu "$CL1_REQS" "$CL1_CPU")
LC_PC=$(per_cpu "$LC_REQS" "$LC_CPU")

printf '\n%-30s %12s %12s %10s %16s\n' generator req/s requests "CPU s" "req per CPU s"
printf '%-30s %12s %12s %10s %16s\n' "wrk -t2 -c$CONNECTIONS" "$WRK_RPS" "$WRK_REQS" "$WRK_CPU" "$WRK_PC"
printf '%-30s %12s %12s %10s %16s\n' "chaoslab --rate max --threads 1" "$CL1_RPS" "$CL1_REQS" "$CL1_CPU" "$CL1_PC"
printf '%-30s %12s %12s %10s %16s\n' "chaoslab --rate max --threads 2" "$CL_RPS" "$CL_REQS" "$CL_CPU" "$CL_PC"
printf '%-30s %12s %12s %10s %16s\n' "locust FastHttpUser (1 proc)" "$LC_RPS" "$LC_REQS" "$LC_CPU" "$LC_PC"
echo "failures: chaoslab $CL1_FAIL and $CL_FAIL, locust $LC_FAIL"
python3 - <<PY
wrk, lc_pc = float("$WRK_RPS"), float("$LC_PC")
for name, rps, pc in [("--threads 1", float("$CL1_RPS"), float("$CL1_PC")), ("--threads 2", float("$CL_RPS"), float("$CL_PC"))]:
    a = rps / wrk * 100
    b = pc / max(lc_pc, 1)
    print(f"chaoslab {name}: req/s = {a:.0f} % of wrk's (target >= 50 %): {'ok' if a >= 50 else 'MISSED'}; "
          f"req per CPU s = {b:.1f}x Locust's (target >= 10x): {'ok' if b >= 10 else 'MISSED'}")
PY
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
