//! A small HTTP/1.1 client connection, lean enough that the load
//! generator spends its CPU in the kernel's TCP stack rather than in
//! itself (the way wrk does): the request is written from bytes prepared
//! once per task, the response head is parsed in place with `httparse`,
//! the body is counted (and kept only when a check needs it) whether it
//! is framed by Content-Length, chunked, or the end of the connection.

use std::io;
use std::net::SocketAddr;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest response head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Headers parsed per response.
const MAX_HEADERS: usize = 64;

/// What came back.
#[derive(Debug, Default)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Body bytes received.
    pub bytes: u64,
    /// The start of the body, up to the `keep` limit asked for.
    pub body: Vec<u8>,
    /// The connection can carry another request.
    pub reusable: bool,
}

/// Why an exchange failed.
#[derive(Debug)]
pub enum Error {
    /// Nothing of a response arrived on a reused connection: the server
    /// had closed it while idle. `sent` says whether the request was
    /// written (then only idempotent requests may be resent).
    Stale {
        /// The request bytes were written before the close was seen.
        sent: bool,
    },
    /// Anything else: I/O error, bad HTTP, early close.
    Failed(String),
}

/// One keep-alive connection.
pub struct Conn {
    stream: TcpStream,
    buf: BytesMut,
    /// Requests answered on it so far.
    used: u64,
    /// When the last response ended.
    idle_since: std::time::Instant,
}

enum Framing {
    Empty,
    Length(u64),
    Chunked,
    UntilClose,
}

