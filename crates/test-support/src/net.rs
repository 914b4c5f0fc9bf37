//! Loopback ports for servers a test starts. A port found free may be
//! taken by another process before the server binds it; fixtures that use
//! [`free_port`] retry on a clash. Prefer handing a bound listener over
//! when the code under test accepts one.

use std::net::SocketAddr;

use chaoslab_foundation::listen::{free_loopback_port, loopback};

/// A loopback port that was free a moment ago (bound, then released).
pub fn free_port() -> u16 {
    free_loopback_port().expect("no free loopback port")
}

/// `127.0.0.1:<free port>`.
pub fn free_addr() -> SocketAddr {
    loopback(free_port())
}
