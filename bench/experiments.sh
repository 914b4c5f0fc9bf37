#!/usr/bin/env bash
# The built-in experiments as the project's end-to-end suite, N times:
# `chaoslab experiment run --all` per round, then the pass count, the
# wall time of each round, and per experiment its pass count, median and
# slowest duration, and the runner's own CPU during the method (median,
# % of one CPU: sampling, probes, and the background load generator where
# the experiment has one). Each experiment starts its own lab on free
# loopback ports; everything it starts it stops.
# env: ROUNDS (default 20), JOBS (default 1), PROFILE (debug|release,
# default debug, what `cargo test` and CI run), BIN (a chaoslab binary to
# measure instead of building this tree's).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-20}
JOBS=${JOBS:-1}
PROFILE=${PROFILE:-debug}
if [ -z "${BIN:-}" ]; then
    if [ "$PROFILE" = release ]; then
        cargo build --release -q --bin chaoslab
    else
        cargo build -q --bin chaoslab
    fi
    BIN=$PWD/target/$PROFILE/chaoslab
fi
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
# A copy, so a rebuild during the rounds does not change what is measured.
cp "$BIN" "$DIR/chaoslab"
BIN=$DIR/chaoslab

echo "machine: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); $ROUNDS rounds, --jobs $JOBS, $PROFILE build"
passed_rounds=0
for round in $(seq 1 "$ROUNDS"); do
    start=$(date +%s.%N)
    if (cd "$DIR" && "$BIN" experiment run --all --quiet --jobs "$JOBS" \
            --report-dir "round-$round" >"round-$round.log" 2>&1); then
        passed_rounds=$((passed_rounds + 1))
        verdict=held
    else
        verdict="DEVIATED (see $DIR/round-$round.log)"
        trap - EXIT
    fi
    end=$(date +%s.%N)
    printf 'round %2d: %6.1fs  %s\n' "$round" "$(awk "BEGIN{print $end - $start}")" "$verdict"
done
echo "rounds passed: $passed_rounds/$ROUNDS"
python3 - "$DIR" <<'PY'
import glob, json, os, statistics, sys
runs = {}
for path in glob.glob(os.path.join(sys.argv[1], "round-*", "*.journal.json")):
    j = json.load(open(path))
    runs.setdefault(j["experiment"]["name"], []).append(j)
print(f"{'experiment':<20} {'passed':>7} {'median':>8} {'slowest':>8} {'runner CPU':>11}")
for name in sorted(runs):
    js = runs[name]
    ok = sum(1 for j in js if j["status"] == "completed")
    d = [j["duration"] for j in js]
    cpu = [j["measurements"].get("runner_cpu_percent") for j in js]
    cpu = [c for c in cpu if c is not None]
    cpu_text = f"{statistics.median(cpu):.1f}%" if cpu else "-"
    print(f"{name:<20} {ok:>3}/{len(js):<3} {statistics.median(d):>7.1f}s {max(d):>7.1f}s {cpu_text:>11}")
PY
