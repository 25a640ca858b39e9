//! The `sensorlake broker` subcommands: `serve`, `add-device`, `revoke-device`,
//! `list-devices`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use sensorlake::key::{DeviceId, KeyTemplate, Layout, TimeWindow};
use sensorlake::presign::S3Target;

use super::{BrokerConfig, RateLimit, TlsFiles};
use crate::duration::parse_duration;

/// `sensorlake broker …`
#[derive(Debug, Args)]
pub struct BrokerArgs {
    #[command(subcommand)]
    command: BrokerCommand,
}

#[derive(Debug, Subcommand)]
enum BrokerCommand {
    /// Run the presign broker: devices send their token and the files they want to
    /// upload, and get presigned PUT URLs for exactly those files.
    Serve(Box<ServeArgs>),
    /// Register a device and print its token (shown once; only its hash is stored).
    AddDevice(AddDeviceArgs),
    /// Revoke a device: its token stops working at its next request.
    RevokeDevice {
        /// The registry file.
        #[arg(long, default_value = "sensorlake-devices.json")]
        registry: PathBuf,
        /// The device.
        #[arg(long, value_parser = parse_device_id)]
        device_id: DeviceId,
    },
    /// List registered devices (never their tokens).
    ListDevices {
        /// The registry file.
        #[arg(long, default_value = "sensorlake-devices.json")]
        registry: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

fn parse_device_id(s: &str) -> Result<DeviceId, String> {
    DeviceId::new(s).map_err(|e| e.to_string())
}

fn parse_layout(s: &str) -> Result<Layout, String> {
    Layout::parse(s).map_err(|e| e.to_string())
}

#[derive(Debug, Args)]
struct AddDeviceArgs {
    /// The registry file (created if missing).
    #[arg(long, default_value = "sensorlake-devices.json")]
    registry: PathBuf,
    /// The device id: [A-Za-z0-9_-]{1,64}.
    #[arg(long, value_parser = parse_device_id)]
    device_id: DeviceId,
    /// The key layout the device writes: hive or opensensor.
    #[arg(long, default_value = "hive", value_parser = parse_layout)]
    layout: Layout,
    /// The key prefix the device writes under.
    #[arg(long, default_value = "raw")]
    prefix: String,
    /// Give an already registered device a new token (the old one stops working; a
    /// revocation is lifted).
    #[arg(long)]
    rotate: bool,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// The device registry file.
    #[arg(long, default_value = "sensorlake-devices.json")]
    registry: PathBuf,
    /// The audit log: one JSON line per decision, appended.
    #[arg(long, default_value = "sensorlake-audit.jsonl")]
    audit_log: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8443")]
    addr: SocketAddr,
    /// PEM certificate chain: serve HTTPS (with --tls-key).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve plain HTTP on a non-loopback address. Tokens then cross the network in
    /// clear text: only behind a TLS-terminating proxy on a trusted network.
    #[arg(long)]
    insecure_http: bool,
    /// S3 endpoint, e.g. https://s3.eu-west-1.amazonaws.com.
    #[arg(long)]
    endpoint: String,
    /// Bucket.
    #[arg(long)]
    bucket: String,
    /// Region in the signature.
    #[arg(long, default_value = "us-east-1", env = "AWS_REGION")]
    region: String,
    /// Path-style URLs (endpoint/bucket/key) instead of virtual-host.
    #[arg(long)]
    path_style: bool,
    /// Sign with this profile of ~/.aws/credentials instead of the AWS_* environment.
    #[arg(long)]
    profile: Option<String>,
    /// URL lifetime (e.g. 300s, 5min).
    #[arg(long, default_value = "300s", value_parser = parse_duration)]
    url_expiry: Duration,
    /// The longest URL lifetime a device may ask for.
    #[arg(long, default_value = "15min", value_parser = parse_duration)]
    max_url_expiry: Duration,
    /// Oldest accepted key timestamp (720h = 30 days: backlogs drain).
    #[arg(long, default_value = "720h", value_parser = parse_duration)]
    max_age: Duration,
    /// Newest accepted key timestamp, ahead of the broker's clock.
    #[arg(long, default_value = "5min", value_parser = parse_duration)]
    max_ahead: Duration,
    /// Files per request.
    #[arg(long, default_value_t = sensorlake::broker_api::DEFAULT_MAX_FILES)]
    max_files: usize,
    /// Largest request body in bytes.
    #[arg(long, default_value_t = 64 * 1024)]
    max_body: usize,
    /// Largest declared object in bytes.
    #[arg(long, default_value_t = 16 * 1024 * 1024)]
    max_object_size: u64,
    /// URLs per minute per device (0 = unlimited).
    #[arg(long, default_value_t = 120)]
    rate_limit: u32,
    /// URLs a device may ask for at once after a quiet time (default: --rate-limit).
    #[arg(long)]
    rate_burst: Option<u32>,
    /// Do not sign If-None-Match: * (only for servers without conditional writes;
    /// stored objects can then be overwritten within a URL's lifetime).
    #[arg(long)]
    no_conditional_writes: bool,
}

/// Runs a `sensorlake broker` subcommand.
pub fn run(args: BrokerArgs) -> Result<()> {
    match args.command {
        BrokerCommand::Serve(args) => serve(*args),
        BrokerCommand::AddDevice(args) => {
            let template = KeyTemplate::new(args.layout, &args.prefix)?;
            let registry = super::registry::Registry::new(&args.registry);
            let token = registry.add_device(&args.device_id, &template, args.rotate)?;
            eprintln!(
                "device {} registered in {} ({} layout, prefix {:?}). Its token, shown only now:",
                args.device_id,
                args.registry.display(),
                template.layout().name(),
                template.prefix()
            );
            crate::stdout::println(&token)
        }
        BrokerCommand::RevokeDevice {
            registry,
            device_id,
        } => {
            super::registry::Registry::new(&registry).revoke_device(&device_id)?;
            eprintln!("device {device_id} revoked; its token stops working at its next request");
            Ok(())
        }
        BrokerCommand::ListDevices { registry, json } => {
            let devices = super::registry::Registry::new(&registry).load()?;
            if json {
                let list: Vec<_> = devices
                    .values()
                    .map(|d| {
                        serde_json::json!({
                            "device_id": d.device_id,
                            "layout": d.layout,
                            "prefix": d.prefix,
                            "created_at": d.created_at,
                            "revoked_at": d.revoked_at,
                        })
                    })
                    .collect();
                crate::stdout::println(&serde_json::to_string_pretty(&list)?)
            } else {
                let mut table = format!(
                    "{:<24} {:<10} {:<20} {:<22} status\n",
                    "device", "layout", "prefix", "token issued"
                );
                for d in devices.values() {
                    let status = d
                        .revoked_at
                        .as_ref()
                        .map_or_else(|| "active".to_string(), |at| format!("revoked {at}"));
                    table += &format!(
                        "{:<24} {:<10} {:<20} {:<22} {status}\n",
                        d.device_id, d.layout, d.prefix, d.created_at
                    );
                }
                crate::stdout::print(&table)
            }
        }
    }
}

fn serve(args: ServeArgs) -> Result<()> {
    let (credentials, source) = crate::aws_credentials::resolve(args.profile.as_deref())?;
    tracing::info!("signing with credentials from {source}");
    let target = S3Target {
        endpoint: args.endpoint,
        bucket: args.bucket,
        region: args.region,
        path_style: args.path_style,
    };
    let mut config = BrokerConfig::new(args.registry, args.audit_log, target, credentials);
    config.addr = args.addr;
    config.tls = match (args.tls_cert, args.tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
        (None, None) => None,
        _ => bail!("give both --tls-cert and --tls-key"),
    };
    config.allow_plain_http = args.insecure_http;
    config.url_expiry = args.url_expiry;
    config.max_url_expiry = args.max_url_expiry;
    config.window = TimeWindow {
        max_age: args.max_age,
        max_ahead: args.max_ahead,
    };
    config.max_files = args.max_files;
    config.max_body_bytes = args.max_body;
    config.max_object_bytes = args.max_object_size;
    config.rate_limit = (args.rate_limit > 0).then(|| RateLimit {
        per_minute: args.rate_limit,
        burst: args.rate_burst.unwrap_or(args.rate_limit),
    });
    config.conditional_writes = !args.no_conditional_writes;
    if config.tls.is_none() && !config.addr.ip().is_loopback() && config.allow_plain_http {
        tracing::warn!(
            "serving plain HTTP on {}: device tokens cross the network in clear text",
            config.addr
        );
    }
    super::serve_until_signal(config)
}
