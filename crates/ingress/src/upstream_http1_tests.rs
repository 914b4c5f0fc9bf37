//! The ingress's HTTP/1 client side: head parsing and body framing, with
//! property tests (any bytes from an upstream end in a value or an error,
//! never a panic; chunked bodies decode to what was encoded however the
//! bytes are split), and exchanges over real sockets.

use bytes::{Bytes, BytesMut};
use http::{Method, StatusCode};
use proptest::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;

fn head(bytes: &[u8], method: &Method) -> Result<ResponseHead, UpstreamError> {
    match parse_head(bytes, method, &mut PartsBuilder)? {
        Parsed::Head(length, head) => {
            assert!(length <= bytes.len());
            Ok(head)
        }
        other => panic!("not a whole head: {other:?}"),
    }
}

#[test]
fn framing_follows_rfc_9112() {
    let get = Method::GET;
    let cases: [(&[u8], &Method, &str, bool); 9] = [
        (
            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n",
            &get,
            "Length(5)",
            true,
        ),
        (
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
            &get,
            "Chunked",
            true,
        ),
        (
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n",
            &get,
            "UntilClose",
            false,
        ),
        (b"HTTP/1.1 200 OK\r\n\r\n", &get, "UntilClose", false),
        (b"HTTP/1.1 204 No Content\r\n\r\n", &get, "Done", true),
        (
            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n",
            &Method::HEAD,
            "Done",
            true,
        ),
        (
            b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 1\r\n\r\n",
            &get,
            "Length(1)",
            false,
        ),
        (
            b"HTTP/1.0 200 OK\r\ncontent-length: 1\r\n\r\n",
            &get,
            "Length(1)",
            false,
        ),
        (
            b"HTTP/1.0 200 OK\r\nconnection: keep-alive\r\ncontent-length: 1\r\n\r\n",
            &get,
            "Length(1)",
            true,
        ),
    ];
    for (bytes, method, framing, reusable) in cases {
        let parsed = head(bytes, method).unwrap();
        let shown = format!("{:?}", parsed.framing);
        assert!(
            shown.starts_with(framing),
            "{shown} for {:?}",
            String::from_utf8_lossy(bytes)
        );
        assert_eq!(
            parsed.reusable,
            reusable,
            "{:?}",
            String::from_utf8_lossy(bytes)
        );
    }
}

#[test]
fn bad_heads_are_errors_that_say_why() {
    let get = Method::GET;
    for (bytes, says) in [
        (
            &b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\n"[..],
            "twice",
        ),
        (
            b"HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n",
            "not a number",
        ),
        (
            b"HTTP/1.1 200 OK\r\ncontent-length: 99999999999999999999999\r\n\r\n",
            "too large",
        ),
        (
            b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
            "switched protocols",
        ),
        (b"SSH-2.0-OpenSSH\r\n\r\n", "not an HTTP/1 response head"),
    ] {
        let error = parse_head(bytes, &get, &mut PartsBuilder)
            .unwrap_err()
            .to_string();
        assert!(error.contains(says), "{error}");
    }
    assert!(matches!(
        parse_head(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200",
            &get,
            &mut PartsBuilder
        ),
        Ok(Parsed::Interim(25))
    ));
    assert!(matches!(
        parse_head(b"HTTP/1.1 200 OK\r\nx: y", &get, &mut PartsBuilder),
        Ok(Parsed::Partial)
    ));
}

/// Decodes `encoded` fed in pieces of the given sizes (cycled).
fn decode_in_pieces(encoded: &[u8], pieces: &[usize]) -> Result<(Vec<u8>, bool), UpstreamError> {
    let mut decoder = ChunkedDecoder::default();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut at = 0;
    let mut piece = pieces.iter().cycle();
    loop {
        match decoder.decode(&mut buf)? {
            Decoded::Data(data) => out.extend_from_slice(&data),
            Decoded::End => return Ok((out, true)),
            Decoded::NeedMore => {
                if at == encoded.len() {
                    return Ok((out, false));
                }
                let n = (*piece.next().unwrap_or(&1)).clamp(1, encoded.len() - at);
                buf.extend_from_slice(&encoded[at..at + n]);
                at += n;
            }
        }
    }
}

