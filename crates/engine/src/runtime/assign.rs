//! Which replica runs which tenant's flows: a pure function of the tenants and the live
//! replicas, so every replica computes the same answer from the same store without talking
//! to the others.
//!
//! Rendezvous hashing with bounded load: tenants are taken in a fixed pseudo-random order, and
//! each goes to the replica it ranks highest among those not yet at the cap
//! `ceil(tenants / replicas)`. So the work is spread evenly (no replica gets more than one
//! tenant above another), and when a replica joins or leaves only a share of the tenants
//! moves. A tenant's flows stay together: one Odoo client and one login per tenant.
//!
//! The assignment only says who *should* run a tenant; the flow leases in the store decide
//! who *does*, so two replicas that briefly disagree (one has not seen a heartbeat yet) never
//! run a flow at the same time.

use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// A stable score of (tenant, replica): the same on every replica, version and platform.
fn score(tenant: &str, worker: &str) -> u64 {
    let digest = Sha256::new()
        .chain_update(tenant.as_bytes())
        .chain_update([0u8])
        .chain_update(worker.as_bytes())
        .finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// Who should run each tenant: tenant id → worker id. Empty when there is no worker.
pub fn assign<'a>(tenants: &[&'a str], workers: &[&'a str]) -> HashMap<&'a str, &'a str> {
    let mut workers: Vec<&str> = workers.to_vec();
    workers.sort_unstable();
    workers.dedup();
    let mut tenants: Vec<&str> = tenants.to_vec();
    tenants.sort_unstable();
    tenants.dedup();
    let mut assigned = HashMap::with_capacity(tenants.len());
    if workers.is_empty() {
        return assigned;
    }
    // One process (every SQLite store, most PostgreSQL ones): nothing to weigh, and the
    // reload of many idle connections does not hash each of them twice.
    if let [only] = workers.as_slice() {
        return tenants.into_iter().map(|tenant| (tenant, *only)).collect();
    }
    let cap = tenants.len().div_ceil(workers.len());
    // The order tenants are placed in must not favour anyone: by their own score.
    tenants.sort_by_key(|tenant| (score(tenant, ""), *tenant));
    let mut load: HashMap<&str, usize> = workers.iter().map(|w| (*w, 0)).collect();
    for tenant in tenants {
        let mut ranking = workers.clone();
        ranking.sort_by_key(|worker| std::cmp::Reverse((score(tenant, worker), *worker)));
        if let Some(worker) = ranking
            .into_iter()
            .find(|worker| load.get(worker).copied().unwrap_or(0) < cap)
        {
            *load.entry(worker).or_insert(0) += 1;
            assigned.insert(tenant, worker);
        }
    }
    assigned
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn names(prefix: &str, n: usize) -> Vec<String> {
        (0..n).map(|i| format!("{prefix}{i:03}")).collect()
    }

    fn refs(list: &[String]) -> Vec<&str> {
        list.iter().map(String::as_str).collect()
    }

    #[test]
    fn every_tenant_gets_one_worker_and_loads_differ_by_at_most_one() {
        for (tenant_count, worker_count) in [(1, 1), (3, 3), (10, 3), (50, 4), (7, 10)] {
            let tenants = names("tenant-", tenant_count);
            let workers = names("worker-", worker_count);
            let assigned = assign(&refs(&tenants), &refs(&workers));
            assert_eq!(assigned.len(), tenant_count);
            let mut load: HashMap<&str, usize> = HashMap::new();
            for worker in assigned.values() {
                *load.entry(worker).or_default() += 1;
            }
            let max = load.values().max().copied().unwrap_or(0);
            assert!(max <= tenant_count.div_ceil(worker_count), "{load:?}");
            if tenant_count >= worker_count {
                assert_eq!(load.len(), worker_count, "every worker gets work: {load:?}");
            }
        }
    }

    #[test]
    fn the_answer_does_not_depend_on_the_order_of_the_inputs() {
        let tenants = names("t", 20);
        let workers = names("w", 3);
        let mut reversed_tenants = refs(&tenants);
        reversed_tenants.reverse();
        let mut reversed_workers = refs(&workers);
        reversed_workers.reverse();
        assert_eq!(
            assign(&refs(&tenants), &refs(&workers)),
            assign(&reversed_tenants, &reversed_workers)
        );
    }

    #[test]
    fn losing_a_worker_moves_only_its_tenants_and_a_few_for_balance() {
        let tenants = names("t", 60);
        let workers = names("w", 3);
        let before = assign(&refs(&tenants), &refs(&workers));
        let survivors = refs(&workers[..2]);
        let after = assign(&refs(&tenants), &survivors);
        assert_eq!(after.len(), 60);
        assert!(after.values().all(|worker| survivors.contains(worker)));
        let moved = tenants
            .iter()
            .filter(|t| before[t.as_str()] != after[t.as_str()])
            .count();
        let orphaned = before.values().filter(|w| **w == "w002").count();
        assert!(moved >= orphaned);
        assert!(
            moved <= orphaned + 60 / 3,
            "moved {moved}, orphaned {orphaned}"
        );
    }

    #[test]
    fn no_worker_no_assignment() {
        assert!(assign(&["t"], &[]).is_empty());
    }
}
