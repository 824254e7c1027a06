//! Copying every node's audit chain (`observability::audit`): every
//! [`PULL_EVERY`], each live peer is asked for the entries past this
//! node's copies (`audit_after`), and what links onto them is stored. A
//! chain a peer tampered with stops copying at its first bad entry.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Cluster;
use crate::observability::audit::Stored;

pub const PULL_EVERY: Duration = Duration::from_secs(2);

impl Cluster {
    pub(super) async fn pull_audit(self: Arc<Self>, cancel: CancellationToken) {
        let mut every = tokio::time::interval(PULL_EVERY);
        while cancel.run_until_cancelled(every.tick()).await.is_some() {
            let heads = self.audit.heads();
            let (answers, _) = self
                .ask_peers::<_, Vec<Stored>>("audit_after", |_| Some(&heads))
                .await;
            for (peer, entries) in answers {
                if entries.is_empty() {
                    continue;
                }
                let audit = self.audit.clone();
                match tokio::task::spawn_blocking(move || audit.import(entries)).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => {
                        tracing::warn!(%peer, error = %e, "refused audit entries from a peer")
                    }
                    Err(e) => tracing::error!(error = %e, "audit import failed"),
                }
            }
        }
    }
}
