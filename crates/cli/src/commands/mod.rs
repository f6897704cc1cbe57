pub mod bench;
pub mod demo;
pub mod odoo;
pub mod sim;
