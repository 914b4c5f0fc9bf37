//! The bounds on HTTP/1 request heads (SPEC §13: heads over 16 KiB get 431,
//! URLs over 8 KiB 414) and the refusals hyper would otherwise answer with
//! an empty body (400 for a head it cannot parse). hyper writes those
//! answers itself, before any handler runs, so the check sits in front of
//! it: [`HeadScanner`] reads the client's bytes as they arrive, passes each
//! well-formed request (head and body, framed by Content-Length or chunked
//! encoding) through unchanged, and stops at the first head it refuses,
//! reporting a [`Refusal`] that `crate::server` answers in the SPEC §3
//! error body. Sans-IO, so that property tests can feed it anything.
//!
//! The checks mirror hyper's own (httparse with the same header count, the
//! same Content-Length and Transfer-Encoding rules), so whatever passes here
//! hyper accepts too. Where the scanner could lose track of the framing (a
//! chunked body it cannot parse, an HTTP/2 connection preface) it stops
//! looking and passes everything through: hyper then has the last word.

use http::StatusCode;

/// Largest request head (request line, header fields, blank line).
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Largest request target (the URL: path and query).
pub const MAX_URL_BYTES: usize = 8 * 1024;
/// Most header fields in one head (hyper's default, set on hyper too).
pub const MAX_HEADERS: usize = 100;

/// Longest chunk-size line (size, extensions) or trailer section followed.
const MAX_CHUNK_LINE: usize = 4 * 1024;
/// hyper's largest Content-Length (`u64::MAX - 2`; above it is "too large").
const MAX_CONTENT_LENGTH: u64 = u64::MAX - 2;
/// What a cleartext HTTP/2 client sends first.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// A request head refused before the service saw it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {detail}")]
pub struct Refusal {
    pub status: StatusCode,
    pub detail: String,
}

impl Refusal {
    fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Refusal {
            status,
            detail: detail.into(),
        }
    }
    fn bad(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }
}

/// Where the scanner is in the stream of requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Collecting a request head.
    Head,
    /// Passing this many more bytes of a Content-Length body.
    Body(u64),
    /// Collecting a chunk-size line.
    ChunkSize,
    /// Passing this many more bytes of chunk data.
    ChunkData(u64),
    /// Expecting the CRLF after chunk data.
    ChunkDataEnd,
    /// After the last chunk: trailer fields up to a blank line.
    Trailers,
    /// No longer following the framing: everything passes.
    Opaque,
    /// A head was refused: nothing more passes.
    Refused,
}

/// Follows one connection's requests; see the module documentation.
#[derive(Debug)]
pub struct HeadScanner {
    state: State,
    /// Bytes received but not yet passed on (an incomplete head or line).
    pending: Vec<u8>,
    /// Whether a request was passed yet (the HTTP/2 preface comes first).
    first: bool,
    /// How much of an incomplete head holds no line end (a head cannot be
    /// complete before one more arrives: no need to parse it again).
    scanned: usize,
}

impl Default for HeadScanner {
    fn default() -> Self {
        Self::new()
    }
}

/// How the body after a head is framed.
enum Framing {
    Length(u64),
    Chunked,
}

impl HeadScanner {
    pub fn new() -> Self {
        HeadScanner {
            state: State::Head,
            pending: Vec::new(),
            first: true,
            scanned: 0,
        }
    }

    /// Whether a head was refused (every later byte is dropped).
    pub fn is_refused(&self) -> bool {
        self.state == State::Refused
    }

