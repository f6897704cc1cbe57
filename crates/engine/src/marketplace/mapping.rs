//! Odoo's two states of an order (the order's and its delivery's) read as one marketplace
//! status, by seed 001's table (`ODOO_TO_CARTONA_MAPPING`), configurable per marketplace.
//!
//! - **Delivery state**: the primary state of the order's outgoing pickings, the first of
//!   `done > assigned > confirmed > waiting > draft` that one of them is in; cancelled pickings
//!   are ignored; no picking reads as `draft` (the seed's `_get_primary_delivery_state`).
//! - **Order state**: `draft`, `sent`, `sale`, `cancel`, and `done` for a completed order:
//!   Odoo 16's `done` state, or the `locked` flag of 17+. A lock (or 16's `done`) counts as
//!   completion **only once the outgoing delivery is done**. With Odoo's "Lock Confirmed
//!   Sales" setting on, every order is locked (16: `done`) at confirmation, so a lock alone
//!   says nothing about delivery; read this way it never makes a freshly confirmed order
//!   `delivered`, and with the setting off it changes nothing (the seed's `delivered` is
//!   `(done, done)` already). The consequence with the setting on: validating the delivery
//!   reads as `delivered` at once (the order is already locked), where with it off it reads
//!   as `assigned_to_salesman` until the order is locked.
//! - **Returned**: a done incoming picking of the order (the return of its delivery) reads
//!   as `returned`, unless the order is cancelled (the seed's `_is_return_scenario` comes
//!   before the table).
//!
//! The table is the seed's, plus `(sale, waiting)` and `(sale, draft)` → `approved` (a
//! confirmed order waiting on another operation, or with nothing to deliver, is approved all
//! the same; the seed's fallback would say `pending`, a step back). A pair the table does
//! not hold pushes nothing: the seed's fallback to `pending` could only ever be a regression.
//! Entries are overridden per marketplace as `"order_state/delivery_state": "status"`, or
//! `null` to push nothing for that pair.

use super::status::MarketplaceStatus;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Delivery states from the most to the least advanced.
pub const DELIVERY_PRIORITY: [&str; 5] = ["done", "assigned", "confirmed", "waiting", "draft"];

/// The order states a table entry may name.
pub const ORDER_STATES: [&str; 5] = ["draft", "sent", "sale", "done", "cancel"];
/// The delivery states a table entry may name (`cancel`: every picking cancelled).
pub const DELIVERY_STATES: [&str; 6] = [
    "draft",
    "waiting",
    "confirmed",
    "assigned",
    "done",
    "cancel",
];

/// Seed 001's `ODOO_TO_CARTONA_MAPPING`, with the two `approved` additions above.
pub const SEED_TABLE: [(&str, &str, MarketplaceStatus); 18] = {
    use MarketplaceStatus::*;
    [
        ("draft", "draft", Pending),
        ("draft", "waiting", Pending),
        ("draft", "confirmed", Pending),
        ("sent", "draft", Pending),
        ("sent", "waiting", Pending),
        ("sent", "confirmed", Pending),
        ("sale", "draft", Approved),
        ("sale", "waiting", Approved),
        ("sale", "confirmed", Approved),
        ("sale", "assigned", Approved),
        ("sale", "done", AssignedToSalesman),
        ("done", "done", Delivered),
        ("cancel", "draft", CancelledBySupplier),
        ("cancel", "waiting", CancelledBySupplier),
        ("cancel", "confirmed", CancelledBySupplier),
        ("cancel", "assigned", CancelledBySupplier),
        ("cancel", "done", CancelledBySupplier),
        ("cancel", "cancel", CancelledBySupplier),
    ]
};

/// (order state, delivery state) → status; `None`: push nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusMap {
    entries: BTreeMap<(String, String), Option<MarketplaceStatus>>,
    /// What differs from the seed, as configured (kept to write the settings back).
    overrides: Map<String, Value>,
}

impl Default for StatusMap {
    fn default() -> StatusMap {
        StatusMap {
            entries: SEED_TABLE
                .iter()
                .map(|(order, delivery, status)| {
                    (((*order).to_owned(), (*delivery).to_owned()), Some(*status))
                })
                .collect(),
            overrides: Map::new(),
        }
    }
}

