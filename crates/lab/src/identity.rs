//! A stand-in for Azure's managed identity endpoint, for `chaoslab up
//! --auth entra` (SPEC §4, issue 13 item 7). Azure Container Apps gives each
//! replica IDENTITY_ENDPOINT and an IDENTITY_HEADER secret, and Entra ID
//! issues tokens that Azure Managed Redis accepts for the identity's object
//! id. None of that can run here (no Azure, no network beyond loopback), so
//! the lab plays both sides itself, on loopback only:
//!
//! - the endpoint (`GET /msi/token?api-version=2019-08-01&resource=…` with
//!   `X-IDENTITY-HEADER`) mints unsigned JWTs with the identity's `oid` and
//!   a short `exp` (`[redis] token_lifetime_seconds`, 10 minutes by default);
//!   the header secret is random, kept in an owner-only file and handed to
//!   replicas in their environment only (never in argv or logs);
//! - Redis's side: the ACL user named after the object id holds every token
//!   minted and not yet expired as a password (a token is added before the
//!   endpoint answers and removed when it expires), with the service's
//!   rights; the user is re-asserted every few seconds, so a Redis restarted
//!   by a fault knows it again;
//! - the credential-failure fault revokes the identity's access (the ACL
//!   user is switched off and its connections are closed: what removing the
//!   identity's Redis access policy does) and restoring switches it on again
//!   — every token still valid works again, without a replica restart.
//!
//! The tokens are not signed: nothing here checks signatures (the service
//! reads the `oid` claim only; Redis compares passwords).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::files::{private_dir, secret, write_private};
use crate::redis_server::{AdminConnection, AdminTarget, SERVICE_ACL};

/// The api-version Container Apps' identity endpoint speaks.
pub const API_VERSION: &str = "2019-08-01";
/// The resource of Azure Managed Redis.
pub const REDIS_RESOURCE: &str = "https://redis.azure.com";
/// How often the ACL user is re-asserted and expired tokens removed.
const RECONCILE_PERIOD: Duration = Duration::from_secs(2);
/// Deadline of one admin command.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(2);
/// Tokens Redis accepts at once, newest kept: every replica holds one (two
/// around a renewal); a replica whose token fell out gets an auth error,
/// fetches a new one and retries. Bounds the ACL user when replicas keep
/// fetching (a revoked identity under load).
const MAX_TOKENS: usize = 64;

/// Why the stand-in could not start or act.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("identity endpoint files in {path}: {source}")]
    Files {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot bind the stand-in identity endpoint on loopback: {0}")]
    Bind(#[source] std::io::Error),
    #[error("the identity's Redis user: {0}")]
    Redis(String),
}

/// One token minted and not yet expired.
struct Minted {
    token: String,
    expires_at: SystemTime,
}

#[derive(Default)]
struct Access {
    tokens: Vec<Minted>,
    revoked: bool,
    serial: u64,
}

/// The running stand-in identity endpoint and the Redis user it keeps.
pub struct StandInIdentity {
    /// IDENTITY_ENDPOINT of the replicas: `http://127.0.0.1:PORT/msi/token`.
    pub endpoint: String,
    /// The identity's object id: the name of its Redis user.
    pub object_id: String,
    header: String,
    lifetime: Duration,
    admin: AdminTarget,
    access: Mutex<Access>,
    /// Serialises ACL updates, so an older state never lands last.
    apply_lock: tokio::sync::Mutex<()>,
    stop: CancellationToken,
}

impl std::fmt::Debug for StandInIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StandInIdentity")
            .field("endpoint", &self.endpoint)
            .field("object_id", &self.object_id)
            .finish_non_exhaustive()
    }
}

