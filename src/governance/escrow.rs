//! Budgets across nodes: which node is a budget's home, allowance given to
//! and asked by peers, and leases (what a deputy may take over from a
//! silent holder). The escrow arithmetic is `budgets`'s; this is the glue
//! between it, the governance snapshot and the cluster layer.

use super::budgets::{self, CounterKey, lease::LeaseWant};
use super::objects::{self, Customer, Team, VirtualKey};
use super::{GovError, Governance, HOME_FIELD, Micros};
use crate::state::lww::LwwMap;
use crate::state::{Change, NodeId};

impl Governance {
    /// The limit and home of the budget a counter window belongs to.
    pub fn escrow_of(&self, key: &budgets::CounterKey) -> Option<budgets::Escrow> {
        let snap = self.snapshot.load();
        let (list, home) = snap.budgets.get(&key.scope)?;
        list.iter()
            .find(|b| budgets::window(b, key.start_ms) == (key.start_ms, key.end_ms))
            .map(|b| budgets::Escrow {
                limit: b.limit_usd.0,
                home: *home,
            })
    }

    fn escrow_by_name(&self, key: &str) -> Option<budgets::Escrow> {
        self.escrow_of(&budgets::CounterKey::from_name(key)?)
    }

    /// What `node` holds of the window named `key`, as far as this node knows.
    pub fn allowance_of(&self, node: NodeId, key: &str) -> i128 {
        self.escrow_by_name(key)
            .map_or(0, |e| self.ledger.available(node, key, e))
    }

    /// Answers a peer's request for allowance: gives it part of this node's
    /// (see [`Ledger::give`]) and replicates the gift. Returns whether it gave.
    pub fn give_allowance(&self, key: &str, to: NodeId, amount: Micros) -> bool {
        let Some(e) = self.escrow_by_name(key) else {
            return false;
        };
        match self.ledger.give(key, to, amount, e) {
            Ok(Some(change)) => {
                self.publish(vec![change]);
                true
            }
            Ok(None) => false,
            Err(e) => {
                tracing::error!(error = %e, "cannot persist an allowance gift");
                false
            }
        }
    }

    /// Gives away all of this node's allowance in open windows, to the node
    /// `to` picks for each budget; returns the changes (already persisted)
    /// for the caller to deliver before the node leaves.
    pub fn hand_back(&self, to: impl Fn(&budgets::Escrow) -> Option<NodeId>) -> Vec<Change> {
        let now = self.now_ms();
        match self.ledger.hand_back(now, |k| self.escrow_of(k), to) {
            Ok(changes) => changes,
            Err(e) => {
                tracing::error!(error = %e, "cannot persist allowance handed back");
                Vec::new()
            }
        }
    }

