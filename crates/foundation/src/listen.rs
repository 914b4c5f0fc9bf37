//! Taking a TCP port. Every listener chaoslab opens for itself is on
//! loopback unless the user asked otherwise (SPEC §13), and a port that
//! cannot be taken is reported by what it was for, where, and why — "the
//! ingress on 127.0.0.1:8080: address in use" — not a bare `os error 98`.
//!
//! Three ways, for three needs:
//! - [`bind`] / [`bind_loopback`]: a listener to serve on now.
//! - [`PortReservation`]: a port held for a child process that will
//!   listen on it, across the child's restarts.
//! - [`free_loopback_port`]: a port free a moment ago, for a configuration
//!   that must name one that nothing listens on.

use std::net::{Ipv4Addr, SocketAddr};

use tokio::net::{TcpListener, TcpSocket};

/// A port that could not be taken.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen for the {what} on {addr}: {}", explain(source))]
pub struct BindError {
    /// What the port was for ("ingress", "control API").
    pub what: &'static str,
    /// The address asked for.
    pub addr: SocketAddr,
    /// Why the kernel refused.
    #[source]
    pub source: std::io::Error,
}

/// The error's reason, with what to do for the usual ones.
fn explain(source: &std::io::Error) -> String {
    match source.kind() {
        std::io::ErrorKind::AddrInUse => {
            format!("{source} (another process listens there: stop it or choose another port)")
        }
        std::io::ErrorKind::PermissionDenied => {
            format!("{source} (ports below 1024 need privileges: choose a higher one)")
        }
        std::io::ErrorKind::AddrNotAvailable => {
            format!("{source} (no interface of this machine has that address)")
        }
        _ => source.to_string(),
    }
}

/// A listener on `addr`, for the `what` named in errors.
pub async fn bind(what: &'static str, addr: SocketAddr) -> Result<TcpListener, BindError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| BindError { what, addr, source })
}

/// A listener on `127.0.0.1:port` (0: any free port).
pub async fn bind_loopback(what: &'static str, port: u16) -> Result<TcpListener, BindError> {
    bind(what, loopback(port)).await
}

/// `127.0.0.1:port`.
pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// A loopback port free a moment ago (bound, then released). Another
/// process may take it before it is used: for a port that must be *held*,
/// use a [`PortReservation`]; for one to serve on, [`bind_loopback`] with 0.
pub fn free_loopback_port() -> std::io::Result<u16> {
    std::net::TcpListener::bind(loopback(0))?
        .local_addr()
        .map(|a| a.port())
}

/// A loopback port held for a child that listens on it (a replica, Redis)
/// for as long as the lab needs it, across the child's restarts: a TCP
/// socket bound to `127.0.0.1:port` with SO_REUSEADDR that never listens.
///
/// Choosing a free port by binding and releasing it leaves a gap in which
/// any process (or the lab's own outgoing connections) may take it, and a
/// restart would reuse a port released long ago. While the reservation is
/// held the kernel gives the port to nobody who asks for any port (bind to
/// port 0, a connect's source port), and a bind of that very port without
/// SO_REUSEADDR fails; the child binds it with SO_REUSEADDR, as tokio, Go,
/// Node, Python's socketserver and redis-server all do on Linux (two
/// SO_REUSEADDR sockets may share a port while at most one listens). A
/// child's server must therefore set SO_REUSEADDR on its listener. A
/// process that deliberately binds the port with SO_REUSEADDR and listens
/// can still take it: [`still_free`](Self::still_free) notices, and the
/// child's next run gets a fresh port.
#[derive(Debug)]
pub struct PortReservation {
    _socket: TcpSocket,
    port: u16,
}

impl PortReservation {
    /// Any free loopback port.
    pub fn any() -> std::io::Result<Self> {
        Self::at(0)
    }

    /// `port` on loopback (0: any); fails when another socket listens on
    /// it or holds it without SO_REUSEADDR.
    pub fn at(port: u16) -> std::io::Result<Self> {
        let socket = TcpSocket::new_v4()?;
        socket.set_reuseaddr(true)?;
        socket.bind(loopback(port))?;
        let port = socket.local_addr()?.port();
        Ok(Self {
            _socket: socket,
            port,
        })
    }

    /// [`at`](Self::at), with the error saying what the port was for.
    pub fn for_what(what: &'static str, port: u16) -> Result<Self, BindError> {
        Self::at(port).map_err(|source| BindError {
            what,
            addr: loopback(port),
            source,
        })
    }

    /// The port held.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether no other socket listens on the port (a second reservation
    /// of it can be made), so a child can bind it.
    pub fn still_free(&self) -> bool {
        Self::at(self.port).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn binds_loopback_and_names_a_taken_port() {
        let first = bind_loopback("ingress", 0).await.unwrap();
        let addr = first.local_addr().unwrap();
        assert!(addr.ip().is_loopback());
        let err = bind_loopback("control API", addr.port()).await.unwrap_err();
        assert_eq!(err.what, "control API");
        assert_eq!(err.addr, addr);
        let text = err.to_string();
        assert!(text.contains("control API"), "{text}");
        assert!(text.contains(&addr.to_string()), "{text}");
        assert!(text.contains("another process listens there"), "{text}");
    }

    #[tokio::test]
    async fn an_address_not_of_this_machine_is_explained() {
        // TEST-NET-1 (RFC 5737): on no interface.
        let addr = SocketAddr::from(([192, 0, 2, 1], 0));
        let err = bind("ingress", addr).await.unwrap_err();
        assert!(err.to_string().contains("no interface"), "{err}");
    }

    #[tokio::test]
    async fn a_reservation_holds_its_port_against_plain_binds() {
        let held = PortReservation::any().unwrap();
        let port = held.port();
        assert!(port > 0);
        assert!(held.still_free(), "nothing listens yet");
        // A bind without SO_REUSEADDR is refused.
        let plain = TcpSocket::new_v4().unwrap();
        assert!(plain.bind(loopback(port)).is_err());
        // The child's bind, with SO_REUSEADDR, succeeds and listens.
        let child = TcpSocket::new_v4().unwrap();
        child.set_reuseaddr(true).unwrap();
        child.bind(loopback(port)).unwrap();
        let _listening = child.listen(8).unwrap();
        assert!(!held.still_free(), "a listener holds it now");
        let err = PortReservation::for_what("Redis", port).unwrap_err();
        assert!(err.to_string().contains("Redis"), "{err}");
    }

    #[test]
    fn a_free_port_is_a_port() {
        let port = free_loopback_port().unwrap();
        assert!(port > 0);
    }
}
