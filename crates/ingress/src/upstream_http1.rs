//! HTTP/1.1 on an upstream connection, written for the ingress: the request
//! head encoded into one buffer and written with its body (its own length,
//! or chunked when it has none), the response head parsed with `httparse`,
//! and the response body read straight from the socket, in the task that
//! answers the client, by whoever holds the [`Connection`]. hyper's client
//! ran a task per connection and passed every request and response between
//! it and the caller through channels: after the kernel's, that was most of
//! the ingress's own work per request (issue 12 item 5).
//!
//! Only what a reverse proxy in front of HTTP/1.1 replicas needs: no
//! upgrades (the proxy strips `Upgrade`; a `101` is an error), interim `1xx`
//! answers skipped, trailers read and dropped. The response framing follows
//! RFC 9112 §6.3: no body for `HEAD`, `204`, `304`; chunked when
//! `Transfer-Encoding` ends in `chunked`; `Content-Length`; otherwise until
//! the upstream closes (and the connection is not reused).
//!
//! A known limit: the request body is written whole before the response is
//! read. An upstream that answers early (a refusal) and closes is heard
//! (its answer is read after the failed write); one that answers early but
//! keeps the connection open without reading the rest of a body larger
//! than the socket buffers holds the request until the request timeout.
//! The lab's replicas close.

use std::future::Future;
use std::io;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Version, header};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Largest response head (status line and fields) taken from an upstream.
pub(crate) const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Most header fields in a response head.
const MAX_HEADERS: usize = 100;
/// Longest chunk-size line (size and extensions), and longest trailer
/// section, taken from an upstream.
const MAX_CHUNK_LINE: usize = 4 * 1024;
/// Room made in the read buffer before each read.
const READ_SIZE: usize = 16 * 1024;

/// Body pieces up to this size are copied out of the read buffer.
const COPY_AT_MOST: usize = 4 * 1024;

/// An error of a request body.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why an exchange with an upstream failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UpstreamError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("the upstream closed the connection without answering")]
    NoAnswer,
    #[error("the upstream's answer is not valid HTTP/1.1: {0}")]
    Malformed(&'static str),
    #[error("the upstream closed the connection before the end of the body")]
    BodyCut,
    #[error("the request body failed: {0}")]
    RequestBody(BoxError),
}

impl UpstreamError {
    /// Whether nothing came back before the connection ended: most often a
    /// kept-alive connection the upstream was closing, so the request never
    /// reached its application — but an upstream that died handling it
    /// looks the same, so only an idempotent request is sent again.
    pub(crate) fn unanswered(&self) -> bool {
        match self {
            UpstreamError::NoAnswer => true,
            UpstreamError::Io(e) => matches!(
                e.kind(),
                io::ErrorKind::BrokenPipe
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::UnexpectedEof
            ),
            _ => false,
        }
    }
}

/// How a request body is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RequestFraming {
    /// No body.
    Empty,
    /// `Content-Length` (the client's) bytes as they come.
    Length,
    /// `Transfer-Encoding: chunked`, one chunk per frame.
    Chunked,
}

impl RequestFraming {
    /// The framing for a request with these headers and a body that is
    /// (`end`) or is not yet finished.
    pub(crate) fn of(headers: &HeaderMap, end: bool) -> Self {
        if headers.contains_key(header::CONTENT_LENGTH) {
            RequestFraming::Length
        } else if end {
            RequestFraming::Empty
        } else {
            RequestFraming::Chunked
        }
    }
}

