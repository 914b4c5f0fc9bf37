//! The lab's admin connection (`AdminConnection`, on the `redis` crate)
//! fed arbitrary replies by a fake Redis on loopback (SPEC 13, issue 11:
//! property tests for RESP replies): well-formed RESP3 value trees of any
//! shape, mutated encodings and raw bytes. Every call ends within its
//! timeout with a value or an error naming the command; nothing panics,
//! in the test or in the connection's background task; no error shows an
//! argument (it may be a password).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use super::{AdminConnection, AdminError};
use proptest::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Panics anywhere in the process (the connection's driver task too).
static PANICS: AtomicUsize = AtomicUsize::new(0);
static HOOK: Once = Once::new();

fn count_panics() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            previous(info);
        }));
    });
}

/// A RESP3 value as a tree, encoded by `encode`.
#[derive(Debug, Clone)]
enum Resp {
    Nil,
    Int(i64),
    Bulk(Vec<u8>),
    Simple(String),
    Error(String),
    Double(String),
    Bool(bool),
    Big(String),
    Verbatim(String),
    Array(Vec<Resp>),
    Set(Vec<Resp>),
    Map(Vec<(Resp, Resp)>),
    Push(Vec<Resp>),
    Attribute(Vec<(Resp, Resp)>, Box<Resp>),
}

fn line_text() -> impl Strategy<Value = String> {
    // Any text without CR/LF, non-ASCII included.
    "[^\r\n]{0,24}"
}

fn resp() -> impl Strategy<Value = Resp> {
    let leaf = prop_oneof![
        Just(Resp::Nil),
        any::<i64>().prop_map(Resp::Int),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(Resp::Bulk),
        line_text().prop_map(Resp::Simple),
        prop_oneof![
            line_text(),
            Just("NOAUTH Authentication required.".into()),
            Just("WRONGPASS invalid username-password pair".into()),
            Just("NOPERM this user has no permissions".into()),
        ]
        .prop_map(Resp::Error),
        prop_oneof![
            any::<f64>().prop_map(|f| f.to_string()),
            Just("inf".into()),
            Just("-inf".into()),
            Just("nan".into()),
            line_text(),
        ]
        .prop_map(Resp::Double),
        any::<bool>().prop_map(Resp::Bool),
        prop_oneof!["-?[0-9]{1,40}", line_text()].prop_map(Resp::Big),
        line_text().prop_map(Resp::Verbatim),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Resp::Array),
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Resp::Set),
            proptest::collection::vec((inner.clone(), inner.clone()), 0..4).prop_map(Resp::Map),
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Resp::Push),
            (
                proptest::collection::vec((inner.clone(), inner.clone()), 0..3),
                inner
            )
                .prop_map(|(a, d)| Resp::Attribute(a, Box::new(d))),
        ]
    })
}

fn encode(value: &Resp, out: &mut Vec<u8>) {
    let mut head = |text: String| out.extend_from_slice(text.as_bytes());
    match value {
        Resp::Nil => head("_\r\n".into()),
        Resp::Int(n) => head(format!(":{n}\r\n")),
        Resp::Bulk(bytes) => {
            head(format!("${}\r\n", bytes.len()));
            out.extend_from_slice(bytes);
            out.extend_from_slice(b"\r\n");
        }
        Resp::Simple(s) => head(format!("+{s}\r\n")),
        Resp::Error(s) => head(format!("-{s}\r\n")),
        Resp::Double(s) => head(format!(",{s}\r\n")),
        Resp::Bool(b) => head(format!("#{}\r\n", if *b { 't' } else { 'f' })),
        Resp::Big(s) => head(format!("({s}\r\n")),
        Resp::Verbatim(s) => head(format!("={}\r\ntxt:{s}\r\n", s.len() + 4)),
        Resp::Array(items) | Resp::Set(items) | Resp::Push(items) => {
            let tag = match value {
                Resp::Array(_) => '*',
                Resp::Set(_) => '~',
                _ => '>',
            };
            head(format!("{tag}{}\r\n", items.len()));
            for item in items {
                encode(item, out);
            }
        }
        Resp::Map(pairs) | Resp::Attribute(pairs, _) => {
            let tag = if matches!(value, Resp::Map(_)) {
                '%'
            } else {
                '|'
            };
            head(format!("{tag}{}\r\n", pairs.len()));
            for (k, v) in pairs {
                encode(k, out);
                encode(v, out);
            }
            if let Resp::Attribute(_, data) = value {
                encode(data, out);
            }
        }
    }
}

/// What the fake Redis answers: a reply to every read, as given, or
/// mutated (truncated, a byte replaced, bytes appended).
#[derive(Debug, Clone)]
enum Reply {
    Tree(Resp),
    Mutated(Resp, prop::sample::Index, u8, Vec<u8>),
    Raw(Vec<u8>),
}

