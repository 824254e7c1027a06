//! Seeded in-process cluster scenarios (see `cluster_tests::sim`): membership
//! through join, leave, crash and partition; replication that converges
//! after concurrent writes on both sides of a partition; delta merge equal
//! to full-state merge; a 50-node cluster. Times are simulated milliseconds.

use cluster_tests::sim::Sim;
use serde_json::{Map, Value, json};
use tollgate::governance::budgets::Budget;
use tollgate::governance::objects::Customer;

fn fields(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

/// `n` nodes, all announced to node 0, run until everyone sees everyone.
fn joined(n: usize, seed: u64) -> Sim {
    let mut sim = Sim::new(n, seed);
    for i in 1..n {
        sim.join(i, 0);
    }
    let t = sim
        .run_until(120_000, Sim::fully_joined)
        .expect("every node sees every other");
    println!("{n} nodes joined in {t} ms (simulated)");
    sim
}

#[test]
fn members_join_leave_and_crash() {
    let mut sim = joined(5, 1);
    sim.leave(4);
    let t = sim
        .run_until(60_000, |s| (0..4).all(|i| !s.nodes[i].view.contains(&4)))
        .expect("a node that leaves is dropped");
    println!("graceful leave seen by all in {t} ms");
    sim.crash(3);
    let t = sim
        .run_until(60_000, |s| (0..3).all(|i| !s.nodes[i].view.contains(&3)))
        .expect("a crashed node is detected");
    println!("crash detected by all in {t} ms");
    assert!(sim.fully_joined(), "the rest still see each other");
}

#[test]
fn both_sides_of_a_partition_keep_writing_and_converge_after_healing() {
    let mut sim = joined(5, 2);
    let c: Customer = sim.on(0, |g| g.create(fields(json!({"name": "acme"}))).unwrap());
    let all = [0, 1, 2, 3, 4];
    sim.run_until(10_000, |s| s.converged(&all))
        .expect("the customer replicates");

    sim.partition(&[0, 1, 2], &[3, 4]);
    sim.run_for(15_000);
    // Concurrent writes: the same field on both sides (the later write must
    // win everywhere), different fields, and new objects on each side.
    sim.on(1, |g| {
        g.patch::<Customer>(&c.id, fields(json!({"name": "acme-left"})))
            .unwrap()
    });
    sim.run_for(50);
    sim.on(3, |g| {
        g.patch::<Customer>(&c.id, fields(json!({"name": "acme-right"})))
            .unwrap()
    });
    sim.on(4, |g| {
        g.patch::<Customer>(
            &c.id,
            fields(json!({"budgets": [{"limit_usd": 10, "period": "1M"}]})),
        )
        .unwrap()
    });
    let left: Customer = sim.on(2, |g| {
        g.create(fields(json!({"name": "left-only"}))).unwrap()
    });
    let right: Customer = sim.on(3, |g| {
        g.create(fields(json!({"name": "right-only"}))).unwrap()
    });
    sim.run_for(5_000);
    assert!(
        sim.converged(&[0, 1, 2]) && sim.converged(&[3, 4]),
        "each side agrees within itself"
    );
    assert!(!sim.converged(&all), "the sides differ while cut");
    assert!(sim.nodes[0].gov.get::<Customer>(&right.id).is_none());
    assert_eq!(
        sim.nodes[0].gov.get::<Customer>(&c.id).unwrap().name,
        "acme-left"
    );

    sim.heal();
    let t = sim
        .run_until(120_000, |s| s.fully_joined() && s.converged(&all))
        .expect("the cluster converges after healing");
    println!("converged {t} ms after healing");
    for n in &sim.nodes {
        let merged = n.gov.get::<Customer>(&c.id).unwrap();
        assert_eq!(merged.name, "acme-right", "the later write wins everywhere");
        assert_eq!(
            merged.budgets.len(),
            1,
            "a concurrent edit of another field survives"
        );
        assert!(n.gov.get::<Customer>(&left.id).is_some());
        assert!(n.gov.get::<Customer>(&right.id).is_some());
    }
}

#[test]
fn pushed_deltas_and_one_full_state_sync_give_the_same_state() {
    // Node 0 writes; node 1 hears only the pushed deltas; node 2 only one
    // anti-entropy round at the end.
    let mut sim = Sim::new(3, 3);
    let g = sim.nodes[0].gov.clone();
    let mut ids = Vec::new();
    for i in 0..20 {
        let c: Customer = g.create(fields(json!({"name": format!("c{i}")}))).unwrap();
        ids.push(c.id);
    }
    for (i, id) in ids.iter().enumerate().step_by(3) {
        g.patch::<Customer>(id, fields(json!({"name": format!("renamed{i}")})))
            .unwrap();
    }
    g.delete::<Customer>(&ids[1]).unwrap();
    let deltas = sim.drain_feed(0);
    assert!(deltas.len() > 20);
    // Out of order and twice over: merges do not care.
    let mut shuffled: Vec<_> = deltas.iter().rev().cloned().collect();
    shuffled.extend(deltas.iter().cloned());
    sim.nodes[1].gov.apply_remote(&shuffled).unwrap();
    sim.sync(2, 0);
    assert!(sim.converged(&[0, 1, 2]));
    assert!(
        sim.nodes[2].gov.get::<Customer>(&ids[1]).is_none(),
        "the deletion travels too"
    );
    assert_eq!(
        sim.nodes[1].gov.get::<Customer>(&ids[3]).unwrap().name,
        "renamed3"
    );
}

#[test]
fn fifty_nodes_converge() {
    let mut sim = joined(50, 4);
    let all: Vec<usize> = (0..50).collect();
    let c: Customer = sim.on(17, |g| g.create(fields(json!({"name": "wide"}))).unwrap());
    let t = sim
        .run_until(60_000, |s| {
            all.iter()
                .all(|&i| s.nodes[i].gov.get::<Customer>(&c.id).is_some())
        })
        .expect("a write reaches all 50 nodes");
    println!("50 nodes: a write reached every node in {t} ms with push");

    // Anti-entropy alone (pushes lost) still gets there.
    sim.push = false;
    let d: Customer = sim.on(33, |g| {
        g.create(fields(json!({"name": "gossiped"}))).unwrap()
    });
    let t = sim
        .run_until(600_000, |s| {
            all.iter()
                .all(|&i| s.nodes[i].gov.get::<Customer>(&d.id).is_some())
        })
        .expect("anti-entropy alone reaches all 50 nodes");
    println!("50 nodes: anti-entropy alone reached every node in {t} ms");
    assert!(sim.converged(&all));
}

/// Spend on both sides of a partition never passes a budget, not by one
/// micro-dollar: each node spends only allowance it was given (the escrow of
/// DESIGN §5), so the cut side spends at most what it held when cut.
#[test]
fn a_partition_never_overspends_a_budget() {
    let mut sim = joined(5, 5);
    let all = [0, 1, 2, 3, 4];
    let limit = 1_000_000; // $1
    let c: Customer = sim.on(0, |g| {
        g.create(fields(
            json!({"name": "acme", "budgets": [{"limit_usd": "1", "period": "1d"}]}),
        ))
        .unwrap()
    });
    let issued = sim.on(0, |g| {
        g.create_key(fields(json!({"name": "k", "customer_id": c.id})))
            .unwrap()
    });
    let secret = issued.secret.clone();
    sim.run_until(10_000, |s| s.converged(&all))
        .expect("replicated");

    // Traffic everywhere for a while: allowance flows from the home (node 0).
    let cost = 7_000;
    let mut served = [0u64; 5];
    for _round in 0..8 {
        for (i, n) in served.iter_mut().enumerate() {
            if sim.try_spend(i, &secret, cost) {
                *n += 1;
            }
        }
        sim.run_for(20);
    }
    assert!(
        served[3] + served[4] > 0,
        "nodes away from the home got allowance"
    );
    let before_cut = served;

    sim.partition(&[0, 1, 2], &[3, 4]);
    for _round in 0..400 {
        for (i, n) in served.iter_mut().enumerate() {
            if sim.try_spend(i, &secret, cost) {
                *n += 1;
            }
        }
        sim.run_for(20);
    }
    sim.heal();
    sim.run_until(120_000, |s| s.fully_joined() && s.converged(&all))
        .expect("converges after healing");
    let total: u64 = served.iter().sum::<u64>() * cost;
    let budget: Budget = c.budgets[0];
    let seen = sim.nodes[0]
        .gov
        .spent(&format!("customer:{}", c.id), &budget);
    println!(
        "served per node before the cut {before_cut:?}, in the end {served:?}: {total} µ$ of {limit} µ$ spent (overshoot {} µ$)",
        total.saturating_sub(limit)
    );
    assert!(
        served[3] + served[4] > before_cut[3] + before_cut[4],
        "the cut side kept serving from its allowance"
    );
    assert_eq!(seen, total, "every node's spend is counted once");
    assert!(total <= limit, "overspent: {total} > {limit}");
    assert!(
        total > limit - 5 * cost * 10,
        "the budget was used, not stranded: {total}"
    );
}

/// A rate limit holds across the cluster within its documented bound: the
/// limit plus what the other nodes admit in one count period (100 ms) plus a
/// hop. Here every node sees a request every 10 ms, so the bound is the
/// limit + 4 nodes × ~11 requests.
#[test]
fn a_rate_limit_holds_across_nodes() {
    let mut sim = joined(5, 6);
    let all = [0, 1, 2, 3, 4];
    let issued = sim.on(0, |g| {
        g.create_key(fields(
            json!({"name": "limited", "rate_limits": [{"requests": 200, "window": "1h"}]}),
        ))
        .unwrap()
    });
    sim.run_until(10_000, |s| s.converged(&all))
        .expect("replicated");
    let mut admitted = [0u64; 5];
    for _round in 0..300 {
        for (i, n) in admitted.iter_mut().enumerate() {
            if sim.try_admit(i, &issued.secret) {
                *n += 1;
            }
        }
        sim.run_for(10);
    }
    let total: u64 = admitted.iter().sum();
    println!("rate limit 200/h, 1500 attempts on 5 nodes: admitted {admitted:?} = {total}");
    assert!(total >= 200, "the limit itself is available");
    assert!(total <= 200 + 4 * 11, "over the documented bound: {total}");
    assert!(
        admitted.iter().all(|&n| n < 200),
        "no node used the limit alone"
    );
}

/// Rate-limit counts are node-local memory, not in anti-entropy, so a lost
/// push used to be lost for good: node 1 never heard node 0's admissions
/// and admitted the whole limit again. Counts are now re-sent every tick
/// until the peer acknowledges them; once everyone has them, nothing moves.
#[test]
fn a_lost_rate_push_is_sent_again_until_acknowledged() {
    let mut sim = joined(3, 11);
    let all = [0, 1, 2];
    let issued = sim.on(0, |g| {
        g.create_key(fields(
            json!({"name": "limited", "rate_limits": [{"requests": 5, "window": "1h"}]}),
        ))
        .unwrap()
    });
    sim.run_until(10_000, |s| s.converged(&all))
        .expect("replicated");
    sim.lose_rate_pushes.insert((0, 1), 3);
    for _ in 0..5 {
        assert!(sim.try_admit(0, &issued.secret));
    }
    assert!(
        !sim.try_admit(0, &issued.secret),
        "the limit is reached here"
    );
    let count = |s: &Sim, kind| s.delivered.get(kind).copied().unwrap_or(0);
    let before = count(&sim, "rate");
    let t = sim
        .run_until(10_000, |s| {
            count(s, "rate_lost") == 3 && count(s, "rate") >= before + 2
        })
        .expect("after three losses the counts reach node 1 too");
    println!(
        "node 0's counts reached both peers, three pushes to node 1 lost, in {t} ms (simulated)"
    );
    assert!(
        !sim.try_admit(1, &issued.secret),
        "node 1 holds node 0's count"
    );
    assert!(!sim.try_admit(2, &issued.secret));
    // Steady state: every peer has acknowledged everything; nothing is sent.
    let settled = count(&sim, "rate");
    sim.run_for(20 * cluster_tests::sim::RATE_SYNC_MS);
    assert_eq!(count(&sim, "rate"), settled, "nothing new, nothing sent");
    assert_eq!(count(&sim, "rate_lost"), 3);
}
