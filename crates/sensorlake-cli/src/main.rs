//! The `sensorlake` command.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};
use clap::error::ErrorKind;
use clap::{Args, Parser, Subcommand};
use sensorlake::encode::{Codec, EncodeOptions, FloatEncoding, IntEncoding, Statistics};
use sensorlake::key::{DeviceId, KeyTemplate, Layout};
use sensorlake::presign::{Credentials, PutRequest, S3Target, Signer};
use sensorlake::simulate::Profile;
use sensorlake_cli::demo::DemoConfig;
use sensorlake_cli::encode_csv::{self, EncodeJob, Output};
use sensorlake_cli::inspect;
use sensorlake_cli::s3server::{ServerConfig, serve_until_signal};
use sensorlake_cli::stdout;

/// Sensor readings to query-ready Parquet in an S3 data lake.
#[derive(Debug, Parser)]
#[command(name = "sensorlake", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Simulate devices, upload their Parquet files through presigned PUTs to an embedded
    /// SigV4-checking S3 server, read everything back through the S3 API and verify it.
    Demo(DemoArgs),
    /// Run the embedded S3-compatible server (SigV4 auth on) over a directory; each
    /// sub-directory is a bucket.
    Serve(ServeArgs),
    /// Encode a CSV file (header `timestamp,<channel>,...`) as Parquet.
    Encode(EncodeArgs),
    /// Describe Parquet files: schema, rows, codec, encodings, sizes, statistics, metadata.
    Inspect {
        /// Files to describe.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print a presigned PUT URL (credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN).
    Presign(PresignArgs),
    /// The presign broker: devices hold a revocable token, not AWS keys, and get URLs
    /// for exactly the files they declare (serve, add-device, revoke-device, list-devices).
    Broker(sensorlake_cli::broker::cli::BrokerArgs),
    /// Write a device's settings (Wi-Fi, device id, broker URL, token) as the CSV of
    /// ESP-IDF's NVS partition generator, for the ESP32-S3 firmware.
    Provision(sensorlake_cli::provision::ProvisionArgs),
    /// The host agent: read a source, batch, encode, spool durably and upload, until
    /// SIGINT/SIGTERM. Upload URLs come from the config's [credentials]: `keys` signs them
    /// with AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), else a
    /// profile (AWS_PROFILE, default "default") of ~/.aws/credentials or ~/.aws/config;
    /// `broker` asks a presign broker with this device's token.
    Run(RunArgs),
    /// Look into a spool directory, or requeue quarantined files.
    Spool(SpoolArgs),
    /// Print a table definition over the lake: Athena/Glue (partition projection) or DuckDB.
    Ddl(DdlArgs),
    /// Benchmark bytes, heap, allocations, instructions and time per file (runs the
    /// sensorlake-bench binary built next to this one; arguments are passed on).
    Bench {
        /// Arguments for sensorlake-bench (see `sensorlake bench -- --help`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

#[derive(Debug, Args)]
struct RunArgs {
    /// The configuration file (see sensorlake.example.toml).
    #[arg(long, default_value = "sensorlake.toml")]
    config: PathBuf,
    /// Exit once a finite source (csv, simulate with rows) is exhausted, its last batch
    /// spooled and the spool empty: 0, or 3 if files wait in quarantine.
    #[arg(long)]
    until_drained: bool,
}

#[derive(Debug, Args)]
struct SpoolArgs {
    #[command(subcommand)]
    action: SpoolAction,
    /// The spool directory (default: [spool] dir of --config).
    #[arg(long, global = true)]
    dir: Option<PathBuf>,
    /// The agent's configuration file, for its spool directory.
    #[arg(long, global = true, default_value = "sensorlake.toml")]
    config: PathBuf,
}

#[derive(Debug, Subcommand)]
enum SpoolAction {
    /// The files waiting for upload (name, size, rows, object key) and the quarantined
    /// files with their reasons. Read-only: safe while the agent runs.
    List {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Counts and sizes. Read-only.
    Stats {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Move quarantined files back into the queue (all, or the ones named). The agent
    /// must be stopped.
    Requeue {
        /// File names in quarantine/ (default: all).
        names: Vec<String>,
    },
}

#[derive(Debug, Args)]
struct DdlArgs {
    /// Bucket of the lake.
    #[arg(long)]
    bucket: String,
    /// Key prefix of the objects.
    #[arg(long, default_value = "")]
    prefix: String,
    /// Print the Athena/Glue definition (the default).
    #[arg(long, conflicts_with = "duckdb")]
    athena: bool,
    /// Print the DuckDB view instead.
    #[arg(long)]
    duckdb: bool,
    /// Table or view name.
    #[arg(long, default_value = "sensor_readings")]
    table: String,
    /// Key layout: hive or opensensor.
    #[arg(long, default_value_t = Layout::default())]
    layout: Layout,
    /// Columns of a simulator profile (enviro, imu, imu-raw) ...
    #[arg(long, default_value_t = Profile::Enviro)]
    profile: Profile,
    /// ... or of this Parquet file written by sensorlake.
    #[arg(long)]
    file: Option<PathBuf>,
    /// Device ids for an enum projection (comma-separated); without it the id is injected.
    #[arg(long, value_delimiter = ',')]
    devices: Vec<String>,
    /// First day of the date projection (YYYY-MM-DD).
    #[arg(long, default_value = "2024-01-01")]
    since: String,
    /// Use this location instead of s3://BUCKET/PREFIX (e.g. a local directory).
    #[arg(long)]
    location: Option<String>,
}

/// Encoding settings shared by commands that write Parquet. The defaults are the
/// library's (`EncodeOptions::default()`, chosen by `sensorlake bench`).
#[derive(Debug, Clone, Args)]
struct EncodingArgs {
    /// Page compression: none, snappy, lz4 (Parquet LZ4_RAW), gzip, zstd (host only).
    #[arg(long, default_value_t = EncodeOptions::DEFAULT.codec)]
    codec: Codec,
    /// Float channel encoding: plain, dictionary, byte-stream-split.
    #[arg(long, default_value_t = EncodeOptions::DEFAULT.float_encoding)]
    float_encoding: FloatEncoding,
    /// Timestamp encoding: plain, delta.
    #[arg(long, default_value_t = EncodeOptions::DEFAULT.ts_encoding)]
    ts_encoding: IntEncoding,
    /// Integer channel encoding: plain, delta.
    #[arg(long, default_value_t = EncodeOptions::DEFAULT.int_encoding)]
    int_encoding: IntEncoding,
    /// Statistics: none, timestamp (min/max of the timestamp only, for file pruning),
    /// chunk (every column, per file), page (plus column/offset indexes).
    #[arg(long, default_value_t = EncodeOptions::DEFAULT.statistics)]
    statistics: Statistics,
}

impl EncodingArgs {
    fn options(&self) -> EncodeOptions {
        EncodeOptions {
            codec: self.codec,
            float_encoding: self.float_encoding,
            ts_encoding: self.ts_encoding,
            int_encoding: self.int_encoding,
            statistics: self.statistics,
        }
    }
}

fn parse_device_id(s: &str) -> Result<DeviceId, String> {
    DeviceId::new(s).map_err(|e| e.to_string())
}

#[derive(Debug, Args)]
struct DemoArgs {
    /// Number of simulated devices.
    #[arg(long, default_value_t = 3)]
    devices: usize,
    /// Simulated time per device (e.g. 6h, 90min, 30s, 1500ms; a bare number is seconds);
    /// runs much faster than real time.
    #[arg(long, default_value = "6h", value_parser = sensorlake_cli::duration::parse_duration)]
    duration: Duration,
    /// enviro (environmental station every 5 s), imu (14 float channels at 64 Hz) or
    /// imu-raw (the same 14 channels as i16 raw counts with scales).
    #[arg(long, default_value_t = Profile::Enviro)]
    profile: Profile,
    /// The server's data directory (objects at DIR/<bucket>/<key>), kept after the run.
    /// Without it a fresh temporary directory is used and removed at the end (see --keep).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Keep the temporary data directory (and, with --broker, the broker's registry and
    /// audit log) and print where it is, with a DuckDB query over it.
    #[arg(long)]
    keep: bool,
    /// Empty a non-empty --dir first.
    #[arg(long)]
    clean: bool,
    /// Key layout and column conventions: hive (default) or opensensor.
    #[arg(long, default_value_t = Layout::default())]
    layout: Layout,
    /// Seed of the simulated signals.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Devices get their URLs from an in-process presign broker, each holding only a
    /// token of its own, instead of signing with keys.
    #[arg(long)]
    broker: bool,
    /// Upload to this S3 service (http:// or https://) instead of the embedded server,
    /// with keys from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN. Each
    /// run writes under a prefix of its own (raw/demo-<id>/), reads it back and leaves it.
    #[arg(long)]
    endpoint: Option<String>,
    /// Bucket at --endpoint.
    #[arg(long, default_value = sensorlake_cli::demo::BUCKET, requires = "endpoint")]
    bucket: String,
    /// Region the signatures for --endpoint are made for.
    #[arg(long, default_value = "us-east-1", requires = "endpoint")]
    region: String,
    /// Address --endpoint as endpoint/bucket/key instead of bucket.endpoint/key (IP
    /// endpoints and dotted buckets over https use it anyway).
    #[arg(long, requires = "endpoint")]
    path_style: bool,
    #[command(flatten)]
    encoding: EncodingArgs,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Data directory; each sub-directory is a bucket.
    #[arg(long)]
    dir: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9000")]
    addr: std::net::SocketAddr,
    /// Create this bucket (a sub-directory) if missing; repeatable.
    #[arg(long = "create-bucket")]
    create_buckets: Vec<String>,
    /// Access key clients must sign with.
    #[arg(long, env = "AWS_ACCESS_KEY_ID", hide_env_values = true)]
    access_key: String,
    /// Secret key clients must sign with.
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    secret_key: String,
    /// The region signatures must name (others get 400 AuthorizationHeaderMalformed).
    #[arg(long, default_value = sensorlake_cli::s3server::DEFAULT_REGION)]
    region: String,
}

#[derive(Debug, Args)]
struct EncodeArgs {
    /// CSV input: header `timestamp,<channel>,...`; timestamps RFC 3339 or integer µs.
    #[arg(long)]
    input: PathBuf,
    /// Write all rows to this one file.
    #[arg(long, conflicts_with_all = ["output_dir", "rows_per_file"], required_unless_present = "output_dir")]
    output: Option<PathBuf>,
    /// Write files under this directory, at their object keys: one per --rows-per-file
    /// rows, or with --layout opensensor one per clock-aligned 15-minute window.
    #[arg(long)]
    output_dir: Option<PathBuf>,
    /// Rows per file with --output-dir (files are also cut at UTC hour boundaries);
    /// required for the hive layout, a size limit (default 4096) for opensensor.
    #[arg(long)]
    rows_per_file: Option<usize>,
    /// Device id written into the files and keys: [A-Za-z0-9_-]{1,64}.
    #[arg(long, default_value = "local", value_parser = parse_device_id)]
    device_id: DeviceId,
    /// Key prefix for --output-dir.
    #[arg(long, default_value = "")]
    prefix: String,
    /// Key layout and column conventions: hive (default) or opensensor.
    #[arg(long, default_value_t = Layout::default())]
    layout: Layout,
    /// Channel types by name, overriding inference: e.g. `acc_x=i16,temp=f32`.
    #[arg(long, default_value = "")]
    types: String,
    #[command(flatten)]
    encoding: EncodingArgs,
}

#[derive(Debug, Args)]
struct PresignArgs {
    /// S3 endpoint, e.g. https://s3.eu-west-1.amazonaws.com or http://127.0.0.1:9000.
    #[arg(long)]
    endpoint: String,
    /// Bucket.
    #[arg(long)]
    bucket: String,
    /// Object key.
    #[arg(long)]
    key: String,
    /// Region in the signature.
    #[arg(long, default_value = "us-east-1", env = "AWS_REGION")]
    region: String,
    /// URL lifetime in seconds (1..=604800).
    #[arg(long, default_value_t = 300)]
    expires: u64,
    /// Path-style URLs (endpoint/bucket/key) instead of virtual-host (bucket.endpoint/key).
    /// Virtual-host falls back to path style for IP endpoints and, over https, for
    /// bucket names with dots, as the AWS SDKs do.
    #[arg(long)]
    path_style: bool,
    /// Sign as of this time (RFC 3339), to reproduce a device's URL.
    #[arg(long)]
    at: Option<String>,
    /// Also sign this file's Content-MD5 and Content-Length (and If-None-Match: *).
    #[arg(long)]
    file: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // --help and --version go through the same closed-pipe handling as any output.
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            return match stdout::print(&e.render().to_string()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) if stdout::is_stdout_closed(&e) => {
                    ExitCode::from(stdout::STDOUT_CLOSED_EXIT)
                }
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            };
        }
        Err(e) => e.exit(),
    };
    let mut filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "sensorlake=info,sensorlake_cli=info,warn".into());
    // s3s and s3s-fs log whole request URIs (signatures, session tokens) at debug
    // level, ureq (the host HTTP client) and ureq-proto at trace level (URIs and the
    // raw request bytes): never let RUST_LOG turn that on.
    let mut directives = vec!["s3s=info", "s3s_fs=info", "ureq=info", "ureq_proto=info"];
    if let Command::Spool(SpoolArgs {
        action: SpoolAction::Requeue { .. },
        ..
    }) = &cli.command
    {
        // The command prints each move on stdout; the spool's own log line of the same
        // move would say it twice.
        directives.push("sensorlake::spool=warn");
    }
    for directive in directives {
        if let Ok(d) = directive.parse() {
            filter = filter.add_directive(d);
        }
    }
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match run(cli) {
        Ok(code) => code,
        // `sensorlake inspect … | head -1`: the reader has what it wanted.
        Err(e) if stdout::is_stdout_closed(&e) => ExitCode::from(stdout::STDOUT_CLOSED_EXIT),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Demo(args) => demo(args),
        Command::Serve(args) => {
            let mut config = ServerConfig::new(&args.dir, args.access_key, args.secret_key);
            config.addr = args.addr;
            config.create_buckets = args.create_buckets;
            config.region = args.region;
            // Binds first: a busy port fails before anything is created or announced.
            serve_until_signal(config, |addr| {
                eprintln!(
                    "serving {} at http://{addr} (SigV4 auth on; Ctrl-C stops)",
                    args.dir.display()
                );
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Encode(args) => encode(args),
        Command::Inspect { files, json } => {
            let mut reports = Vec::new();
            for file in &files {
                reports.push(inspect::inspect(file)?);
            }
            if json {
                stdout::println(&serde_json::to_string_pretty(&reports)?)?;
            } else {
                for report in &reports {
                    stdout::print(&inspect::render_text(report))?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Presign(args) => presign(args),
        Command::Broker(args) => sensorlake_cli::broker::cli::run(args).map(|()| ExitCode::SUCCESS),
        Command::Provision(args) => {
            sensorlake_cli::provision::run(args).map(|()| ExitCode::SUCCESS)
        }
        Command::Run(args) => {
            let config = sensorlake_cli::agent_config::AgentConfig::load(&args.config)?;
            if matches!(
                config.credentials,
                sensorlake_cli::agent_config::CredentialsConfig::Keys { .. }
            ) {
                sensorlake_cli::endpoint::check_target(&config.target, "[s3]")?;
            }
            let options = sensorlake_cli::agent::RunOptions {
                until_drained: args.until_drained,
            };
            let status = sensorlake_cli::agent::run(&config, &options)?;
            if args.until_drained && status.quarantined_files > 0 {
                eprintln!(
                    "error: drained, but {} file(s) wait in quarantine: see `sensorlake spool list --config {}`",
                    status.quarantined_files,
                    args.config.display()
                );
                return Ok(ExitCode::from(3));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Spool(args) => spool(args),
        Command::Ddl(args) => ddl(args),
        Command::Bench { args } => bench(&args),
    }
}

fn spool(args: SpoolArgs) -> Result<ExitCode> {
    use sensorlake_cli::spool_cmd;
    let dir = match args.dir {
        Some(dir) => dir,
        None => sensorlake_cli::agent_config::AgentConfig::load(&args.config)?.spool_dir,
    };
    match args.action {
        SpoolAction::List { json } | SpoolAction::Stats { json } => {
            let listing = spool_cmd::list(&dir)?;
            if json {
                stdout::println(&serde_json::to_string_pretty(&listing)?)?;
            } else if matches!(args.action, SpoolAction::List { .. }) {
                stdout::print(&spool_cmd::render_list(&listing))?;
            } else {
                stdout::print(&spool_cmd::render_stats(&listing))?;
            }
        }
        SpoolAction::Requeue { names } => {
            let moved = spool_cmd::requeue(&dir, &names)?;
            let mut lines = String::new();
            for (from, to) in &moved {
                lines += &format!("requeued quarantine/{from} as ready/{to}\n");
            }
            stdout::print(&lines)?;
            eprintln!("{} file(s) requeued", moved.len());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn ddl(args: DdlArgs) -> Result<ExitCode> {
    let schema = match &args.file {
        Some(path) => {
            let bytes =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            let decoded = sensorlake::decode::decode(bytes.into())
                .with_context(|| format!("{}", path.display()))?;
            decoded.batch.schema().as_ref().clone()
        }
        None => sensorlake::simulate::Simulator::schema_for(args.profile)
            .with_preset(&args.layout.schema_preset())?,
    };
    let config = sensorlake_cli::ddl::DdlConfig {
        table: args.table,
        bucket: args.bucket,
        prefix: args.prefix,
        location: args.location,
        layout: args.layout,
        schema,
        devices: args.devices,
        since: args.since,
    };
    let engine = if args.duckdb {
        sensorlake_cli::ddl::Engine::DuckDb
    } else {
        sensorlake_cli::ddl::Engine::Athena
    };
    stdout::print(&sensorlake_cli::ddl::render(&config, engine)?)?;
    Ok(ExitCode::SUCCESS)
}

fn bench(args: &[String]) -> Result<ExitCode> {
    let exe = std::env::current_exe()?.with_file_name("sensorlake-bench");
    if !exe.exists() {
        bail!(
            "{} not found: build it with `cargo build --release -p sensorlake-cli`",
            exe.display()
        );
    }
    let status = std::process::Command::new(&exe)
        .args(args)
        .status()
        .with_context(|| format!("cannot run {}", exe.display()))?;
    // Its own exit status, e.g. 141 when its output was cut off.
    Ok(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::FAILURE,
    })
}

fn demo(args: DemoArgs) -> Result<ExitCode> {
    let config = DemoConfig {
        devices: args.devices,
        duration: args.duration,
        profile: args.profile,
        dir: args.dir,
        keep: args.keep,
        clean: args.clean,
        options: args.encoding.options(),
        layout: args.layout,
        seed: args.seed,
        broker: args.broker,
        s3: match args.endpoint {
            None => None,
            Some(endpoint) => Some(sensorlake_cli::demo::ExternalS3 {
                target: S3Target {
                    endpoint,
                    bucket: args.bucket,
                    region: args.region,
                    path_style: args.path_style,
                },
                credentials: Credentials::from_env().context(
                    "demo --endpoint needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY for that service",
                )?,
            }),
        },
    };
    let report = sensorlake_cli::demo::run(&config)?;
    stdout::print(&sensorlake_cli::demo::render_summary(&config, &report))?;
    Ok(if report.verified() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn encode(args: EncodeArgs) -> Result<ExitCode> {
    let output = match (args.output, args.output_dir, args.rows_per_file) {
        (Some(file), None, None) => Output::File(file),
        (None, Some(dir), rows_per_file) => {
            encode_csv::check_output_dir(&dir)?;
            Output::Dir { dir, rows_per_file }
        }
        _ => bail!(
            "give --output FILE, or --output-dir DIR (with --rows-per-file N for the hive layout)"
        ),
    };
    let job = EncodeJob {
        input: args.input,
        output,
        device_id: args.device_id,
        template: KeyTemplate::new(args.layout, &args.prefix)?,
        options: args.encoding.options(),
        types: encode_csv::parse_types(&args.types)?,
        schema_preset: args.layout.schema_preset(),
    };
    let written = encode_csv::run(&job)?;
    let rows: usize = written.iter().map(|f| f.rows).sum();
    let bytes: usize = written.iter().map(|f| f.bytes).sum();
    let mut lines = String::new();
    for file in &written {
        lines += &format!(
            "{}\t{} rows\t{} bytes\n",
            file.path.display(),
            file.rows,
            file.bytes
        );
    }
    stdout::print(&lines)?;
    eprintln!(
        "{} file(s), {rows} rows, {bytes} bytes, {:.2} bytes/row",
        written.len(),
        bytes as f64 / rows.max(1) as f64
    );
    Ok(ExitCode::SUCCESS)
}

fn presign(args: PresignArgs) -> Result<ExitCode> {
    let credentials = Credentials::from_env()?;
    let target = S3Target {
        endpoint: args.endpoint,
        bucket: args.bucket,
        region: args.region,
        path_style: args.path_style,
    };
    let signer = Signer::new(&target, &credentials, Duration::from_secs(args.expires))?;
    let at = match &args.at {
        Some(text) => {
            let ts: jiff::Timestamp = text
                .parse()
                .with_context(|| format!("--at {text:?} is not an RFC 3339 time"))?;
            SystemTime::UNIX_EPOCH
                + Duration::from_secs(u64::try_from(ts.as_second()).context("--at before 1970")?)
        }
        None => SystemTime::now(),
    };
    let request = match &args.file {
        Some(path) => {
            let body =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            PutRequest::for_body(&args.key, &body)
        }
        None => PutRequest::key_only(&args.key),
    };
    let put = signer.presign_put(&request, at)?;
    stdout::println(&put.url)?;
    if !put.headers.is_empty() {
        eprintln!("send these headers with the PUT (they are signed):");
        for (name, value) in &put.headers {
            eprintln!("  {name}: {value}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_encoding_defaults_are_the_library_defaults() {
        let cli = Cli::parse_from([
            "sensorlake",
            "encode",
            "--input",
            "a.csv",
            "--output",
            "a.parquet",
        ]);
        let Command::Encode(args) = cli.command else {
            panic!("parsed {:?}", cli.command);
        };
        assert_eq!(args.encoding.options(), EncodeOptions::default());
    }
}
