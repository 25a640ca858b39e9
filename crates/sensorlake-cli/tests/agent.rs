//! `sensorlake run` and `sensorlake spool` as a user runs them: the shutdown flush on
//! SIGTERM, draining a finite source and resuming after its last row, a wrong secret
//! that pauses uploads without touching the queue, and the quarantine commands.

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::fault_proxy::{Fault, FaultPlan, FaultProxy};
use common::{ACCESS_KEY, Lake, SECRET_KEY, compare};
use sensorlake::simulate::{Profile, Simulator};

const BIN: &str = env!("CARGO_BIN_EXE_sensorlake");
const START: &str = "2024-03-01T00:00:00Z";
const START_US: i64 = 1_709_251_200_000_000;

fn write_config(dir: &Path, endpoint: &str, source: &str, extra: &str) -> PathBuf {
    let path = dir.join("sensorlake.toml");
    let text = format!(
        "device_id = \"gw-1\"\n{source}\n[batch]\nmax_rows = 50\n[spool]\ndir = \"spool\"\n[s3]\nendpoint = \"{endpoint}\"\nbucket = \"lake\"\npath_style = true\nprefix = \"raw\"\n[status]\ninterval = \"200ms\"\n[upload]\npause_initial = \"300ms\"\npause_max = \"1s\"\n{extra}"
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn simulate(rows: u64) -> String {
    format!("[source]\nkind = \"simulate\"\nstart = \"{START}\"\nrows = {rows}\nrate_hz = 0")
}

fn command(args: &[&str], secret: &str) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("SENSORLAKE_FAILPOINT")
        .env_remove("SENSORLAKE_CLOCK_OFFSET_SECS");
    cmd
}

fn run(args: &[&str]) -> Output {
    command(args, SECRET_KEY).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn status(dir: &Path) -> serde_json::Value {
    std::fs::read(dir.join("spool/status.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(serde_json::Value::Null)
}

fn wait_for(dir: &Path, what: &str, ok: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = status(dir);
        if ok(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {s}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let pid = child.id() as libc::pid_t;
    // SAFETY: sending a signal to our own child process.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "the agent did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn simulated_rows(from: u64, to: u64) -> Vec<(i64, Vec<sensorlake::batch::Value>)> {
    simulated_rows_of("gw-1", from, to)
}

fn simulated_rows_of(
    device: &str,
    from: u64,
    to: u64,
) -> Vec<(i64, Vec<sensorlake::batch::Value>)> {
    let sim = Simulator::new(Profile::Enviro, device, 1, START_US);
    let mut values = Vec::new();
    (from..to)
        .map(|i| {
            let ts = sim.row(i, &mut values);
            (ts, values.clone())
        })
        .collect()
}

#[test]
fn help_lists_run_and_spool() {
    let out = run(&["--help"]);
    let help = text(&out.stdout);
    assert!(help.contains("run") && help.contains("spool"), "{help}");
    let out = run(&["spool", "--help"]);
    let help = text(&out.stdout);
    for action in ["list", "stats", "requeue"] {
        assert!(help.contains(action), "{help}");
    }
}

#[test]
fn sigterm_flushes_the_open_batch_into_the_spool() {
    let lake = Lake::start();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &lake.server.endpoint(),
        "[source]\nkind = \"stdin\"\n[[channels]]\nname = \"temp\"\n[[channels]]\nname = \"hum\"\nnullable = true",
        "",
    );
    // One batch holds 1000 rows or 1 h: the rows stay in memory until the flush.
    let text_config = std::fs::read_to_string(&config)
        .unwrap()
        .replace("max_rows = 50", "max_rows = 1000\nmax_age = \"1h\"");
    std::fs::write(&config, text_config).unwrap();
    let mut child = command(&["run", "--config", config.to_str().unwrap()], SECRET_KEY)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "timestamp,temp,hum").unwrap();
    // A live source: current timestamps (its batches also close by wall-clock age),
    // 1.5 s of rows within one UTC hour (a batch never spans two).
    let now_us = jiff::Timestamp::now().as_microsecond();
    let hour_start = now_us - now_us % 3_600_000_000;
    let start_us = (now_us - 5_000_000).max(hour_start);
    for i in 0..150 {
        let hum = if i % 10 == 0 {
            String::new()
        } else {
            format!("{}", 40 + i % 7)
        };
        writeln!(stdin, "{},{}.5,{hum}", start_us + i * 10_000, 20 + i % 5).unwrap();
    }
    stdin.flush().unwrap();
    let s = wait_for(dir.path(), "150 rows in", |s| s["rows_in"] == 150);
    assert_eq!(s["open_rows"], 150, "{s}");
    assert_eq!(s["files_spooled"], 0, "{s}");

    let exit = terminate(&mut child);
    let mut log = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut log).unwrap();
    assert!(exit.success(), "{exit:?}\n{log}");
    assert!(log.contains("SIGTERM") && log.contains("flushed"), "{log}");
    drop(stdin);

    let spool = dir.path().join("spool");
    let listing = sensorlake_cli::spool_cmd::list(&spool).unwrap();
    let rows: u64 = listing.ready.iter().filter_map(|f| f.rows).sum();
    let uploaded = lake.rows("raw/").rows.len() as u64;
    assert_eq!(
        rows + uploaded,
        150,
        "every row is spooled or uploaded: {listing:?}"
    );
    let out = run(&["spool", "list", "--dir", spool.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn until_drained_uploads_everything_and_a_restart_resumes_after_the_last_row() {
    let lake = Lake::start();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &lake.server.endpoint(), &simulate(500), "");
    let out = run(&[
        "run",
        "--config",
        config.to_str().unwrap(),
        "--until-drained",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("drained"),
        "{}",
        text(&out.stderr)
    );
    let c = compare("gw-1", &simulated_rows(0, 500), &lake.rows("raw/"));
    assert!(c.is_exact() && c.in_s3 == 500, "{c}");

    let config = write_config(dir.path(), &lake.server.endpoint(), &simulate(800), "");
    let out = run(&[
        "run",
        "--config",
        config.to_str().unwrap(),
        "--until-drained",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("resuming at position 500"),
        "{}",
        text(&out.stderr)
    );
    let c = compare("gw-1", &simulated_rows(0, 800), &lake.rows("raw/"));
    assert!(c.is_exact() && c.in_s3 == 800, "{c}");
    let s = status(dir.path());
    assert_eq!(s["rows_read"], 300, "only the new rows were read: {s}");
}

#[test]
fn the_opensensor_preset_writes_that_networks_layout_and_columns() {
    let lake = Lake::start();
    let dir = tempfile::tempdir().unwrap();
    // One hour of a 5 s station (four 15-minute windows of 180 rows) and one more row.
    let path = dir.path().join("sensorlake.toml");
    std::fs::write(
        &path,
        format!(
            "device_id = \"st-1\"\n{}\n[spool]\ndir = \"spool\"\n[s3]\nendpoint = \"{}\"\nbucket = \"lake\"\npath_style = true\nprefix = \"enviro\"\nlayout = \"opensensor\"\n",
            simulate(721),
            lake.server.endpoint()
        ),
    )
    .unwrap();
    let out = run(&["run", "--config", path.to_str().unwrap(), "--until-drained"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut keys = lake.keys("enviro/");
    keys.sort();
    // The first window of a run is not known to be whole (an earlier process may have
    // written part of it) and the last one is cut by the end of the source: both carry
    // the rows' hash. The windows in between are closed by the next window's first row.
    let day = "enviro/station=st-1/year=2024/month=03/day=01";
    assert_eq!(keys.len(), 5, "{keys:?}");
    assert!(
        keys[0].starts_with(&format!("{day}/data_0015_")),
        "{keys:?}"
    );
    for (key, hhmm) in keys[1..4].iter().zip(["0030", "0045", "0100"]) {
        assert_eq!(key, &format!("{day}/data_{hhmm}.parquet"));
    }
    assert!(
        keys[4].starts_with(&format!("{day}/data_0115_")),
        "{keys:?}"
    );
    let file = lake.get(&keys[1]);
    let decoded = sensorlake::decode::decode(file.into()).unwrap();
    let schema = decoded.batch.schema();
    assert_eq!(schema.ts_column, "timestamp");
    assert_eq!(schema.ts_unit, sensorlake::schema::TimeUnit::Millis);
    assert_eq!(schema.device_column.as_deref(), Some("station_id"));
    assert_eq!(decoded.device_column_values, ["st-1"]);
    assert_eq!(decoded.batch.len(), 180);
    let c = compare(
        "st-1",
        &simulated_rows_of("st-1", 0, 721),
        &lake.rows("enviro/"),
    );
    assert!(c.is_exact() && c.in_s3 == 721, "{c}");
}

#[test]
fn with_credentials_from_the_broker_the_agent_holds_no_keys() {
    use sensorlake::key::{DeviceId, KeyTemplate, Layout};
    use sensorlake::presign::Credentials;
    use sensorlake_cli::broker::registry::Registry;
    use sensorlake_cli::broker::{Broker, BrokerConfig};

    let lake = Lake::start();
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::new(dir.path().join("devices.json"));
    let mut broker_config = BrokerConfig::new(
        registry.path(),
        dir.path().join("audit.jsonl"),
        lake.target(&lake.server.endpoint()),
        Credentials::new(ACCESS_KEY, SECRET_KEY),
    );
    // The simulated rows are from 2024: accept keys that old.
    broker_config.window.max_age = Duration::from_secs(5 * 366 * 86_400);
    let broker = Broker::start(broker_config).unwrap();
    let template = KeyTemplate::new(Layout::Hive, "raw").unwrap();
    let token = registry
        .add_device(&DeviceId::new("gw-1").unwrap(), &template, false)
        .unwrap();
    std::fs::write(dir.path().join("gw-1.token"), format!("{token}\n")).unwrap();
    let extra = format!(
        "[credentials]\nsource = \"broker\"\nbroker_url = \"{}\"\ntoken_file = \"gw-1.token\"\n",
        broker.url()
    );
    let config = write_config(dir.path(), &lake.server.endpoint(), &simulate(300), &extra);
    // No AWS keys in the agent's environment at all.
    let out = Command::new(BIN)
        .args([
            "run",
            "--config",
            config.to_str().unwrap(),
            "--until-drained",
        ])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env("HOME", dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        !text(&out.stderr).contains(token.as_str()),
        "the token is never logged"
    );
    let c = compare("gw-1", &simulated_rows(0, 300), &lake.rows("raw/"));
    assert!(c.is_exact() && c.in_s3 == 300, "{c}");
    assert_eq!(broker.stats().issued as usize, lake.keys("raw/").len());
}

#[test]
fn with_keys_the_agent_reads_an_aws_profile_when_the_environment_has_none() {
    let lake = Lake::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".aws")).unwrap();
    std::fs::write(
        dir.path().join(".aws/credentials"),
        format!("[lake]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {SECRET_KEY}\n"),
    )
    .unwrap();
    let config = write_config(
        dir.path(),
        &lake.server.endpoint(),
        &simulate(100),
        "[credentials]\nsource = \"keys\"\nprofile = \"lake\"\n",
    );
    let out = Command::new(BIN)
        .args([
            "run",
            "--config",
            config.to_str().unwrap(),
            "--until-drained",
        ])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SHARED_CREDENTIALS_FILE")
        .env_remove("AWS_CONFIG_FILE")
        .env("HOME", dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("profile \"lake\""),
        "{}",
        text(&out.stderr)
    );
    assert!(!text(&out.stderr).contains(SECRET_KEY));
    let c = compare("gw-1", &simulated_rows(0, 100), &lake.rows("raw/"));
    assert!(c.is_exact() && c.in_s3 == 100, "{c}");
}

#[test]
fn a_wrong_secret_pauses_uploads_and_the_queue_waits_for_the_right_one() {
    let lake = Lake::start();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &lake.server.endpoint(), &simulate(300), "");
    let config = config.to_str().unwrap();
    let mut child = command(
        &["run", "--config", config],
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYWRONGKEY",
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let s = wait_for(dir.path(), "a pause with all rows spooled", |s| {
        s["paused_because"]
            .as_str()
            .is_some_and(|p| p.contains("SignatureDoesNotMatch"))
            && s["rows_spooled"] == 300
            && s["spool_files"] == 6
    });
    assert_eq!(s["files_uploaded"], 0, "{s}");
    assert_eq!(s["quarantined_files"], 0, "{s}");
    assert!(terminate(&mut child).success());
    let mut log = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut log).unwrap();
    assert!(log.contains("PAUSED"), "{log}");
    assert!(
        !log.contains("WRONGKEY") && !log.contains(SECRET_KEY),
        "no secret in the log"
    );

    let out = run(&["run", "--config", config, "--until-drained"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let c = compare("gw-1", &simulated_rows(0, 300), &lake.rows("raw/"));
    assert!(c.is_exact() && c.in_s3 == 300, "{c}");
}

#[test]
fn an_unclassified_answer_is_logged_once_with_its_code_and_message_and_retried() {
    use common::fault_proxy::Documented;
    let lake = Lake::start();
    let proxy = FaultProxy::start(lake.server.addr(), FaultPlan::pass()).unwrap();
    proxy.script([Fault::Documented(Documented::Unclassified); 5]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &proxy.endpoint(),
        &simulate(100),
        "backoff_initial = \"10ms\"\nbackoff_max = \"50ms\"\n",
    );
    let out = run(&[
        "run",
        "--config",
        config.to_str().unwrap(),
        "--until-drained",
    ]);
    let log = text(&out.stderr);
    assert!(out.status.success(), "{log}");
    let warned: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("TeapotError"))
        .collect();
    assert_eq!(warned.len(), 1, "logged once:\n{log}");
    assert!(
        warned[0].contains("418") && warned[0].contains("An answer no documentation lists"),
        "{}",
        warned[0]
    );
    assert_eq!(status(dir.path())["retries"], 5, "each answer was retried");
    assert_eq!(lake.rows("raw/").rows.len(), 100);
}

#[test]
fn a_quarantined_file_is_listed_with_its_reason_and_requeued() {
    let lake = Lake::start();
    let proxy = FaultProxy::start(lake.server.addr(), FaultPlan::pass()).unwrap();
    proxy.script([Fault::EntityTooLarge]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &proxy.endpoint(), &simulate(200), "");
    let config = config.to_str().unwrap();
    let out = run(&["run", "--config", config, "--until-drained"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("1 file(s) wait in quarantine"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        lake.rows("raw/").rows.len(),
        150,
        "one file of 50 rows is quarantined"
    );

    let out = run(&["spool", "list", "--config", config]);
    let listing = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        listing.contains("quarantine (1 files)") && listing.contains("EntityTooLarge"),
        "{listing}"
    );
    let out = run(&["spool", "stats", "--config", config, "--json"]);
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["quarantine"].as_array().unwrap().len(), 1, "{stats}");
    assert_eq!(stats["position"], 200, "{stats}");

    // Not while an agent holds the spool.
    let lock = sensorlake_cli::agent::lock_spool(&dir.path().join("spool")).unwrap();
    let out = run(&["spool", "requeue", "--config", config]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("in use"),
        "{}",
        text(&out.stderr)
    );
    drop(lock);

    let out = run(&["spool", "requeue", "--config", config]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("1 file(s) requeued"),
        "{}",
        text(&out.stderr)
    );
    let out = run(&["run", "--config", config, "--until-drained"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let c = compare("gw-1", &simulated_rows(0, 200), &lake.rows("raw/"));
    assert!(c.is_exact() && c.in_s3 == 200, "{c}");
    let listing = sensorlake_cli::spool_cmd::list(&dir.path().join("spool")).unwrap();
    assert!(listing.quarantine.is_empty() && listing.ready.is_empty());
}

#[test]
fn a_bad_configuration_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sensorlake.toml");
    std::fs::write(
        &config,
        "device_id = \"gw-1\"\n[spool]\nwhen_ful = \"drop-oldest\"\n",
    )
    .unwrap();
    let out = run(&["run", "--config", config.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("sensorlake.toml") && err.contains("when_ful"),
        "{err}"
    );
    let out = command(
        &["run", "--config", "/nonexistent/sensorlake.toml"],
        SECRET_KEY,
    )
    .output()
    .unwrap();
    assert!(text(&out.stderr).contains("/nonexistent/sensorlake.toml"));
}

/// 12,000 rows whose column `a` holds integers beyond f32's mantissa, `1.5` at line
/// 11,000 and `b` an empty cell at line 11,500.
fn write_wide_csv(path: &Path) -> Vec<(i64, Vec<sensorlake::batch::Value>)> {
    use sensorlake::batch::Value;
    let mut text = String::from("timestamp,a,b\n");
    let mut rows = Vec::new();
    for i in 0..12_000i64 {
        let ts = START_US + i * 1_000_000;
        let (a, a_value) = if i == 10_998 {
            ("1.5".to_string(), Value::F64(1.5))
        } else {
            (
                (16_777_217 + i).to_string(),
                Value::F64((16_777_217 + i) as f64),
            )
        };
        let (b, b_value) = if i == 11_498 {
            (String::new(), Value::Null)
        } else {
            (i.to_string(), Value::Int(i))
        };
        text.push_str(&format!("{ts},{a},{b}\n"));
        rows.push((ts, vec![a_value, b_value]));
    }
    std::fs::write(path, text).unwrap();
    rows
}

fn csv_source(extra: &str) -> String {
    format!("[source]\nkind = \"csv\"\npath = \"r.csv\"\nrate_hz = 0\n{extra}")
}

#[test]
fn the_csv_source_infers_from_the_whole_file_and_stores_every_row_exactly() {
    let lake = Lake::start();
    let dir = tempfile::tempdir().unwrap();
    let expected = write_wide_csv(&dir.path().join("r.csv"));
    let config = write_config(dir.path(), &lake.server.endpoint(), &csv_source(""), "");
    let out = run(&[
        "run",
        "--config",
        config.to_str().unwrap(),
        "--until-drained",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let c = compare("gw-1", &expected, &lake.rows("raw/"));
    assert!(c.is_exact() && c.in_s3 == 12_000, "{c}");
    assert_eq!(status(dir.path())["rows_skipped"], 0);
}

#[test]
fn a_csv_row_that_cannot_be_stored_stops_the_agent_or_is_skipped_loudly() {
    let lake = Lake::start();
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("r.csv");
    let mut expected = write_wide_csv(&csv);
    // Line 12,002: not a number.
    let mut f = std::fs::OpenOptions::new().append(true).open(&csv).unwrap();
    writeln!(f, "{},garbage,1", START_US + 12_000_000_000).unwrap();
    writeln!(f, "{},7,7", START_US + 12_001_000_000).unwrap();
    drop(f);
    expected.push((
        START_US + 12_001_000_000,
        vec![
            sensorlake::batch::Value::F64(7.0),
            sensorlake::batch::Value::Int(7),
        ],
    ));
    let config = write_config(dir.path(), &lake.server.endpoint(), &csv_source(""), "");
    let out = run(&[
        "run",
        "--config",
        config.to_str().unwrap(),
        "--until-drained",
    ]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("r.csv:line 12002, column 2"), "{err}");
    assert!(err.contains("on_bad_row"), "{err}");

    // Opt-in skipping: every other row is stored, the skip is counted, and
    // --until-drained fails because a row is missing.
    let config = write_config(
        dir.path(),
        &lake.server.endpoint(),
        &csv_source("on_bad_row = \"skip\""),
        "",
    );
    let out = run(&[
        "run",
        "--config",
        config.to_str().unwrap(),
        "--until-drained",
    ]);
    assert!(!out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("skipping a row") && err.contains("line 12002"),
        "{err}"
    );
    assert!(err.contains("1 source rows were skipped"), "{err}");
    assert!(
        err.contains("skipped 1)"),
        "the status line counts it: {err}"
    );
    assert_eq!(status(dir.path())["rows_skipped"], 1);
    let c = compare("gw-1", &expected, &lake.rows("raw/"));
    assert!(c.is_exact() && c.in_s3 == 12_001, "{c}");
}

#[test]
fn a_stdin_value_its_channel_cannot_hold_stops_the_agent_with_its_line() {
    let lake = Lake::start();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &lake.server.endpoint(),
        "[source]\nkind = \"stdin\"",
        "",
    );
    let mut child = command(
        &[
            "run",
            "--config",
            config.to_str().unwrap(),
            "--until-drained",
        ],
        SECRET_KEY,
    )
    .stdin(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    // stdin channels are f32: 16777217 would be stored as 16777216.
    write!(
        child.stdin.take().unwrap(),
        "timestamp,a\n{START_US},1.5\n{},16777217\n",
        START_US + 1
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("stdin:line 3, column 2: 16777217 cannot be stored exactly in f32"),
        "{err}"
    );
}

/// Waits for `child` up to `limit`; `None` if it is still running.
fn wait_up_to(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn stderr_of(child: &mut Child) -> String {
    let mut log = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut log).unwrap();
    log
}

/// Spools the 9 files of 450 simulated rows without uploading any (the endpoint
/// refuses connections), then stops the agent.
fn spool_nine_files(dir: &Path) -> PathBuf {
    let config = write_config(dir, "http://127.0.0.1:1", &simulate(450), "");
    let mut child = command(&["run", "--config", config.to_str().unwrap()], SECRET_KEY)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(dir, "9 files spooled", |s| {
        s["files_spooled"] == 9 && s["source_done"] == true
    });
    let exit = terminate(&mut child);
    assert!(exit.success(), "{exit:?}\n{}", stderr_of(&mut child));
    dir.join("spool")
}

#[cfg(unix)]
#[test]
fn a_stray_highest_numbered_file_hides_nothing_and_requeue_numbers_stay_unique() {
    let lake = Lake::start();
    let dir = tempfile::tempdir().unwrap();
    let spool = spool_nine_files(dir.path());
    let ready = spool.join("ready");
    let mut spooled: Vec<String> = std::fs::read_dir(&ready)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    spooled.sort();
    assert_eq!(spooled.len(), 9, "{spooled:?}");
    // Copies of two spooled files under the highest names a u64 can spell, a directory
    // and a symlink with spool names.
    std::fs::copy(ready.join(&spooled[0]), ready.join("ffffffffffffffff.pq")).unwrap();
    std::fs::copy(ready.join(&spooled[1]), ready.join("fffffffffffffffe.pq")).unwrap();
    std::fs::create_dir(ready.join("00000100.pq")).unwrap();
    std::os::unix::fs::symlink(ready.join(&spooled[2]), ready.join("00000101.pq")).unwrap();

    let spool_arg = spool.to_str().unwrap();
    let out = run(&["spool", "list", "--dir", spool_arg]);
    let listing = text(&out.stdout);
    assert!(
        listing.contains("ready (9 files")
            && listing.contains("not spool files in ready/ (4")
            && listing.contains("ffffffffffffffff.pq")
            && listing.contains("a directory")
            && listing.contains("a symlink"),
        "{listing}"
    );
    let out = run(&["spool", "stats", "--dir", spool_arg]);
    assert!(
        text(&out.stdout).contains("NOT SPOOL FILES in ready/: 4"),
        "{}",
        text(&out.stdout)
    );

    let config = write_config(dir.path(), &lake.server.endpoint(), &simulate(450), "");
    let config = config.to_str().unwrap();
    let out = run(&["run", "--config", config, "--until-drained"]);
    let log = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{log}");
    assert!(log.contains("4 file(s) wait in quarantine"), "{log}");
    assert!(
        log.contains("quarantining ready/ffffffffffffffff.pq") && log.contains("beyond"),
        "{log}"
    );
    assert!(log.contains("a symlink in ready/"), "{log}");
    let c = compare("gw-1", &simulated_rows(0, 450), &lake.rows("raw/"));
    assert!(
        c.is_exact() && c.in_s3 == 450,
        "all 9 files are uploaded: {c}"
    );
    assert_eq!(lake.keys("raw/").len(), 9);

    let out = run(&["spool", "requeue", "--config", config]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let moved: Vec<String> = text(&out.stdout)
        .lines()
        .filter_map(|l| l.split(" as ready/").nth(1))
        .map(str::to_string)
        .collect();
    let mut distinct = moved.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 2, "{moved:?}");
    for name in &distinct {
        let seq = u64::from_str_radix(name.split(['-', '.']).next().unwrap(), 16).unwrap();
        assert!(
            (9..1 << 40).contains(&seq),
            "a new number above the spooled ones: {name}"
        );
    }
    assert!(
        text(&out.stderr).contains("not a spooled file: left in quarantine"),
        "{}",
        text(&out.stderr)
    );
    // The requeued copies are already stored (412): still exactly the 450 rows.
    let out = run(&["run", "--config", config, "--until-drained"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("2 file(s) wait in quarantine"),
        "the directory and the symlink: {}",
        text(&out.stderr)
    );
    let c = compare("gw-1", &simulated_rows(0, 450), &lake.rows("raw/"));
    assert!(c.is_exact() && c.in_s3 == 450, "{c}");
}

#[test]
fn a_worker_thread_that_dies_stops_the_agent_with_an_error() {
    for (failpoint, thread) in [
        ("after-encode:2:panic", "source"),
        ("after-put:2:panic", "upload"),
    ] {
        let lake = Lake::start();
        let dir = tempfile::tempdir().unwrap();
        let config = write_config(dir.path(), &lake.server.endpoint(), &simulate(400), "");
        let config = config.to_str().unwrap();
        let mut child = command(&["run", "--config", config, "--until-drained"], SECRET_KEY)
            .env("SENSORLAKE_FAILPOINT", failpoint)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let Some(exit) = wait_up_to(&mut child, Duration::from_secs(90)) else {
            let _ = child.kill();
            panic!(
                "{failpoint}: the agent kept running after its {thread} thread died\n{}",
                stderr_of(&mut child)
            );
        };
        let log = stderr_of(&mut child);
        assert!(!exit.success() && exit.code() != Some(3), "{exit:?}\n{log}");
        assert!(
            log.contains(&format!("the {thread} thread died")) && log.contains("fail point"),
            "{failpoint}: {log}"
        );
        // Nothing was lost: a run without the fail point uploads every row exactly once.
        let out = run(&["run", "--config", config, "--until-drained"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let c = compare("gw-1", &simulated_rows(0, 400), &lake.rows("raw/"));
        assert!(c.is_exact() && c.in_s3 == 400, "{failpoint}: {c}");
    }
}

#[test]
fn a_clock_offset_beyond_its_range_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "http://127.0.0.1:1", &simulate(10), "");
    for offset in ["9223372036854775807", "-9223372036854775808", "3155760001"] {
        let mut child = command(&["run", "--config", config.to_str().unwrap()], SECRET_KEY)
            .env("SENSORLAKE_CLOCK_OFFSET_SECS", offset)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let Some(exit) = wait_up_to(&mut child, Duration::from_secs(60)) else {
            let _ = child.kill();
            panic!(
                "offset {offset}: the agent started: {}",
                stderr_of(&mut child)
            );
        };
        let log = stderr_of(&mut child);
        assert!(!exit.success(), "{log}");
        assert!(
            log.contains("SENSORLAKE_CLOCK_OFFSET_SECS")
                && log.contains("outside the allowed range"),
            "{log}"
        );
        assert!(!log.contains("panicked"), "{log}");
    }
}

#[test]
fn the_final_status_after_sigterm_shows_the_spool_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing can be uploaded: the flushed batch stays in the spool.
    let config = write_config(
        dir.path(),
        "http://127.0.0.1:1",
        "[source]\nkind = \"stdin\"\n[[channels]]\nname = \"temp\"",
        "",
    );
    let text_config = std::fs::read_to_string(&config)
        .unwrap()
        .replace("max_rows = 50", "max_rows = 1000\nmax_age = \"1h\"");
    std::fs::write(&config, text_config).unwrap();
    let mut child = command(&["run", "--config", config.to_str().unwrap()], SECRET_KEY)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "timestamp,temp").unwrap();
    let now_us = jiff::Timestamp::now().as_microsecond();
    let start_us = now_us - now_us % 3_600_000_000;
    for i in 0..20 {
        writeln!(stdin, "{},{}.5", start_us + i * 10_000, 20 + i % 5).unwrap();
    }
    stdin.flush().unwrap();
    wait_for(dir.path(), "20 rows in", |s| s["rows_in"] == 20);
    let exit = terminate(&mut child);
    let log = stderr_of(&mut child);
    assert!(exit.success(), "{exit:?}\n{log}");
    drop(stdin);
    let listing = sensorlake_cli::spool_cmd::list(&dir.path().join("spool")).unwrap();
    assert_eq!(listing.ready.len(), 1, "{listing:?}");
    let s = status(dir.path());
    assert_eq!(s["spool_files"], 1, "status.json at exit: {s}");
    assert_eq!(s["spool_bytes"], listing.ready[0].size, "{s}");
    let last = log.lines().rfind(|l| l.contains("status: ")).unwrap();
    assert!(last.contains("spool 1 files"), "{last}");
}

#[test]
fn the_simulators_default_start_is_the_first_run_and_the_brokers_default_window_takes_it() {
    use sensorlake::key::{DeviceId, KeyTemplate, Layout};
    use sensorlake::presign::Credentials;
    use sensorlake_cli::broker::registry::Registry;
    use sensorlake_cli::broker::{Broker, BrokerConfig};

    let lake = Lake::start();
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::new(dir.path().join("devices.json"));
    // The broker's default window (`broker serve` defaults: 720h back, 5 min ahead).
    let broker_config = BrokerConfig::new(
        registry.path(),
        dir.path().join("audit.jsonl"),
        lake.target(&lake.server.endpoint()),
        Credentials::new(ACCESS_KEY, SECRET_KEY),
    );
    let broker = Broker::start(broker_config).unwrap();
    let template = KeyTemplate::new(Layout::Hive, "raw").unwrap();
    let token = registry
        .add_device(&DeviceId::new("gw-1").unwrap(), &template, false)
        .unwrap();
    std::fs::write(dir.path().join("gw-1.token"), format!("{token}\n")).unwrap();
    let extra = format!(
        "[credentials]\nsource = \"broker\"\nbroker_url = \"{}\"\ntoken_file = \"gw-1.token\"\n",
        broker.url()
    );
    // No `start`: 64 Hz rows from now, as fast as possible (10 s of rows per run).
    let source = |rows: u64| {
        format!("[source]\nkind = \"simulate\"\nprofile = \"imu\"\nrows = {rows}\nrate_hz = 0")
    };
    let before_us = jiff::Timestamp::now().as_microsecond();
    let config = write_config(dir.path(), &lake.server.endpoint(), &source(640), &extra);
    let out = run(&[
        "run",
        "--config",
        config.to_str().unwrap(),
        "--until-drained",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let kept = std::fs::read_to_string(dir.path().join("spool/simulate-start")).unwrap();
    let start: jiff::Timestamp = kept.trim().parse().unwrap();
    let start_us = start.as_microsecond();
    assert!(
        start_us >= before_us - 1_000_000 && start_us <= jiff::Timestamp::now().as_microsecond(),
        "{kept}"
    );
    // A restart resumes the same rows.
    let config = write_config(dir.path(), &lake.server.endpoint(), &source(1280), &extra);
    let out = run(&[
        "run",
        "--config",
        config.to_str().unwrap(),
        "--until-drained",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let sim = Simulator::new(Profile::Imu, "gw-1", 1, start_us);
    let mut values = Vec::new();
    let expected: Vec<_> = (0..1280)
        .map(|i| (sim.row(i, &mut values), values.clone()))
        .collect();
    let c = compare("gw-1", &expected, &lake.rows("raw/"));
    assert!(c.is_exact() && c.in_s3 == 1280, "{c}");
    assert!(
        sensorlake_cli::spool_cmd::list(&dir.path().join("spool"))
            .unwrap()
            .quarantine
            .is_empty()
    );
    // Another start would change the rows already read: refused, naming the key.
    let other = format!("{}\nstart = \"{START}\"", source(2000));
    let config = write_config(dir.path(), &lake.server.endpoint(), &other, &extra);
    let out = run(&["run", "--config", config.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("[source] start") && text(&out.stderr).contains("differs"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(lake.rows("raw/").rows.len(), 1280);
}

#[test]
fn a_key_outside_the_brokers_window_is_quarantined_naming_the_settings() {
    use sensorlake::key::{DeviceId, KeyTemplate, Layout};
    use sensorlake::presign::Credentials;
    use sensorlake_cli::broker::registry::Registry;
    use sensorlake_cli::broker::{Broker, BrokerConfig};

    let lake = Lake::start();
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::new(dir.path().join("devices.json"));
    let broker = Broker::start(BrokerConfig::new(
        registry.path(),
        dir.path().join("audit.jsonl"),
        lake.target(&lake.server.endpoint()),
        Credentials::new(ACCESS_KEY, SECRET_KEY),
    ))
    .unwrap();
    let template = KeyTemplate::new(Layout::Hive, "raw").unwrap();
    let token = registry
        .add_device(&DeviceId::new("gw-1").unwrap(), &template, false)
        .unwrap();
    std::fs::write(dir.path().join("gw-1.token"), format!("{token}\n")).unwrap();
    let extra = format!(
        "[credentials]\nsource = \"broker\"\nbroker_url = \"{}\"\ntoken_file = \"gw-1.token\"\n",
        broker.url()
    );
    // An explicit start in 2024: older than the default 720 h window.
    let config = write_config(dir.path(), &lake.server.endpoint(), &simulate(50), &extra);
    let out = run(&[
        "run",
        "--config",
        config.to_str().unwrap(),
        "--until-drained",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let listing = sensorlake_cli::spool_cmd::list(&dir.path().join("spool")).unwrap();
    assert_eq!(listing.quarantine.len(), 1, "{listing:?}");
    let reason = &listing.quarantine[0].reason;
    assert!(
        reason.contains("--max-age") && reason.contains("[source] start"),
        "{reason}"
    );
}

#[test]
fn every_documented_range_end_loads_and_runs_without_a_panic() {
    use sensorlake_cli::agent_config::{documented_ranges, example_with};
    let example = include_str!("../../../sensorlake.example.toml");
    let lake = Lake::start();
    let endpoint = lake.server.endpoint();
    let mut base = example_with(example, "s3", "endpoint", &format!("\"{endpoint}\""));
    base = example_with(&base, "s3", "path_style", "true");
    base = example_with(&base, "source", "rows", "100");
    base = example_with(&base, "source", "rate_hz", "0");
    let mut cases = Vec::new();
    for (table, key, min, max) in documented_ranges(example) {
        for value in [min, max] {
            let mut text = example_with(&base, &table, &key, &value);
            // Keep each pair consistent (a maximum is never below its initial value).
            match (table.as_str(), key.as_str()) {
                ("upload", "backoff_max") => {
                    text = example_with(&text, "upload", "backoff_initial", &value)
                }
                ("upload", "pause_max") => {
                    text = example_with(&text, "upload", "pause_initial", &value)
                }
                ("upload", "backoff_initial") => {
                    text = example_with(&text, "upload", "backoff_max", &value)
                }
                ("upload", "pause_initial") => {
                    text = example_with(&text, "upload", "pause_max", &value)
                }
                ("journal", "sync_every_rows") => {
                    text = example_with(&text, "journal", "enabled", "true")
                }
                _ => {}
            }
            cases.push((format!("[{table}] {key} = {value}"), text));
        }
    }
    assert!(cases.len() >= 36, "{} cases", cases.len());
    let run_case = |name: &str, text: &str| {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("sensorlake.toml");
        std::fs::write(&config, text).unwrap();
        let mut child = command(
            &[
                "run",
                "--config",
                config.to_str().unwrap(),
                "--until-drained",
            ],
            SECRET_KEY,
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
        // A short run: drained, or stopped after a while (endless sources, slow rates,
        // a spool too small for a file).
        let exit = match wait_up_to(&mut child, Duration::from_secs(12)) {
            Some(exit) => exit,
            None => terminate(&mut child),
        };
        let log = stderr_of(&mut child);
        assert!(
            exit.success() && !log.contains("panicked"),
            "{name}: {exit:?}\n{log}"
        );
    };
    let run_case = &run_case;
    std::thread::scope(|scope| {
        for chunk in cases.chunks(cases.len().div_ceil(4)) {
            scope.spawn(move || {
                for (name, text) in chunk {
                    run_case(name, text);
                }
            });
        }
    });
}
