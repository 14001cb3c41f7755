//! Echo backends: tiny HTTP servers that answer with the cluster and zone they stand for, so a
//! client can see which locality served it.

use std::net::SocketAddr;

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

/// Who a backend pretends to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub cluster: String,
    pub region: String,
    pub zone: String,
}

impl Identity {
    /// The response body: `cluster=<c> region=<r> zone=<z>`.
    pub fn body(&self) -> String {
        format!(
            "cluster={} region={} zone={}\n",
            self.cluster, self.region, self.zone
        )
    }

    /// Reads the identity back from a response body written by [`Identity::body`].
    pub fn parse(body: &str) -> Option<Self> {
        let field = |key: &str| {
            body.split_whitespace()
                .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
                .map(str::to_owned)
        };
        Some(Self {
            cluster: field("cluster")?,
            region: field("region")?,
            zone: field("zone")?,
        })
    }
}

/// A running echo backend. [`EchoServer::stop`] (or drop) closes the listener and every open
/// connection, as a crashed pod would.
pub struct EchoServer {
    pub addr: SocketAddr,
    pub identity: Identity,
    task: JoinHandle<()>,
}

impl EchoServer {
    /// Binds `addr` (port 0 picks one) and serves until stopped.
    pub async fn start(addr: SocketAddr, identity: Identity) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let body = Bytes::from(identity.body());
        let task = tokio::spawn(accept_loop(listener, body));
        Ok(Self {
            addr,
            identity,
            task,
        })
    }

    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Connections live in a JoinSet owned by this task, so aborting it closes them all.
async fn accept_loop(listener: TcpListener, body: Bytes) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(serve_connection(stream, body.clone()));
                }
                Err(error) => tracing::warn!(%error, "echo backend accept failed"),
            },
            Some(_) = connections.join_next() => {}
        }
    }
}

async fn serve_connection(stream: tokio::net::TcpStream, body: Bytes) {
    let service = service_fn(move |_request: Request<Incoming>| {
        let body = body.clone();
        async move { Ok::<_, Infallible>(Response::new(Full::new(body))) }
    });
    let _ = http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_round_trips() {
        let id = Identity {
            cluster: "east-1".into(),
            region: "us-east".into(),
            zone: "us-east-1a".into(),
        };
        assert_eq!(Identity::parse(&id.body()), Some(id));
        assert_eq!(Identity::parse("no fields"), None);
    }
}
