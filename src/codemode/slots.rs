//! How many scripts may run at once: on this node, and per virtual key.
//! Every script is a worker process with up to `memory_bytes` of address
//! space, so an unbounded number of them could take the host.

use std::collections::HashMap;
use std::sync::Mutex;

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

/// A script's place; given back when dropped.
#[derive(Debug)]
pub struct Slot<'a> {
    slots: &'a Slots,
    key: String,
}

impl Slots {
    pub fn new(node: usize, per_key: usize) -> Slots {
        Slots {
            node,
            per_key,
            running: Mutex::default(),
        }
    }

    /// A place for one more script of `key`, or why there is none.
    pub fn take(&self, key: &str) -> Result<Slot<'_>, String> {
        let mut r = self.running.lock().expect("slots lock");
        if r.total >= self.node {
            return Err(format!(
                "limit error: {} scripts are running on this node, its most (mcp.code_mode.max_workers); try again shortly",
                r.total
            ));
        }
        let mine = r.by_key.get(key).copied().unwrap_or(0);
        if mine >= self.per_key {
            return Err(format!(
                "limit error: this key already runs {mine} scripts, its most (mcp.code_mode.max_workers_per_key); wait for one to finish"
            ));
        }
        r.total += 1;
        *r.by_key.entry(key.to_string()).or_default() += 1;
        Ok(Slot {
            slots: self,
            key: key.to_string(),
        })
    }
}

impl Drop for Slot<'_> {
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
        let slots = Slots::new(3, 2);
        let a1 = slots.take("a").unwrap();
        let _a2 = slots.take("a").unwrap();
        assert!(slots.take("a").unwrap_err().contains("this key"));
        let _b1 = slots.take("b").unwrap();
        assert!(slots.take("c").unwrap_err().contains("this node"));
        drop(a1);
        let _c1 = slots.take("c").unwrap();
        assert!(slots.take("a").is_err(), "the node is full again");
    }
}
