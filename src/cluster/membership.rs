//! Membership: foca's SWIM state machine, fed from QUIC datagrams and timers.
//!
//! foca is sans-IO: one task owns it and turns its outputs into datagrams
//! (sent through [`Transport`](super::transport::Transport)), timers (tokio
//! sleeps that feed back into the task) and notifications (member up, down,
//! renamed), which update the peer table the rest of the cluster layer reads.

use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroUsize};
use std::time::Duration;

use bytes::Bytes;
use foca::{Foca, Identity, NoCustomBroadcast, OwnedNotification, PostcardCodec, Timer};
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::state::NodeId;

/// A node as the cluster knows it: foca's identity, carrying the metadata
/// peers need. `bump` is the start time in seconds, so a restarted node's
/// identity wins over the one the cluster may still hold as down.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Member {
    pub node: NodeId,
    /// Where its QUIC endpoint is reached.
    pub addr: SocketAddr,
    /// Where its HTTP server is reached.
    pub http: String,
    /// Wire versions it speaks: oldest, newest.
    pub wire: (u16, u16),
    pub bump: u32,
}

impl Identity for Member {
    type Addr = SocketAddr;

    fn renew(&self) -> Option<Self> {
        Some(Member {
            bump: self.bump.wrapping_add(1),
            ..self.clone()
        })
    }

    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn win_addr_conflict(&self, adversary: &Self) -> bool {
        self.bump > adversary.bump
    }
}

impl Member {
    /// A stand-in for a seed whose identity is not known yet: foca only needs
    /// its address to announce to it.
    pub fn seed(addr: SocketAddr) -> Member {
        Member {
            node: 0,
            addr,
            http: String::new(),
            wire: (0, 0),
            bump: 0,
        }
    }
}

pub enum Input {
    Datagram(Bytes),
    Timer(Timer<Member>),
    Announce(SocketAddr),
    /// Leave the cluster; answered once the goodbye is handed to the transport.
    Leave(oneshot::Sender<()>),
}

/// What the membership task asks of the rest of the node.
pub enum Output {
    Send(SocketAddr, Bytes),
    Notify(OwnedNotification<Member>),
}

/// SWIM settings for a LAN cluster, with the packet size QUIC datagrams allow
/// (an envelope adds a few bytes to foca's packet) and announcements to down
/// members often enough to heal a partition within seconds.
pub fn swim_config() -> foca::Config {
    let mut c = foca::Config::new_lan(NonZeroU32::new(8).expect("non-zero"));
    c.max_packet_size = NonZeroUsize::new(1100).expect("non-zero");
    c.periodic_announce_to_down_members = Some(foca::PeriodicParams {
        frequency: Duration::from_secs(5),
        num_members: NonZeroUsize::new(2).expect("non-zero"),
    });
    c.periodic_announce = Some(foca::PeriodicParams {
        frequency: Duration::from_secs(10),
        num_members: NonZeroUsize::new(1).expect("non-zero"),
    });
    c
}

/// Runs foca until `inputs` closes. Outputs go to `outputs`; timers are
/// scheduled by feeding `timers` after their delay.
pub async fn run(
    me: Member,
    config: foca::Config,
    mut inputs: mpsc::Receiver<Input>,
    timers: mpsc::Sender<Input>,
    outputs: mpsc::UnboundedSender<Output>,
) {
    let rng: StdRng = rand::make_rng();
    let mut foca: Foca<Member, PostcardCodec, StdRng, NoCustomBroadcast> =
        Foca::new(me, config, rng, PostcardCodec);
    let mut runtime = foca::AccumulatingRuntime::new();
    while let Some(input) = inputs.recv().await {
        let mut done = None;
        let result = match input {
            Input::Datagram(d) => foca.handle_data(&d, &mut runtime),
            Input::Timer(t) => foca.handle_timer(t, &mut runtime),
            Input::Announce(addr) => foca.announce(Member::seed(addr), &mut runtime),
            Input::Leave(reply) => {
                done = Some(reply);
                foca.leave_cluster(&mut runtime)
            }
        };
        if let Err(e) = result {
            // Undecodable or unexpected packets are normal on a hostile network.
            tracing::debug!(error = %e, "swim input rejected");
        }
        while let Some((dst, data)) = runtime.to_send() {
            let _ = outputs.send(Output::Send(dst.addr, data));
        }
        while let Some((after, timer)) = runtime.to_schedule() {
            let timers = timers.clone();
            tokio::spawn(async move {
                tokio::time::sleep(after).await;
                let _ = timers.send(Input::Timer(timer)).await;
            });
        }
        while let Some(n) = runtime.to_notify() {
            let _ = outputs.send(Output::Notify(n));
        }
        if let Some(reply) = done {
            let _ = reply.send(());
            break;
        }
    }
}
