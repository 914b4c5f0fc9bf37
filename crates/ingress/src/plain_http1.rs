//! The ingress's own server side for plain requests, the ones nearly all
//! its traffic is made of: an HTTP/1.1 `GET` of an origin-form path, with no
//! body and nothing hop-by-hop but `Connection: keep-alive`. For those the
//! request head is read with `httparse` and rewritten for the upstream as
//! bytes (guard, `X-Request-ID`, `X-Forwarded-*` applied to the raw
//! fields), and the upstream's response head is rewritten for the client
//! as bytes too — where hyper parsed each head into a `HeaderMap` and
//! encoded it again: most of the ingress's own work per request (issue 12
//! item 5).
//!
//! Everything else is hyper's, as before: the first request on a
//! connection that is not plain — a body, another method or version, an
//! upgrade, a head over 16 KiB or one `httparse` refuses, a request the
//! guard refuses, none ready to send it to — hands the connection, with
//! the bytes read so far, to hyper for the rest of its life
//! (`crate::handoff`). So every refusal and every error a client can
//! provoke is answered by the one path that always answered it; the plain
//! path answers only upstream failures itself (502, 504), with the same
//! responses. Responses are written as hyper writes them: `HTTP/1.1`,
//! the canonical reason, hop-by-hop fields dropped, `Content-Length` or
//! chunked framing, a `Date` if the upstream sent none.
//!
//! The connection keeps the listener's limits: its reads go through the
//! same clocked socket, a request counts as in flight on the clock from
//! its head until its response is written, and at shutdown a connection
//! waiting for its next request closes.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

use std::fmt::Write as _;

use bytes::BytesMut;
use chaoslab_httpguard::{Accepted, LimitedIo};
use http::{Method, Response, StatusCode};
use http_body::Body;
use tokio::io::AsyncWriteExt;

use crate::error::ForwardFailure;
use crate::upstream_http1::{HeadBuilder, RawHead, UpstreamError, visible_text};
use crate::upstream_pool::{Failed, PooledBody};
use crate::{Peer, Proxy};

/// The longest request head the plain path reads; a longer one is hyper's.
const MAX_HEAD: usize = 16 * 1024;
/// The most header fields in a plain request.
const MAX_FIELDS: usize = 64;
/// Room made in the read buffer before each read.
const READ_SIZE: usize = 4 * 1024;
/// Response bytes gathered before they are written.
const WRITE_SIZE: usize = 64 * 1024;
/// Room for the answer kept between requests.
const KEPT_OUT: usize = 16 * 1024;

/// Serves a connection: plain requests here (unless `plain_path` is
/// off), from the first that is not plain on, hyper.
pub(crate) async fn serve(
    proxy: Arc<Proxy>,
    peer: Arc<Peer>,
    io: LimitedIo,
    accepted: Accepted,
    plain_path: bool,
) {
    let mut connection = PlainConnection::new(io);
    loop {
        let next = if plain_path {
            connection.next_request(&proxy, &peer, &accepted).await
        } else {
            Next::Hyper
        };
        match next {
            Next::Plain(request) => {
                if !connection.answer(&proxy, request, &accepted).await {
                    break;
                }
            }
            Next::Hyper => {
                let io = crate::handoff::Prefixed::new(connection.read, connection.io);
                let service = crate::handoff::hyper_service(proxy, peer);
                return accepted.serve_hyper(io, service).await;
            }
            Next::Closed => break,
        }
    }
    let _ = connection.io.shutdown().await;
}

/// A client connection on the plain path and its buffers, reused from
/// request to request.
struct PlainConnection {
    io: LimitedIo,
    /// Bytes read from the client not used yet.
    read: BytesMut,
    /// The request head for the upstream, being built.
    upstream_head: BytesMut,
    /// The response for the client, being gathered.
    out: BytesMut,
    /// The request's `X-Request-ID`.
    request_id: String,
}

/// What comes next on a connection.
enum Next {
    /// A plain request; its head rewritten in `upstream_head`.
    Plain(PlainRequest),
    /// Not plain: the rest is hyper's.
    Hyper,
    /// The client left, the connection failed or timed out, or the
    /// server is shutting down.
    Closed,
}