impl Conn {
    /// Opens a connection to `addr`.
    pub async fn connect(addr: SocketAddr) -> io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            buf: BytesMut::with_capacity(8 * 1024),
            used: 0,
            idle_since: std::time::Instant::now(),
        })
    }

    /// Sends `request` (a whole serialized request) and reads the answer.
    /// `head_only` for HEAD requests; `keep` bytes of body are returned.
    pub async fn exchange(
        &mut self,
        request: &[u8],
        head_only: bool,
        keep: usize,
    ) -> Result<Response, Error> {
        let reused = self.used > 0;
        let stale_or = |sent: bool, e: String| {
            if reused {
                Error::Stale { sent }
            } else {
                Error::Failed(e)
            }
        };
        if let Err(e) = self.stream.write_all(request).await {
            return Err(stale_or(false, e.to_string()));
        }
        let mut response = Response::default();
        let framing = loop {
            match self.parse_head(head_only, &mut response)? {
                Some(framing) => break framing,
                None => match self.fill().await {
                    Ok(0) if self.buf.is_empty() => {
                        return Err(stale_or(
                            true,
                            "connection closed before the response".into(),
                        ));
                    }
                    Ok(0) => {
                        return Err(Error::Failed(
                            "connection closed in the response head".into(),
                        ));
                    }
                    Ok(_) => {}
                    Err(e) if self.buf.is_empty() => return Err(stale_or(true, e.to_string())),
                    Err(e) => return Err(Error::Failed(e.to_string())),
                },
            }
        };
        match framing {
            Framing::Empty => {}
            Framing::Length(n) => self.body(n, keep, &mut response).await?,
            Framing::Chunked => self.chunked(keep, &mut response).await?,
            Framing::UntilClose => {
                response.reusable = false;
                loop {
                    let n = self.buf.len() as u64;
                    self.take(n, keep, &mut response);
                    if self
                        .fill()
                        .await
                        .map_err(|e| Error::Failed(e.to_string()))?
                        == 0
                    {
                        break;
                    }
                }
            }
        }
        self.used += 1;
        self.idle_since = std::time::Instant::now();
        Ok(response)
    }

    /// Whether the server has closed (or written to) the connection while
    /// it sat idle for at least `idle`; checked without blocking, so a
    /// request that must not be sent twice goes out on a live connection.
    pub fn closed_while_idle(&self, idle: std::time::Duration) -> bool {
        if self.idle_since.elapsed() < idle {
            return false;
        }
        let mut byte = [0u8; 1];
        !matches!(self.stream.try_read(&mut byte), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// Parses a complete head from the buffer (skipping interim 1xx
    /// answers); `None` when more bytes are needed.
    fn parse_head(
        &mut self,
        head_only: bool,
        response: &mut Response,
    ) -> Result<Option<Framing>, Error> {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut head = httparse::Response::new(&mut headers);
            let len = match head.parse(&self.buf) {
                Ok(httparse::Status::Complete(len)) => len,
                Ok(httparse::Status::Partial) if self.buf.len() > MAX_HEAD => {
                    return Err(Error::Failed("response head too large".into()));
                }
                Ok(httparse::Status::Partial) => return Ok(None),
                Err(e) => return Err(Error::Failed(format!("bad HTTP response: {e}"))),
            };
            let status = head.code.unwrap_or(0);
            let http10 = head.version == Some(0);
            let (mut length, mut chunked, mut close, mut keep_alive) = (None, false, false, false);
            for h in head.headers.iter() {
                if h.name.eq_ignore_ascii_case("content-length") {
                    length = std::str::from_utf8(h.value)
                        .ok()
                        .and_then(|v| v.trim().parse::<u64>().ok());
                } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                    chunked = contains_token(h.value, b"chunked");
                } else if h.name.eq_ignore_ascii_case("connection") {
                    close = contains_token(h.value, b"close");
                    keep_alive = contains_token(h.value, b"keep-alive");
                }
            }
            self.buf.advance(len);
            if (100..200).contains(&status) && status != 101 {
                continue;
            }
            response.status = status;
            response.reusable = !close && (!http10 || keep_alive);
            let framing =
                if head_only || status == 204 || status == 304 || (100..200).contains(&status) {
                    Framing::Empty
                } else if chunked {
                    Framing::Chunked
                } else if let Some(n) = length {
                    Framing::Length(n)
                } else {
                    Framing::UntilClose
                };
            return Ok(Some(framing));
        }
    }

    /// Reads more bytes into the buffer; 0 at the end of the stream.
    async fn fill(&mut self) -> io::Result<usize> {
        if self.buf.capacity() - self.buf.len() < 4096 {
            self.buf.reserve(8 * 1024);
        }
        self.stream.read_buf(&mut self.buf).await
    }

    /// Consumes `n` buffered bytes of body.
    fn take(&mut self, n: u64, keep: usize, response: &mut Response) {
        let n = usize::try_from(n).unwrap_or(usize::MAX).min(self.buf.len());
        let room = keep.saturating_sub(response.body.len()).min(n);
        response.body.extend_from_slice(&self.buf[..room]);
        response.bytes += n as u64;
        self.buf.advance(n);
    }

    /// A body of exactly `len` bytes.
    async fn body(
        &mut self,
        mut len: u64,
        keep: usize,
        response: &mut Response,
    ) -> Result<(), Error> {
        loop {
            let have = (self.buf.len() as u64).min(len);
            self.take(have, keep, response);
            len -= have;
            if len == 0 {
                return Ok(());
            }
            if self
                .fill()
                .await
                .map_err(|e| Error::Failed(e.to_string()))?
                == 0
            {
                return Err(Error::Failed("connection closed in the body".into()));
            }
        }
    }

    /// A chunked body, trailers included.
    async fn chunked(&mut self, keep: usize, response: &mut Response) -> Result<(), Error> {
        loop {
            let size = loop {
                match httparse::parse_chunk_size(&self.buf) {
                    Ok(httparse::Status::Complete((used, size))) => {
                        self.buf.advance(used);
                        break size;
                    }
                    Ok(httparse::Status::Partial) => self.more("chunk size").await?,
                    Err(_) => return Err(Error::Failed("bad chunk size".into())),
                }
            };
            if size == 0 {
                // Trailers, each a line, up to an empty line.
                loop {
                    match self.buf.windows(2).position(|w| w == b"\r\n") {
                        Some(0) => {
                            self.buf.advance(2);
                            return Ok(());
                        }
                        Some(end) => self.buf.advance(end + 2),
                        None => self.more("chunked trailer").await?,
                    }
                }
            }
            self.body(size, keep, response).await?;
            while self.buf.len() < 2 {
                self.more("chunk end").await?;
            }
            if &self.buf[..2] != b"\r\n" {
                return Err(Error::Failed("bad chunk end".into()));
            }
            self.buf.advance(2);
        }
    }

    async fn more(&mut self, what: &str) -> Result<(), Error> {
        if self.buf.len() > MAX_HEAD {
            return Err(Error::Failed(format!("{what} too long")));
        }
        match self.fill().await {
            Ok(0) => Err(Error::Failed(format!("connection closed in the {what}"))),
            Ok(_) => Ok(()),
            Err(e) => Err(Error::Failed(e.to_string())),
        }
    }
}

fn contains_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

/// The bytes of a request: request line, Host, User-Agent, and for a body
/// its type and length.
pub fn serialize(method: &str, path: &str, authority: &str, body: Option<&[u8]>) -> Vec<u8> {
    let mut out =
        format!("{method} {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: chaoslab-load\r\n")
            .into_bytes();
    if let Some(body) = body {
        out.extend_from_slice(
            format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        );
        out.extend_from_slice(body);
    } else {
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[cfg(test)]
#[path = "h1_tests.rs"]
mod tests;
