//! The store contract of `engine::store::contract`, on SQLite files.

engine::store_contract_tests!(crate::support::fresh, crate::support::again);