/// A plain request, its upstream head built but for `Host` and the blank
/// line (which depend on the upstream picked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PlainRequest {
    /// Bytes of the client's head in the read buffer.
    head_len: usize,
    /// Whether the client sent a `Host`.
    has_host: bool,
    /// Length of the upstream head before `Host` and the blank line.
    base_len: usize,
}

impl PlainConnection {
    fn new(io: LimitedIo) -> Self {
        PlainConnection {
            io,
            read: BytesMut::new(),
            upstream_head: BytesMut::with_capacity(1024),
            out: BytesMut::new(),
            request_id: String::new(),
        }
    }

    /// Reads until a whole request head is in, and sorts it.
    async fn next_request(&mut self, proxy: &Proxy, peer: &Peer, accepted: &Accepted) -> Next {
        // Bytes at the start of the buffer already looked at: a head is
        // parsed again only once an end of head arrives, so a client
        // sending its head a byte at a time costs a scan per byte, not a
        // parse of everything so far.
        let mut looked_at = 0;
        loop {
            if self.read.len() > looked_at {
                let fresh = &self.read[looked_at.saturating_sub(3)..];
                if looked_at == 0 || ends_head(fresh) {
                    let prepared = prepare(
                        &self.read,
                        proxy,
                        peer,
                        &mut self.upstream_head,
                        &mut self.request_id,
                    );
                    match prepared {
                        Prepared::Plain(request) if proxy.has_upstreams() => {
                            return Next::Plain(request);
                        }
                        Prepared::Plain(_) | Prepared::Hyper => return Next::Hyper,
                        Prepared::Partial => {}
                    }
                }
                if self.read.len() >= MAX_HEAD {
                    return Next::Hyper;
                }
                looked_at = self.read.len();
            }
            let waiting = self.read.is_empty();
            self.read.reserve(READ_SIZE);
            let read = tokio_util::io::read_buf(&mut self.io, &mut self.read);
            let got = if waiting {
                // Between requests, shutdown closes the connection.
                tokio::select! {
                    biased;
                    got = read => got,
                    () = accepted.stopping() => return Next::Closed,
                }
            } else {
                read.await
            };
            match got {
                // A cut head is hyper's to answer, as it always was.
                Ok(0) if !self.read.is_empty() => return Next::Hyper,
                Ok(0) | Err(_) => return Next::Closed,
                Ok(_) => {}
            }
        }
    }

    /// Forwards `request` and writes the answer (saying `Connection:
    /// close` once the server is stopping, as hyper does); whether the
    /// connection may carry another request.
    async fn answer(&mut self, proxy: &Proxy, request: PlainRequest, server: &Accepted) -> bool {
        let _in_flight = self.io.request_started();
        let started = Instant::now();
        let metered = proxy.metrics.request_started();
        let exchanged = self.exchange(proxy, request, server).await;
        bytes::Buf::advance(&mut self.read, request.head_len);
        let reusable = self.deliver(exchanged, metered, started, server).await;
        if self.out.capacity() > KEPT_OUT {
            // A large answer's room is not kept by an idle connection.
            self.out = BytesMut::new();
        }
        reusable
    }

    /// Writes what `exchanged` gave the client; whether the connection may
    /// carry another request.
    async fn deliver(
        &mut self,
        exchanged: Exchanged,
        metered: crate::metrics::InFlight<'_>,
        started: Instant,
        server: &Accepted,
    ) -> bool {
        match exchanged {
            Exchanged::Answer(head, mut body) => {
                let status = head.status;
                metered.finish(status, started.elapsed(), false);
                match self.write_body(&mut body, head.chunked).await {
                    Ok(()) => !head.closing,
                    Err(error) => {
                        tracing::debug!(%error, "ingress: response not delivered");
                        false
                    }
                }
            }
            Exchanged::Own(mut response) => {
                metered.finish(response.status().as_u16(), started.elapsed(), true);
                let closing = server.is_stopping();
                if closing {
                    response.headers_mut().insert(
                        http::header::CONNECTION,
                        http::HeaderValue::from_static("close"),
                    );
                }
                encode_response(&response, &mut self.out);
                self.flush().await.is_ok() && !closing
            }
            // As on hyper's path: the request is dropped, not counted.
            Exchanged::ClientGone => false,
        }
    }

