//! QUIC between nodes: one quinn endpoint per node, one connection per peer
//! address (made on first use, remade when it dies), datagrams for SWIM and
//! streams for everything that must arrive whole.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use quinn::{Connection, Endpoint, RecvStream, SendStream};
use tokio::sync::Mutex;

use super::proto::{Envelope, MAX_FRAME, WireError};
use super::tls::{NodeTls, SERVER_NAME};

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("connect: {0}")]
    Connect(#[from] quinn::ConnectError),
    #[error("connection: {0}")]
    Connection(#[from] quinn::ConnectionError),
    #[error("write: {0}")]
    Write(#[from] quinn::WriteError),
    #[error("read: {0}")]
    Read(#[from] quinn::ReadExactError),
    #[error("stream closed: {0}")]
    Closed(#[from] quinn::ClosedStream),
    #[error("the peer stopped the stream: {0}")]
    Stopped(u64),
    #[error("stream: {0}")]
    StreamLost(#[from] quinn::StoppedError),
    #[error("datagram: {0}")]
    Datagram(#[from] quinn::SendDatagramError),
    #[error("datagram of {len} bytes is larger than the path allows ({max})")]
    DatagramTooLarge { len: usize, max: usize },
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error("bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

#[derive(Clone)]
pub struct Transport {
    endpoint: Endpoint,
    conns: Arc<Mutex<HashMap<SocketAddr, Connection>>>,
}

impl Transport {
    pub fn bind(addr: SocketAddr, tls: NodeTls) -> Result<Transport, TransportError> {
        let mut endpoint = Endpoint::server(tls.server, addr)
            .map_err(|source| TransportError::Bind { addr, source })?;
        endpoint.set_default_client_config(tls.client);
        Ok(Transport {
            endpoint,
            conns: Default::default(),
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.endpoint.local_addr()
    }

    /// The next inbound connection attempt, or `None` once closed.
    pub async fn accept(&self) -> Option<quinn::Incoming> {
        self.endpoint.accept().await
    }

    /// The live connection to `addr`, made if needed. `fresh` is `true` when
    /// this call made it (the caller then starts reading from it). The cache
    /// lock is not held while connecting, so a dead peer never delays traffic
    /// to the others; two racing calls may both connect, and the later wins.
    pub async fn connection(&self, addr: SocketAddr) -> Result<(Connection, bool), TransportError> {
        if let Some(c) = self.conns.lock().await.get(&addr)
            && c.close_reason().is_none()
        {
            return Ok((c.clone(), false));
        }
        let c = self.endpoint.connect(addr, SERVER_NAME)?.await?;
        self.conns.lock().await.insert(addr, c.clone());
        Ok((c, true))
    }

    /// Uses an accepted connection for traffic to its peer too: one endpoint
    /// sends and receives on one port, so the remote address is the peer's
    /// endpoint, and a restarted peer's new connection replaces the dead one
    /// at once instead of after the idle timeout.
    pub async fn adopt(&self, conn: &Connection) {
        self.conns
            .lock()
            .await
            .insert(conn.remote_address(), conn.clone());
    }

    /// Sends one envelope as a datagram on an existing connection.
    pub fn send_datagram(conn: &Connection, env: &Envelope) -> Result<usize, TransportError> {
        let bytes = env.encode();
        let len = bytes.len();
        if let Some(max) = conn.max_datagram_size()
            && len > max
        {
            return Err(TransportError::DatagramTooLarge { len, max });
        }
        conn.send_datagram(Bytes::from(bytes))?;
        Ok(len)
    }

    /// Sends one envelope on a new unidirectional stream.
    pub async fn send_uni(conn: &Connection, env: &Envelope) -> Result<usize, TransportError> {
        let mut s = conn.open_uni().await?;
        let n = write_frame(&mut s, env).await?;
        s.finish()?;
        Ok(n)
    }

    /// [`Transport::send_uni`] at `priority` among the connection's streams
    /// (higher first; the default is 0).
    pub async fn send_uni_at(
        conn: &Connection,
        env: &Envelope,
        priority: i32,
    ) -> Result<usize, TransportError> {
        let mut s = conn.open_uni().await?;
        s.set_priority(priority)?;
        let n = write_frame(&mut s, env).await?;
        s.finish()?;
        Ok(n)
    }

    /// Sends one envelope on a new unidirectional stream and waits until the
    /// peer's QUIC stack has acknowledged all of it (received, not
    /// necessarily processed); a peer that stops the stream instead is an
    /// error ([`TransportError::Stopped`]).
    pub async fn send_uni_acked(
        conn: &Connection,
        env: &Envelope,
    ) -> Result<usize, TransportError> {
        let mut s = conn.open_uni().await?;
        let n = write_frame(&mut s, env).await?;
        s.finish()?;
        match s.stopped().await? {
            None => Ok(n),
            Some(code) => Err(TransportError::Stopped(code.into_inner())),
        }
    }

    /// Closes every connection and the endpoint, telling peers why.
    pub async fn close(&self) {
        self.endpoint.close(0u32.into(), b"node leaving");
        self.endpoint.wait_idle().await;
    }
}

/// Writes one length-prefixed envelope; returns the bytes written.
pub async fn write_frame(s: &mut SendStream, env: &Envelope) -> Result<usize, TransportError> {
    let bytes = env.encode();
    if bytes.len() > MAX_FRAME {
        return Err(WireError::TooLarge(bytes.len()).into());
    }
    s.write_all(&(bytes.len() as u32).to_be_bytes()).await?;
    s.write_all(&bytes).await?;
    Ok(bytes.len() + 4)
}

/// Reads one length-prefixed envelope; `Ok(None)` at a clean end of stream.
pub async fn read_frame(s: &mut RecvStream) -> Result<Option<(Envelope, usize)>, TransportError> {
    let mut len = [0u8; 4];
    match s.read_exact(&mut len).await {
        Ok(()) => {}
        Err(quinn::ReadExactError::FinishedEarly(0)) => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(WireError::TooLarge(len).into());
    }
    let mut buf = vec![0u8; len];
    s.read_exact(&mut buf).await?;
    Ok(Some((Envelope::decode(&buf)?, len + 4)))
}