#[test]
fn chunked_bodies_with_extensions_and_trailers() {
    let encoded = b"5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nx-trailer: 1\r\n\r\n";
    let (body, ended) = decode_in_pieces(encoded, &[3]).unwrap();
    assert_eq!(body, b"hello world");
    assert!(ended);
    for (bad, says) in [
        (&b"zz\r\n"[..], "hexadecimal"),
        (b"5\r\nhelloXX", "CRLF"),
        (b"fffffffffffffffff\r\n", "too large"),
    ] {
        let error = decode_in_pieces(bad, &[64]).unwrap_err().to_string();
        assert!(error.contains(says), "{error}");
    }
    let long = vec![b'1'; MAX_CHUNK_LINE + 10];
    let error = decode_in_pieces(&long, &[MAX_CHUNK_LINE + 10]).unwrap_err();
    assert!(error.to_string().contains("too long"), "{error}");
}

fn chunked(body: &[u8], sizes: &[usize]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut at = 0;
    let mut size = sizes.iter().cycle();
    while at < body.len() {
        let n = (*size.next().unwrap_or(&1)).clamp(1, body.len() - at);
        out.extend_from_slice(format!("{n:x}\r\n").as_bytes());
        out.extend_from_slice(&body[at..at + n]);
        out.extend_from_slice(b"\r\n");
        at += n;
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn chunked_round_trips_however_split(
        body in proptest::collection::vec(any::<u8>(), 0..3000),
        sizes in proptest::collection::vec(1usize..700, 1..8),
        pieces in proptest::collection::vec(1usize..300, 1..8),
    ) {
        let (decoded, ended) = decode_in_pieces(&chunked(&body, &sizes), &pieces).unwrap();
        prop_assert!(ended);
        prop_assert_eq!(decoded, body);
    }

    #[test]
    fn any_bytes_decode_or_fail_without_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..2000),
        pieces in proptest::collection::vec(1usize..300, 1..8),
    ) {
        let _ = decode_in_pieces(&bytes, &pieces);
    }

    #[test]
    fn any_head_parses_or_fails_without_panic(
        status in 0u16..1200,
        fields in proptest::collection::vec(("[ -~]{0,20}", proptest::collection::vec(any::<u8>(), 0..30)), 0..6),
        tail in proptest::collection::vec(any::<u8>(), 0..64),
        head_method in any::<bool>(),
    ) {
        let mut bytes = format!("HTTP/1.1 {status} X\r\n").into_bytes();
        for (name, value) in &fields {
            bytes.extend_from_slice(name.as_bytes());
            bytes.extend_from_slice(b": ");
            bytes.extend_from_slice(value);
            bytes.extend_from_slice(b"\r\n");
        }
        bytes.extend_from_slice(b"\r\n");
        bytes.extend_from_slice(&tail);
        let method = if head_method { Method::HEAD } else { Method::GET };
        let _ = parse_head(&bytes, &method, &mut PartsBuilder);
        let _ = parse_head(&tail, &method, &mut PartsBuilder);
    }
}

/// A one-connection upstream that answers every request with `answer`
/// after reading its head (and `body_len` body bytes).
async fn upstream(
    answers: Vec<&'static [u8]>,
    body_len: usize,
) -> (std::net::SocketAddr, tokio::task::JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut seen = Vec::new();
        for answer in answers {
            let start = seen.len();
            let mut buf = [0u8; 4096];
            while !seen[start..].windows(4).any(|w| w == b"\r\n\r\n")
                || seen.len() - start < body_len
            {
                let n = socket.read(&mut buf).await.unwrap();
                if n == 0 {
                    return seen;
                }
                seen.extend_from_slice(&buf[..n]);
            }
            socket.write_all(answer).await.unwrap();
        }
        seen
    });
    (addr, task)
}

async fn body_of(
    connection: &mut Connection,
    framing: &mut Framing,
) -> Result<Vec<u8>, UpstreamError> {
    let mut out = Vec::new();
    while let Some(data) = std::future::poll_fn(|cx| connection.poll_body(framing, cx)).await? {
        out.extend_from_slice(&data);
    }
    Ok(out)
}

/// A bodyless GET (`head`) on `connection`.
async fn get(connection: &mut Connection, head: &[u8]) -> Result<ResponseHead, UpstreamError> {
    let none = None::<http_body_util::Empty<Bytes>>;
    connection
        .exchange(
            head,
            none,
            RequestFraming::Empty,
            &Method::GET,
            &mut PartsBuilder,
        )
        .await
}

