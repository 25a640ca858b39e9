//! Against Garage 2.5.0, a second real S3 server (independent of the embedded one, and
//! checking SigV4 on presigned URLs): `sensorlake run --until-drained` on a CSV stores
//! every row exactly, a gateway clock ten minutes behind is corrected from Garage's answer,
//! a signature for the wrong region pauses naming it, and what Garage does with
//! `If-None-Match` (it ignores it) is pinned, since the README's table of S3 services
//! says so. The crash test's Garage run is in tests/crash.rs.
//!
//! Garage comes from scripts/install-garage.sh (./test.sh runs it); these tests fail,
//! never skip, when it is missing.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::SystemTime;

use common::compare;
use common::garage::{GARAGE_ACCESS_KEY, GARAGE_REGION, GARAGE_SECRET_KEY, Garage};
use sensorlake::batch::Value;
use sensorlake::presign::PutRequest;
use sensorlake::upload::put_presigned;
use sensorlake_cli::http::{HostConnection, HttpConfig};

const BIN: &str = env!("CARGO_BIN_EXE_sensorlake");
const START_US: i64 = 1_709_251_200_000_000; // 2024-03-01T00:00:00Z

/// 4000 rows: an integer channel, a float channel with every 9th cell empty, and an
/// integer too large for f64 to hold nearby neighbours (i64 then).
fn write_csv(path: &Path) -> Vec<(i64, Vec<Value>)> {
    let mut text = String::from("timestamp,count,temp,big\n");
    let mut rows = Vec::new();
    for i in 0..4000i64 {
        let ts = START_US + i * 5_000_000;
        let temp = (i % 9 != 0).then(|| (i % 400) as f32 / 16.0 - 5.0);
        let big = 9_007_199_254_740_993 + i;
        text.push_str(&format!(
            "{ts},{},{},{big}\n",
            i % 1000,
            temp.map(|t| t.to_string()).unwrap_or_default()
        ));
        rows.push((
            ts,
            vec![
                Value::Int(i % 1000),
                temp.map_or(Value::Null, Value::F32),
                Value::Int(big),
            ],
        ));
    }
    std::fs::write(path, text).unwrap();
    rows
}

