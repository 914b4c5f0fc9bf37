//! Entra ID tokens from the managed identity, the way Azure Container Apps
//! hands them out: `azure_identity`'s managed-identity credential asks
//! IDENTITY_ENDPOINT (with the IDENTITY_HEADER secret as
//! `X-IDENTITY-HEADER`, api-version 2019-08-01) or, when that is unset, the
//! instance metadata service, for resource `https://redis.azure.com`;
//! AZURE_CLIENT_ID picks a user-assigned identity (`client_id=`). Redis
//! knows the identity by its object id, so the user name is the token's
//! `oid` claim and the password is the token itself.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use azure_core::credentials::TokenCredential;
use azure_core::http::{ClientOptions, ExponentialRetryOptions, RetryOptions};
use azure_identity::{ManagedIdentityCredential, ManagedIdentityCredentialOptions, UserAssignedId};
use base64::Engine;

use super::Credential;
use crate::redis::StoreError;

/// The scope of Azure Managed Redis (the identity endpoint is asked for
/// resource `https://redis.azure.com`).
pub const REDIS_SCOPE: &str = "https://redis.azure.com/.default";

/// Gets tokens for Redis from the managed identity.
pub struct ManagedIdentityTokens {
    credential: Arc<ManagedIdentityCredential>,
    client_id: Option<String>,
}

impl std::fmt::Debug for ManagedIdentityTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagedIdentityTokens")
            .field("client_id", &self.client_id)
            .finish()
    }
}

impl ManagedIdentityTokens {
    /// `client_id` (AZURE_CLIENT_ID) selects a user-assigned identity; none
    /// means the system-assigned one.
    pub fn new(client_id: Option<String>) -> Result<Self, StoreError> {
        let options = ManagedIdentityCredentialOptions {
            user_assigned_id: client_id.clone().map(UserAssignedId::ClientId),
            client_options: ClientOptions {
                // A failing identity endpoint must not hold a request for a
                // minute: two quick retries, then the auth error answers.
                retry: RetryOptions::exponential(ExponentialRetryOptions {
                    initial_delay: azure_core::time::Duration::milliseconds(200),
                    max_retries: 2,
                    max_total_elapsed: azure_core::time::Duration::seconds(5),
                    max_delay: azure_core::time::Duration::seconds(1),
                }),
                ..ClientOptions::default()
            },
        };
        let credential = ManagedIdentityCredential::new(Some(options))
            .map_err(|e| StoreError::Auth(format!("cannot set up the managed identity: {e}")))?;
        Ok(ManagedIdentityTokens {
            credential,
            client_id,
        })
    }

    /// A fresh token (the credential's cache answers while the last one has
    /// more than five minutes left) as a Redis credential.
    pub async fn fetch(&self) -> Result<Credential, StoreError> {
        let fetched_at = SystemTime::now();
        let token = self
            .credential
            .get_token(&[REDIS_SCOPE], None)
            .await
            .map_err(|e| StoreError::Auth(format!("no token from the managed identity: {e}")))?;
        let secret = token.token.secret().to_string();
        let object_id = object_id_of(&secret)?;
        let expires_at = u64::try_from(token.expires_on.unix_timestamp())
            .map(|secs| SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
            .unwrap_or(SystemTime::UNIX_EPOCH);
        tracing::info!(
            object_id = %object_id,
            expires_in_s = expires_at.duration_since(fetched_at).map(|d| d.as_secs()).unwrap_or(0),
            "got an Entra ID token for Redis"
        );
        Ok(Credential {
            username: Some(object_id),
            password: Some(secret),
            expires_at: Some(expires_at),
            fetched_at,
        })
    }
}

/// The `oid` claim of a JWT (its payload decoded, the signature not checked:
/// Redis checks it, the service only needs the name to log in with).
pub fn object_id_of(jwt: &str) -> Result<String, StoreError> {
    let bad = |why: &str| StoreError::Auth(format!("the managed identity's token {why}"));
    let mut parts = jwt.split('.');
    let payload = match (parts.next(), parts.next(), parts.next()) {
        (Some(_), Some(payload), Some(_)) => payload,
        _ => return Err(bad("is not a JWT (header.payload.signature)")),
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| bad("has a payload that is not base64url"))?;
    let claims: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|_| bad("has a payload that is not JSON"))?;
    match claims.get("oid").and_then(|v| v.as_str()) {
        Some(oid) if !oid.is_empty() => Ok(oid.to_string()),
        _ => Err(bad("has no `oid` claim")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(payload: &str) -> String {
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!("{}.{}.", b64(r#"{"alg":"none"}"#), b64(payload))
    }

    #[test]
    fn the_user_name_is_the_oid_claim() {
        let token = jwt(r#"{"oid":"6f1c-aa","exp":1700000000}"#);
        assert_eq!(object_id_of(&token).unwrap(), "6f1c-aa");
    }

    #[test]
    fn tokens_without_an_oid_are_refused_clearly() {
        for (token, why) in [
            ("not-a-jwt".to_string(), "not a JWT"),
            ("a.%%%.c".to_string(), "not base64url"),
            (jwt("[1,2]"), "no `oid`"),
            (jwt(r#"{"oid":""}"#), "no `oid`"),
            (format!("a.{}.c", "bm90IGpzb24"), "not JSON"),
        ] {
            let err = object_id_of(&token).unwrap_err().to_string();
            assert!(err.contains(why), "{token}: {err}");
            assert!(err.starts_with("Redis authentication failed"), "{err}");
        }
    }
}
