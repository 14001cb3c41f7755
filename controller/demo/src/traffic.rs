//! Sending traffic through Envoy and counting who answered.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::echo::Identity;

/// One keep-alive HTTP/1.1 connection to a listener, sending every request with one Host.
pub struct Client {
    sender: SendRequest<Empty<Bytes>>,
    host: String,
}

impl Client {
    pub async fn connect(addr: SocketAddr, host: &str) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Self {
            sender,
            host: host.to_owned(),
        })
    }

    /// GET `path`: the status and the body.
    pub async fn get(&mut self, path: &str) -> anyhow::Result<(u16, String)> {
        self.sender.ready().await?;
        let request = Request::get(path)
            .header(hyper::header::HOST, &self.host)
            .body(Empty::new())?;
        let response = self.sender.send_request(request).await?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }
}

/// A single GET on a new connection.
pub async fn get(addr: SocketAddr, host: &str, path: &str) -> anyhow::Result<(u16, String)> {
    Client::connect(addr, host).await?.get(path).await
}

/// Who answered a run of requests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Successful answers per zone.
    pub zones: BTreeMap<String, u64>,
    /// Successful answers per member cluster.
    pub clusters: BTreeMap<String, u64>,
    /// Requests that failed (no connection, non-200, or an unknown body).
    pub failed: u64,
    /// Why they failed: the status and the first line of the body, or the error.
    pub failures: BTreeMap<String, u64>,
}

impl Tally {
    pub fn record(&mut self, answer: anyhow::Result<(u16, String)>) {
        let why = match answer {
            Ok((200, body)) => match Identity::parse(&body) {
                Some(id) => {
                    *self.zones.entry(id.zone).or_default() += 1;
                    *self.clusters.entry(id.cluster).or_default() += 1;
                    return;
                }
                None => format!("200 {}", body.lines().next().unwrap_or_default()),
            },
            Ok((status, body)) => format!("{status} {}", body.lines().next().unwrap_or_default()),
            Err(error) => format!("{error:#}"),
        };
        self.failed += 1;
        *self.failures.entry(why).or_default() += 1;
    }

    pub fn ok(&self) -> u64 {
        self.zones.values().sum()
    }

    pub fn total(&self) -> u64 {
        self.ok() + self.failed
    }

    /// Percent of the successful answers that came from `zone`.
    pub fn share(&self, zone: &str) -> f64 {
        let ok = self.ok();
        if ok == 0 {
            return 0.0;
        }
        100.0 * self.zones.get(zone).copied().unwrap_or(0) as f64 / ok as f64
    }
}

/// Sends `count` requests on one connection (reconnecting after a failure) and tallies them.
pub async fn send(addr: SocketAddr, host: &str, count: u64) -> Tally {
    send_while(addr, host, |tally| tally.total() < count).await
}

/// Sends requests for `duration` and tallies them.
pub async fn send_for(addr: SocketAddr, host: &str, duration: std::time::Duration) -> Tally {
    let deadline = tokio::time::Instant::now() + duration;
    send_while(addr, host, |_| tokio::time::Instant::now() < deadline).await
}

async fn send_while(addr: SocketAddr, host: &str, more: impl Fn(&Tally) -> bool) -> Tally {
    let mut tally = Tally::default();
    let mut client = None;
    while more(&tally) {
        if client.is_none() {
            client = Client::connect(addr, host).await.ok();
        }
        let answer = match client.as_mut() {
            Some(c) => c.get("/").await,
            None => Err(anyhow::anyhow!("cannot connect to {addr}")),
        };
        if answer.is_err() {
            client = None;
        }
        tally.record(answer);
    }
    tally
}
