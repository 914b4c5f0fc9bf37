//! Unit tests of configuration resolution: presets, overrides, validation.

use super::*;

fn resolve(text: &str) -> Result<LabConfig, ConfigError> {
    let file: FileConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: "t".into(),
        message: e.to_string(),
    })?;
    LabConfig::resolve(file, &Overrides::default(), "/bin/chaoslab".into())
}

#[test]
fn aca_preset_is_the_seed_deployment() {
    let c = resolve("[probes]\npreset = \"aca\"").unwrap();
    assert_eq!(c.liveness.action, ProbeAction::Tcp);
    assert_eq!(c.liveness.initial_delay, Duration::from_secs(60));
    assert_eq!(c.liveness.period, Duration::from_secs(10));
    assert_eq!(c.liveness.timeout, Duration::from_secs(10));
    assert_eq!(c.liveness.failure_threshold, 5);
    assert_eq!(
        c.readiness.action,
        ProbeAction::Http {
            path: "/health".into()
        }
    );
    assert_eq!(c.readiness.initial_delay, Duration::from_secs(10));
    assert_eq!(c.readiness.period, Duration::from_secs(5));
    assert_eq!(c.readiness.timeout, Duration::from_secs(3));
    assert_eq!(
        (c.readiness.failure_threshold, c.readiness.success_threshold),
        (2, 2)
    );
}

#[test]
fn quick_is_the_default_and_a_tenth() {
    let c = resolve("").unwrap();
    assert_eq!(c.liveness.initial_delay, Duration::from_secs(6));
    assert_eq!(c.readiness.period, Duration::from_millis(500));
    assert_eq!(c.readiness.timeout, Duration::from_millis(300));
    assert_eq!(c.file.ingress.port, 8000);
    assert_eq!(c.file.control.port, 8090);
    assert_eq!(c.file.limits.memory_mb, 512);
    assert_eq!(c.image, PathBuf::from("/bin/chaoslab"));
}

#[test]
fn overrides_apply_per_field() {
    let c = resolve("[probes.liveness]\ntype = \"http\"\nperiod_seconds = 0.2").unwrap();
    assert_eq!(
        c.liveness.action,
        ProbeAction::Http {
            path: "/livez".into()
        }
    );
    assert_eq!(c.liveness.period, Duration::from_millis(200));
    assert_eq!(c.liveness.failure_threshold, 5);
}

#[test]
fn bad_values_are_rejected_before_start() {
    assert!(resolve("[autoscaler]\nmin_replicas = 3\nmax_replicas = 2").is_err());
    assert!(resolve("[probes.readiness]\nfailure_threshold = 0").is_err());
    assert!(resolve("[probes.liveness]\ntype = \"grpc\"").is_err());
    assert!(resolve("[app]\nunknown = 1").is_err());
    assert!(resolve("[redis]\nurl = \"http://x\"").is_err());
}