    /// Sends the request upstream (a second upstream when the first
    /// refused the connection) and puts the client's response head in
    /// `out`; or the ingress's own answer; or nothing, when the client
    /// left meanwhile.
    async fn exchange(
        &mut self,
        proxy: &Proxy,
        request: PlainRequest,
        server: &Accepted,
    ) -> Exchanged {
        let PlainConnection {
            io,
            read,
            upstream_head,
            out,
            request_id,
        } = self;
        let mut refused_by = None;
        for _ in 0..2 {
            let Some(upstream) = proxy.pick() else {
                return Exchanged::Own(ForwardFailure::NoUpstream.response(request_id));
            };
            finish_head(upstream_head, request, upstream.addr());
            let mut builder = ClientHead {
                out,
                request_id,
                server,
            };
            let call =
                proxy
                    .pool
                    .send_head(upstream.addr(), upstream_head, &Method::GET, &mut builder);
            let timeout = proxy.config.request_timeout;
            let outcome = tokio::select! {
                biased;
                outcome = tokio::time::timeout(timeout, call) => outcome,
                () = client_gone(io, read, request.head_len) => return Exchanged::ClientGone,
            };
            let failure = match outcome {
                Ok(Ok((head, body))) => return Exchanged::Answer(head, body),
                Ok(Err(Failed::Connect(error, ()))) => {
                    tracing::debug!(upstream = %upstream.id(), %error, "upstream connect failed");
                    refused_by = Some(upstream);
                    continue;
                }
                Ok(Err(Failed::Http(error))) => {
                    tracing::debug!(upstream = %upstream.id(), %error, "upstream failed");
                    ForwardFailure::Failed(upstream.id(), &error).response(request_id)
                }
                Err(_) => ForwardFailure::TimedOut(upstream.id(), timeout).response(request_id),
            };
            out.clear();
            return Exchanged::Own(failure);
        }
        let id = refused_by.as_ref().map_or("", |u| u.id());
        Exchanged::Own(ForwardFailure::Refused(id).response(request_id))
    }

    /// Writes the head in `out` and the body after it, gathering what is
    /// already there into one write; fails when the client left.
    async fn write_body(&mut self, body: &mut PooledBody, chunked: bool) -> io::Result<()> {
        use http_body_util::BodyExt;
        loop {
            let ready = std::future::poll_fn(|cx| {
                Poll::Ready(match Pin::new(&mut *body).poll_frame(cx) {
                    Poll::Ready(frame) => Some(frame),
                    Poll::Pending => None,
                })
            })
            .await;
            let frame = match ready {
                Some(frame) => frame,
                None => {
                    // Nothing more yet: what is gathered goes out first,
                    // and a client that leaves meanwhile ends the wait.
                    self.flush().await?;
                    tokio::select! {
                        biased;
                        frame = body.frame() => frame,
                        () = client_gone(&mut self.io, &mut self.read, 0) => {
                            return Err(io::Error::new(
                                io::ErrorKind::ConnectionAborted,
                                "the client left",
                            ));
                        }
                    }
                }
            };
            match frame {
                None => {
                    if chunked {
                        self.out.extend_from_slice(b"0\r\n\r\n");
                    }
                    return self.flush().await;
                }
                Some(Err(error)) => return Err(io::Error::other(error)),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.gather(&data, chunked);
                    }
                    if self.out.len() >= WRITE_SIZE {
                        self.flush().await?;
                    }
                }
            }
        }
    }

    /// Adds a piece of the body to what goes out, as a chunk if `chunked`.
    fn gather(&mut self, data: &[u8], chunked: bool) {
        if data.is_empty() {
            return;
        }
        if chunked {
            let _ = write!(self.out, "{:x}\r\n", data.len());
            self.out.extend_from_slice(data);
            self.out.extend_from_slice(b"\r\n");
        } else {
            self.out.extend_from_slice(data);
        }
    }

    async fn flush(&mut self) -> io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let written = self.io.write_all(&self.out).await;
        self.out.clear();
        written
    }
}

/// What became of a plain request sent upstream.
enum Exchanged {
    /// The upstream answered (the client's head is in `out`).
    Answer(Written, PooledBody),
    /// The ingress answers itself (502, 503, 504).
    Own(Response<bytes::Bytes>),
    /// The client closed its connection while the request was on its way.
    ClientGone,
}

