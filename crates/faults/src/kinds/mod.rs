//! The fault kinds, one module each: a request type (its JSON fields) and
//! its [`crate::fault_kind::Fault`] implementation.

pub mod auth;
pub mod deploy;
pub mod kill;
pub mod network;
pub mod redis;