    /// Takes `input`, the next bytes from the client; appends to `out`
    /// what the HTTP server may read. Returns the refusal, once, when a
    /// head is refused: everything before it has been appended to `out`,
    /// nothing after it ever is.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Option<Refusal> {
        match self.state {
            State::Refused => return None,
            State::Opaque => {
                out.extend_from_slice(input);
                return None;
            }
            _ => {}
        }
        let mut buf = std::mem::take(&mut self.pending);
        buf.extend_from_slice(input);
        let mut pos = 0;
        let refusal = loop {
            let rest = &buf[pos..];
            if rest.is_empty() {
                break None;
            }
            let step = match self.state {
                State::Head => self.head(rest, out),
                State::Body(left) | State::ChunkData(left) => {
                    let n = left.min(rest.len() as u64) as usize;
                    out.extend_from_slice(&rest[..n]);
                    let left = left - n as u64;
                    self.state = match (self.state, left) {
                        (State::Body(_), 0) => State::Head,
                        (State::Body(_), _) => State::Body(left),
                        (_, 0) => State::ChunkDataEnd,
                        _ => State::ChunkData(left),
                    };
                    Ok(Some(n))
                }
                State::ChunkSize => Ok(self.chunk_size(rest, out)),
                State::ChunkDataEnd => Ok(self.chunk_data_end(rest, out)),
                State::Trailers => Ok(self.trailers(rest, out)),
                State::Opaque => {
                    out.extend_from_slice(rest);
                    Ok(Some(rest.len()))
                }
                State::Refused => Ok(Some(rest.len())),
            };
            match step {
                Ok(Some(used)) => pos += used,
                Ok(None) => break None,
                Err(refusal) => {
                    self.state = State::Refused;
                    break Some(refusal);
                }
            }
        };
        if self.state != State::Refused {
            buf.drain(..pos);
            self.pending = buf;
        }
        refusal
    }

    /// One step in `State::Head`: bytes used (`None`: need more), or the
    /// refusal.
    fn head(&mut self, rest: &[u8], out: &mut Vec<u8>) -> Result<Option<usize>, Refusal> {
        if self.first {
            if rest.len() < H2_PREFACE.len() && H2_PREFACE.starts_with(rest) {
                return Ok(None);
            }
            if rest.starts_with(H2_PREFACE) {
                self.state = State::Opaque;
                return Ok(Some(0));
            }
        }
        if rest.len() <= MAX_HEAD_BYTES && !rest[self.scanned.min(rest.len())..].contains(&b'\n') {
            self.scanned = rest.len();
            return Ok(None);
        }
        // Only whole lines are judged until the head overflows: a line still
        // arriving is judged when its end comes, so the verdict never
        // depends on how the bytes were split into reads.
        let window = if rest.len() > MAX_HEAD_BYTES {
            &rest[..MAX_HEAD_BYTES]
        } else {
            let lines = rest
                .iter()
                .rposition(|b| *b == b'\n')
                .map_or(0, |at| at + 1);
            &rest[..lines]
        };
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        let len = match req.parse(window) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) if rest.len() > MAX_HEAD_BYTES => {
                return Err(too_large(window));
            }
            Ok(httparse::Status::Partial) => {
                self.scanned = rest.len();
                return Ok(None);
            }
            Err(e) => return Err(parse_error(e)),
        };
        self.scanned = 0;
        let framing = check(&req)?;
        out.extend_from_slice(&rest[..len]);
        self.first = false;
        self.state = match framing {
            Framing::Length(0) => State::Head,
            Framing::Length(n) => State::Body(n),
            Framing::Chunked => State::ChunkSize,
        };
        Ok(Some(len))
    }

    fn chunk_size(&mut self, rest: &[u8], out: &mut Vec<u8>) -> Option<usize> {
        match httparse::parse_chunk_size(rest) {
            Ok(httparse::Status::Complete((used, size))) => {
                out.extend_from_slice(&rest[..used]);
                self.state = if size == 0 {
                    State::Trailers
                } else {
                    State::ChunkData(size)
                };
                Some(used)
            }
            Ok(httparse::Status::Partial) if rest.len() <= MAX_CHUNK_LINE => None,
            _ => self.lose_track(),
        }
    }

    fn chunk_data_end(&mut self, rest: &[u8], out: &mut Vec<u8>) -> Option<usize> {
        match rest {
            [b'\r'] => None,
            [b'\r', b'\n', ..] => {
                out.extend_from_slice(b"\r\n");
                self.state = State::ChunkSize;
                Some(2)
            }
            _ => self.lose_track(),
        }
    }

    fn trailers(&mut self, rest: &[u8], out: &mut Vec<u8>) -> Option<usize> {
        let end = if rest.starts_with(b"\r\n") {
            Some(2)
        } else {
            rest.windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map(|at| at + 4)
        };
        match end {
            Some(end) => {
                out.extend_from_slice(&rest[..end]);
                self.state = State::Head;
                Some(end)
            }
            None if rest.len() <= MAX_CHUNK_LINE => None,
            None => self.lose_track(),
        }
    }

    /// Framing this scanner cannot follow: from here on hyper decides.
    fn lose_track(&mut self) -> Option<usize> {
        self.state = State::Opaque;
        Some(0)
    }
}