/// Resolves when the client closes the connection (or it fails) while a
/// request is in flight, as hyper notices it: with nothing unread past the
/// request's head (`used` bytes), one read; bytes read (the next request,
/// pipelined) are kept and the watch ends, as hyper's does.
async fn client_gone(io: &mut LimitedIo, read: &mut BytesMut, used: usize) {
    if read.len() <= used {
        // The socket's readiness first: no read (and no clock to consult)
        // until the client sends something or goes.
        if std::future::poll_fn(|cx| io.get_ref().poll_read_ready(cx))
            .await
            .is_err()
        {
            return;
        }
        read.reserve(READ_SIZE);
        match tokio_util::io::read_buf(io, read).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
    std::future::pending::<()>().await
}

/// Whether `bytes` hold the end of a request head (an empty line).
fn ends_head(bytes: &[u8]) -> bool {
    bytes.windows(2).any(|w| w == b"\n\n") || bytes.windows(3).any(|w| w == b"\n\r\n")
}

/// What the head at the start of the read buffer is.
#[derive(Debug, PartialEq, Eq)]
enum Prepared {
    /// A plain request; its upstream head is in the head buffer.
    Plain(PlainRequest),
    /// Not a whole head yet.
    Partial,
    /// Anything else: hyper's.
    Hyper,
}

/// How a request field is treated on the plain path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    /// Forwarded as it is.
    Forward,
    Host,
    RequestId,
    ForwardedFor,
    ForwardedProto,
    /// `Connection`: plain only as `keep-alive`, which is not forwarded.
    Connection,
    /// A body, an upgrade, anything hop-by-hop: not a plain request.
    NotPlain,
}

fn field(name: &str) -> Field {
    const NOT_PLAIN: [&str; 10] = [
        "content-length",
        "transfer-encoding",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "upgrade",
        "expect",
    ];
    let is = |known: &str| name.eq_ignore_ascii_case(known);
    match name.len() {
        4 if is("host") => Field::Host,
        10 if is("connection") => Field::Connection,
        12 if is("x-request-id") => Field::RequestId,
        15 if is("x-forwarded-for") => Field::ForwardedFor,
        17 if is("x-forwarded-proto") => Field::ForwardedProto,
        _ if NOT_PLAIN.iter().any(|known| is(known)) => Field::NotPlain,
        _ => Field::Forward,
    }
}

/// Whether a request target is an origin-form path made only of
/// characters every URI parser takes as they are (RFC 3986 `pchar`, `/`,
/// `?`, `%`).
fn plain_target(target: &str) -> bool {
    target.starts_with('/')
        && target
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?%".contains(&b))
}

/// Sorts the head at the start of `read`; for a plain request, writes the
/// upstream's head (but `Host` and the blank line) into `head` and the
/// request id into `request_id`.
fn prepare(
    read: &[u8],
    proxy: &Proxy,
    peer: &Peer,
    head: &mut BytesMut,
    request_id: &mut String,
) -> Prepared {
    let mut fields = [const { std::mem::MaybeUninit::uninit() }; MAX_FIELDS];
    let mut request = httparse::Request::new(&mut []);
    let parsed = httparse::ParserConfig::default().parse_request_with_uninit_headers(
        &mut request,
        read,
        &mut fields,
    );
    let head_len = match parsed {
        Ok(httparse::Status::Complete(length)) => length,
        Ok(httparse::Status::Partial) => return Prepared::Partial,
        Err(_) => return Prepared::Hyper,
    };
    let (Some("GET"), Some(1), Some(target)) = (request.method, request.version, request.path)
    else {
        return Prepared::Hyper;
    };
    if !plain_target(target) {
        return Prepared::Hyper;
    }
    let fields: &[httparse::Header<'_>] = request.headers;
    head.clear();
    head.extend_from_slice(b"GET ");
    head.extend_from_slice(target.as_bytes());
    head.extend_from_slice(b" HTTP/1.1\r\n");
    let Some(seen) = copy_fields(fields, head) else {
        return Prepared::Hyper;
    };
    let hosts = fields
        .iter()
        .filter(|f| field(f.name) == Field::Host)
        .map(|f| f.value);
    if proxy.guard.check_hosts(hosts).is_err() {
        return Prepared::Hyper;
    }
    add_forwarded(head, &seen, peer);
    request_id.clear();
    match seen
        .request_id
        .and_then(visible_text)
        .filter(|id| !id.is_empty())
    {
        Some(id) => request_id.push_str(id),
        None => chaoslab_foundation::with_new_request_id(|id| request_id.push_str(id)),
    }
    head.extend_from_slice(b"x-request-id: ");
    head.extend_from_slice(request_id.as_bytes());
    head.extend_from_slice(b"\r\n");
    Prepared::Plain(PlainRequest {
        head_len,
        has_host: seen.hosts > 0,
        base_len: head.len(),
    })
}

/// The fields of a request the plain path rewrites.
#[derive(Debug, Default)]
struct Seen<'a> {
    hosts: usize,
    request_id: Option<&'a [u8]>,
    forwarded_for: Option<&'a [u8]>,
    forwarded_proto: bool,
}