    /// Makes this node the home of every budget whose home is `node` (an
    /// operator's `forget` of a node that is gone for good): the budgets are
    /// rewritten here, so the cluster agrees this node now grants them.
    /// Returns how many objects changed.
    pub fn adopt_budgets_of(&self, node: NodeId) -> Result<usize, GovError> {
        let homed_at = |row: &LwwMap| {
            row.fields
                .get(HOME_FIELD)
                .is_some_and(|r| r.ts.node == node)
        };
        let home = Some(&[HOME_FIELD.to_string()][..]);
        let mut n = 0;
        for (_, row) in self.customers.rows() {
            if homed_at(&row)
                && let Some(c) = objects::from_row::<Customer>(&row)
            {
                self.write(&c, home)?;
                n += 1;
            }
        }
        for (_, row) in self.teams.rows() {
            if homed_at(&row)
                && let Some(t) = objects::from_row::<Team>(&row)
            {
                self.write(&t, home)?;
                n += 1;
            }
        }
        for (_, row) in self.keys.rows() {
            if homed_at(&row)
                && let Some(k) = objects::from_row::<VirtualKey>(&row)
            {
                self.write(&k, home)?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Where a node short of allowance asks the cluster for more (set by the
    /// cluster layer; without it a node alone holds every budget whole).
    pub fn set_allowance_requests(
        &self,
        tx: tokio::sync::mpsc::UnboundedSender<budgets::Shortfall>,
    ) {
        let _ = self.allowance_requests.set(tx);
    }

    /// Changes whenever a peer's counter changes something here.
    pub fn allowance_changed(&self) -> &tokio::sync::Notify {
        &self.allowance_changed
    }

    /// The ceilings this node should ask its deputies for now: in every
    /// open window it holds something in, and in the current window of
    /// every budget homed here (a home holds its whole limit before it
    /// spends anything).
    pub fn lease_wants(&self) -> Vec<LeaseWant> {
        let now = self.now_ms();
        let me = self.node();
        let mut windows = self.ledger.open_windows(now);
        let snap = self.snapshot.load();
        for (scope, (list, home)) in &snap.budgets {
            if *home != me {
                continue;
            }
            for b in list {
                let (start_ms, end_ms) = budgets::window(b, now);
                windows.push(CounterKey {
                    scope: scope.clone(),
                    start_ms,
                    end_ms,
                });
            }
        }
        windows.sort_by(|a, b| (&a.scope, a.start_ms).cmp(&(&b.scope, b.start_ms)));
        windows.dedup();
        windows
            .iter()
            .filter_map(|k| self.ledger.lease_want(k, self.escrow_of(k)?, 0))
            .collect()
    }

    /// The ceiling a request waiting on a short one needs.
    pub fn lease_want_for(&self, short: &budgets::Shortfall) -> Option<LeaseWant> {
        let key = CounterKey::from_name(&short.key)?;
        self.ledger
            .lease_want(&key, self.escrow_of(&key)?, short.amount)
    }

    /// Takes leases from `deputy` in the windows named (see
    /// [`budgets::lease`]), in one durable write; returns the wants it took
    /// a lease for, the others having one already.
    pub fn begin_leases(&self, deputy: NodeId, wants: Vec<LeaseWant>) -> Vec<LeaseWant> {
        let parsed: Vec<(CounterKey, Micros, LeaseWant)> = wants
            .into_iter()
            .filter_map(|w| Some((CounterKey::from_name(&w.key)?, w.ceiling, w)))
            .collect();
        let asks: Vec<(CounterKey, Micros)> =
            parsed.iter().map(|(k, c, _)| (k.clone(), *c)).collect();
        match self.ledger.begin_leases(deputy, &asks) {
            Ok(taken) => parsed
                .into_iter()
                .zip(taken)
                .filter(|(_, t)| *t)
                .map(|((_, _, w), _)| w)
                .collect(),
            Err(e) => {
                tracing::error!(error = %e, "cannot persist leases");
                Vec::new()
            }
        }
    }

    /// Takes a ceiling `deputy` granted, and wakes requests waiting on it.
    pub fn raise_lease(&self, key: &str, deputy: NodeId, granted: Micros) {
        let Some(key) = CounterKey::from_name(key) else {
            return;
        };
        match self.ledger.raise_lease(&key, deputy, granted) {
            Ok(true) => self.allowance_changed.notify_waiters(),
            Ok(false) => {}
            Err(e) => tracing::error!(error = %e, "cannot persist a raised ceiling"),
        }
    }

    /// As deputy: the ceilings granted to `holder` in the windows it asked
    /// for, on disk before they are returned; windows this node cannot
    /// price are left out.
    pub fn grant_leases(
        &self,
        holder: NodeId,
        asks: Vec<(String, Micros)>,
    ) -> Vec<(String, Micros)> {
        let parsed: Vec<(String, (CounterKey, Micros, budgets::Escrow))> = asks
            .into_iter()
            .filter_map(|(name, asked)| {
                let key = CounterKey::from_name(&name)?;
                let e = self.escrow_of(&key)?;
                Some((name, (key, asked, e)))
            })
            .collect();
        let batch: Vec<_> = parsed.iter().map(|(_, a)| a.clone()).collect();
        match self.ledger.grant_all(holder, &batch) {
            Ok(granted) => parsed
                .into_iter()
                .zip(granted)
                .map(|((name, _), g)| (name, g))
                .collect(),
            Err(e) => {
                tracing::error!(error = %e, "cannot persist granted ceilings");
                Vec::new()
            }
        }
    }

    /// As deputy: the holders this node guards in open windows.
    pub fn guarded_holders(&self) -> Vec<NodeId> {
        self.ledger.guarded_holders(self.now_ms())
    }

    /// As deputy of `holder`, which is down: takes over what it held beyond
    /// its ceilings, and replicates the takes. Returns how many windows.
    pub fn take_over(&self, holder: NodeId) -> usize {
        match self
            .ledger
            .take_over(holder, self.now_ms(), |k| self.escrow_of(k))
        {
            Ok(changes) => {
                let n = changes.len();
                if n > 0 {
                    self.allowance_changed.notify_waiters();
                    self.publish(changes);
                }
                n
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot persist a takeover");
                0
            }
        }
    }
}
