//! Configuration of `chaoslab serve`, in two stages as ripgrep does: raw
//! command-line flags and environment variables (`ServeArgs`, parsed by clap,
//! every flag with the seed's variable name and default), then a validated
//! [`Config`] that the rest of the service uses. Anything wrong is caught here,
//! before the service binds a port, with an error naming the variable.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use chaoslab_httpguard::{LimitsError, ServerLimits};
use clap::Args;

/// Flags of `chaoslab serve`. Each one can also be set by the environment
/// variable in brackets; a flag wins over its variable.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on (loopback by default; a container sets
    /// 0.0.0.0, and then chaos needs CHAOS_API_TOKEN).
    #[arg(
        long,
        env = "APP_HOST",
        default_value = "127.0.0.1",
        help_heading = "Service"
    )]
    pub app_host: String,
    /// Port to listen on.
    #[arg(
        long,
        env = "APP_PORT",
        default_value_t = 8000,
        help_heading = "Service"
    )]
    pub app_port: u16,
    /// Replica id reported in `GET /` (the lab sets one per replica).
    #[arg(long, env = "REPLICA_ID", help_heading = "Service")]
    pub replica_id: Option<String>,
    /// Revision name reported in `GET /`.
    #[arg(
        long,
        env = "REVISION",
        default_value = "local",
        help_heading = "Service"
    )]
    pub revision: String,
    /// Seconds to let in-flight requests finish after SIGTERM or Ctrl-C.
    #[arg(
        long,
        env = "SHUTDOWN_GRACE_SECONDS",
        default_value_t = 30,
        help_heading = "Service"
    )]
    pub shutdown_grace_seconds: u64,
    /// Host names the service answers besides loopback and its own
    /// address, comma-separated: `name`, `.domain` (it and every name under
    /// it), an address, or `*` (any). A `Host` not listed is refused 403
    /// (DNS rebinding). Unset on a non-loopback address: any name, as a
    /// container behind an ingress must.
    #[arg(long, env = "ALLOWED_HOSTS", help_heading = "Service")]
    pub allowed_hosts: Option<String>,
    /// Exit when the parent process is no longer this pid (set by the lab so
    /// replicas never outlive it).
    #[arg(long, env = "CHAOSLAB_PARENT_PID", help_heading = "Service")]
    pub parent_pid: Option<u32>,
    /// Seconds a client has to send a whole request head, from connecting
    /// or from the first byte of a later request; a slower connection is
    /// closed (slowloris).
    #[arg(
        long,
        env = "SERVER_HEADER_TIMEOUT_SECONDS",
        default_value_t = ServerLimits::PUBLIC.header_timeout.as_secs_f64(),
        help_heading = "Service"
    )]
    pub server_header_timeout_seconds: f64,
    /// Seconds a client has, from a request's head, to send its whole body;
    /// a slower one is answered 408 and the connection closed.
    #[arg(
        long,
        env = "SERVER_BODY_TIMEOUT_SECONDS",
        default_value_t = ServerLimits::PUBLIC.body_timeout.as_secs_f64(),
        help_heading = "Service"
    )]
    pub server_body_timeout_seconds: f64,
    /// Seconds a keep-alive connection may sit idle between requests.
    #[arg(
        long,
        env = "SERVER_IDLE_TIMEOUT_SECONDS",
        default_value_t = ServerLimits::PUBLIC.idle_timeout.as_secs_f64(),
        help_heading = "Service"
    )]
    pub server_idle_timeout_seconds: f64,
    /// Connections served at once; more wait until one ends.
    #[arg(
        long,
        env = "SERVER_MAX_CONNECTIONS",
        default_value_t = ServerLimits::PUBLIC.max_connections,
        help_heading = "Service"
    )]
    pub server_max_connections: usize,

    /// Use Redis at all; false serves without it ("Redis unavailable").
    #[arg(long, env = "REDIS_ENABLED", default_value = "true", value_parser = parse_bool, action = clap::ArgAction::Set, help_heading = "Redis")]
    pub redis_enabled: bool,
    /// Full Redis URL (redis:// or rediss://); overrides host, port and SSL.
    #[arg(long, env = "REDIS_URL", help_heading = "Redis")]
    pub redis_url: Option<String>,
    /// Redis host.
    #[arg(
        long,
        env = "REDIS_HOST",
        default_value = "localhost",
        help_heading = "Redis"
    )]
    pub redis_host: String,
    /// Redis port.
    #[arg(
        long,
        env = "REDIS_PORT",
        default_value_t = 6379,
        help_heading = "Redis"
    )]
    pub redis_port: u16,
    /// Connect with TLS (Azure Managed Redis needs it; build with --features tls).
    #[arg(long, env = "REDIS_SSL", default_value = "false", value_parser = parse_bool, action = clap::ArgAction::Set, help_heading = "Redis")]
    pub redis_ssl: bool,
    /// ACL user name.
    #[arg(long, env = "REDIS_USERNAME", help_heading = "Redis")]
    pub redis_username: Option<String>,
    /// Password (prefer REDIS_PASSWORD_FILE: it is re-read on auth failure).
    #[arg(
        long,
        env = "REDIS_PASSWORD",
        hide_env_values = true,
        help_heading = "Redis"
    )]
    pub redis_password: Option<String>,
    /// File holding the password; re-read whenever Redis rejects it.
    #[arg(long, env = "REDIS_PASSWORD_FILE", help_heading = "Redis")]
    pub redis_password_file: Option<PathBuf>,
    /// Authenticate with Entra ID tokens (managed identity; build with --features entra-id).
    #[arg(long, env = "REDIS_USE_ENTRA_ID", default_value = "false", value_parser = parse_bool, action = clap::ArgAction::Set, help_heading = "Redis")]
    pub redis_use_entra_id: bool,
    /// Upper bound of Redis operations in flight at once (they share one
    /// multiplexed connection).
    #[arg(
        long,
        env = "REDIS_MAX_CONNECTIONS",
        default_value_t = 50,
        help_heading = "Redis"
    )]
    pub redis_max_connections: u32,
    /// Seconds to wait for a Redis reply.
    #[arg(
        long,
        env = "REDIS_SOCKET_TIMEOUT",
        default_value_t = 3.0,
        help_heading = "Redis"
    )]
    pub redis_socket_timeout: f64,
    /// Seconds to wait for a connection to Redis.
    #[arg(
        long,
        env = "REDIS_SOCKET_CONNECT_TIMEOUT",
        default_value_t = 3.0,
        help_heading = "Redis"
    )]
    pub redis_socket_connect_timeout: f64,
    /// Retries of a failed Redis operation (only when it is safe to repeat).
    #[arg(
        long,
        env = "REDIS_MAX_RETRIES",
        default_value_t = 1,
        help_heading = "Redis"
    )]
    pub redis_max_retries: u32,
    /// First retry delay in seconds; doubles each retry.
    #[arg(
        long,
        env = "REDIS_BACKOFF_BASE",
        default_value_t = 1.0,
        help_heading = "Redis"
    )]
    pub redis_backoff_base: f64,
    /// Largest retry delay in seconds.
    #[arg(
        long,
        env = "REDIS_BACKOFF_CAP",
        default_value_t = 3.0,
        help_heading = "Redis"
    )]
    pub redis_backoff_cap: f64,

    /// Redis PING latency (ms) above which /health says "degraded".
    #[arg(
        long,
        env = "HEALTH_DEGRADED_LATENCY_MS",
        default_value_t = 100,
        help_heading = "Health"
    )]
    pub health_degraded_latency_ms: u64,
    /// Seconds a /health verdict is reused (0 = check on every call).
    #[arg(
        long,
        env = "HEALTH_CACHE_TTL_SECONDS",
        default_value_t = 5.0,
        help_heading = "Health"
    )]
    pub health_cache_ttl_seconds: f64,
    /// Milliseconds /health waits for Redis before answering "unhealthy".
    #[arg(
        long,
        env = "HEALTH_TIMEOUT_MS",
        default_value_t = 2000,
        help_heading = "Health"
    )]
    pub health_timeout_ms: u64,

    /// Serve the /chaos endpoints (false: they answer 404).
    #[arg(long, env = "CHAOS_ENABLED", default_value = "true", value_parser = parse_bool, action = clap::ArgAction::Set, help_heading = "Chaos")]
    pub chaos_enabled: bool,
    /// Bearer token required by mutating /chaos calls.
    #[arg(
        long,
        env = "CHAOS_API_TOKEN",
        hide_env_values = true,
        help_heading = "Chaos"
    )]
    pub chaos_api_token: Option<String>,
    /// Serve the chaos endpoints without a token on a non-loopback
    /// address (anyone who reaches the port can then break the service).
    #[arg(long, env = "CHAOS_ALLOW_UNAUTHENTICATED", default_value = "false", value_parser = parse_bool, action = clap::ArgAction::Set, help_heading = "Chaos")]
    pub chaos_allow_unauthenticated: bool,
    /// Largest memory_mb a load may ask for, 0 to 1048576 (1 TiB); a
    /// level's own figure is capped at it.
    #[arg(
        long,
        env = "LOAD_MAX_MEMORY_MB",
        default_value_t = 4096,
        help_heading = "Chaos"
    )]
    pub load_max_memory_mb: u64,

    /// Export traces and metrics (OTLP / Azure Monitor); logs and /metrics stay.
    #[arg(long, env = "TELEMETRY_ENABLED", default_value = "true", value_parser = parse_bool, action = clap::ArgAction::Set, help_heading = "Telemetry")]
    pub telemetry_enabled: bool,
    /// Share of traces kept, 0.0 to 1.0 (traces with errors are always kept).
    #[arg(
        long,
        env = "TELEMETRY_SAMPLING_RATE",
        default_value_t = 1.0,
        help_heading = "Telemetry"
    )]
    pub telemetry_sampling_rate: f64,
    /// OTLP collector endpoint, e.g. http://localhost:4318 (standard OTEL_* variables apply).
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", help_heading = "Telemetry")]
    pub otel_exporter_otlp_endpoint: Option<String>,
    /// Application Insights connection string (Azure Monitor export).
    #[arg(
        long,
        env = "APPLICATIONINSIGHTS_CONNECTION_STRING",
        hide_env_values = true,
        help_heading = "Telemetry"
    )]
    pub applicationinsights_connection_string: Option<String>,
    /// DEBUG, INFO, WARNING or ERROR (or a tracing filter such as "info,chaoslab_service=debug").
    #[arg(
        long,
        env = "LOG_LEVEL",
        default_value = "INFO",
        help_heading = "Telemetry"
    )]
    pub log_level: String,
    /// json (one object per line) or text.
    #[arg(
        long,
        env = "LOG_FORMAT",
        default_value = "json",
        help_heading = "Telemetry"
    )]
    pub log_format: String,
}