/// Copies the fields forwarded as they are into `head` and notes the
/// others; `None` when one makes the request not plain (or names twice
/// what the plain path rewrites).
fn copy_fields<'a>(fields: &[httparse::Header<'a>], head: &mut BytesMut) -> Option<Seen<'a>> {
    let mut seen = Seen::default();
    for f in fields {
        match field(f.name) {
            Field::Forward | Field::Host | Field::ForwardedProto => {
                head.extend_from_slice(f.name.as_bytes());
                head.extend_from_slice(b": ");
                head.extend_from_slice(f.value);
                head.extend_from_slice(b"\r\n");
                seen.hosts += usize::from(field(f.name) == Field::Host);
                seen.forwarded_proto |= field(f.name) == Field::ForwardedProto;
            }
            Field::RequestId if seen.request_id.is_none() => seen.request_id = Some(f.value),
            Field::ForwardedFor if seen.forwarded_for.is_none() => {
                seen.forwarded_for = Some(f.value);
            }
            Field::Connection if f.value.trim_ascii().eq_ignore_ascii_case(b"keep-alive") => {}
            _ => return None,
        }
    }
    Some(seen)
}

/// `X-Forwarded-For` with the client appended, and `X-Forwarded-Proto`
/// unless the client sent one.
fn add_forwarded(head: &mut BytesMut, seen: &Seen<'_>, peer: &Peer) {
    head.extend_from_slice(b"x-forwarded-for: ");
    if let Some(before) = seen.forwarded_for.and_then(visible_text) {
        head.extend_from_slice(before.as_bytes());
        head.extend_from_slice(b", ");
    }
    head.extend_from_slice(peer.forwarded_for.as_bytes());
    head.extend_from_slice(b"\r\n");
    if !seen.forwarded_proto {
        head.extend_from_slice(b"x-forwarded-proto: http\r\n");
    }
}

/// Ends the upstream head: `Host` (the upstream's address) when the client
/// sent none, and the blank line.
fn finish_head(head: &mut BytesMut, request: PlainRequest, addr: std::net::SocketAddr) {
    head.truncate(request.base_len);
    if !request.has_host {
        head.extend_from_slice(b"host: ");
        if addr.port() == 80 {
            head.extend_from_slice(addr.ip().to_string().as_bytes());
        } else {
            head.extend_from_slice(addr.to_string().as_bytes());
        }
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
}

/// The client's answer made from the upstream's head, as hyper would
/// write it.
struct ClientHead<'a> {
    out: &'a mut BytesMut,
    request_id: &'a str,
    /// Once it is stopping, the connection closes after this answer.
    server: &'a Accepted,
}

/// What the plain path needs of the answer once its head is written.
struct Written {
    status: u16,
    /// The body goes chunked.
    chunked: bool,
    /// The head says `Connection: close`.
    closing: bool,
}

