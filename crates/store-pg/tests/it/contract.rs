//! The store contract of `engine::store::contract`, on PostgreSQL databases.

engine::store_contract_tests!(crate::support::fresh, crate::support::again);
