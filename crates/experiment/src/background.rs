//! The background load of a run (`[load]`): `chaoslab load` as a library,
//! against the lab's ingress, every request handed to the [`Observer`] so
//! availability and latency can be judged per span. Also the counter
//! readings the `counter` invariant brackets the run with.

use std::time::Duration;

use clap::Parser;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::format::LoadCli;
use crate::model::LoadPlan;
use crate::observe::Observer;
use crate::run_error::RunError;

/// A running background load.
#[derive(Debug)]
pub struct BackgroundLoad {
    stop: CancellationToken,
    task: JoinHandle<Result<chaoslab_load::Report, chaoslab_load::LoadError>>,
}

impl BackgroundLoad {
    /// Starts the load of `plan` against `ingress_url`.
    pub fn start(
        plan: &LoadPlan,
        ingress_url: &str,
        observer: &Observer,
    ) -> Result<Self, RunError> {
        let mut args = vec!["load".to_string(), "--host".into(), ingress_url.into()];
        args.extend(plan.args.iter().cloned());
        args.push("--quiet".into());
        let cli = LoadCli::try_parse_from(&args)
            .map_err(|e| RunError::Load(crate::format::first_line(&e.render().to_string())))?;
        let mut config = cli
            .args
            .into_config()
            .map_err(|e| RunError::Load(e.to_string()))?;
        // The lab shares this machine: one generator thread is plenty for a
        // background load and leaves the cores to the lab.
        config.threads = config.threads.min(1);
        let roots: Vec<bool> = config
            .mix
            .tasks
            .iter()
            .map(|t| crate::probe::visits_the_counter(t.method.as_str(), &t.path))
            .collect();
        let stop = CancellationToken::new();
        let observer = observer.clone();
        let until = stop.clone();
        let task = tokio::spawn(async move {
            chaoslab_load::run_tapped(
                &config,
                until.cancelled_owned(),
                |_| {},
                |sample| {
                    let root = roots.get(sample.task).copied().unwrap_or(false);
                    observer.record_sample(sample, root);
                },
            )
            .await
        });
        Ok(Self { stop, task })
    }

    /// Stops the load (requests in flight may finish) and waits for it.
    pub async fn stop(self) -> Option<chaoslab_load::Report> {
        self.stop.cancel();
        let abort = self.task.abort_handle();
        match tokio::time::timeout(Duration::from_secs(20), self.task).await {
            Ok(Ok(Ok(report))) => Some(report),
            Ok(_) => None,
            Err(_) => {
                abort.abort();
                None
            }
        }
    }
}

/// Reads the service's Redis counter with one `GET /` (its
/// `request_count` is the value after its own increment); retries for a
/// few seconds while the service recovers. Also returns how many attempts
/// failed (each may have incremented the counter unacknowledged).
pub async fn read_counter(ingress_url: &str, within: Duration) -> Option<(i64, u64)> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()
        .ok()?;
    let deadline = tokio::time::Instant::now() + within;
    let mut failed = 0;
    loop {
        if let Ok(r) = http.get(format!("{ingress_url}/")).send().await
            && r.status().is_success()
            && let Ok(body) = r.json::<serde_json::Value>().await
            && let Some(n) = body["request_count"].as_i64()
        {
            return Some((n, failed));
        }
        failed += 1;
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