/// The request head as sent: request line, fields (hop-by-hop ones already
/// removed by the proxy), the framing's, the blank line.
pub(crate) fn encode_head(parts: &http::request::Parts, framing: RequestFraming) -> Bytes {
    let mut head = BytesMut::with_capacity(256 + parts.headers.len() * 32);
    head.extend_from_slice(parts.method.as_str().as_bytes());
    head.extend_from_slice(b" ");
    if parts.method == Method::CONNECT {
        let authority = parts.uri.authority().map_or("", |a| a.as_str());
        head.extend_from_slice(authority.as_bytes());
    } else {
        let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        head.extend_from_slice(target.as_bytes());
    }
    head.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in &parts.headers {
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    if framing == RequestFraming::Chunked {
        head.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    head.extend_from_slice(b"\r\n");
    head.freeze()
}

/// How the rest of a response body is read.
#[derive(Debug)]
pub(crate) enum Framing {
    /// This many bytes are left.
    Length(u64),
    /// Chunked transfer coding.
    Chunked(ChunkedDecoder),
    /// Everything until the upstream closes.
    UntilClose,
    /// Read to its end (or there was none).
    Done,
}

impl Framing {
    pub(crate) fn is_done(&self) -> bool {
        matches!(self, Framing::Done | Framing::Length(0))
    }

    /// The exact remaining length, when known.
    pub(crate) fn exact(&self) -> Option<u64> {
        match self {
            Framing::Length(left) => Some(*left),
            Framing::Done => Some(0),
            _ => None,
        }
    }
}

/// A response head: what the client is answered with (`H`: made by the
/// caller's [`HeadBuilder`] from the upstream's [`RawHead`]), how its body
/// is framed, and whether the connection may carry another request after
/// it.
#[derive(Debug)]
pub(crate) struct ResponseHead<H = http::response::Parts> {
    pub(crate) parts: H,
    pub(crate) framing: Framing,
    pub(crate) reusable: bool,
}

/// A final response head as the upstream sent it, parsed in place: what a
/// [`HeadBuilder`] makes the client's answer from.
#[derive(Debug)]
pub(crate) struct RawHead<'a> {
    pub(crate) status: StatusCode,
    /// The header fields, as sent (names in any case).
    pub(crate) fields: &'a [httparse::Header<'a>],
    /// Whether the body is framed by a transfer coding (a
    /// `Content-Length` beside it is wrong and must not reach the client,
    /// RFC 9112 §6.3).
    pub(crate) coded: bool,
    /// The body's exact length, when its framing gives it.
    pub(crate) length: Option<u64>,
}

/// Makes the client's answer from the upstream's response head: the
/// hyper path builds `http::response::Parts` ([`parts_of`]), the plain
/// path writes the client's head bytes.
pub(crate) trait HeadBuilder {
    type Head;
    fn build(&mut self, raw: &RawHead<'_>) -> Result<Self::Head, UpstreamError>;
}

/// The hyper path's answer: the upstream's head as `http` parts.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct PartsBuilder;

impl HeadBuilder for PartsBuilder {
    type Head = http::response::Parts;
    fn build(&mut self, raw: &RawHead<'_>) -> Result<Self::Head, UpstreamError> {
        parts_of(raw)
    }
}

/// The upstream's head as `http` parts (the length dropped beside a
/// transfer coding).
fn parts_of(raw: &RawHead<'_>) -> Result<http::response::Parts, UpstreamError> {
    let mut headers = HeaderMap::with_capacity(raw.fields.len());
    for field in raw.fields {
        let name = HeaderName::from_bytes(field.name.as_bytes())
            .map_err(|_| UpstreamError::Malformed("a header field name is not valid"))?;
        let value = HeaderValue::from_bytes(field.value)
            .map_err(|_| UpstreamError::Malformed("a header field value is not valid"))?;
        headers.append(name, value);
    }
    if raw.coded {
        headers.remove(header::CONTENT_LENGTH);
    }
    // The ingress answers in its own version (RFC 9110 §6.2), whatever
    // the upstream's: hyper would write an upstream's `HTTP/1.0` to an
    // HTTP/1.1 client.
    let mut parts = http::Response::new(()).into_parts().0;
    parts.status = raw.status;
    parts.version = Version::HTTP_11;
    parts.headers = headers;
    Ok(parts)
}

/// One connection to an upstream and the bytes read from it not yet used.
#[derive(Debug)]
pub(crate) struct Connection {
    stream: TcpStream,
    read: BytesMut,
}

impl Connection {
    pub(crate) fn new(stream: TcpStream) -> Self {
        Connection {
            stream,
            read: BytesMut::new(),
        }
    }

