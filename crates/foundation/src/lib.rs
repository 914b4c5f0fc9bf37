//! The few things every chaoslab component does the same way, written once
//! (issue 12 item 1). Before this crate the service, the ingress, the lab's
//! control API and the faults each built the error body of SPEC §3 on
//! their own, three crates parsed `/proc/<pid>/stat`, two compared bearer
//! tokens, and the copies drifted (one hard-coded USER_HZ to 100, one
//! sent no request id).
//!
//! What belongs here: only what at least two components share *and* whose
//! behaviour is part of chaoslab's contract or safety — a shape on the
//! wire ([`error_body`], [`time`]), a security property ([`token`]), a
//! system interface that is easy to get subtly wrong ([`listen`],
//! [`proc`]). Nothing that knows about a component (no Redis, no lab, no
//! HTTP routing) and no test fixtures (those are in
//! `chaoslab-test-support`). Keep it small: every crate depends on it, so
//! whatever it pulls in, everything pulls in.

#![forbid(unsafe_code)]

pub mod error_body;
pub mod listen;
pub mod proc;
pub mod request_id;
pub mod time;
pub mod token;

pub use error_body::{ErrorBody, error_response};
pub use request_id::{new_request_id, with_new_request_id};
pub use time::now_rfc3339;
pub use token::{bearer_matches, constant_time_eq};
