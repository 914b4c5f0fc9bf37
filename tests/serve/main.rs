//! End-to-end tests of `chaoslab serve`: the real binary against a real
//! redis-server, over real HTTP, as a user (or the lab) runs it.

#[path = "../common/mod.rs"]
mod common;

mod api;
mod chaos;
mod input_shapes;
mod lifecycle;
mod redis_faults;
mod schemathesis;