impl Reply {
    fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            // A push at the top is out of band: the command then waits for
            // its real reply (up to the timeout); keep trees in band.
            Reply::Tree(Resp::Push(items)) => encode(&Resp::Array(items.clone()), &mut out),
            Reply::Tree(tree) => encode(tree, &mut out),
            Reply::Mutated(tree, at, byte, tail) => {
                encode(tree, &mut out);
                let i = at.index(out.len() + 1);
                match byte % 3 {
                    0 => out.truncate(i),
                    1 if i < out.len() => out[i] = *byte,
                    _ => out.splice(i..i, tail.iter().copied()).for_each(drop),
                }
            }
            Reply::Raw(bytes) => out.clone_from(bytes),
        }
        out
    }
}

fn reply() -> impl Strategy<Value = Reply> {
    prop_oneof![
        6 => resp().prop_map(Reply::Tree),
        2 => (resp(), any::<prop::sample::Index>(), any::<u8>(), proptest::collection::vec(any::<u8>(), 0..8))
            .prop_map(|(t, i, b, tail)| Reply::Mutated(t, i, b, tail)),
        1 => proptest::collection::vec(any::<u8>(), 0..64).prop_map(Reply::Raw),
    ]
}

/// A fake Redis answering every read with the current reply.
struct FakeRedis {
    addr: SocketAddr,
    reply: Arc<Mutex<Vec<u8>>>,
}

impl FakeRedis {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let reply = Arc::new(Mutex::new(Vec::new()));
        let shared = reply.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let shared = shared.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = stream.read(&mut buf).await {
                        let bytes = shared.lock().map(|r| r.clone()).unwrap_or_default();
                        if n == 0 || stream.write_all(&bytes).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Self { addr, reply }
    }
}

const TIMEOUT: Duration = Duration::from_millis(300);
const SECRET: &str = "s3cret-password";

/// Every way the lab reads a reply, on one connection; each call's error
/// (if any), in words.
async fn every_reading(addr: SocketAddr) -> Vec<String> {
    let mut errors = Vec::new();
    let mut conn = match AdminConnection::connect(addr, None, TIMEOUT).await {
        Ok(conn) => conn,
        Err(e) => return vec![e.to_string()],
    };
    let mut note = |r: Result<(), AdminError>| {
        if let Err(e) = r {
            errors.push(e.to_string());
        }
    };
    note(conn.ping().await);
    note(conn.query::<redis::Value>(&["GET", "k"]).await.map(drop));
    note(conn.query::<String>(&["ECHO", "x"]).await.map(drop));
    note(conn.query::<i64>(&["INCR", "k"]).await.map(drop));
    note(
        conn.query::<()>(&["ACL", "SETUSER", "chaoslab", SECRET])
            .await,
    );
    note(conn.query::<Vec<u8>>(&["GET", "k"]).await.map(drop));
    note(
        conn.query::<Vec<String>>(&["CONFIG", "GET", "dir"])
            .await
            .map(drop),
    );
    note(
        conn.query::<std::collections::HashMap<String, String>>(&["CONFIG", "GET", "*"])
            .await
            .map(drop),
    );
    note(
        conn.query::<(Option<String>, i64)>(&["AUTH", SECRET])
            .await
            .map(drop),
    );
    note(
        conn.query::<f64>(&["INCRBYFLOAT", "k", "1"])
            .await
            .map(drop),
    );
    note(conn.query::<bool>(&["EXISTS", "k"]).await.map(drop));
    errors
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime")
    })
}

fn fake() -> &'static FakeRedis {
    static FAKE: std::sync::OnceLock<FakeRedis> = std::sync::OnceLock::new();
    FAKE.get_or_init(|| runtime().block_on(FakeRedis::start()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 160, ..ProptestConfig::default() })]

    #[test]
    fn any_reply_is_a_value_or_a_clear_error(reply in reply()) {
        count_panics();
        let fake = fake();
        let bytes = reply.bytes();
        *fake.reply.lock().unwrap() = bytes.clone();
        let before = PANICS.load(Ordering::SeqCst);
        let started = Instant::now();
        let errors = runtime().block_on(async {
            tokio::time::timeout(Duration::from_secs(30), every_reading(fake.addr)).await
        });
        let errors = errors.expect("every call is bounded by its timeout");
        // 11 calls of at most TIMEOUT each, plus the connection.
        prop_assert!(started.elapsed() < TIMEOUT * 12 + Duration::from_secs(5));
        prop_assert_eq!(PANICS.load(Ordering::SeqCst), before, "a panic on {:?}", bytes);
        for e in &errors {
            prop_assert!(!e.is_empty());
            prop_assert!(!e.contains(SECRET), "an argument in an error: {}", e);
            let mut line = String::new();
            let _ = write!(line, "{e}");
            prop_assert!(
                line.starts_with("redis ") || line.starts_with("cannot connect"),
                "an error that names the command: {}", line
            );
        }
    }
}
