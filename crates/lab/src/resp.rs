//! A minimal Redis (RESP2) client for the lab's own administration of its
//! Redis server: PING, AUTH, ACL SETUSER, CLIENT KILL. The service uses the
//! real `redis` crate; the lab needs a handful of commands with a strict
//! deadline and no connection pool.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// A reply, reduced to what the lab needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`, `:1` or a bulk string.
    Value(String),
    /// `-ERR …`.
    Error(String),
}

/// One admin connection.
#[derive(Debug)]
pub struct AdminConnection {
    stream: BufReader<TcpStream>,
    timeout: Duration,
}

impl AdminConnection {
    /// Connects (and authenticates when `password` is given), all within
    /// `timeout`.
    pub async fn connect(
        addr: SocketAddr,
        password: Option<&str>,
        timeout: Duration,
    ) -> std::io::Result<Self> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out")
            })??;
        let mut conn = Self {
            stream: BufReader::new(stream),
            timeout,
        };
        if let Some(password) = password {
            match conn.command(&["AUTH", password]).await? {
                Reply::Value(_) => {}
                Reply::Error(e) => {
                    return Err(std::io::Error::new(std::io::ErrorKind::PermissionDenied, e));
                }
            }
        }
        Ok(conn)
    }

    /// Sends one command and reads its reply, within the timeout.
    pub async fn command(&mut self, args: &[&str]) -> std::io::Result<Reply> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            out.extend_from_slice(arg.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        let timeout = self.timeout;
        tokio::time::timeout(timeout, async {
            self.stream.get_mut().write_all(&out).await?;
            self.read_reply().await
        })
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "redis did not answer"))?
    }

    async fn read_reply(&mut self) -> std::io::Result<Reply> {
        let line = self.read_line().await?;
        let (kind, rest) = line.split_at(line.len().min(1));
        match kind {
            "+" | ":" => Ok(Reply::Value(rest.to_string())),
            "-" => Ok(Reply::Error(rest.to_string())),
            "$" => {
                let len: i64 = rest.parse().map_err(|_| bad("bad bulk length"))?;
                if len < 0 {
                    return Ok(Reply::Value(String::new()));
                }
                let len = usize::try_from(len).map_err(|_| bad("bad bulk length"))?;
                if len > 1 << 20 {
                    return Err(bad("bulk reply too large for the admin client"));
                }
                let mut buf = vec![0; len + 2];
                self.stream.read_exact(&mut buf).await?;
                buf.truncate(len);
                Ok(Reply::Value(String::from_utf8_lossy(&buf).into_owned()))
            }
            "*" => Err(bad("array replies are not supported by the admin client")),
            _ => Err(bad("unexpected reply")),
        }
    }

    async fn read_line(&mut self) -> std::io::Result<String> {
        let mut line = Vec::new();
        let n = (&mut self.stream)
            .take(64 * 1024)
            .read_until(b'\n', &mut line)
            .await?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "redis closed",
            ));
        }
        Ok(String::from_utf8_lossy(&line).trim_end().to_string())
    }
}

fn bad(message: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message.to_string())
}