fn parse_bool(value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        other => Err(format!("expected true or false, got {other:?}")),
    }
}

/// A configuration value that cannot be used, naming the variable to fix.
#[derive(Debug, thiserror::Error)]
#[error("{variable}={value:?} is invalid: {reason}")]
pub struct ConfigError {
    /// The environment variable (and, lower-cased with dashes, the flag).
    pub variable: &'static str,
    pub value: String,
    pub reason: String,
}

impl From<LimitsError> for ConfigError {
    fn from(e: LimitsError) -> Self {
        ConfigError {
            variable: e.variable,
            value: e.value,
            reason: e.reason,
        }
    }
}

impl ConfigError {
    fn new(variable: &'static str, value: impl ToString, reason: impl Into<String>) -> Self {
        ConfigError {
            variable,
            value: value.to_string(),
            reason: reason.into(),
        }
    }
}

/// How the service authenticates to Redis.
#[derive(Debug, Clone, PartialEq)]
pub enum RedisAuth {
    /// No AUTH (a local Redis without ACLs).
    None,
    /// A fixed password from REDIS_PASSWORD.
    Password(String),
    /// A password read from a file, and read again after an auth failure.
    PasswordFile(PathBuf),
    /// Entra ID tokens (Azure Managed Redis); `client_id` picks a
    /// user-assigned identity.
    EntraId { client_id: Option<String> },
}

