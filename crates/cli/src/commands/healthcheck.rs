//! `odoo-bridge healthcheck`: asks a running daemon's `/healthz` (or `/readyz`) and exits 0
//! when it answers 200, 1 otherwise. Made for a container's `HEALTHCHECK`: the slim image has
//! no curl or wget, and Docker reads exit 1 as "unhealthy" (2 is reserved there), so this
//! command exits 0 or 1 only, whatever went wrong.

use crate::exit::{Exit, Failure};
use clap::Args;
use engine::http::DEFAULT_LISTEN_ADDR;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    /// Where the daemon listens, as given to `run --listen` (an unspecified address such as
    /// 0.0.0.0 is asked on loopback).
    #[arg(long, env = "ODOO_BRIDGE_LISTEN", default_value_t = DEFAULT_LISTEN_ADDR)]
    listen: SocketAddr,
    /// Ask `/readyz` (the store answers, the daemon is started and not stopping) instead of
    /// `/healthz` (the process answers).
    #[arg(long)]
    ready: bool,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 5)]
    timeout: u64,
}

/// The most of an answer read: a status line and a small JSON body.
const MAX_ANSWER: u64 = 16 * 1024;

pub async fn run(args: HealthcheckArgs) -> Result<Exit, Failure> {
    let target = probe_address(args.listen);
    let path = if args.ready { "/readyz" } else { "/healthz" };
    let timeout = Duration::from_secs(args.timeout.max(1));
    match tokio::time::timeout(timeout, ask(target, path)).await {
        Ok(Ok(200)) => {
            say!("ok: http://{target}{path} answered 200");
            Ok(Exit::Success)
        }
        Ok(Ok(status)) => Err(Failure::new(
            Exit::Failure,
            anyhow::anyhow!("http://{target}{path} answered {status}"),
        )),
        Ok(Err(error)) => Err(Failure::new(
            Exit::Failure,
            anyhow::anyhow!("cannot ask http://{target}{path}: {error}"),
        )),
        Err(_) => Err(Failure::new(
            Exit::Failure,
            anyhow::anyhow!(
                "http://{target}{path} did not answer within {} s",
                timeout.as_secs()
            ),
        )),
    }
}

/// The address to connect to for a daemon listening on `listen`: a daemon bound to every
/// address (0.0.0.0, ::) is reached on loopback.
fn probe_address(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// One `GET path` over HTTP/1.1: the answer's status code.
async fn ask(target: SocketAddr, path: &str) -> std::io::Result<u16> {
    let mut stream = tokio::net::TcpStream::connect(target).await?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\nAccept: */*\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut answer = Vec::new();
    stream.take(MAX_ANSWER).read_to_end(&mut answer).await?;
    let text = String::from_utf8_lossy(&answer);
    let status_line = text.lines().next().unwrap_or_default();
    status_line
        .split_whitespace()
        .nth(1)
        .filter(|_| status_line.starts_with("HTTP/"))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "the answer is not HTTP (is another program on that port?)",
            )
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::probe_address;

    #[test]
    fn a_daemon_on_every_address_is_asked_on_loopback() {
        assert_eq!(
            probe_address("0.0.0.0:9464".parse().unwrap()),
            "127.0.0.1:9464".parse().unwrap()
        );
        assert_eq!(
            probe_address("[::]:9000".parse().unwrap()),
            "[::1]:9000".parse().unwrap()
        );
        assert_eq!(
            probe_address("10.1.2.3:9464".parse().unwrap()),
            "10.1.2.3:9464".parse().unwrap()
        );
    }
}
