//! The crash test: the real `sensorlake run` binary replays a CSV file into one spool and
//! uploads through the fault proxy (resets, stalls past the timeout, 500, 503 SlowDown,
//! 429, stored-but-answer-dropped, corrupted bodies) to the embedded S3 server, and is
//! killed again and again — with SIGKILL at random moments, and at every fail point
//! (`SENSORLAKE_FAILPOINT=<phase>:<n>` aborts the process there); some runs have a
//! clock an hour off. A last run with `--until-drained` must exit 0. Then every CSV row
//! must be in the bucket exactly once (read back through the S3 API), and the
//! quarantine must be empty.
//!
//! The same runs against Garage 2.5.0 (a second, independent S3 server; fewer runs)
//! check that the final drain holds there too.
//!
//! `SENSORLAKE_CRASH_RUNS=N` sets the number of killed runs (default 24; against Garage
//! a third of that, at least two per fail point; the full run in docs/reliability.md
//! uses 200).

mod common;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::net::SocketAddr;

use common::fault_proxy::{Fault, FaultPlan, FaultProxy};
use common::garage::{GARAGE_ACCESS_KEY, GARAGE_REGION, GARAGE_SECRET_KEY, Garage};
use common::{ACCESS_KEY, Lake, SECRET_KEY, StoredRows, compare};
use sensorlake::backoff::Rng;
use sensorlake::failpoint::PHASES;
use sensorlake::schema::{Channel, Schema};

const BIN: &str = env!("CARGO_BIN_EXE_sensorlake");
const T0: i64 = 1_709_279_940_000_000; // 2024-03-01T07:59:00Z: the rows cross an hour
const RATE_HZ: u64 = 6000;

fn runs() -> usize {
    std::env::var("SENSORLAKE_CRASH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24)
}

/// Rows 4 ms apart with a 2 s gap every 250 rows (batches cut by size and by age);
/// channel c is empty (null) every 7th row.
fn write_csv(path: &Path, rows: usize) {
    let mut text = String::with_capacity(rows * 40);
    text.push_str("timestamp,a,b,c\n");
    for i in 0..rows as i64 {
        let ts = T0 + i * 4_000 + (i / 250) * 2_000_000;
        let a = (i % 1000) as f32 / 8.0;
        let b = -(i as f32) / 16.0;
        let _ = write!(text, "{ts},{a},{b},");
        if i % 7 != 0 {
            let _ = write!(text, "{}", i % 100);
        }
        text.push('\n');
    }
    std::fs::write(path, text).unwrap();
}

/// Where the runs upload: a server behind the fault proxy, with its region and keys.
struct Backend<'a> {
    name: &'a str,
    upstream: SocketAddr,
    region: &'a str,
    access_key: &'a str,
    secret_key: &'a str,
}

fn write_config(dir: &Path, endpoint: &str, region: &str) {
    let config = format!(
        r#"device_id = "crash-1"
[source]
kind = "csv"
path = "readings.csv"
rate_hz = {RATE_HZ}
[[channels]]
name = "a"
[[channels]]
name = "b"
[[channels]]
name = "c"
nullable = true
[batch]
max_rows = 100
max_age = "500ms"
[spool]
dir = "spool"
max_files = 40
[s3]
endpoint = "{endpoint}"
bucket = "lake"
region = "{region}"
path_style = true
prefix = "raw"
[http]
connect_timeout = "1s"
timeout = "400ms"
[upload]
backoff_initial = "10ms"
backoff_max = "200ms"
pause_initial = "100ms"
pause_max = "1s"
[status]
interval = "1s"
"#
    );
    std::fs::write(dir.join("sensorlake.toml"), config).unwrap();
}

