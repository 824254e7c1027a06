//! A budget reservation that is settled exactly once, whatever happens to
//! the future holding it.

use std::sync::Arc;

use super::Governance;
use super::budgets::Reservation;
use super::pricing::Micros;

/// A reservation owned by one call. [`Hold::settle`] charges what the call
/// cost; dropped unsettled — the client went away, a script's deadline
/// cancelled the call — it charges the whole reservation, because the call
/// may have run at the other end and a budget is never undercharged.
pub struct Hold {
    governance: Arc<Governance>,
    reservation: Option<Reservation>,
}

impl Hold {
    pub fn new(governance: Arc<Governance>, reservation: Option<Reservation>) -> Hold {
        Hold {
            governance,
            reservation,
        }
    }

    /// Releases the reservation and charges `actual`.
    pub fn settle(mut self, actual: Micros) {
        if let Some(r) = self.reservation.take() {
            self.governance.settle(r, actual, None);
        }
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        if let Some(r) = self.reservation.take() {
            let amount = r.amount();
            tracing::debug!(
                amount,
                "a reservation was dropped unsettled: charged in full"
            );
            self.governance.settle(r, amount, None);
        }
    }
}
