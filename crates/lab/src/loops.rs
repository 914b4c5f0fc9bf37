//! The lab's periodic loops: the autoscaler (decide, record the decision as
//! an event with its inputs, reconcile replicas) and the 1-second sampler
//! that folds ingress counters and replica resources into the time series.
//! Both end when the platform shuts down.

use std::sync::Arc;
use std::time::Duration;

use chaoslab_ingress::{MetricsSnapshot, latency_quantile_ms};

use crate::autoscaler::{Autoscaler, Policy};
use crate::config::secs;
use crate::platform::{Phase, Platform};
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
    loop {
        tokio::select! {
            _ = platform.shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let now = platform.ingress_metrics.snapshot();
        let active = platform.active().unwrap_or_default();
        let desired = platform.revision(&active).map_or(0, |r| r.desired);
        let replicas = platform.replicas();
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
            in_flight: now.in_flight,
            replicas: mine.len() as u32,
            ready: mine.iter().filter(|r| r.ready).count() as u32,
            desired,
            per_replica: replicas
                .iter()
                .map(|r| ReplicaPoint {
                    id: r.id.clone(),
                    revision: r.revision.clone(),
                    ready: r.ready,
                    cpu_percent: r.cpu_percent,
                    cpu_utilization: r.cpu_utilization,
                    rss_mb: r.rss_mb,
                })
                .collect(),
        });
        previous = now;
    }
}