impl StandInIdentity {
    /// Writes the header secret under `dir` (0700 dir, 0600 file), creates
    /// the identity's Redis user (no password yet), binds a loopback port
    /// and serves until [`stop`](Self::stop).
    pub async fn start(
        dir: &Path,
        admin: AdminTarget,
        lifetime: Duration,
    ) -> Result<Arc<Self>, IdentityError> {
        let files = |source| IdentityError::Files {
            path: dir.to_path_buf(),
            source,
        };
        private_dir(dir).map_err(files)?;
        let header = secret(40);
        let header_file = dir.join("identity-header");
        write_private(&header_file, header.as_bytes()).map_err(files)?;
        // An object id shaped like Entra's (a GUID), fresh per lab.
        let hex = secret(32).to_lowercase();
        let object_id = format!(
            "{}-{}-{}-{}-{}",
            &hex[..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..32]
        );
        let listener = chaoslab_foundation::listen::bind_loopback("identity endpoint", 0)
            .await
            .map_err(|e| IdentityError::Bind(std::io::Error::other(e.to_string())))?;
        let addr = listener.local_addr().map_err(IdentityError::Bind)?;
        let identity = Arc::new(Self {
            endpoint: format!("http://{addr}/msi/token"),
            object_id,
            header,
            lifetime,
            admin,
            access: Mutex::new(Access::default()),
            apply_lock: tokio::sync::Mutex::new(()),
            stop: CancellationToken::new(),
        });
        identity.apply().await?;
        let app = axum::Router::new()
            .route("/msi/token", axum::routing::get(token_endpoint))
            .with_state(identity.clone());
        let stop = identity.stop.clone();
        tokio::spawn(async move {
            // As the lab's other listeners: the browser-attack guard and
            // the header, idle and connection limits of the control API.
            let served = crate::control_api::serve(listener, app, stop.cancelled_owned()).await;
            if let Err(e) = served {
                tracing::error!(error = %e, "the stand-in identity endpoint stopped");
            }
        });
        let keeper = identity.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = keeper.stop.cancelled() => return,
                    _ = tokio::time::sleep(RECONCILE_PERIOD) => {}
                }
                if let Err(e) = keeper.apply().await {
                    tracing::debug!(error = %e, "cannot update the identity's Redis user (Redis down?)");
                }
            }
        });
        Ok(identity)
    }

    /// The replicas' environment: REDIS_USE_ENTRA_ID and the endpoint, as
    /// Container Apps sets them (the header is the secret's value).
    pub fn replica_env(&self) -> Vec<(String, String)> {
        vec![
            ("REDIS_USE_ENTRA_ID".into(), "true".into()),
            ("IDENTITY_ENDPOINT".into(), self.endpoint.clone()),
            ("IDENTITY_HEADER".into(), self.header.clone()),
        ]
    }

    /// A token's lifetime.
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// Revokes the identity's access to Redis: its user is switched off and
    /// its connections closed. Tokens are still minted (the identity
    /// exists); Redis refuses them all.
    pub async fn revoke(&self) -> Result<(), IdentityError> {
        self.lock().revoked = true;
        self.apply().await?;
        let mut conn = self.admin().await?;
        conn.query::<redis::Value>(&["CLIENT", "KILL", "USER", &self.object_id])
            .await
            .map(drop)
            .map_err(|e| IdentityError::Redis(e.to_string()))
    }

    /// Restores access: every token still valid is accepted again.
    pub async fn restore(&self) -> Result<(), IdentityError> {
        self.lock().revoked = false;
        self.apply().await
    }

    /// Stops the endpoint and the keeper.
    pub fn stop(&self) {
        self.stop.cancel();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Access> {
        self.access.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn admin(&self) -> Result<AdminConnection, IdentityError> {
        AdminConnection::connect_target(&self.admin, ADMIN_TIMEOUT)
            .await
            .map_err(|e| IdentityError::Redis(e.to_string()))
    }

    /// Sets the Redis user to the current state in one `ACL SETUSER`:
    /// on/off, the valid tokens as passwords, the service's rights.
    async fn apply(&self) -> Result<(), IdentityError> {
        let _serial = self.apply_lock.lock().await;
        let (state, passwords) = {
            let mut access = self.lock();
            let now = SystemTime::now();
            access.tokens.retain(|m| m.expires_at > now);
            let excess = access.tokens.len().saturating_sub(MAX_TOKENS);
            access.tokens.drain(..excess);
            let passwords: Vec<String> = access
                .tokens
                .iter()
                .map(|m| format!(">{}", m.token))
                .collect();
            (if access.revoked { "off" } else { "on" }, passwords)
        };
        let mut args = vec!["ACL", "SETUSER", self.object_id.as_str(), "reset", state];
        args.extend(passwords.iter().map(String::as_str));
        args.extend_from_slice(SERVICE_ACL);
        let mut conn = self.admin().await?;
        conn.query::<()>(&args)
            .await
            .map_err(|e| IdentityError::Redis(e.to_string()))
    }

    /// Mints a token, makes Redis know it, returns it with its expiry.
    async fn mint(&self) -> Result<(String, SystemTime), IdentityError> {
        let now = SystemTime::now();
        let expires_at = now + self.lifetime;
        let serial = {
            let mut access = self.lock();
            access.serial += 1;
            access.serial
        };
        let claims = json!({
            "aud": REDIS_RESOURCE,
            "oid": self.object_id,
            "iat": unix(now),
            "exp": unix(expires_at),
            "jti": format!("{serial}-{}", secret(12)),
        });
        let token = format!(
            "{}.{}.",
            base64url(br#"{"alg":"none","typ":"JWT"}"#),
            base64url(claims.to_string().as_bytes())
        );
        self.lock().tokens.push(Minted {
            token: token.clone(),
            expires_at,
        });
        self.apply().await?;
        Ok((token, expires_at))
    }
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Base64url without padding (RFC 4648 §5), as JWTs are written.
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

async fn token_endpoint(
    State(identity): State<Arc<StandInIdentity>>,
    headers: HeaderMap,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let refuse = |status: StatusCode, why: &str| {
        (
            status,
            axum::Json(json!({"error": "invalid_request", "error_description": why})),
        )
            .into_response()
    };
    let header = headers
        .get("x-identity-header")
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if !chaoslab_foundation::token::constant_time_eq(header, identity.header.as_bytes()) {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "missing or wrong X-IDENTITY-HEADER",
        );
    }
    if query.get("api-version").map(String::as_str) != Some(API_VERSION) {
        return refuse(StatusCode::BAD_REQUEST, "api-version must be 2019-08-01");
    }
    let resource = query.get("resource").map(|r| r.trim_end_matches('/'));
    if resource != Some(REDIS_RESOURCE) {
        return refuse(
            StatusCode::BAD_REQUEST,
            "this stand-in issues tokens for https://redis.azure.com only",
        );
    }
    match identity.mint().await {
        Ok((token, expires_at)) => {
            tracing::debug!(object_id = %identity.object_id, "minted an identity token");
            axum::Json(json!({
                "access_token": token,
                "expires_on": unix(expires_at).to_string(),
                "resource": REDIS_RESOURCE,
                "token_type": "Bearer",
            }))
            .into_response()
        }
        Err(e) => refuse(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_matches_rfc_4648_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg"),
            ("fo", "Zm8"),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg"),
            ("fooba", "Zm9vYmE"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64url(input.as_bytes()), expected, "{input}");
        }
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
    }

    /// The endpoint is one of the lab's listeners: it gives a token to a
    /// caller with the header secret and refuses a foreign `Host` (a page
    /// rebinding a name to loopback) before anything else.
    #[tokio::test]
    async fn tokens_go_to_loopback_callers_with_the_header_only() {
        if !chaoslab_test_support::redis::installed_or_skip() {
            return;
        }
        let redis = chaoslab_test_support::RedisServer::start_with_acl();
        let dir = tempfile::tempdir().expect("temp dir");
        let admin = AdminTarget {
            addr: redis.addr(),
            password: "admin".into(),
            unix: None,
        };
        let identity = StandInIdentity::start(dir.path(), admin, Duration::from_secs(60))
            .await
            .expect("the stand-in identity endpoint starts");
        let url = format!(
            "{}?api-version={API_VERSION}&resource={REDIS_RESOURCE}",
            identity.endpoint
        );
        let client = reqwest::Client::new();
        let get = |host: Option<&str>, header: &str| {
            let mut request = client.get(&url).header("x-identity-header", header);
            if let Some(host) = host {
                request = request.header("host", host);
            }
            request.send()
        };
        let token = get(None, &identity.header).await.expect("answered");
        assert_eq!(token.status(), StatusCode::OK);
        let body: serde_json::Value = token.json().await.expect("JSON");
        assert!(
            body["access_token"].as_str().is_some_and(|t| !t.is_empty()),
            "{body}"
        );
        let wrong = get(None, "not-the-secret").await.expect("answered");
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
        let foreign = get(Some("evil.example"), &identity.header)
            .await
            .expect("answered");
        assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
        identity.stop();
    }
}