    /// Whether an idle connection may carry a request: nothing arrived on
    /// it and the upstream did not close it. No system call unless the
    /// reactor saw the socket become readable while it was idle.
    pub(crate) fn idle_and_open(&mut self) -> bool {
        if !self.read.is_empty() {
            return false;
        }
        let mut cx = Context::from_waker(std::task::Waker::noop());
        // Outside tokio's per-task budget: a spent budget would say
        // "pending" for a socket that is closed.
        let ready = std::pin::pin!(tokio::task::unconstrained(std::future::poll_fn(|cx| {
            self.stream.poll_read_ready(cx)
        })))
        .poll(&mut cx);
        match ready {
            Poll::Pending => true,
            Poll::Ready(Err(_)) => false,
            // Readable while idle: closed, reset or stray bytes — unless
            // the readiness is stale, which a read that would block shows.
            Poll::Ready(Ok(())) => {
                let mut probe = [0u8; 1];
                matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
            }
        }
    }

    /// Writes the request (`head`, then `body` framed as `framing`) and
    /// reads the response head, made into the client's by `builder`.
    pub(crate) async fn exchange<B, H: HeadBuilder>(
        &mut self,
        head: &[u8],
        body: Option<B>,
        framing: RequestFraming,
        method: &Method,
        builder: &mut H,
    ) -> Result<ResponseHead<H::Head>, UpstreamError>
    where
        B: http_body::Body<Data = Bytes> + Unpin,
        B::Error: Into<BoxError>,
    {
        self.stream.write_all(head).await?;
        if let Some(body) = body
            && framing != RequestFraming::Empty
            && let Err(e) = self.write_body(body, framing).await
        {
            // The upstream may have answered already (a refusal before the
            // whole body): that answer is the client's; else the error.
            return match self.try_read_head(method, builder).await {
                Ok(answer) => Ok(ResponseHead {
                    reusable: false,
                    ..answer
                }),
                Err(_) => Err(e),
            };
        }
        self.read_head(method, builder).await
    }

