//! The marketplace's order statuses and their place in an order's life, shared by both
//! directions: statuses applied to Odoo (inbound) and statuses pushed to the marketplace
//! (outbound).
//!
//! Cartona has one status for what Odoo splits into an order state and a delivery state
//! (seed 001). Two rules both directions need live here so they exist once:
//! - **rank**: the order of the life cycle, so an older status never overwrites a newer one;
//! - **terminal**: a cancelled, delivered or returned order takes no further status, except
//!   `returned` after `delivered` (the one move out of a terminal status the seed allows).

use std::fmt;

/// A Cartona order status (seed 001's eight, in life-cycle order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MarketplaceStatus {
    /// Created by the retailer, may still be edited or cancelled.
    Pending,
    /// The retailer is editing; the supplier cannot act.
    Editing,
    /// The supplier approved; the retailer can only cancel.
    Approved,
    /// Shipped: the retailer can no longer edit or cancel.
    AssignedToSalesman,
    /// Delivered: no further edits.
    Delivered,
    /// Cancelled by the retailer (from pending or approved).
    CancelledByRetailer,
    /// Cancelled by the supplier (from pending, approved or assigned_to_salesman).
    CancelledBySupplier,
    /// The retailer did not receive it; the goods come back.
    Returned,
}

impl MarketplaceStatus {
    pub const ALL: [MarketplaceStatus; 8] = [
        MarketplaceStatus::Pending,
        MarketplaceStatus::Editing,
        MarketplaceStatus::Approved,
        MarketplaceStatus::AssignedToSalesman,
        MarketplaceStatus::Delivered,
        MarketplaceStatus::CancelledByRetailer,
        MarketplaceStatus::CancelledBySupplier,
        MarketplaceStatus::Returned,
    ];

    /// The word on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            MarketplaceStatus::Pending => "pending",
            MarketplaceStatus::Editing => "editing",
            MarketplaceStatus::Approved => "approved",
            MarketplaceStatus::AssignedToSalesman => "assigned_to_salesman",
            MarketplaceStatus::Delivered => "delivered",
            MarketplaceStatus::CancelledByRetailer => "cancelled_by_retailer",
            MarketplaceStatus::CancelledBySupplier => "cancelled_by_supplier",
            MarketplaceStatus::Returned => "returned",
        }
    }

    /// Reads a status as Cartona sends it. Accepts the public module's variants: `return`
    /// for `returned`, and a bare `cancelled` (its sender unknown) read as the retailer's,
    /// since a supplier's own cancellation starts in Odoo, not in Cartona. `synced` is our
    /// acknowledgement, not a status: `None`, like any unknown word.
    pub fn parse(text: &str) -> Option<MarketplaceStatus> {
        let status = match text.trim().to_ascii_lowercase().as_str() {
            "pending" => MarketplaceStatus::Pending,
            "editing" => MarketplaceStatus::Editing,
            "approved" => MarketplaceStatus::Approved,
            "assigned_to_salesman" => MarketplaceStatus::AssignedToSalesman,
            "delivered" => MarketplaceStatus::Delivered,
            "cancelled_by_retailer" | "cancelled" => MarketplaceStatus::CancelledByRetailer,
            "cancelled_by_supplier" => MarketplaceStatus::CancelledBySupplier,
            "returned" | "return" => MarketplaceStatus::Returned,
            _ => return None,
        };
        Some(status)
    }

    /// The step of the life cycle: a status of a lower rank never replaces one of a higher
    /// rank. Pending and editing share the first step (a retailer goes back and forth).
    pub fn rank(self) -> u8 {
        match self {
            MarketplaceStatus::Pending | MarketplaceStatus::Editing => 0,
            MarketplaceStatus::Approved => 1,
            MarketplaceStatus::AssignedToSalesman => 2,
            MarketplaceStatus::Delivered => 3,
            MarketplaceStatus::CancelledByRetailer | MarketplaceStatus::CancelledBySupplier => 4,
            MarketplaceStatus::Returned => 5,
        }
    }

    pub fn is_cancellation(self) -> bool {
        matches!(
            self,
            MarketplaceStatus::CancelledByRetailer | MarketplaceStatus::CancelledBySupplier
        )
    }

    /// Nothing follows it (but see [`MarketplaceStatus::may_follow`] for returns).
    pub fn is_terminal(self) -> bool {
        self.is_cancellation()
            || matches!(
                self,
                MarketplaceStatus::Delivered | MarketplaceStatus::Returned
            )
    }

    /// Whether `self` may replace `previous`, the last status known for the order: the same
    /// status again is a repeat (not a move), a terminal status is final except delivered →
    /// returned, a cancellation may come from any open status (assigned_to_salesman
    /// included: the supplier may still cancel it), and otherwise the rank must not go back.
    pub fn may_follow(self, previous: MarketplaceStatus) -> bool {
        if self == previous {
            return false;
        }
        if previous.is_terminal() {
            return previous == MarketplaceStatus::Delivered && self == MarketplaceStatus::Returned;
        }
        if self.is_cancellation() {
            return true;
        }
        if self == MarketplaceStatus::Returned {
            // A return needs goods that left: shipped or delivered.
            return previous == MarketplaceStatus::AssignedToSalesman;
        }
        self.rank() >= previous.rank()
    }
}

impl fmt::Display for MarketplaceStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::MarketplaceStatus::{self, *};

    #[test]
    fn every_status_reads_back_from_its_word() {
        for status in MarketplaceStatus::ALL {
            assert_eq!(MarketplaceStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(MarketplaceStatus::parse(" Return "), Some(Returned));
        assert_eq!(
            MarketplaceStatus::parse("cancelled"),
            Some(CancelledByRetailer)
        );
        assert_eq!(MarketplaceStatus::parse("synced"), None);
        assert_eq!(MarketplaceStatus::parse("done"), None);
        assert_eq!(MarketplaceStatus::parse(""), None);
    }

    #[test]
    fn the_life_cycle_only_moves_forward() {
        assert!(Approved.may_follow(Pending));
        assert!(Editing.may_follow(Pending));
        assert!(Pending.may_follow(Editing));
        assert!(AssignedToSalesman.may_follow(Approved));
        assert!(Delivered.may_follow(Approved));
        assert!(!Approved.may_follow(AssignedToSalesman));
        assert!(!Pending.may_follow(Approved));
        assert!(!Approved.may_follow(Approved));
    }

    #[test]
    fn cancellations_close_open_orders_only() {
        for open in [Pending, Editing, Approved, AssignedToSalesman] {
            assert!(CancelledByRetailer.may_follow(open), "{open}");
            assert!(CancelledBySupplier.may_follow(open), "{open}");
        }
        for closed in [
            Delivered,
            Returned,
            CancelledByRetailer,
            CancelledBySupplier,
        ] {
            assert!(closed.is_terminal());
            for next in MarketplaceStatus::ALL {
                if !(closed == Delivered && next == Returned) {
                    assert!(!next.may_follow(closed), "{next} after {closed}");
                }
            }
        }
    }

    #[test]
    fn a_return_needs_goods_that_left() {
        assert!(Returned.may_follow(Delivered));
        assert!(Returned.may_follow(AssignedToSalesman));
        assert!(!Returned.may_follow(Approved));
        assert!(!Returned.may_follow(Pending));
    }
}