fn agent(
    backend: &Backend,
    dir: &Path,
    log: &Path,
    env: &[(&str, String)],
    until_drained: bool,
) -> Child {
    let mut cmd = Command::new(BIN);
    cmd.arg("run")
        .arg("--config")
        .arg(dir.join("sensorlake.toml"));
    if until_drained {
        cmd.arg("--until-drained");
    }
    cmd.env("AWS_ACCESS_KEY_ID", backend.access_key)
        .env("AWS_SECRET_ACCESS_KEY", backend.secret_key)
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("SENSORLAKE_FAILPOINT")
        .env_remove("SENSORLAKE_CLOCK_OFFSET_SECS")
        .env("RUST_LOG", "sensorlake=info,sensorlake_cli=info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(log).unwrap());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("the agent starts")
}

/// Waits until the child exits or `deadline` passes.
fn wait_until(child: &mut Child, deadline: Instant) -> Option<ExitStatus> {
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[cfg(unix)]
fn signal_of(status: &ExitStatus) -> Option<i32> {
    std::os::unix::process::ExitStatusExt::signal(status)
}

#[test]
fn every_row_arrives_exactly_once_through_kills_fail_points_and_network_faults() {
    let lake = Lake::start();
    let backend = Backend {
        name: "the embedded server",
        upstream: lake.server.addr(),
        region: "us-east-1",
        access_key: ACCESS_KEY,
        secret_key: SECRET_KEY,
    };
    crash_and_drain(&backend, runs(), || lake.rows("raw/"));
}

#[test]
fn against_garage_every_row_arrives_exactly_once_through_kills_and_network_faults() {
    let garage = Garage::start();
    let backend = Backend {
        name: "Garage 2.5.0",
        upstream: garage.addr(),
        region: GARAGE_REGION,
        access_key: GARAGE_ACCESS_KEY,
        secret_key: GARAGE_SECRET_KEY,
    };
    // Enough runs for every fail point once (a fail point every other run).
    let runs = runs().div_ceil(3).max(2 * PHASES.len());
    crash_and_drain(&backend, runs, || garage.rows("raw/"));
}

/// `runs` killed agent runs and a final `--until-drained` run against `backend`
/// through the fault proxy; then every row must be stored exactly once.
fn crash_and_drain(backend: &Backend, runs: usize, stored_rows: impl Fn() -> StoredRows) {
    let rows = runs * 2500;
    let proxy = FaultProxy::start(
        backend.upstream,
        FaultPlan::transient_mix(5, 30, Duration::from_millis(1500)),
    )
    .unwrap();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    write_csv(&dir.join("readings.csv"), rows);
    write_config(dir, &proxy.endpoint(), backend.region);
    let log = dir.join("agent.log");

    let started = Instant::now();
    let mut rng = Rng::new(2024);
    let mut aborted_at: BTreeMap<&str, usize> = BTreeMap::new();
    let mut not_reached: BTreeMap<&str, usize> = BTreeMap::new();
    let mut random_kills = 0;
    let mut skewed_runs = 0;
    for run in 0..runs {
        let mut env = Vec::new();
        let failpoint = (run % 2 == 1).then(|| PHASES[(run / 2) % PHASES.len()]);
        if let Some(phase) = failpoint {
            env.push((
                "SENSORLAKE_FAILPOINT",
                format!("{phase}:{}", 1 + rng.below(3)),
            ));
        }
        if run % 6 == 2 {
            let offset = if run % 12 == 2 { -3600 } else { 3600 };
            env.push(("SENSORLAKE_CLOCK_OFFSET_SECS", offset.to_string()));
            skewed_runs += 1;
        }
        let mut child = agent(backend, dir, &log, &env, false);
        let deadline = match failpoint {
            Some(_) => Instant::now() + Duration::from_secs(4),
            None => Instant::now() + Duration::from_millis(100 + rng.below(1400)),
        };
        let status = wait_until(&mut child, deadline);
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        match (status, failpoint) {
            (Some(status), Some(phase)) => {
                assert_eq!(signal_of(&status), Some(6), "run {run}: {status:?}\n{text}");
                assert!(
                    text.contains(&format!("fail point {phase}:")),
                    "run {run}:\n{text}"
                );
                *aborted_at.entry(phase).or_default() += 1;
            }
            (Some(status), None) => panic!("run {run} ended on its own: {status:?}\n{text}"),
            (None, _) => {
                child.kill().unwrap();
                child.wait().unwrap();
                match failpoint {
                    Some(phase) => *not_reached.entry(phase).or_default() += 1,
                    None => random_kills += 1,
                }
            }
        }
        assert!(!text.contains("panicked"), "run {run} panicked:\n{text}");
    }

    let final_started = Instant::now();
    let mut child = agent(backend, dir, &log, &[], true);
    let status = wait_until(&mut child, Instant::now() + Duration::from_secs(600));
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let status = status.unwrap_or_else(|| {
        let _ = child.kill();
        panic!("the final run did not drain in 10 min:\n{text}")
    });
    assert!(status.success(), "final run: {status:?}\n{text}");
    assert!(text.contains("drained"), "{text}");
    let final_secs = final_started.elapsed().as_secs_f64();

    let listing = sensorlake_cli::spool_cmd::list(&dir.join("spool")).unwrap();
    let schema = Arc::new(
        Schema::new(vec![
            Channel::f32("a"),
            Channel::f32("b"),
            Channel::f32("c").nullable(),
        ])
        .unwrap(),
    );
    let csv = std::fs::read_to_string(dir.join("readings.csv")).unwrap();
    let expected = sensorlake::csv::read_rows(&csv, &schema).unwrap();
    let stored = stored_rows();
    let comparison = compare("crash-1", &expected, &stored);

    println!(
        "crash test against {}: {} agent runs killed + 1 final run, against one spool, through the fault proxy, in {:.0} s (final drain {final_secs:.0} s)",
        backend.name,
        runs,
        started.elapsed().as_secs_f64()
    );
    println!("  kills per phase:");
    println!("    random SIGKILL (100-1500 ms after start)   {random_kills}");
    for phase in PHASES {
        println!(
            "    fail point {phase:<22} aborted {:>3}{}",
            aborted_at.get(phase).copied().unwrap_or(0),
            match not_reached.get(phase) {
                Some(n) => format!(" (+{n} runs SIGKILLed before reaching it)"),
                None => String::new(),
            }
        );
    }
    println!("  runs with the clock an hour off: {skewed_runs}");
    println!("  faults by kind (requests through the proxy):");
    for (fault, n) in proxy.counts() {
        println!("    {:<28} {n}", fault.name());
    }
    println!("  objects in S3: {}", stored.objects);
    println!("  {comparison}");
    println!("  quarantine: {} files", listing.quarantine.len());

    assert!(stored.bad_objects.is_empty(), "{:?}", stored.bad_objects);
    assert!(comparison.is_exact(), "{comparison}");
    assert_eq!(comparison.generated, rows);
    assert!(listing.quarantine.is_empty(), "{:?}", listing.quarantine);
    assert!(listing.ready.is_empty());
    let counts = proxy.counts();
    for fault in [
        Fault::Reset,
        Fault::Stall,
        Fault::Error500,
        Fault::SlowDown503,
        Fault::TooMany429,
        Fault::DropResponse,
        Fault::CorruptBody,
    ] {
        assert!(
            counts.get(&fault).copied().unwrap_or(0) > 0,
            "no {fault} happened: {counts:?}"
        );
    }
    if runs >= 2 * PHASES.len() {
        for phase in PHASES {
            assert!(
                aborted_at.contains_key(phase),
                "fail point {phase} was never reached"
            );
        }
    }
}