impl HeadBuilder for ClientHead<'_> {
    type Head = Written;

    fn build(&mut self, raw: &RawHead<'_>) -> Result<Written, UpstreamError> {
        let out = &mut *self.out;
        out.clear();
        status_line(raw.status, out);
        let connection_lists = raw
            .fields
            .iter()
            .any(|f| answer_field(f.name) == AnswerField::Connection);
        let (mut has_date, mut has_id) = (false, false);
        for f in raw.fields {
            if !valid_value(f.value) {
                return Err(UpstreamError::Malformed(
                    "a header field value is not valid",
                ));
            }
            match answer_field(f.name) {
                AnswerField::Connection | AnswerField::HopByHop | AnswerField::Length => continue,
                _ if connection_lists && listed_in_connection(raw.fields, f.name) => continue,
                AnswerField::Date => has_date = true,
                AnswerField::RequestId => has_id = true,
                AnswerField::Other => {}
            }
            put_lowercase_field(out, f.name.as_bytes(), f.value);
        }
        if !has_date {
            put_field(
                out,
                b"date",
                httpdate::fmt_http_date(std::time::SystemTime::now()).as_bytes(),
            );
        }
        if !has_id {
            put_field(out, b"x-request-id", self.request_id.as_bytes());
        }
        let bodyless = matches!(
            raw.status,
            StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED
        );
        let chunked = !bodyless && raw.length.is_none();
        if let (false, Some(length)) = (bodyless, raw.length) {
            let _ = write!(out, "content-length: {length}\r\n");
        }
        if chunked {
            put_field(out, b"transfer-encoding", b"chunked");
        }
        let closing = self.server.is_stopping();
        if closing {
            put_field(out, b"connection", b"close");
        }
        out.extend_from_slice(b"\r\n");
        Ok(Written {
            status: raw.status.as_u16(),
            chunked,
            closing,
        })
    }
}

/// The status line, as hyper writes it.
fn status_line(status: StatusCode, out: &mut BytesMut) {
    if status == StatusCode::OK {
        out.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
        return;
    }
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.extend_from_slice(b" ");
    out.extend_from_slice(status.canonical_reason().unwrap_or("<none>").as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// A field with its name in lower case, as hyper writes every name.
fn put_lowercase_field(out: &mut BytesMut, name: &[u8], value: &[u8]) {
    let start = out.len();
    out.extend_from_slice(name);
    out[start..].make_ascii_lowercase();
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

fn put_field(out: &mut BytesMut, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// What `HeaderValue` takes: no control character but tab.
fn valid_value(value: &[u8]) -> bool {
    value.iter().all(|&b| b >= 32 && b != 127 || b == b'\t')
}

/// How a field of the upstream's answer is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AnswerField {
    /// `Connection`: hop-by-hop, and names more hop-by-hop fields.
    Connection,
    /// The other hop-by-hop fields (RFC 9110 §7.6.1), never forwarded.
    HopByHop,
    /// `Content-Length`: written anew from the framing.
    Length,
    Date,
    RequestId,
    Other,
}

/// Sorts a field name, by its length first (one comparison for most).
fn answer_field(name: &str) -> AnswerField {
    let is = |known: &str| name.eq_ignore_ascii_case(known);
    match name.len() {
        2 if is("te") => AnswerField::HopByHop,
        4 if is("date") => AnswerField::Date,
        7 if is("trailer") || is("upgrade") => AnswerField::HopByHop,
        10 if is("connection") => AnswerField::Connection,
        10 if is("keep-alive") => AnswerField::HopByHop,
        12 if is("x-request-id") => AnswerField::RequestId,
        14 if is("content-length") => AnswerField::Length,
        16 if is("proxy-connection") => AnswerField::HopByHop,
        17 if is("transfer-encoding") => AnswerField::HopByHop,
        18 if is("proxy-authenticate") => AnswerField::HopByHop,
        19 if is("proxy-authorization") => AnswerField::HopByHop,
        _ => AnswerField::Other,
    }
}

/// Whether `name` is listed in a `Connection` field (hop-by-hop too).
fn listed_in_connection(fields: &[httparse::Header<'_>], name: &str) -> bool {
    fields
        .iter()
        .filter(|f| f.name.eq_ignore_ascii_case("connection"))
        .filter_map(|f| visible_text(f.value))
        .flat_map(|v| v.split(','))
        .any(|listed| listed.trim().eq_ignore_ascii_case(name))
}

/// Encodes a response the ingress made itself (body in full), as hyper
/// would.
fn encode_response(response: &Response<bytes::Bytes>, out: &mut BytesMut) {
    out.clear();
    status_line(response.status(), out);
    for (name, value) in response.headers() {
        put_field(out, name.as_str().as_bytes(), value.as_bytes());
    }
    let _ = write!(out, "content-length: {}\r\n", response.body().len());
    put_field(
        out,
        b"date",
        httpdate::fmt_http_date(std::time::SystemTime::now()).as_bytes(),
    );
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(response.body());
}

#[cfg(test)]
#[path = "plain_http1_tests.rs"]
mod tests;
