#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The `odoo-bridge-bench` binary at tiny sizes: each benchmark runs its helper processes and
//! prints its table. Figures are not checked, only that they are there.

mod delivery;
mod hints;
mod mirror;

/// The benchmark binary, built by cargo for these tests.
pub const BENCH: &str = env!("CARGO_BIN_EXE_odoo-bridge-bench");

/// The product binary the delivery benchmarks run as their daemon: the one `cargo test
/// --workspace` built beside this one, or built now when this package is tested alone.
pub fn product_binary() -> std::path::PathBuf {
    static BUILT: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let path = std::path::Path::new(BENCH).with_file_name("odoo-bridge");
            if !path.is_file() {
                let status = std::process::Command::new(env!("CARGO"))
                    .args(["build", "-p", "odoo-bridge", "--bin", "odoo-bridge"])
                    .current_dir(env!("CARGO_MANIFEST_DIR"))
                    .status()
                    .unwrap();
                assert!(status.success(), "cargo build -p odoo-bridge failed");
            }
            path
        })
        .clone()
}