/// The refusal of a head that does not end within [`MAX_HEAD_BYTES`]: 414
/// when its URL alone is over [`MAX_URL_BYTES`], else 431.
fn too_large(window: &[u8]) -> Refusal {
    let start = window
        .iter()
        .position(|b| *b != b'\r' && *b != b'\n')
        .unwrap_or(window.len());
    let line = window[start..]
        .split(|b| *b == b'\n')
        .next()
        .unwrap_or_default();
    let target = line.split(|b| *b == b' ').nth(1).unwrap_or_default();
    if target.len() > MAX_URL_BYTES {
        url_too_long(target.len(), line.len() + start >= window.len())
    } else {
        Refusal::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!(
                "the request head (request line and header fields) is larger than {} KiB; send fewer or shorter header fields",
                MAX_HEAD_BYTES / 1024
            ),
        )
    }
}

fn url_too_long(len: usize, at_least: bool) -> Refusal {
    Refusal::new(
        StatusCode::URI_TOO_LONG,
        format!(
            "the URL is {}{len} bytes long; the limit is {} KiB",
            if at_least { "at least " } else { "" },
            MAX_URL_BYTES / 1024
        ),
    )
}

fn parse_error(e: httparse::Error) -> Refusal {
    const LINE: &str = "(expected `METHOD /path HTTP/1.1`)";
    match e {
        httparse::Error::TooManyHeaders => Refusal::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!("the request has more than {MAX_HEADERS} header fields"),
        ),
        httparse::Error::Version => Refusal::bad(format!(
            "malformed request line: only HTTP/1.0 and HTTP/1.1 are served {LINE}"
        )),
        httparse::Error::Token => Refusal::bad(format!(
            "malformed request line: the method or the URL holds a character that is not allowed {LINE}"
        )),
        httparse::Error::HeaderName => Refusal::bad(
            "malformed header field: a header name holds a character that is not allowed (expected `Name: value`)",
        ),
        httparse::Error::HeaderValue => {
            Refusal::bad("malformed header field: a header value holds a control character")
        }
        httparse::Error::NewLine => {
            Refusal::bad("malformed request head: a line does not end in CRLF")
        }
        httparse::Error::Status => Refusal::bad(format!("malformed request line {LINE}")),
    }
}

/// hyper's checks of a complete head, in hyper's order; the body's framing.
fn check(req: &httparse::Request<'_, '_>) -> Result<Framing, Refusal> {
    let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version) else {
        return Err(Refusal::bad(
            "malformed request line (expected `METHOD /path HTTP/1.1`)",
        ));
    };
    if target.len() > MAX_URL_BYTES {
        return Err(url_too_long(target.len(), false));
    }
    if http::Method::from_bytes(method.as_bytes()).is_err() {
        return Err(Refusal::bad("malformed request line: invalid method"));
    }
    if let Err(e) = target.parse::<http::Uri>() {
        return Err(Refusal::bad(format!(
            "malformed request line: the URL is not valid ({e})"
        )));
    }
    let http11 = version == 1;
    let mut content_length: Option<u64> = None;
    let mut transfer_encoding = false;
    let mut chunked = false;
    for header in req.headers.iter() {
        if header.name.eq_ignore_ascii_case("transfer-encoding") {
            if !http11 {
                return Err(Refusal::bad(
                    "Transfer-Encoding is not allowed in an HTTP/1.0 request",
                ));
            }
            transfer_encoding = true;
            content_length = None;
            chunked = std::str::from_utf8(header.value).is_ok_and(|v| {
                v.rsplit(',')
                    .next()
                    .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"))
            });
        } else if header.name.eq_ignore_ascii_case("content-length") {
            if transfer_encoding {
                continue;
            }
            let len = digits(header.value).ok_or_else(|| {
                Refusal::bad(format!(
                    "Content-Length must be a number of bytes, got {:?}",
                    String::from_utf8_lossy(&header.value[..header.value.len().min(40)])
                ))
            })?;
            match content_length {
                Some(previous) if previous != len => {
                    return Err(Refusal::bad(format!(
                        "two Content-Length header fields disagree ({previous} and {len})"
                    )));
                }
                _ => {}
            }
            if len > MAX_CONTENT_LENGTH {
                return Err(Refusal::bad(format!(
                    "Content-Length {len} is larger than any body can be"
                )));
            }
            content_length = Some(len);
        }
    }
    if transfer_encoding && !chunked {
        return Err(Refusal::bad(
            "Transfer-Encoding must end with chunked (the only transfer coding served)",
        ));
    }
    Ok(if chunked {
        Framing::Chunked
    } else {
        Framing::Length(content_length.unwrap_or(0))
    })
}

/// A Content-Length value as hyper reads it: ASCII digits only, no sign,
/// no overflow.
fn digits(value: &[u8]) -> Option<u64> {
    if value.is_empty() {
        return None;
    }
    value.iter().try_fold(0u64, |acc, b| {
        if b.is_ascii_digit() {
            acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests;