impl StatusMap {
    /// The seed's table with `overrides` (`"order_state/delivery_state": "status" | null`).
    /// Every bad entry is named in the error.
    pub fn with_overrides(overrides: &Map<String, Value>) -> Result<StatusMap, String> {
        let mut map = StatusMap::default();
        let mut problems = Vec::new();
        for (key, value) in overrides {
            let pair = key
                .split_once('/')
                .map(|(order, delivery)| (order.trim(), delivery.trim()))
                .filter(|(order, delivery)| {
                    ORDER_STATES.contains(order) && DELIVERY_STATES.contains(delivery)
                });
            let Some((order, delivery)) = pair else {
                problems.push(format!(
                    "{key:?} is not \"order_state/delivery_state\" (order states: {}; delivery states: {})",
                    ORDER_STATES.join(", "),
                    DELIVERY_STATES.join(", ")
                ));
                continue;
            };
            let status = match value {
                Value::Null => None,
                Value::String(text) => match MarketplaceStatus::parse(text) {
                    Some(status) => Some(status),
                    None => {
                        problems.push(format!("{key:?}: {text:?} is not a marketplace status"));
                        continue;
                    }
                },
                other => {
                    problems.push(format!("{key:?}: {other} is not a status or null"));
                    continue;
                }
            };
            map.entries
                .insert((order.to_owned(), delivery.to_owned()), status);
            map.overrides.insert(
                format!("{order}/{delivery}"),
                status.map_or(Value::Null, |status| Value::String(status.as_str().into())),
            );
        }
        if problems.is_empty() {
            Ok(map)
        } else {
            Err(problems.join("; "))
        }
    }

    pub fn overrides(&self) -> &Map<String, Value> {
        &self.overrides
    }

    pub fn status(&self, order_state: &str, delivery_state: &str) -> Option<MarketplaceStatus> {
        self.entries
            .get(&(order_state.to_owned(), delivery_state.to_owned()))
            .copied()
            .flatten()
    }

    /// Every pair with its status, for people (`None`: nothing is pushed).
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str, Option<MarketplaceStatus>)> {
        self.entries
            .iter()
            .map(|((order, delivery), status)| (order.as_str(), delivery.as_str(), *status))
    }
}

/// What Odoo says of one order, as read for the mapping.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OrderFacts {
    /// `sale.order.state` as Odoo has it (16 may say `done`).
    pub state: String,
    /// `sale.order.locked` (17+); false where the field does not exist.
    pub locked: bool,
    /// The states of its outgoing pickings.
    pub outgoing: Vec<String>,
    /// The states of its incoming pickings (returns).
    pub incoming: Vec<String>,
}

/// The seed's primary delivery state: cancelled pickings ignored, none left → `draft`.
pub fn primary_delivery_state<'a>(states: impl IntoIterator<Item = &'a str>) -> &'static str {
    let states: Vec<&str> = states
        .into_iter()
        .filter(|state| *state != "cancel")
        .collect();
    DELIVERY_PRIORITY
        .into_iter()
        .find(|wanted| states.contains(wanted))
        .unwrap_or("draft")
}