    async fn write_body<B>(
        &mut self,
        mut body: B,
        framing: RequestFraming,
    ) -> Result<(), UpstreamError>
    where
        B: http_body::Body<Data = Bytes> + Unpin,
        B::Error: Into<BoxError>,
    {
        use http_body_util::BodyExt;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| UpstreamError::RequestBody(e.into()))?;
            let Ok(data) = frame.into_data() else {
                continue; // trailers are not forwarded
            };
            if data.is_empty() {
                continue;
            }
            if framing == RequestFraming::Chunked {
                let size = format!("{:x}\r\n", data.len());
                self.stream.write_all(size.as_bytes()).await?;
                self.stream.write_all(&data).await?;
                self.stream.write_all(b"\r\n").await?;
            } else {
                self.stream.write_all(&data).await?;
            }
        }
        if framing == RequestFraming::Chunked {
            self.stream.write_all(b"0\r\n\r\n").await?;
        }
        Ok(())
    }

    /// A head already read or arriving, after a failed body write.
    async fn try_read_head<H: HeadBuilder>(
        &mut self,
        method: &Method,
        builder: &mut H,
    ) -> Result<ResponseHead<H::Head>, UpstreamError> {
        let wait = std::time::Duration::from_millis(100);
        tokio::time::timeout(wait, self.read_head(method, builder))
            .await
            .map_err(|_| UpstreamError::NoAnswer)?
    }

    async fn read_head<H: HeadBuilder>(
        &mut self,
        method: &Method,
        builder: &mut H,
    ) -> Result<ResponseHead<H::Head>, UpstreamError> {
        loop {
            match parse_head(&self.read, method, builder)? {
                Parsed::Head(length, head) => {
                    self.read.advance(length);
                    return Ok(head);
                }
                Parsed::Interim(length) => self.read.advance(length),
                Parsed::Partial if self.read.len() >= MAX_HEAD_BYTES => {
                    return Err(UpstreamError::Malformed("the response head is too large"));
                }
                Parsed::Partial => {
                    let was_empty = self.read.is_empty();
                    if std::future::poll_fn(|cx| self.poll_fill(cx)).await? == 0 {
                        return Err(if was_empty {
                            UpstreamError::NoAnswer
                        } else {
                            UpstreamError::Malformed("the response head was cut off")
                        });
                    }
                }
            }
        }
    }

    /// Reads more into the buffer; 0 at the end of the stream.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        self.read.reserve(READ_SIZE);
        tokio_util::io::poll_read_buf(std::pin::Pin::new(&mut self.stream), cx, &mut self.read)
    }

    /// The first `n` bytes read. A small piece is copied out, so that the
    /// read buffer, empty again, is reused by the next response rather than
    /// a new one allocated for each (the piece would keep it shared).
    fn take(&mut self, n: usize) -> Bytes {
        if n <= COPY_AT_MOST {
            let piece = Bytes::copy_from_slice(&self.read[..n]);
            self.read.advance(n);
            piece
        } else {
            self.read.split_to(n).freeze()
        }
    }

    /// The next piece of the response body framed by `framing`; `None` at
    /// its end.
    pub(crate) fn poll_body(
        &mut self,
        framing: &mut Framing,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<Bytes>, UpstreamError>> {
        loop {
            match framing {
                Framing::Done => return Poll::Ready(Ok(None)),
                Framing::Length(0) => {
                    *framing = Framing::Done;
                    return Poll::Ready(Ok(None));
                }
                Framing::Length(left) => {
                    if !self.read.is_empty() {
                        let n = (*left).min(self.read.len() as u64) as usize;
                        *left -= n as u64;
                        return Poll::Ready(Ok(Some(self.take(n))));
                    }
                    if ready!(self.poll_fill(cx))? == 0 {
                        return Poll::Ready(Err(UpstreamError::BodyCut));
                    }
                }
                Framing::UntilClose => {
                    if !self.read.is_empty() {
                        return Poll::Ready(Ok(Some(self.take(self.read.len()))));
                    }
                    if ready!(self.poll_fill(cx))? == 0 {
                        *framing = Framing::Done;
                        return Poll::Ready(Ok(None));
                    }
                }
                Framing::Chunked(decoder) => match decoder.decode(&mut self.read)? {
                    Decoded::Data(data) => return Poll::Ready(Ok(Some(data))),
                    Decoded::End => *framing = Framing::Done,
                    Decoded::NeedMore => {
                        if ready!(self.poll_fill(cx))? == 0 {
                            return Poll::Ready(Err(UpstreamError::BodyCut));
                        }
                    }
                },
            }
        }
    }
}

/// What the bytes at the start of a read buffer are.
#[derive(Debug)]
enum Parsed<H> {
    /// A final response head of this many bytes.
    Head(usize, ResponseHead<H>),
    /// An interim (`1xx`) head of this many bytes, to skip.
    Interim(usize),
    /// Not a whole head yet.
    Partial,
}

