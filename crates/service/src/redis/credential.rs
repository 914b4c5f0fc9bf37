//! Where the service's Redis credential comes from, and fetching it again.
//! The seed fetched an Entra ID token before connecting and again after an
//! auth failure; locally the same flow reads a password file that the lab's
//! auth fault rotates.

use std::path::PathBuf;

use tracing::Instrument;

use super::StoreError;
use crate::config::RedisAuth;

/// A user name and password to AUTH with.
#[derive(Clone, PartialEq)]
pub struct Credential {
    pub username: Option<String>,
    pub password: Option<String>,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
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
    /// Tokens come from redis-rs's Entra ID provider, attached to the
    /// connection config rather than fetched here.
    EntraId,
}

impl CredentialSource {
    pub fn new(username: Option<String>, auth: &RedisAuth) -> Self {
        match auth {
            RedisAuth::None => CredentialSource::None { username },
            RedisAuth::Password(p) => CredentialSource::Password {
                username,
                password: p.clone(),
            },
            RedisAuth::PasswordFile(path) => CredentialSource::PasswordFile {
                username,
                path: path.clone(),
            },
            RedisAuth::EntraId { .. } => CredentialSource::EntraId,
        }
    }

    /// The `auth.method` span attribute.
    pub fn method(&self) -> &'static str {
        match self {
            CredentialSource::None { .. } => "none",
            CredentialSource::Password { .. } => "password",
            CredentialSource::PasswordFile { .. } => "password_file",
            CredentialSource::EntraId => "entra_id",
        }
    }

    /// Gets the credential (reading the file again each time).
    pub async fn fetch(&self) -> Result<Credential, StoreError> {
        let span = tracing::info_span!("redis credential", auth.method = self.method());
        async {
            match self {
                CredentialSource::None { username } => Ok(Credential {
                    username: username.clone(),
                    password: None,
                }),
                CredentialSource::Password { username, password } => Ok(Credential {
                    username: username.clone(),
                    password: Some(password.clone()),
                }),
                CredentialSource::PasswordFile { username, path } => {
                    let text = tokio::fs::read_to_string(path).await.map_err(|e| {
                        StoreError::Auth(format!(
                            "cannot read REDIS_PASSWORD_FILE {}: {e}",
                            path.display()
                        ))
                    })?;
                    Ok(Credential {
                        username: username.clone(),
                        password: Some(text.trim_end_matches(['\n', '\r']).to_string()),
                    })
                }
                CredentialSource::EntraId => Ok(Credential {
                    username: None,
                    password: None,
                }),
            }
        }
        .instrument(span)
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn password_file_is_read_each_time() {
        let dir = std::env::temp_dir().join(format!("chaoslab-cred-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("pw");
        std::fs::write(&path, "one\n").unwrap();
        let src = CredentialSource::new(Some("u".into()), &RedisAuth::PasswordFile(path.clone()));
        assert_eq!(src.fetch().await.unwrap().password.as_deref(), Some("one"));
        std::fs::write(&path, "two").unwrap();
        assert_eq!(src.fetch().await.unwrap().password.as_deref(), Some("two"));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn debug_hides_the_password() {
        let c = Credential {
            username: None,
            password: Some("secret".into()),
        };
        assert!(!format!("{c:?}").contains("secret"));
    }
}