fn request(method: Method, path: &str, headers: &[(&str, &str)]) -> http::request::Parts {
    let mut builder = http::Request::builder().method(method).uri(path);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(()).unwrap().into_parts().0
}

#[tokio::test]
async fn one_connection_carries_requests_one_after_another() {
    let (addr, task) = upstream(
        vec![
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello",
            b"HTTP/1.1 201 Created\r\ntransfer-encoding: chunked\r\nx-a: 1\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        ],
        0,
    )
    .await;
    let mut connection = Connection::new(TcpStream::connect(addr).await.unwrap());
    for (status, want) in [
        (StatusCode::OK, &b"hello"[..]),
        (StatusCode::CREATED, b"abc"),
    ] {
        let parts = request(Method::GET, "/x?y=1", &[("host", "replica")]);
        let head = encode_head(&parts, RequestFraming::Empty);
        let mut answer = get(&mut connection, &head).await.unwrap();
        assert_eq!(answer.parts.status, status);
        assert!(answer.reusable);
        assert_eq!(
            body_of(&mut connection, &mut answer.framing).await.unwrap(),
            want
        );
        if status == StatusCode::OK {
            // (After the second answer the upstream has closed its end.)
            assert!(connection.idle_and_open());
        }
    }
    drop(connection);
    let seen = String::from_utf8(task.await.unwrap()).unwrap();
    assert_eq!(
        seen.matches("GET /x?y=1 HTTP/1.1\r\nhost: replica\r\n\r\n")
            .count(),
        2,
        "{seen}"
    );
}

#[tokio::test]
async fn a_body_without_a_length_goes_chunked() {
    let (addr, task) = upstream(vec![b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"], 20).await;
    let mut connection = Connection::new(TcpStream::connect(addr).await.unwrap());
    let parts = request(Method::POST, "/", &[]);
    let head = encode_head(&parts, RequestFraming::Chunked);
    let body = http_body_util::Full::new(Bytes::from_static(b"0123456789"));
    let answer = connection
        .exchange(
            &head,
            Some(body),
            RequestFraming::Chunked,
            &Method::POST,
            &mut PartsBuilder,
        )
        .await
        .unwrap();
    assert_eq!(answer.parts.status, StatusCode::OK);
    assert!(answer.framing.is_done());
    drop(connection);
    let seen = String::from_utf8(task.await.unwrap()).unwrap();
    assert!(
        seen.ends_with("transfer-encoding: chunked\r\n\r\na\r\n0123456789\r\n0\r\n\r\n"),
        "{seen:?}"
    );
}

#[tokio::test]
async fn closed_idle_connections_are_seen_and_cut_bodies_are_errors() {
    let (addr, task) = upstream(
        vec![b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhalf"],
        0,
    )
    .await;
    let mut connection = Connection::new(TcpStream::connect(addr).await.unwrap());
    let parts = request(Method::GET, "/", &[]);
    let head = encode_head(&parts, RequestFraming::Empty);
    let mut answer = get(&mut connection, &head).await.unwrap();
    task.await.unwrap(); // the upstream closes its end
    let error = body_of(&mut connection, &mut answer.framing)
        .await
        .unwrap_err();
    assert!(matches!(error, UpstreamError::BodyCut), "{error}");

    // An idle connection the upstream closed is not taken again, and a
    // request on it is "not answered" (safe to send again).
    let (addr, task) = upstream(vec![], 0).await;
    let mut connection = Connection::new(TcpStream::connect(addr).await.unwrap());
    task.await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while connection.idle_and_open() && std::time::Instant::now() < deadline {
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert!(!connection.idle_and_open());
    let error = get(&mut connection, &head).await.unwrap_err();
    assert!(error.unanswered(), "{error}");
}

#[test]
fn a_length_beside_a_transfer_coding_is_dropped_and_trailers_are_bounded() {
    let both = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n";
    let parsed = head(both, &Method::GET).unwrap();
    assert!(matches!(parsed.framing, Framing::Chunked(_)));
    assert!(!parsed.parts.headers.contains_key(header::CONTENT_LENGTH));
    assert!(!parsed.reusable);
    let mut endless = b"0\r\n".to_vec();
    for _ in 0..1000 {
        endless.extend_from_slice(b"x: y\r\n");
    }
    let error = decode_in_pieces(&endless, &[100]).unwrap_err().to_string();
    assert!(error.contains("trailer section is too long"), "{error}");
}