/// Parses a response head at the start of `bytes` (to a request with
/// `method`), the client's made by `builder`.
fn parse_head<H: HeadBuilder>(
    bytes: &[u8],
    method: &Method,
    builder: &mut H,
) -> Result<Parsed<H::Head>, UpstreamError> {
    // Uninitialised: httparse writes the fields it finds (initialising a
    // hundred empty ones for every response costs more than parsing).
    let mut fields = [const { std::mem::MaybeUninit::uninit() }; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut response,
        bytes,
        &mut fields,
    );
    let length = match parsed {
        Ok(httparse::Status::Complete(length)) => length,
        Ok(httparse::Status::Partial) => return Ok(Parsed::Partial),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(UpstreamError::Malformed("too many header fields"));
        }
        Err(_) => return Err(UpstreamError::Malformed("not an HTTP/1 response head")),
    };
    let code = response.code.unwrap_or(0);
    let status = StatusCode::from_u16(code)
        .map_err(|_| UpstreamError::Malformed("the status code is out of range"))?;
    if status == StatusCode::SWITCHING_PROTOCOLS {
        return Err(UpstreamError::Malformed(
            "the upstream switched protocols, which the ingress does not forward",
        ));
    }
    if status.is_informational() {
        return Ok(Parsed::Interim(length));
    }
    let version = match response.version {
        Some(0) => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    let fields: &[httparse::Header<'_>] = response.headers;
    let (framing, reusable) = response_framing(method, status, version, fields)?;
    let raw = RawHead {
        status,
        fields,
        coded: has_field(fields, "transfer-encoding"),
        length: framing.exact(),
    };
    let parts = builder.build(&raw)?;
    Ok(Parsed::Head(
        length,
        ResponseHead {
            parts,
            framing,
            reusable,
        },
    ))
}

/// Whether a field named `name` (lower case) is among `fields`.
pub(crate) fn has_field(fields: &[httparse::Header<'_>], name: &str) -> bool {
    fields.iter().any(|f| f.name.eq_ignore_ascii_case(name))
}

/// A field value as text, if it is visible ASCII (what
/// `HeaderValue::to_str` accepts).
pub(crate) fn visible_text(value: &[u8]) -> Option<&str> {
    if value.iter().all(|&b| (32..127).contains(&b) || b == b'\t') {
        std::str::from_utf8(value).ok()
    } else {
        None
    }
}

/// The body framing of a response (RFC 9112 §6.3) and whether its
/// connection may be used again after it.
fn response_framing(
    method: &Method,
    status: StatusCode,
    version: Version,
    fields: &[httparse::Header<'_>],
) -> Result<(Framing, bool), UpstreamError> {
    let values = |name: &'static str| {
        fields
            .iter()
            .filter(move |f| f.name.eq_ignore_ascii_case(name))
            .map(|f| f.value)
    };
    let tokens = |name| {
        values(name)
            .filter_map(visible_text)
            .flat_map(|v| v.split(','))
            .map(str::trim)
    };
    let keep_alive = if version == Version::HTTP_10 {
        tokens("connection").any(|t| t.eq_ignore_ascii_case("keep-alive"))
    } else {
        !tokens("connection").any(|t| t.eq_ignore_ascii_case("close"))
    };
    if method == Method::HEAD
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return Ok((Framing::Done, keep_alive));
    }
    if method == Method::CONNECT && status.is_success() {
        return Ok((Framing::Done, false));
    }
    if has_field(fields, "transfer-encoding") {
        let chunked = tokens("transfer-encoding")
            .next_back()
            .is_some_and(|t| t.eq_ignore_ascii_case("chunked"));
        let length_too = has_field(fields, "content-length");
        return Ok(if chunked {
            (
                Framing::Chunked(ChunkedDecoder::default()),
                keep_alive && !length_too,
            )
        } else {
            (Framing::UntilClose, false)
        });
    }
    let mut length = None;
    for value in values("content-length") {
        for token in visible_text(value)
            .ok_or(UpstreamError::Malformed("Content-Length is not a number"))?
            .split(',')
        {
            let token = token.trim();
            if token.is_empty() || !token.bytes().all(|b| b.is_ascii_digit()) {
                return Err(UpstreamError::Malformed("Content-Length is not a number"));
            }
            let n: u64 = token
                .parse()
                .map_err(|_| UpstreamError::Malformed("Content-Length is too large"))?;
            if length.is_some_and(|l| l != n) {
                return Err(UpstreamError::Malformed(
                    "Content-Length is given twice, differently",
                ));
            }
            length = Some(n);
        }
    }
    Ok(match length {
        Some(n) => (Framing::Length(n), keep_alive),
        None => (Framing::UntilClose, false),
    })
}

/// The chunked transfer coding, decoded from a read buffer as bytes arrive.
#[derive(Debug, Default)]
pub(crate) struct ChunkedDecoder {
    state: ChunkState,
    /// Bytes of trailer fields seen (bounded).
    trailer_bytes: usize,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// At a chunk-size line.
    #[default]
    Size,
    /// Inside a chunk's data, this many bytes left.
    Data(u64),
    /// After a chunk's data: its CRLF.
    DataEnd,
    /// After the last chunk: trailer fields until a blank line.
    Trailers,
    /// Read to its end.
    End,
}

/// What [`ChunkedDecoder::decode`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decoded {
    Data(Bytes),
    NeedMore,
    End,
}

