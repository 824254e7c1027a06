//! The replicated table of OAuth credentials to MCP servers: rows written
//! by `mcp::oauth` only (tokens sealed there), and the lease that lets one
//! node at a time refresh a credential.
//!
//! The lease is a last-writer-wins field: a node that wants to refresh
//! writes itself there unless another node's lease is still running, waits
//! for competing writes to arrive, and refreshes only if it still reads its
//! own lease. Within a connected cluster one node refreshes; on both sides
//! of a partition one node each may, and the loser of the race is answered
//! by the authorization server like any stale refresh (see `mcp::oauth`).

use std::time::Duration;

use super::objects::McpCredential;
use super::{GovError, Governance};

impl Governance {
    /// Writes a credential whole: its sealed tokens (empty for none), their
    /// expiry and why it needs a new authorisation, if it does; its lease
    /// is released.
    pub fn save_credential(
        &self,
        id: &str,
        sealed: String,
        expires_at_ms: u64,
        problem: &str,
    ) -> Result<(), GovError> {
        let now = self.now_ms();
        let created_at = self.get::<McpCredential>(id).map_or(now, |c| c.created_at);
        let c = McpCredential {
            id: id.to_string(),
            sealed,
            expires_at_ms,
            lease: String::new(),
            problem: problem.to_string(),
            updated_ms: now,
            created_at,
        };
        self.write(&c, None)
    }

    fn lease_of(c: &McpCredential) -> Option<(u64, u64)> {
        let (node, until) = c.lease.split_once(':')?;
        Some((node.parse().ok()?, until.parse().ok()?))
    }

    /// Takes the refresh lease of credential `id` for `hold_ms`, unless
    /// another node's lease is running.
    pub fn take_lease(&self, id: &str, hold_ms: u64) -> bool {
        let Some(mut c) = self.get::<McpCredential>(id) else {
            return false;
        };
        let now = self.now_ms();
        if let Some((node, until)) = Self::lease_of(&c)
            && node != self.node()
            && until > now
        {
            return false;
        }
        c.lease = format!("{}:{}", self.node(), now + hold_ms);
        self.write(&c, Some(&["lease".to_string()])).is_ok()
    }

    /// Whether this node holds the running lease of credential `id`.
    pub fn holds_lease(&self, id: &str) -> bool {
        self.get::<McpCredential>(id)
            .and_then(|c| Self::lease_of(&c))
            .is_some_and(|(node, until)| node == self.node() && until > self.now_ms())
    }

    pub fn release_lease(&self, id: &str) {
        if let Some(mut c) = self.get::<McpCredential>(id)
            && !c.lease.is_empty()
        {
            c.lease.clear();
            let _ = self.write(&c, Some(&["lease".to_string()]));
        }
    }

    /// Waits until credential `id` differs from `seen` (another node
    /// refreshed it or gave up its lease), or its lease has run out.
    pub async fn credential_changed(&self, id: &str, seen: &McpCredential) {
        let mut changes = self.subscribe();
        // Until the running lease (whoever took it since `seen`) has run out.
        let lease = self
            .get::<McpCredential>(id)
            .and_then(|c| Self::lease_of(&c))
            .or_else(|| Self::lease_of(seen));
        let until = lease.map_or(0, |(_, u)| u) + 1_000;
        let wait = until.saturating_sub(self.now_ms()).clamp(100, 20_000);
        let _ = tokio::time::timeout(Duration::from_millis(wait), async {
            loop {
                let now = self.get::<McpCredential>(id);
                if now
                    .as_ref()
                    .is_none_or(|c| c.sealed != seen.sealed || c.lease.is_empty())
                {
                    return;
                }
                if changes.changed().await.is_err() {
                    return;
                }
            }
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::hlc::ManualClock;
    use crate::store::Store;
    use std::sync::Arc;

    fn governance_on(_n: u8) -> (Governance, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let gov = Governance::open(
            Store::open(dir.path()).unwrap(),
            Arc::new(ManualClock::new(1_000_000)),
            &crate::config::Config::default(),
        )
        .unwrap();
        (gov, dir)
    }

    #[test]
    fn one_node_holds_a_lease_and_a_save_releases_it() {
        let (a, _dir) = governance_on(1);
        a.save_credential("gh|gateway", "sealed".into(), 10, "")
            .unwrap();
        assert!(a.take_lease("gh|gateway", 5_000));
        assert!(a.holds_lease("gh|gateway"));
        // A second node that hears of the lease does not take it.
        let (b, _dir2) = governance_on(2);
        let rows = a.changes_for(&[crate::state::row_item("mcp_credentials", "gh|gateway")]);
        b.apply_remote(&rows).unwrap();
        assert!(!b.take_lease("gh|gateway", 5_000));
        assert!(!b.holds_lease("gh|gateway"));
        a.save_credential("gh|gateway", "fresh".into(), 20, "")
            .unwrap();
        assert!(!a.holds_lease("gh|gateway"));
        let rows = a.changes_for(&[crate::state::row_item("mcp_credentials", "gh|gateway")]);
        b.apply_remote(&rows).unwrap();
        assert!(b.take_lease("gh|gateway", 5_000), "released with the save");
        assert_eq!(
            b.get::<McpCredential>("gh|gateway").unwrap().sealed,
            "fresh"
        );
    }
}
