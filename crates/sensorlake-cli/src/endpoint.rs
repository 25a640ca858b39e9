//! Start-up checks of an S3 target that would otherwise fail only later, retried
//! forever: the address style ([`sensorlake::addressing`]) is logged when virtual-host
//! was asked for but path style is used, and a virtual host under `localhost` that does
//! not resolve is an error naming `path_style`.

use std::net::ToSocketAddrs as _;

use anyhow::{Result, bail};
use sensorlake::presign::S3Target;

/// Checks `target` before the first upload; `table` names its configuration table in
/// messages (`[s3]`).
///
/// Names under `localhost` are resolved by the machine itself (RFC 6761), never by a
/// network, so `lake.localhost` failing to resolve is not a passing outage: uploads
/// would fail on every retry. Other host names are not resolved here (the network may
/// just be down at start).
pub fn check_target(target: &S3Target, table: &str) -> Result<()> {
    let (_, fallback) = target.addressing()?;
    if let Some(reason) = fallback {
        tracing::info!(
            "{table} path_style = false, but {reason}: the bucket goes in the URL path ({}/{}/…), as the AWS SDKs do",
            target.endpoint.trim_end_matches('/'),
            target.bucket
        );
    }
    let Some((virtual_host, port)) = target.virtual_host()? else {
        return Ok(());
    };
    if !virtual_host.ends_with(".localhost") {
        return Ok(());
    }
    if let Err(e) = (virtual_host.as_str(), port).to_socket_addrs() {
        bail!(
            "{table} endpoint {:?} with virtual-host style puts the bucket in the host name, {virtual_host}:{port}, which this machine cannot resolve ({e}): set {table} path_style = true (or use 127.0.0.1 in the endpoint)",
            target.endpoint
        );
    }
    Ok(())
}
