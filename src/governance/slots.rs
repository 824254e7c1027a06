//! Places for long-lived work — Code Mode scripts, `GET /mcp` streams —
//! bounded on this node and per virtual key, so that one key (or all of
//! them) cannot hold more of the host than the operator allows.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Debug)]
pub struct Slots {
    node: usize,
    per_key: usize,
    running: Mutex<Running>,
}

#[derive(Debug, Default)]
struct Running {
    total: usize,
    by_key: HashMap<String, usize>,
}

/// One place; given back when dropped.
#[derive(Debug)]
pub struct Slot {
    slots: Arc<Slots>,
    key: String,
}

/// Why no place was given: the node's places, or the key's, are all taken
/// (how many are).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    Node(usize),
    Key(usize),
}

impl Slots {
    pub fn new(node: usize, per_key: usize) -> Slots {
        Slots {
            node,
            per_key,
            running: Mutex::default(),
        }
    }

    /// A place for one more of `key`'s, or why there is none.
    pub fn take(self: &Arc<Self>, key: &str) -> Result<Slot, Full> {
        let mut r = self.running.lock().expect("slots lock");
        if r.total >= self.node {
            return Err(Full::Node(r.total));
        }
        let mine = r.by_key.get(key).copied().unwrap_or(0);
        if mine >= self.per_key {
            return Err(Full::Key(mine));
        }
        r.total += 1;
        *r.by_key.entry(key.to_string()).or_default() += 1;
        Ok(Slot {
            slots: self.clone(),
            key: key.to_string(),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut r = self.slots.running.lock().expect("slots lock");
        r.total -= 1;
        if let Some(n) = r.by_key.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                r.by_key.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_bounded_per_key_and_per_node_and_given_back() {
        let slots = Arc::new(Slots::new(3, 2));
        let a1 = slots.take("a").unwrap();
        let _a2 = slots.take("a").unwrap();
        assert_eq!(slots.take("a").unwrap_err(), Full::Key(2));
        let _b1 = slots.take("b").unwrap();
        assert_eq!(slots.take("c").unwrap_err(), Full::Node(3));
        drop(a1);
        let _c1 = slots.take("c").unwrap();
        assert!(slots.take("a").is_err(), "the node is full again");
    }
}
