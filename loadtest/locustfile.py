"""Locust version of `chaoslab load`: the same tasks, weights, think time,
failure rules and named scenarios, for people who run Locust (distributed
Locust, managed load-testing services).

    locust -f loadtest/locustfile.py --headless -u 10 -r 2 -t 5m \
        --host http://127.0.0.1:8000 --csv out/run

Failure rules (as `chaoslab load`):
  * a connection error or a timeout is a failure with status 0;
  * any status outside 2xx is a failure (the chaos task accepts 409:
    "a load is already running");
  * /health answering {"status": "unhealthy"} is a failure, whatever the
    status code.

Environment:
  CHAOSLAB_SCENARIO  baseline | stress | spike | soak | chaos: use that
                     scenario's staged plan (a LoadTestShape) instead of
                     -u/-r/-t; `chaos` also posts /chaos/load now and then.
  CHAOSLAB_TIMEOUT   per-request timeout in seconds (default 10).
  CHAOSLAB_WAIT      think time "MIN..MAX" in seconds (default "1..3").
"""

import os

from locust import FastHttpUser, LoadTestShape, between

SCENARIO = os.environ.get("CHAOSLAB_SCENARIO", "").strip().lower()
TIMEOUT = float(os.environ.get("CHAOSLAB_TIMEOUT", "10"))
_wait = os.environ.get("CHAOSLAB_WAIT", "1..3").split("..")
WAIT_MIN, WAIT_MAX = float(_wait[0]), float(_wait[-1])

# (users at the end of the step, seconds the linear move takes), as
# crates/load/src/scenario.rs.
PLANS = {
    "baseline": [(10, 5), (10, 295)],
    "stress": [(300, 300), (300, 120), (0, 30)],
    "spike": [(10, 5), (10, 55), (200, 10), (200, 60), (10, 10), (10, 60)],
    "soak": [(50, 60), (50, 3540)],
    "chaos": [(20, 10), (20, 590)],
}


def _check(response, accept=()):
    """Applies the failure rules to a response opened with catch_response."""
    if response.status_code == 0:
        response.failure(f"ConnectionError: {response.error}")
    elif not (200 <= response.status_code < 300) and response.status_code not in accept:
        response.failure(f"HTTPError: {response.status_code}")
    else:
        response.success()


def health(user):
    with user.client.get("/health", name="/health", catch_response=True) as r:
        if r.status_code == 0 or not (200 <= r.status_code < 300):
            _check(r)
            return
        try:
            status = r.json().get("status")
        except Exception:  # not JSON: the status code decides
            status = None
        if status == "unhealthy":
            r.failure('HealthCheck: status is "unhealthy"')
        else:
            r.success()


def index(user):
    with user.client.get("/", name="/", catch_response=True) as r:
        _check(r)


def chaos_status(user):
    with user.client.get("/chaos/status", name="/chaos/status", catch_response=True) as r:
        _check(r)


def chaos_load(user):
    body = {"level": "low", "duration_seconds": 20}
    with user.client.post("/chaos/load", json=body, name="/chaos/load", catch_response=True) as r:
        _check(r, accept=(409,))


class ChaosLabUser(FastHttpUser):
    """The seed's user: /health ×3, / ×5, /chaos/status ×1, 1–3 s think time."""

    wait_time = between(WAIT_MIN, WAIT_MAX)
    connection_timeout = TIMEOUT
    network_timeout = TIMEOUT
    if SCENARIO == "chaos":
        tasks = {health: 30, index: 50, chaos_status: 10, chaos_load: 1}
    else:
        tasks = {health: 3, index: 5, chaos_status: 1}


if SCENARIO:
    if SCENARIO not in PLANS:
        raise SystemExit(f"CHAOSLAB_SCENARIO={SCENARIO!r}: expected one of {', '.join(PLANS)}")

    class ScenarioShape(LoadTestShape):
        """The scenario's plan: each step moves users linearly to its target."""

        steps = PLANS[SCENARIO]

        def tick(self):
            t = self.get_run_time()
            start, users = 0.0, 0
            for target, seconds in self.steps:
                if t < start + seconds:
                    now = users + (target - users) * (t - start) / seconds
                    # A spawn rate high enough to follow the line.
                    return max(0, round(now)), max(1.0, abs(target - users) / seconds * 2)
                start, users = start + seconds, target
            return None