/// Validated Redis settings.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// `redis://` or `rediss://` URL without credentials.
    pub url: String,
    /// Host and port, for span attributes.
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub auth: RedisAuth,
    pub max_in_flight: usize,
    pub socket_timeout: Duration,
    pub connect_timeout: Duration,
    pub max_retries: u32,
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
}

/// Validated configuration of the whole service.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// ALLOWED_HOSTS, checked: names answered besides loopback and the
    /// listen address.
    pub allowed_hosts: Vec<String>,
    pub replica_id: String,
    pub revision: String,
    pub shutdown_grace: Duration,
    pub parent_pid: Option<u32>,
    /// Header, body and idle timeouts and the connection cap (SERVER_*).
    pub limits: ServerLimits,
    /// `None` when REDIS_ENABLED=false.
    pub redis: Option<RedisConfig>,
    pub health_degraded_latency: Duration,
    pub health_cache_ttl: Duration,
    pub health_timeout: Duration,
    pub chaos_enabled: bool,
    pub chaos_api_token: Option<String>,
    pub load_max_memory_mb: u64,
    /// LOG_LEVEL=DEBUG: 500 answers carry the error's detail.
    pub debug_errors: bool,
}

fn seconds(variable: &'static str, value: f64) -> Result<Duration, ConfigError> {
    if (0.0..1e9).contains(&value) {
        Ok(Duration::from_secs_f64(value))
    } else {
        Err(ConfigError::new(
            variable,
            value,
            "expected a number of seconds ≥ 0",
        ))
    }
}