impl OrderFacts {
    pub fn delivery_state(&self) -> &'static str {
        primary_delivery_state(self.outgoing.iter().map(String::as_str))
    }

    /// The order state the table is read with: completion (`done`) only once delivered.
    pub fn order_state(&self) -> &str {
        let completed = self.state == "done" || (self.state == "sale" && self.locked);
        if completed {
            if self.delivery_state() == "done" {
                "done"
            } else {
                "sale"
            }
        } else {
            &self.state
        }
    }

    pub fn is_returned(&self) -> bool {
        self.state != "cancel" && self.incoming.iter().any(|state| state == "done")
    }

    /// The status Odoo's states call for; `None` when the table holds nothing for them.
    pub fn status(&self, map: &StatusMap) -> Option<MarketplaceStatus> {
        if self.is_returned() {
            return Some(MarketplaceStatus::Returned);
        }
        map.status(self.order_state(), self.delivery_state())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use MarketplaceStatus::*;
    use serde_json::json;

    fn facts(state: &str, locked: bool, outgoing: &[&str], incoming: &[&str]) -> OrderFacts {
        OrderFacts {
            state: state.into(),
            locked,
            outgoing: outgoing.iter().map(|s| (*s).to_owned()).collect(),
            incoming: incoming.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn the_primary_delivery_state_is_the_most_advanced_one_not_cancelled() {
        assert_eq!(primary_delivery_state([]), "draft");
        assert_eq!(primary_delivery_state(["cancel"]), "draft");
        assert_eq!(
            primary_delivery_state(["waiting", "cancel", "assigned"]),
            "assigned"
        );
        assert_eq!(primary_delivery_state(["confirmed", "done"]), "done");
        assert_eq!(primary_delivery_state(["draft", "waiting"]), "waiting");
    }

    #[test]
    fn the_seeds_table_by_default() {
        let map = StatusMap::default();
        for (order, delivery, status) in SEED_TABLE {
            assert_eq!(map.status(order, delivery), Some(status));
        }
        assert_eq!(map.status("done", "assigned"), None);
        assert_eq!(map.status("sale", "cancel"), None);
        let s = |state, locked, out: &[&str]| facts(state, locked, out, &[]).status(&map);
        assert_eq!(s("draft", false, &[]), Some(Pending));
        assert_eq!(s("sale", false, &["confirmed"]), Some(Approved));
        assert_eq!(s("sale", false, &["assigned"]), Some(Approved));
        assert_eq!(s("sale", false, &["done"]), Some(AssignedToSalesman));
        assert_eq!(s("sale", true, &["done"]), Some(Delivered));
        assert_eq!(s("done", false, &["done"]), Some(Delivered));
        assert_eq!(s("cancel", false, &["cancel"]), Some(CancelledBySupplier));
        assert_eq!(s("cancel", false, &[]), Some(CancelledBySupplier));
    }

    #[test]
    fn a_lock_before_the_delivery_is_done_says_nothing() {
        let map = StatusMap::default();
        // "Lock Confirmed Sales" on: locked (17+) or done (16) at confirmation.
        for (state, locked) in [("sale", true), ("done", false)] {
            let confirmed = facts(state, locked, &["confirmed"], &[]);
            assert_eq!(confirmed.order_state(), "sale");
            assert_eq!(confirmed.status(&map), Some(Approved));
            let shipped = facts(state, locked, &["done"], &[]);
            assert_eq!(shipped.order_state(), "done");
            assert_eq!(shipped.status(&map), Some(Delivered));
        }
    }

    #[test]
    fn a_done_return_reads_as_returned_unless_cancelled() {
        let map = StatusMap::default();
        let returned = facts("sale", true, &["done"], &["done"]);
        assert_eq!(returned.status(&map), Some(Returned));
        let pending_return = facts("sale", true, &["done"], &["assigned"]);
        assert_eq!(pending_return.status(&map), Some(Delivered));
        assert_eq!(
            facts("cancel", false, &["cancel"], &["done"]).status(&map),
            Some(CancelledBySupplier)
        );
    }

    #[test]
    fn overrides_replace_or_remove_entries_and_bad_ones_are_all_named() {
        let overrides = json!({"sale/done": "delivered", "sale/assigned": null});
        let map = StatusMap::with_overrides(overrides.as_object().unwrap()).unwrap();
        assert_eq!(map.status("sale", "done"), Some(Delivered));
        assert_eq!(map.status("sale", "assigned"), None);
        assert_eq!(map.status("sale", "confirmed"), Some(Approved));
        assert_eq!(&Value::Object(map.overrides().clone()), &overrides);
        let bad = json!({"sale": "approved", "sale/done": "shipped", "x/done": "approved", "sale/draft": 3});
        let error = StatusMap::with_overrides(bad.as_object().unwrap()).unwrap_err();
        for needle in ["\"sale\"", "\"shipped\"", "\"x/done\"", "3 is not"] {
            assert!(error.contains(needle), "{error}");
        }
    }
}
