//! The lab's periodic loops: the autoscaler (decide, record the decision as
//! an event with its inputs, reconcile replicas) and the 1-second sampler
//! that folds ingress counters and replica resources into the time series.
//! Both end when the platform shuts down.

use std::sync::Arc;
use std::time::Duration;

use chaoslab_ingress::{MetricsSnapshot, latency_quantile_ms};

use crate::autoscaler::{Autoscaler, Policy};
use crate::config::secs;
use crate::platform::{Phase, Platform, ReplicaStatus};
use crate::redis_server::{AdminConnection, AdminTarget};
use crate::timeseries::{Point, ReplicaPoint};

/// Runs the autoscaler every period on the active revision.
pub(crate) async fn autoscale(platform: Arc<Platform>) {
    let a = &platform.config.file.autoscaler;
    if !a.enabled {
        return;
    }
    let mut scaler = Autoscaler::new(Policy {
        min_replicas: a.min_replicas,
        max_replicas: a.max_replicas,
        target_utilization: a.target_cpu_utilization,
        tolerance: a.tolerance,
        scale_down_window: secs(a.scale_down_stabilization_seconds),
    });
    let mut ticks = tokio::time::interval(secs(a.period_seconds).max(Duration::from_millis(100)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = platform.shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        // Never scale in the middle of a rollout.
        let Ok(_guard) = platform.deploy_lock.try_lock() else {
            continue;
        };
        let Some(active) = platform.active() else {
            continue;
        };
        let Some(revision) = platform.revision(&active) else {
            continue;
        };
        let replicas = platform.replicas_of(&active);
        let measured: Vec<f64> = replicas
            .iter()
            .filter(|r| r.phase == Phase::Running && r.cpu_measured)
            .map(|r| r.cpu_utilization)
            .collect();
        let utilization =
            (!measured.is_empty()).then(|| measured.iter().sum::<f64>() / measured.len() as f64);
        let current = revision.desired;
        let decision = scaler.decide(tokio::time::Instant::now(), current, utilization);
        if decision.desired != current {
            let reason = if decision.desired > current {
                "ScaledUp"
            } else {
                "ScaledDown"
            };
            platform.events.normal(
                reason,
                &active,
                format!(
                    "{active}: {current} -> {} replicas ({})",
                    decision.desired, decision.reason
                ),
                serde_json::to_value(&decision).unwrap_or_default(),
            );
            platform.update_revision(&active, |r| r.desired = decision.desired);
            platform.reconcile(&active);
        }
    }
}

/// Appends one point per second to the time series.
pub(crate) async fn sample(platform: Arc<Platform>) {
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut previous: MetricsSnapshot = platform.ingress_metrics.snapshot();
    let mut redis: Option<AdminConnection> = None;
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_millis(300))
        .build()
        .ok();
    loop {
        tokio::select! {
            _ = platform.shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let (redis_connected, redis_ping_ms) = redis_view(&platform, &mut redis).await;
        let replicas_now = platform.replicas();
        let levels = match &http {
            Some(http) => load_levels(http, &replicas_now).await,
            None => vec![0; replicas_now.len()],
        };
        let now = platform.ingress_metrics.snapshot();
        let active = platform.active().unwrap_or_default();
        let desired = platform.revision(&active).map_or(0, |r| r.desired);
        let replicas = replicas_now;
        let mine: Vec<_> = replicas
            .iter()
            .filter(|r| r.revision == active && r.phase != Phase::Terminating)
            .collect();
        let q = |q| latency_quantile_ms(&previous.latency_buckets, &now.latency_buckets, q);
        platform.series.push(Point {
            unix_ms: chrono::Utc::now().timestamp_millis(),
            requests: now.requests_total.saturating_sub(previous.requests_total),
            errors_5xx: now.by_class[4].saturating_sub(previous.by_class[4]),
            proxy_errors: now.proxy_errors.saturating_sub(previous.proxy_errors),
            p50_ms: q(0.5),
            p95_ms: q(0.95),
            p99_ms: q(0.99),
            latency_sum_ms: now.latency_sum_us.saturating_sub(previous.latency_sum_us) as f64
                / 1000.0,
            in_flight: now.in_flight,
            replicas: mine.len() as u32,
            ready: mine.iter().filter(|r| r.ready).count() as u32,
            restarting: mine
                .iter()
                .filter(|r| {
                    matches!(
                        r.phase,
                        Phase::BackOff | Phase::CrashLoopBackOff | Phase::ImagePullBackOff
                    ) || (r.phase == Phase::Starting && r.restarts > 0)
                })
                .count() as u32,
            desired,
            redis_connected,
            redis_ping_ms,
            per_replica: replica_points(&replicas, levels),
        });
        previous = now;
    }
}
/// The lab's own view of redis-server (directly, not through the fault
/// proxy; what the replicas see shows in their readiness): connected, and
/// the PING's round trip in ms. None with an external Redis.
async fn redis_view(
    platform: &Platform,
    redis: &mut Option<AdminConnection>,
) -> (Option<bool>, Option<f64>) {
    match platform.redis.admin.as_ref() {
        None => (None, None),
        Some(target) => {
            let started = tokio::time::Instant::now();
            let ok = ping(redis, target).await;
            (
                Some(ok),
                ok.then(|| started.elapsed().as_secs_f64() * 1000.0),
            )
        }
    }
}

/// Each replica's point of a sample, with its load level.
fn replica_points(replicas: &[ReplicaStatus], levels: Vec<u8>) -> Vec<ReplicaPoint> {
    replicas
        .iter()
        .zip(levels)
        .map(|(r, load_level)| ReplicaPoint {
            id: r.id.clone(),
            revision: r.revision.clone(),
            ready: r.ready,
            cpu_percent: r.cpu_percent,
            cpu_utilization: r.cpu_utilization,
            rss_mb: r.rss_mb,
            load_level,
        })
        .collect()
}

/// PINGs the lab's Redis over a kept admin connection (reconnecting after
/// any error); false when it does not answer within half a second.
async fn ping(conn: &mut Option<AdminConnection>, target: &AdminTarget) -> bool {
    if conn.is_none() {
        *conn = AdminConnection::connect_target(target, Duration::from_millis(500))
            .await
            .ok();
    }
    let Some(c) = conn.as_mut() else { return false };
    if c.ping().await.is_ok() {
        true
    } else {
        *conn = None;
        false
    }
}

/// Each replica's internal chaos load level (0 none … 3 high) from its
/// `/chaos/status`, all asked at once with a short timeout (a hung replica
/// counts as 0).
async fn load_levels(http: &reqwest::Client, replicas: &[ReplicaStatus]) -> Vec<u8> {
    let asks = replicas.iter().map(|r| async move {
        if r.phase != Phase::Running {
            return 0;
        }
        let url = format!("http://127.0.0.1:{}/chaos/status", r.target_port);
        let Ok(response) = http.get(url).send().await else {
            return 0;
        };
        let Ok(status) = response.json::<serde_json::Value>().await else {
            return 0;
        };
        if status["load"]["active"] != true {
            return 0;
        }
        match status["load"]["level"].as_str() {
            Some("low") => 1,
            Some("medium") => 2,
            Some("high") => 3,
            _ => 0,
        }
    });
    futures::future::join_all(asks).await
}
