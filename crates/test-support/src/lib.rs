//! Fixtures shared by every chaoslab test, so each is written once (issue
//! 12 item 1): before this crate, the end-to-end tests and the crates'
//! component tests each carried their own free-port helper, poll loop,
//! redis-server starter, lab starter and Chromium finder, and their copies
//! drifted (different deadlines, some skipping on CI, some leaking
//! processes).
//!
//! Everything here follows the project's test rules (issue 11 and 12 item
//! 6): real parts (a real `redis-server`, the real `chaoslab` binary), no
//! sleep used as synchronisation — every wait polls a condition under a
//! generous deadline ([`wait`]) and says what it waited for when it gives
//! up — and no process outlives its fixture (killed and reaped on drop).
//! Tools a test needs fail the test when `CI` is set and skip it with a
//! note otherwise ([`tool`]).
//!
//! It is a dev-dependency only: nothing in a shipped crate depends on it.

pub mod browser;
pub mod clock;
pub mod echo;
pub mod lab;
pub mod net;
pub mod process;
pub mod redis;
pub mod samples;
pub mod tool;
pub mod wait;

pub use lab::{Lab, LabBuilder};
pub use net::free_port;
pub use redis::RedisServer;
pub use wait::{GENEROUS, eventually, eventually_async, until, until_async};