impl ChunkedDecoder {
    /// Decodes from the start of `buf`, consuming what it used.
    pub(crate) fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, UpstreamError> {
        loop {
            match self.state {
                ChunkState::End => return Ok(Decoded::End),
                ChunkState::Size => {
                    let Some(line) =
                        take_line(buf, MAX_CHUNK_LINE, "a chunk-size line is too long")?
                    else {
                        return Ok(Decoded::NeedMore);
                    };
                    let size = chunk_size(&line)?;
                    self.state = if size == 0 {
                        ChunkState::Trailers
                    } else {
                        ChunkState::Data(size)
                    };
                }
                ChunkState::Data(left) => {
                    if buf.is_empty() {
                        return Ok(Decoded::NeedMore);
                    }
                    let n = left.min(buf.len() as u64);
                    self.state = if n == left {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data(left - n)
                    };
                    let n = n as usize;
                    let data = if n <= COPY_AT_MOST {
                        let piece = Bytes::copy_from_slice(&buf[..n]);
                        buf.advance(n);
                        piece
                    } else {
                        buf.split_to(n).freeze()
                    };
                    return Ok(Decoded::Data(data));
                }
                ChunkState::DataEnd => match buf.first() {
                    None => return Ok(Decoded::NeedMore),
                    Some(b'\n') => {
                        buf.advance(1);
                        self.state = ChunkState::Size;
                    }
                    Some(b'\r') if buf.len() < 2 => return Ok(Decoded::NeedMore),
                    Some(b'\r') if buf[1] == b'\n' => {
                        buf.advance(2);
                        self.state = ChunkState::Size;
                    }
                    Some(_) => {
                        return Err(UpstreamError::Malformed("a chunk does not end with CRLF"));
                    }
                },
                ChunkState::Trailers => {
                    let too_long = "the trailer section is too long";
                    if self.trailer_bytes >= MAX_CHUNK_LINE {
                        return Err(UpstreamError::Malformed(too_long));
                    }
                    let room = MAX_CHUNK_LINE - self.trailer_bytes;
                    let Some(line) = take_line(buf, room, too_long)? else {
                        return Ok(Decoded::NeedMore);
                    };
                    self.trailer_bytes += line.len();
                    if line.as_ref() == b"\r\n" || line.as_ref() == b"\n" {
                        self.state = ChunkState::End;
                    }
                }
            }
        }
    }
}

/// The line (with its LF) at the start of `buf`, if whole; an error when
/// none ends within `max` bytes.
fn take_line(
    buf: &mut BytesMut,
    max: usize,
    too_long: &'static str,
) -> Result<Option<BytesMut>, UpstreamError> {
    let window = &buf[..buf.len().min(max)];
    match window.iter().position(|&b| b == b'\n') {
        Some(end) => Ok(Some(buf.split_to(end + 1))),
        None if buf.len() >= max => Err(UpstreamError::Malformed(too_long)),
        None => Ok(None),
    }
}

/// The size of a chunk-size line: hex digits, then extensions or the line
/// end.
fn chunk_size(line: &[u8]) -> Result<u64, UpstreamError> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 {
        return Err(UpstreamError::Malformed("a chunk size is not hexadecimal"));
    }
    match line[digits] {
        b';' | b'\r' | b'\n' | b' ' | b'\t' => {}
        _ => return Err(UpstreamError::Malformed("a chunk size is not hexadecimal")),
    }
    let mut size: u64 = 0;
    for &b in &line[..digits] {
        let digit = u64::from((b as char).to_digit(16).unwrap_or(0));
        size = size
            .checked_mul(16)
            .and_then(|s| s.checked_add(digit))
            .ok_or(UpstreamError::Malformed("a chunk size is too large"))?;
    }
    Ok(size)
}

#[cfg(test)]
#[path = "upstream_http1_tests.rs"]
mod tests;
