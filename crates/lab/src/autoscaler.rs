//! The autoscaler's decision, as the Kubernetes HPA makes it for a CPU
//! utilisation target: `desired = ceil(current × utilisation / target)`,
//! no change within the tolerance, clamped to min/max; scale-up applies at
//! once, scale-down only to the highest recommendation of the stabilisation
//! window (so a short dip does not remove replicas). Pure logic on tokio's
//! clock, tested with paused time; the lab's loop feeds it and applies it.

use std::collections::VecDeque;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

/// At most this many recommendations are remembered (the window is pruned
/// first; this only bounds memory for absurd period/window ratios).
const MAX_RECOMMENDATIONS: usize = 4096;

/// The autoscaler's settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Policy {
    pub min_replicas: u32,
    pub max_replicas: u32,
    /// Target average CPU utilisation, % of the CPU request.
    pub target_utilization: f64,
    pub tolerance: f64,
    pub scale_down_window: Duration,
}

/// One decision with its inputs (what the event carries).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub current: u32,
    /// Average utilisation of the replicas with metrics, % of request.
    pub utilization: Option<f64>,
    pub target_utilization: f64,
    /// What the formula alone says (clamped to min/max).
    pub recommended: u32,
    /// What to run now (after stabilisation).
    pub desired: u32,
    /// Why, in words.
    pub reason: String,
}

/// Decision state across periods.
#[derive(Debug)]
pub struct Autoscaler {
    policy: Policy,
    recommendations: VecDeque<(Instant, u32)>,
}

impl Autoscaler {
    pub fn new(policy: Policy) -> Self {
        Self {
            policy,
            recommendations: VecDeque::new(),
        }
    }

    /// Decides for `current` replicas averaging `utilization` (None: no
    /// metrics yet, keep the count within bounds).
    pub fn decide(&mut self, now: Instant, current: u32, utilization: Option<f64>) -> Decision {
        let p = &self.policy;
        let clamp = |n: u32| n.clamp(p.min_replicas, p.max_replicas);
        let (recommended, why) = match utilization {
            None => (clamp(current), "no CPU metrics yet".to_string()),
            Some(u) => {
                let ratio = u / p.target_utilization;
                if (ratio - 1.0).abs() <= p.tolerance {
                    (
                        clamp(current),
                        format!("utilisation {u:.0}% within tolerance of target"),
                    )
                } else {
                    let raw = (f64::from(current.max(1)) * ratio).ceil();
                    let raw = if raw.is_finite() {
                        raw.clamp(0.0, 1e6) as u32
                    } else {
                        current
                    };
                    (
                        clamp(raw),
                        format!("utilisation {u:.0}% vs target {:.0}%", p.target_utilization),
                    )
                }
            }
        };
        self.recommendations.push_back((now, recommended));
        let window = self.policy.scale_down_window;
        while let Some(&(t, _)) = self.recommendations.front() {
            if now.duration_since(t) > window || self.recommendations.len() > MAX_RECOMMENDATIONS {
                self.recommendations.pop_front();
            } else {
                break;
            }
        }
        let (desired, reason) = if recommended >= current {
            (recommended, why)
        } else {
            // Scale down only as far as every recommendation in the window
            // allows.
            let stable = self
                .recommendations
                .iter()
                .map(|&(_, r)| r)
                .max()
                .unwrap_or(recommended);
            let desired = stable.min(current);
            if desired > recommended {
                (
                    desired,
                    format!("{why}; scale-down held by the {window:?} stabilisation window"),
                )
            } else {
                (desired, why)
            }
        };
        Decision {
            current,
            utilization,
            target_utilization: self.policy.target_utilization,
            recommended,
            desired: clamp(desired),
            reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scaler(window_s: u64) -> Autoscaler {
        Autoscaler::new(Policy {
            min_replicas: 1,
            max_replicas: 5,
            target_utilization: 70.0,
            tolerance: 0.1,
            scale_down_window: Duration::from_secs(window_s),
        })
    }

    #[tokio::test(start_paused = true)]
    async fn hpa_formula_and_bounds() {
        let mut s = scaler(0);
        let now = Instant::now();
        // 1 replica at 140 % of request → ceil(1 × 140/70) = 2.
        assert_eq!(s.decide(now, 1, Some(140.0)).desired, 2);
        // 2 at 200 % → ceil(2 × 2.857) = 6 → clamped to 5.
        assert_eq!(s.decide(now, 2, Some(200.0)).desired, 5);
        // Within tolerance (75/70 = 1.07): no change.
        assert_eq!(s.decide(now, 3, Some(75.0)).desired, 3);
        // No metrics: keep.
        assert_eq!(s.decide(now, 3, None).desired, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn scale_up_is_immediate_scale_down_waits_for_the_window() {
        let mut s = scaler(30);
        let d = s.decide(Instant::now(), 1, Some(300.0));
        assert_eq!((d.recommended, d.desired), (5, 5));
        // Load gone: the formula says 1, the window holds 5 for 30 s.
        let mut desired = 5;
        let mut dropped_at = None;
        for second in 1..=40 {
            tokio::time::advance(Duration::from_secs(1)).await;
            let d = s.decide(Instant::now(), desired, Some(1.0));
            assert_eq!(d.recommended, 1);
            if d.desired < desired && dropped_at.is_none() {
                dropped_at = Some(second);
                assert!(d.reason.contains("utilisation"), "{}", d.reason);
            }
            desired = d.desired;
        }
        assert_eq!(desired, 1);
        assert_eq!(dropped_at, Some(31), "scale-down after the 30 s window");
    }

    #[tokio::test(start_paused = true)]
    async fn a_short_dip_does_not_scale_down() {
        let mut s = scaler(10);
        assert_eq!(s.decide(Instant::now(), 3, Some(70.0)).desired, 3);
        tokio::time::advance(Duration::from_secs(2)).await;
        let d = s.decide(Instant::now(), 3, Some(10.0));
        assert_eq!((d.recommended, d.desired), (1, 3));
        assert!(d.reason.contains("stabilisation"));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(s.decide(Instant::now(), 3, Some(70.0)).desired, 3);
    }
}