impl ServeArgs {
    /// Checks every value and builds the [`Config`].
    pub fn validate(&self) -> Result<Config, ConfigError> {
        let ip: std::net::IpAddr = match self.app_host.as_str() {
            "localhost" => std::net::Ipv4Addr::LOCALHOST.into(),
            host => host.parse().map_err(|_| {
                ConfigError::new(
                    "APP_HOST",
                    host,
                    "expected an IP address such as 0.0.0.0 or 127.0.0.1",
                )
            })?,
        };
        let replica_id = match &self.replica_id {
            Some(id) if !id.trim().is_empty() => id.clone(),
            _ => default_replica_id(),
        };
        let redis = if self.redis_enabled {
            Some(self.redis_config()?)
        } else {
            None
        };
        if !(0.0..=1.0).contains(&self.telemetry_sampling_rate) {
            return Err(ConfigError::new(
                "TELEMETRY_SAMPLING_RATE",
                self.telemetry_sampling_rate,
                "expected a ratio between 0.0 and 1.0",
            ));
        }
        if !matches!(
            self.log_format.to_ascii_lowercase().as_str(),
            "json" | "text"
        ) {
            return Err(ConfigError::new(
                "LOG_FORMAT",
                &self.log_format,
                "expected json or text",
            ));
        }
        if matches!(&self.chaos_api_token, Some(t) if t.trim().is_empty()) {
            return Err(ConfigError::new(
                "CHAOS_API_TOKEN",
                "",
                "an empty token would protect nothing; unset it instead",
            ));
        }
        if self.chaos_enabled
            && self.chaos_api_token.is_none()
            && !ip.is_loopback()
            && !self.chaos_allow_unauthenticated
        {
            return Err(ConfigError::new(
                "CHAOS_API_TOKEN",
                "(unset)",
                format!(
                    "the chaos endpoints would be open to anyone who reaches APP_HOST={ip}: set CHAOS_API_TOKEN, or CHAOS_ENABLED=false, or CHAOS_ALLOW_UNAUTHENTICATED=true to accept that"
                ),
            ));
        }
        let allowed_hosts = match &self.allowed_hosts {
            Some(list) => chaoslab_httpguard::parse_allowed_hosts(list)
                .map_err(|e| ConfigError::new("ALLOWED_HOSTS", list, e.to_string()))?,
            None => Vec::new(),
        };
        Ok(Config {
            listen: std::net::SocketAddr::new(ip, self.app_port),
            allowed_hosts,
            replica_id,
            revision: self.revision.clone(),
            shutdown_grace: Duration::from_secs(self.shutdown_grace_seconds),
            parent_pid: self.parent_pid,
            limits: self.limits()?,
            redis,
            health_degraded_latency: Duration::from_millis(self.health_degraded_latency_ms),
            health_cache_ttl: seconds("HEALTH_CACHE_TTL_SECONDS", self.health_cache_ttl_seconds)?,
            health_timeout: Duration::from_millis(self.health_timeout_ms.max(1)),
            chaos_enabled: self.chaos_enabled,
            // Surrounding whitespace (a secret file's newline) cannot come
            // in a header: kept, no client could ever match the token.
            chaos_api_token: self
                .chaos_api_token
                .as_deref()
                .map(|t| t.trim().to_string()),
            load_max_memory_mb: load_max_memory_mb(self.load_max_memory_mb)?,
            debug_errors: self.log_level.eq_ignore_ascii_case("debug"),
        })
    }