fn write_config(dir: &Path, garage: &Garage, region: &str) -> PathBuf {
    let path = dir.join("sensorlake.toml");
    let text = format!(
        r#"device_id = "gw-garage"
[source]
kind = "csv"
path = "r.csv"
rate_hz = 0
[batch]
max_rows = 178
[spool]
dir = "spool"
[s3]
endpoint = "{}"
bucket = "lake"
region = "{region}"
path_style = true
prefix = "raw"
[status]
interval = "200ms"
[upload]
pause_initial = "200ms"
pause_max = "400ms"
"#,
        garage.endpoint()
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn agent(config: &Path, clock_offset_secs: i64) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(["run", "--config"])
        .arg(config)
        .env("AWS_ACCESS_KEY_ID", GARAGE_ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", GARAGE_SECRET_KEY)
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env_remove("SENSORLAKE_FAILPOINT")
        .env(
            "SENSORLAKE_CLOCK_OFFSET_SECS",
            clock_offset_secs.to_string(),
        )
        .env("RUST_LOG", "sensorlake=info,sensorlake_cli=info");
    cmd
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn run_until_drained_on_a_csv_stores_every_row_exactly_in_garage() {
    let garage = Garage::start();
    let dir = tempfile::tempdir().unwrap();
    let expected = write_csv(&dir.path().join("r.csv"));
    let config = write_config(dir.path(), &garage, GARAGE_REGION);
    let out = agent(&config, 0).arg("--until-drained").output().unwrap();
    assert!(out.status.success(), "{}\n{}", text(&out), garage.log());
    let stored = garage.rows("raw/");
    assert!(stored.bad_objects.is_empty(), "{:?}", stored.bad_objects);
    let c = compare("gw-garage", &expected, &stored);
    assert!(c.is_exact() && c.in_s3 == 4000, "{c}");
}

#[test]
fn a_gateway_clock_ten_minutes_behind_is_corrected_and_one_ahead_is_accepted_by_garage() {
    // Behind: Garage answers 400 "Date is too old", the agent corrects its clock from
    // the answer's Date and signs again. Ahead: Garage 2.5.0 takes presigned URLs
    // signed in the future (an hour, here), so there is nothing to correct; the README's
    // table says so.
    for offset in [-600, 3600] {
        let garage = Garage::start();
        let dir = tempfile::tempdir().unwrap();
        let expected = write_csv(&dir.path().join("r.csv"));
        let config = write_config(dir.path(), &garage, GARAGE_REGION);
        let out = agent(&config, offset)
            .arg("--until-drained")
            .output()
            .unwrap();
        let log = text(&out);
        assert!(out.status.success(), "clock {offset} s: {log}");
        assert_eq!(
            log.contains("Date is too old") && log.contains("the device clock is off by"),
            offset < 0,
            "clock {offset} s: a correction is logged only for a clock behind:\n{log}"
        );
        let c = compare("gw-garage", &expected, &garage.rows("raw/"));
        assert!(c.is_exact() && c.in_s3 == 4000, "clock {offset} s: {c}");
        assert!(
            std::fs::read_dir(dir.path().join("spool/quarantine")).map_or(0, |d| d.count()) == 0,
            "nothing quarantined"
        );
    }
}

#[test]
fn a_signature_for_another_region_pauses_and_names_the_region() {
    let garage = Garage::start();
    let dir = tempfile::tempdir().unwrap();
    write_csv(&dir.path().join("r.csv"));
    let config = write_config(dir.path(), &garage, "eu-west-1");
    let mut child = agent(&config, 0)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let status = dir.path().join("spool/status.json");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let paused = loop {
        let s: serde_json::Value = std::fs::read(&status)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        if let Some(p) = s["paused_because"].as_str() {
            break p.to_string();
        }
        assert!(std::time::Instant::now() < deadline, "never paused: {s}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(paused.contains(GARAGE_REGION), "{paused}");
    assert!(garage.keys("raw/").is_empty());
}

/// What the README's S3 table says of Garage: it takes `If-None-Match: *` and ignores
/// it, so a second PUT to an existing key overwrites. (If Garage starts honouring the
/// condition, this fails and the table must change.)
#[test]
fn garage_ignores_if_none_match_so_a_second_put_overwrites() {
    let garage = Garage::start();
    let signer = garage.signer(&garage.endpoint());
    let mut conn = HostConnection::new(HttpConfig::default()).unwrap();
    let key = "probe/if-none-match.bin";
    for body in [b"first".as_slice(), b"second".as_slice()] {
        let put = signer
            .presign_put(&PutRequest::for_body(key, body), SystemTime::now())
            .unwrap();
        assert_eq!(put.header("if-none-match"), Some("*"));
        let answer = put_presigned(&mut conn, &put, body).unwrap();
        assert_eq!(answer.status, 200, "{answer}");
        assert_eq!(
            answer.etag.as_deref(),
            Some(sensorlake::presign::md5_hex(body).as_str()),
            "Garage's ETag is the body's MD5"
        );
    }
    assert_eq!(garage.get(key), b"second");
}

/// What the README's S3 table says of Garage's Content-MD5 check: a body that is not the
/// one the URL signs (same length, one byte changed) is refused and nothing is stored.
#[test]
fn garage_refuses_a_body_whose_md5_is_not_the_signed_one() {
    let garage = Garage::start();
    let signer = garage.signer(&garage.endpoint());
    let mut conn = HostConnection::new(HttpConfig::default()).unwrap();
    let key = "probe/content-md5.bin";
    let put = signer
        .presign_put(
            &PutRequest::for_body(key, b"signed body"),
            SystemTime::now(),
        )
        .unwrap();
    let answer = put_presigned(&mut conn, &put, b"signed bodY").unwrap();
    assert_eq!(answer.status, 400, "{answer}");
    assert!(
        matches!(answer.code.as_deref(), Some("BadDigest" | "InvalidDigest")),
        "{answer}"
    );
    assert!(garage.keys("probe/").is_empty());
}

/// The demo's upload path (each simulated device's pipeline, spool and uploader, and the
/// read-back through ListObjectsV2 + GetObject) against Garage, with keys and with the
/// presign broker; each run keeps to its own prefix.
#[test]
fn the_demo_uploads_to_garage_and_verifies_every_row() {
    let garage = Garage::start();
    for broker in [false, true] {
        let mut cmd = Command::new(BIN);
        cmd.args(["demo", "--duration", "2h", "--devices", "2", "--endpoint"])
            .arg(garage.endpoint())
            .args(["--region", GARAGE_REGION, "--path-style"])
            .env("AWS_ACCESS_KEY_ID", GARAGE_ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", GARAGE_SECRET_KEY)
            .env_remove("AWS_SESSION_TOKEN");
        if broker {
            cmd.arg("--broker");
        }
        let out = cmd.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout}\n{}", text(&out));
        assert!(
            stdout.contains("verified  2880 of 2880 rows") && stdout.contains("- OK"),
            "{stdout}"
        );
        assert!(stdout.contains("kept in s3://lake/raw/demo-"), "{stdout}");
    }
    let keys = garage.keys("raw/demo-");
    let runs: std::collections::BTreeSet<&str> =
        keys.iter().filter_map(|k| k.split('/').nth(1)).collect();
    assert_eq!(runs.len(), 2, "one prefix per run: {runs:?}");
}

#[test]
fn the_demo_without_keys_for_an_endpoint_says_what_it_needs() {
    let out = Command::new(BIN)
        .args(["demo", "--endpoint", "http://127.0.0.1:9"])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out).contains("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
        "{}",
        text(&out)
    );
}
