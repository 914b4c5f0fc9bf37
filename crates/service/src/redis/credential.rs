//! Where the service's Redis credential comes from, and fetching it again.
//! The seed fetched an Entra ID token before connecting and again after an
//! auth failure; locally the same flow reads a password file that the lab's
//! auth fault rotates. With the `entra-id` feature the token comes from the
//! managed identity (see [`entra`]) and carries an expiry the store uses to
//! authenticate again before it runs out.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use tracing::Instrument;

use super::StoreError;
use crate::config::RedisAuth;

/// A user name and password to AUTH with.
#[derive(Clone, PartialEq)]
pub struct Credential {
    pub username: Option<String>,
    pub password: Option<String>,
    /// When the password stops working (Entra ID tokens); `None` for
    /// passwords that do not expire.
    pub expires_at: Option<SystemTime>,
    /// When it was fetched, to spread the refresh over its lifetime.
    pub fetched_at: SystemTime,
}

/// Tokens are renewed this long before they expire at the latest (the
/// identity endpoint's own cache hands out a new token from 5 minutes
/// before expiry, so renewing later than that always gets a new one).
const MAX_REFRESH_MARGIN: Duration = Duration::from_secs(240);

impl Credential {
    fn static_password(username: Option<String>, password: Option<String>) -> Self {
        Credential {
            username,
            password,
            expires_at: None,
            fetched_at: SystemTime::now(),
        }
    }

    /// When to fetch a new one and authenticate again: a fifth of its
    /// lifetime before it expires, at most `MAX_REFRESH_MARGIN` before.
    /// `None` when it never expires.
    pub fn refresh_at(&self) -> Option<SystemTime> {
        let expires_at = self.expires_at?;
        let lifetime = expires_at
            .duration_since(self.fetched_at)
            .unwrap_or(Duration::ZERO);
        let margin = (lifetime / 5).min(MAX_REFRESH_MARGIN);
        Some(expires_at - margin)
    }

    /// Whether it is due for renewal (or past its expiry).
    pub fn is_due(&self, now: SystemTime) -> bool {
        self.refresh_at().is_some_and(|at| now >= at)
    }
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// The configured origin of the credential.
#[derive(Debug, Clone)]
pub enum CredentialSource {
    None {
        username: Option<String>,
    },
    Password {
        username: Option<String>,
        password: String,
    },
    PasswordFile {
        username: Option<String>,
        path: PathBuf,
    },
    /// A token from the managed identity; the user name is the token's
    /// `oid` claim.
    #[cfg(feature = "entra-id")]
    EntraId(std::sync::Arc<entra::ManagedIdentityTokens>),
    /// Entra ID asked for in a build without it (the configuration refuses
    /// this before a store is made; kept so the match is total).
    #[cfg(not(feature = "entra-id"))]
    EntraId,
}

impl CredentialSource {
    pub fn new(username: Option<String>, auth: &RedisAuth) -> Result<Self, StoreError> {
        Ok(match auth {
            RedisAuth::None => CredentialSource::None { username },
            RedisAuth::Password(p) => CredentialSource::Password {
                username,
                password: p.clone(),
            },
            RedisAuth::PasswordFile(path) => CredentialSource::PasswordFile {
                username,
                path: path.clone(),
            },
            #[cfg(feature = "entra-id")]
            RedisAuth::EntraId { client_id } => CredentialSource::EntraId(std::sync::Arc::new(
                entra::ManagedIdentityTokens::new(client_id.clone())?,
            )),
            #[cfg(not(feature = "entra-id"))]
            RedisAuth::EntraId { .. } => CredentialSource::EntraId,
        })
    }

    /// The `auth.method` span attribute.
    pub fn method(&self) -> &'static str {
        match self {
            CredentialSource::None { .. } => "none",
            CredentialSource::Password { .. } => "password",
            CredentialSource::PasswordFile { .. } => "password_file",
            #[cfg(feature = "entra-id")]
            CredentialSource::EntraId(_) => "entra_id",
            #[cfg(not(feature = "entra-id"))]
            CredentialSource::EntraId => "entra_id",
        }
    }

    /// Gets the credential (reading the file again each time, asking the
    /// identity endpoint for a token each time).
    pub async fn fetch(&self) -> Result<Credential, StoreError> {
        let span = tracing::info_span!("redis credential", auth.method = self.method());
        async {
            match self {
                CredentialSource::None { username } => {
                    Ok(Credential::static_password(username.clone(), None))
                }
                CredentialSource::Password { username, password } => Ok(
                    Credential::static_password(username.clone(), Some(password.clone())),
                ),
                CredentialSource::PasswordFile { username, path } => {
                    let text = tokio::fs::read_to_string(path).await.map_err(|e| {
                        StoreError::Auth(format!(
                            "cannot read REDIS_PASSWORD_FILE {}: {e}",
                            path.display()
                        ))
                    })?;
                    Ok(Credential::static_password(
                        username.clone(),
                        Some(text.trim_end_matches(['\n', '\r']).to_string()),
                    ))
                }
                #[cfg(feature = "entra-id")]
                CredentialSource::EntraId(tokens) => tokens.fetch().await,
                #[cfg(not(feature = "entra-id"))]
                CredentialSource::EntraId => Err(StoreError::Auth(
                    "this build has no Entra ID support; rebuild with `--features entra-id`".into(),
                )),
            }
        }
        .instrument(span)
        .await
    }
}

#[cfg(feature = "entra-id")]
pub mod entra;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn password_file_is_read_each_time() {
        let dir = std::env::temp_dir().join(format!("chaoslab-cred-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("pw");
        std::fs::write(&path, "one\n").unwrap();
        let src = CredentialSource::new(Some("u".into()), &RedisAuth::PasswordFile(path.clone()))
            .unwrap();
        assert_eq!(src.fetch().await.unwrap().password.as_deref(), Some("one"));
        std::fs::write(&path, "two").unwrap();
        assert_eq!(src.fetch().await.unwrap().password.as_deref(), Some("two"));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn debug_hides_the_password() {
        let c = Credential::static_password(None, Some("secret".into()));
        assert!(!format!("{c:?}").contains("secret"));
    }

    #[test]
    fn a_token_is_renewed_a_fifth_of_its_life_before_expiry_at_most_four_minutes() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let mut c = Credential::static_password(None, Some("t".into()));
        assert_eq!(c.refresh_at(), None);
        assert!(!c.is_due(t0 + Duration::from_secs(1 << 30)));
        c.fetched_at = t0;
        c.expires_at = Some(t0 + Duration::from_secs(10));
        assert_eq!(c.refresh_at(), Some(t0 + Duration::from_secs(8)));
        assert!(!c.is_due(t0 + Duration::from_secs(7)));
        assert!(c.is_due(t0 + Duration::from_secs(8)));
        c.expires_at = Some(t0 + Duration::from_secs(24 * 3600));
        assert_eq!(
            c.refresh_at(),
            Some(t0 + Duration::from_secs(24 * 3600 - 240))
        );
        // Already expired when fetched: due at once.
        c.expires_at = Some(t0 - Duration::from_secs(1));
        assert!(c.is_due(t0));
    }
}