    /// The SERVER_* bounds, each checked (SPEC section 13, "Bounds").
    fn limits(&self) -> Result<ServerLimits, ConfigError> {
        use chaoslab_httpguard::limits::{
            BODY_TIMEOUT_VAR, HEADER_TIMEOUT_VAR, IDLE_TIMEOUT_VAR, parse_seconds,
        };
        let seconds = |variable, value: f64| parse_seconds(variable, &value.to_string());
        let limits = ServerLimits {
            header_timeout: seconds(HEADER_TIMEOUT_VAR, self.server_header_timeout_seconds)?,
            body_timeout: seconds(BODY_TIMEOUT_VAR, self.server_body_timeout_seconds)?,
            idle_timeout: seconds(IDLE_TIMEOUT_VAR, self.server_idle_timeout_seconds)?,
            max_connections: self.server_max_connections,
        };
        Ok(limits.checked()?)
    }

    /// How the service authenticates to Redis: Entra ID, a password file,
    /// a password, or not at all (in that order of precedence).
    fn redis_auth(&self) -> Result<RedisAuth, ConfigError> {
        if self.redis_use_entra_id {
            if !cfg!(feature = "entra-id") {
                return Err(ConfigError::new(
                    "REDIS_USE_ENTRA_ID",
                    "true",
                    "this build has no Entra ID support; rebuild with `--features entra-id`",
                ));
            }
            return Ok(RedisAuth::EntraId {
                client_id: std::env::var("AZURE_CLIENT_ID")
                    .ok()
                    .filter(|s| !s.is_empty()),
            });
        }
        if let Some(path) = &self.redis_password_file {
            if !path.is_file() {
                return Err(ConfigError::new(
                    "REDIS_PASSWORD_FILE",
                    path.display(),
                    "no such file (write the password to it, or unset the variable)",
                ));
            }
            return Ok(RedisAuth::PasswordFile(path.clone()));
        }
        Ok(match &self.redis_password {
            Some(password) => RedisAuth::Password(password.clone()),
            None => RedisAuth::None,
        })
    }

    fn redis_config(&self) -> Result<RedisConfig, ConfigError> {
        let (url, host, port) = match &self.redis_url {
            Some(url) => {
                let (host, port) = parse_redis_url(url)?;
                (url.clone(), host, port)
            }
            None => {
                if self.redis_host.trim().is_empty() {
                    return Err(ConfigError::new("REDIS_HOST", "", "expected a host name"));
                }
                let scheme = if self.redis_ssl { "rediss" } else { "redis" };
                let url = format!("{scheme}://{}:{}/", self.redis_host, self.redis_port);
                (url, self.redis_host.clone(), self.redis_port)
            }
        };
        if url.starts_with("rediss://") && !cfg!(feature = "tls") {
            return Err(ConfigError::new(
                if self.redis_url.is_some() {
                    "REDIS_URL"
                } else {
                    "REDIS_SSL"
                },
                if self.redis_url.is_some() {
                    url.clone()
                } else {
                    "true".into()
                },
                "this build has no TLS support; rebuild with `cargo build --release --features tls`",
            ));
        }
        let auth = self.redis_auth()?;
        if self.redis_max_connections == 0 {
            return Err(ConfigError::new(
                "REDIS_MAX_CONNECTIONS",
                0,
                "expected at least 1",
            ));
        }
        Ok(RedisConfig {
            url,
            host,
            port,
            username: self.redis_username.clone().filter(|u| !u.is_empty()),
            auth,
            max_in_flight: self.redis_max_connections as usize,
            socket_timeout: seconds("REDIS_SOCKET_TIMEOUT", self.redis_socket_timeout)?,
            connect_timeout: seconds(
                "REDIS_SOCKET_CONNECT_TIMEOUT",
                self.redis_socket_connect_timeout,
            )?,
            max_retries: self.redis_max_retries,
            backoff_base: seconds("REDIS_BACKOFF_BASE", self.redis_backoff_base)?,
            backoff_cap: seconds("REDIS_BACKOFF_CAP", self.redis_backoff_cap)?,
        })
    }
}

