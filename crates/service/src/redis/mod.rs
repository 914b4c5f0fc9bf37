//! The service's Redis client: one multiplexed redis-rs connection shared by
//! every request, re-established on demand, with timeouts, bounded retries
//! with exponential backoff, one credential refresh on auth errors, and the
//! connection count and reset the chaos API needs. Split into the error
//! taxonomy (`error`), where the password comes from (`credential`) and the
//! connection logic (`store`).

mod credential;
mod error;
mod store;

#[cfg(test)]
mod reply_tests;

pub use credential::{Credential, CredentialSource};
pub use error::StoreError;
pub use store::{OpKind, RedisStore};
