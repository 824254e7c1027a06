//! Leases between nodes: asking deputies for ceilings, answering as a
//! deputy, and taking over the allowance of a holder that has been down
//! for the takeover delay. The rules, and why they never overspend, are in
//! `governance::budgets::lease`; this moves their messages.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::proto::{Body, Envelope, MAX_LEASES};
use super::transport::{TransportError, read_frame, write_frame};
use super::{Cluster, PeerState, now_ms, tls};
use crate::governance::budgets::Shortfall;
use crate::state::NodeId;

/// How often a node tends its leases: asks for the ceilings it needs and
/// takes over from holders that stayed down.
pub const LEASE_TICK: Duration = Duration::from_secs(1);

/// How long one ask may take before it is given up (asked again next tick).
const ASK_TIMEOUT: Duration = Duration::from_secs(2);

impl Cluster {
    /// One round: ceilings asked of every deputy that this node needs more
    /// from, then takeovers of silent holders.
    pub(super) async fn tend_leases(self: &Arc<Self>) {
        let alive: Vec<NodeId> = self.alive().iter().map(|m| m.node).collect();
        if !alive.is_empty() {
            let deputy = next_after(self.me.node, &alive);
            let gov = self.gov.clone();
            let asks = tokio::task::spawn_blocking(move || {
                let mut asks: BTreeMap<NodeId, Vec<(String, u64)>> = BTreeMap::new();
                let (held, fresh): (Vec<_>, Vec<_>) = gov
                    .lease_wants()
                    .into_iter()
                    .partition(|w| w.deputy.is_some());
                for w in held {
                    let d = w.deputy.expect("partitioned so");
                    asks.entry(d).or_default().push((w.key, w.ceiling));
                }
                for w in gov.begin_leases(deputy, fresh) {
                    asks.entry(deputy).or_default().push((w.key, w.ceiling));
                }
                asks
            })
            .await
            .unwrap_or_default();
            for (deputy, asks) in asks {
                if !alive.contains(&deputy) {
                    continue;
                }
                for chunk in asks.chunks(MAX_LEASES) {
                    self.ask_deputy(deputy, chunk.to_vec()).await;
                }
            }
        }
        self.take_over_silent().await;
    }

    /// A request is waiting on a ceiling that is short: ask at once.
    pub(super) fn ask_for_ceiling(self: &Arc<Self>, short: &Shortfall) {
        let Some(want) = self.gov.lease_want_for(short) else {
            return;
        };
        let Some(deputy) = want.deputy else { return };
        let cl = self.clone();
        tokio::spawn(async move { cl.ask_deputy(deputy, vec![(want.key, want.ceiling)]).await });
    }

    /// Asks `deputy` for ceilings and takes what it grants.
    async fn ask_deputy(self: &Arc<Self>, deputy: NodeId, asks: Vec<(String, u64)>) {
        let Some(peer) = self.alive().into_iter().find(|m| m.node == deputy) else {
            return;
        };
        self.metrics
            .allowance
            .with_label_values(&["lease_asked"])
            .inc_by(asks.len() as u64);
        let asked = tokio::time::timeout(ASK_TIMEOUT, async {
            let conn = self.connect(peer.addr).await?;
            let (mut send, mut recv) = conn.open_bi().await?;
            let n = write_frame(&mut send, &Envelope::new(self.me.node, Body::Lease(asks))).await?;
            self.metrics.sent("lease", n);
            send.finish()?;
            let reply = read_frame(&mut recv).await?;
            Ok::<_, TransportError>((conn, reply))
        })
        .await;
        let (conn, reply) = match asked {
            Ok(Ok((conn, Some(reply)))) => (conn, reply),
            Ok(Ok((_, None))) => return,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "asking a deputy for a ceiling failed");
                return;
            }
            Err(_) => {
                tracing::debug!("a deputy did not answer in time");
                return;
            }
        };
        let (env, n) = reply;
        if env.from != deputy || !tls::certified_as(&conn, deputy) {
            self.impostor(&env);
            return;
        }
        self.metrics.received("lease_grant", n);
        let Body::LeaseGrant(grants) = env.body else {
            self.unexpected(&env);
            return;
        };
        self.metrics
            .allowance
            .with_label_values(&["lease_granted"])
            .inc_by(grants.len() as u64);
        let gov = self.gov.clone();
        let _ = tokio::task::spawn_blocking(move || {
            for (key, ceiling) in grants {
                gov.raise_lease(&key, deputy, ceiling);
            }
        })
        .await;
    }

    /// Answers a holder's `Lease` as its deputy: every ceiling granted is
    /// on disk before the answer leaves.
    pub(super) async fn answer_lease(
        self: &Arc<Self>,
        mut send: quinn::SendStream,
        holder: NodeId,
        mut asks: Vec<(String, u64)>,
    ) -> Result<(), TransportError> {
        asks.truncate(MAX_LEASES);
        let gov = self.gov.clone();
        let grants = tokio::task::spawn_blocking(move || gov.grant_leases(holder, asks))
            .await
            .unwrap_or_default();
        let n = write_frame(
            &mut send,
            &Envelope::new(self.me.node, Body::LeaseGrant(grants)),
        )
        .await?;
        self.metrics.sent("lease_grant", n);
        send.finish()?;
        let _ = send.stopped().await;
        Ok(())
    }

    /// Takes over from every holder this node guards that has been down
    /// (or unheard of since this node started) for the takeover delay.
    async fn take_over_silent(self: &Arc<Self>) {
        let now = now_ms();
        let delay = self.lease_takeover.as_millis() as u64;
        let started = u64::from(self.me.bump) * 1000;
        let silent: Vec<NodeId> = {
            let peers = self.peers.read().expect("peers lock");
            self.gov
                .guarded_holders()
                .into_iter()
                .filter(|h| {
                    let since = match peers.get(h) {
                        Some(p) if p.state == PeerState::Alive => return false,
                        Some(p) => p.since_ms,
                        None => started,
                    };
                    now.saturating_sub(since) >= delay
                })
                .collect()
        };
        for holder in silent {
            let gov = self.gov.clone();
            let took = tokio::task::spawn_blocking(move || gov.take_over(holder))
                .await
                .unwrap_or(0);
            if took > 0 {
                tracing::warn!(
                    node = %format!("{holder:016x}"),
                    windows = took,
                    "took over the allowance of a node that stayed down"
                );
                self.metrics
                    .allowance
                    .with_label_values(&["took_over"])
                    .inc_by(took as u64);
            }
        }
    }
}

/// The deputy a node picks for a new lease: the live peer whose id follows
/// its own (wrapping), so that deputies spread over the cluster.
fn next_after(me: NodeId, alive: &[NodeId]) -> NodeId {
    let after = alive.iter().copied().filter(|&n| n > me).min();
    after.unwrap_or_else(|| alive.iter().copied().min().expect("a live peer"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deputies_follow_in_the_ring_of_ids() {
        assert_eq!(next_after(5, &[9, 2, 7]), 7);
        assert_eq!(next_after(9, &[2, 7, 5]), 2);
        assert_eq!(next_after(1, &[3]), 3);
    }
}