/// The most memory a load may hold, in MB: 1 TiB, far above any machine
/// the lab runs on, far below what would overflow a byte count.
pub const LOAD_MAX_MEMORY_MB_LIMIT: u64 = 1 << 20;

fn load_max_memory_mb(value: u64) -> Result<u64, ConfigError> {
    if value <= LOAD_MAX_MEMORY_MB_LIMIT {
        Ok(value)
    } else {
        Err(ConfigError::new(
            "LOAD_MAX_MEMORY_MB",
            value,
            format!(
                "expected a number of MB from 0 to {LOAD_MAX_MEMORY_MB_LIMIT} (1 TiB); 0 makes loads CPU-only"
            ),
        ))
    }
}

fn parse_redis_url(url: &str) -> Result<(String, u16), ConfigError> {
    let bad = |reason: &str| ConfigError::new("REDIS_URL", without_user_info(url), reason);
    let rest = url
        .strip_prefix("redis://")
        .or_else(|| url.strip_prefix("rediss://"))
        .ok_or_else(|| bad("expected redis://host:port or rediss://host:port"))?;
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.contains('@') {
        return Err(bad(
            "put credentials in REDIS_USERNAME and REDIS_PASSWORD(_FILE), not in the URL",
        ));
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (
            h,
            p.parse::<u16>()
                .map_err(|_| bad("the port is not a number"))?,
        ),
        None => (authority, 6379),
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    Ok((host.to_string(), port))
}

/// `url` as an error may show it: everything before its last `@` (user
/// info: a password, which may itself hold `/`) replaced by `***`, so that
/// a refused URL never prints a secret.
fn without_user_info(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    match rest.rfind('@') {
        Some(at) if scheme.is_empty() => format!("***{}", &rest[at..]),
        Some(at) => format!("{scheme}://***{}", &rest[at..]),
        None => url.to_string(),
    }
}

/// The replica id when none is given: the host name, as a container's.
fn default_replica_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "local".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ServeArgs,
    }

    fn parse(argv: &[&str]) -> ServeArgs {
        let mut full = vec!["serve"];
        full.extend_from_slice(argv);
        Cli::try_parse_from(full).expect("parses").args
    }

    #[test]
    fn defaults_are_the_seeds() {
        let cfg = parse(&[]).validate().unwrap();
        let redis = cfg.redis.unwrap();
        assert_eq!(redis.max_in_flight, 50);
        assert_eq!(redis.socket_timeout, Duration::from_secs(3));
        assert_eq!(redis.connect_timeout, Duration::from_secs(3));
        assert_eq!(redis.max_retries, 1);
        assert_eq!(redis.backoff_base, Duration::from_secs(1));
        assert_eq!(redis.backoff_cap, Duration::from_secs(3));
        assert_eq!(cfg.health_cache_ttl, Duration::from_secs(5));
        assert_eq!(cfg.listen.port(), 8000);
    }

    #[test]
    fn chaos_off_loopback_needs_a_token_or_an_explicit_opt_out() {
        assert!(
            parse(&[]).validate().unwrap().listen.ip().is_loopback(),
            "loopback by default"
        );
        let err = parse(&["--app-host", "0.0.0.0"]).validate().unwrap_err();
        assert_eq!(err.variable, "CHAOS_API_TOKEN");
        assert!(
            err.to_string().contains("CHAOS_ALLOW_UNAUTHENTICATED=true"),
            "{err}"
        );
        for ok in [
            &["--app-host", "0.0.0.0", "--chaos-api-token", "s3cret-token"][..],
            &["--app-host", "0.0.0.0", "--chaos-enabled", "false"][..],
            &[
                "--app-host",
                "0.0.0.0",
                "--chaos-allow-unauthenticated",
                "true",
            ][..],
            &["--app-host", "::1"][..],
        ] {
            assert!(parse(ok).validate().is_ok(), "{ok:?}");
        }
    }

    #[test]
    fn allowed_hosts_are_a_checked_list() {
        assert!(parse(&[]).validate().unwrap().allowed_hosts.is_empty());
        let cfg = parse(&["--allowed-hosts", "app.example, .apps.example,10.0.0.1"])
            .validate()
            .unwrap();
        assert_eq!(
            cfg.allowed_hosts,
            ["app.example", ".apps.example", "10.0.0.1"]
        );
        let err = parse(&["--allowed-hosts", "app.example:8000"])
            .validate()
            .unwrap_err();
        assert_eq!(err.variable, "ALLOWED_HOSTS");
        assert!(err.to_string().contains("without a port"), "{err}");
    }

    #[test]
    fn load_max_memory_mb_is_range_checked() {
        assert_eq!(parse(&[]).validate().unwrap().load_max_memory_mb, 4096);
        for ok in ["0", "1", "1048576"] {
            assert!(
                parse(&["--load-max-memory-mb", ok]).validate().is_ok(),
                "{ok}"
            );
        }
        for bad in ["1048577", "18446744073709551615"] {
            let err = parse(&["--load-max-memory-mb", bad])
                .validate()
                .unwrap_err();
            assert_eq!(err.variable, "LOAD_MAX_MEMORY_MB");
            assert_eq!(
                err.to_string(),
                format!(
                    "LOAD_MAX_MEMORY_MB=\"{bad}\" is invalid: expected a number of MB from 0 to 1048576 (1 TiB); 0 makes loads CPU-only"
                )
            );
        }
    }

    #[test]
    fn a_chaos_token_is_taken_without_surrounding_whitespace() {
        let config = parse(&["--chaos-api-token", " s3cret-token\n"])
            .validate()
            .unwrap();
        assert_eq!(config.chaos_api_token.as_deref(), Some("s3cret-token"));
    }

    #[test]
    fn url_with_credentials_is_refused_without_showing_them() {
        for url in [
            "redis://u:S3cret@h:1",
            "rediss://:S3cret@h:1/0",
            "http://u:S3cret@h",
            "u:S3cret@h:1",
            "redis://u:S3cret@x@h:1",
            "redis://default:S3cret/ab=@h:6380",
        ] {
            let err = parse(&["--redis-url", url]).validate().unwrap_err();
            assert_eq!(err.variable, "REDIS_URL");
            let said = err.to_string();
            assert!(!said.contains("S3cret"), "{said}");
            assert!(said.contains("***@h"), "{said}");
        }
    }

    proptest::proptest! {
        /// Whatever the URL, what an error shows of it holds nothing that
        /// stood before its host's last `@`.
        #[test]
        fn a_refused_url_never_shows_its_user_info(
            scheme in "(redis|rediss|http|)",
            user_info in "[a-zA-Z0-9:%!@/=+]{1,12}",
            rest in "[a-z0-9.:/]{0,12}",
        ) {
            let url = if scheme.is_empty() {
                format!("{user_info}Z@h{rest}")
            } else {
                format!("{scheme}://{user_info}Z@h{rest}")
            };
            let secret = format!("{user_info}Z");
            let shown = without_user_info(&url);
            proptest::prop_assert!(!shown.contains(&secret), "{}", shown);
            if let Err(err) = parse_redis_url(&url) {
                let said = err.to_string();
                proptest::prop_assert!(!said.contains(&secret), "{}", said);
            }
        }
    }

    #[test]
    fn bad_host_names_the_variable() {
        let err = parse(&["--app-host", "not an ip"]).validate().unwrap_err();
        assert!(err.to_string().starts_with("APP_HOST="));
    }

    #[test]
    fn redis_disabled_has_no_redis_config() {
        assert!(
            parse(&["--redis-enabled", "false"])
                .validate()
                .unwrap()
                .redis
                .is_none()
        );
    }
}
