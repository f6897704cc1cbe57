pub mod domain;
pub mod error;
pub mod retry;
pub mod secret;
pub mod transport;
pub mod value;
