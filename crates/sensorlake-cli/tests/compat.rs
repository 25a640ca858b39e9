//! What release 0.1 wrote still works with today's binary: its spools (stdin source with
//! a journal; csv source with an upload position in `state/`) drain into the embedded S3
//! server with every row exactly once, its configurations load, and its lake files read
//! back with the rows they were made from. The fixtures and how they were made:
//! `tests/fixtures/release-0.1/README.md`.

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{ACCESS_KEY, Lake, SECRET_KEY, compare, value_bits};
use sensorlake::batch::Value;
use sensorlake::encode::{META_DEVICE_ID, META_OBJECT_KEY};

const BIN: &str = env!("CARGO_BIN_EXE_sensorlake");
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/release-0.1");
/// The endpoint written in the fixture configurations: nothing listens there.
const UNREACHABLE: &str = "\"http://127.0.0.1:9\"";

/// The rows of `readings.csv`: timestamp, temperature (f32), humidity (f32, empty =
/// null), count and raw (integers).
fn readings() -> Vec<(i64, Vec<Value>)> {
    let text = std::fs::read_to_string(Path::new(FIXTURES).join("readings.csv")).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("timestamp,temperature,humidity,count,raw")
    );
    lines
        .map(|line| {
            let cells: Vec<&str> = line.split(',').collect();
            let ts = sensorlake::csv::parse_timestamp(cells[0]).unwrap();
            let float = |c: &str| match c {
                "" => Value::Null,
                c => Value::F32(c.parse().unwrap()),
            };
            let int = |c: &str| Value::Int(c.parse().unwrap());
            (
                ts,
                vec![
                    float(cells[1]),
                    float(cells[2]),
                    int(cells[3]),
                    int(cells[4]),
                ],
            )
        })
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The fixtures in a fresh directory, configurations pointed at `endpoint` (the only
/// change: the release's files stay as they were written).
fn fixtures_for(endpoint: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(Path::new(FIXTURES), dir.path());
    for config in ["sensorlake.toml", "sensorlake-csv.toml"] {
        let path = dir.path().join(config);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(UNREACHABLE), "{config} names {UNREACHABLE}");
        std::fs::write(&path, text.replace(UNREACHABLE, &format!("\"{endpoint}\""))).unwrap();
    }
    dir
}

/// Runs `sensorlake` in `dir` with the server's keys and no input; killed (and the test
/// failed) if it has not exited after two minutes.
fn sensorlake(dir: &Path, args: &[&str]) -> Output {
    sensorlake_with_input(dir, args, "")
}

/// [`sensorlake`] with `input` on its standard input.
fn sensorlake_with_input(dir: &Path, args: &[&str], input: &str) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("SENSORLAKE_FAILPOINT")
        .env_remove("SENSORLAKE_CLOCK_OFFSET_SECS")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).unwrap();
    drop(stdin);
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!(
                "sensorlake {args:?} did not exit within 2 min: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn succeeded(out: &Output, what: &str) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
}

/// The files in `dir` (recursively) whose names end with `ext`, sorted.
fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(files(&path, ext));
        } else if path.to_string_lossy().ends_with(ext) {
            found.push(path);
        }
    }
    found.sort();
    found
}

/// The object key inside a spooled file.
fn object_key(file: &Path) -> String {
    let decoded = sensorlake::decode::decode(Bytes::from(std::fs::read(file).unwrap())).unwrap();
    decoded.meta(META_OBJECT_KEY).unwrap().to_string()
}

#[test]
fn release_0_1_spools_drain_with_every_row_exactly_once() {
    let lake = Lake::start();
    let dir = fixtures_for(&lake.server.endpoint());
    let dir = dir.path();
    let readings = readings();
    assert_eq!(readings.len(), 150);

    // The configurations load and the spools read as written: 3 + 2 files waiting.
    for (config, waiting) in [("sensorlake.toml", 3), ("sensorlake-csv.toml", 2)] {
        let list = succeeded(
            &sensorlake(dir, &["spool", "list", "--config", config, "--json"]),
            config,
        );
        assert_eq!(
            list["ready"].as_array().map(Vec::len),
            Some(waiting),
            "{list}"
        );
    }
    let old_files: Vec<(String, Vec<u8>)> = files(&dir.join("spool/ready"), ".pq")
        .into_iter()
        .chain(files(&dir.join("spool-csv/ready"), ".pq"))
        .map(|f| (object_key(&f), std::fs::read(&f).unwrap()))
        .collect();
    assert_eq!(old_files.len(), 5);

    // stdin spool: the 3 files, then the 30 rows of the journal (stdin has only the
    // header now).
    succeeded(
        &sensorlake_with_input(
            dir,
            &["run", "--config", "sensorlake.toml", "--until-drained"],
            "timestamp,temperature,humidity,count,raw\n",
        ),
        "drain the stdin spool",
    );
    let stored = lake.rows("raw/device_id=gw-1/");
    assert!(stored.bad_objects.is_empty(), "{:?}", stored.bad_objects);
    let c = compare("gw-1", &readings, &stored);
    assert!(c.is_exact() && c.in_s3 == 150, "stdin spool: {c}");

    // csv spool: rows 81-150; rows 1-80 were uploaded before (the position in state/),
    // so they are neither re-read nor sent again.
    succeeded(
        &sensorlake(
            dir,
            &["run", "--config", "sensorlake-csv.toml", "--until-drained"],
        ),
        "drain the csv spool",
    );
    let stored = lake.rows("raw/device_id=gw-csv/");
    assert!(stored.bad_objects.is_empty(), "{:?}", stored.bad_objects);
    let c = compare("gw-csv", &readings[80..], &stored);
    assert!(c.is_exact() && c.in_s3 == 70, "csv spool: {c}");

    // Each file the release spooled is stored byte for byte at the key inside it.
    for (key, bytes) in &old_files {
        assert!(lake.get(key) == *bytes, "{key} is not the spooled file");
    }
    for config in ["sensorlake.toml", "sensorlake-csv.toml"] {
        let list = succeeded(
            &sensorlake(dir, &["spool", "list", "--config", config, "--json"]),
            config,
        );
        assert_eq!(list["ready"].as_array().map(Vec::len), Some(0), "{list}");
        assert_eq!(
            list["quarantine"].as_array().map(Vec::len),
            Some(0),
            "{list}"
        );
    }
}

#[test]
fn release_0_1_lake_reads_back_with_its_rows() {
    let dir = fixtures_for("http://127.0.0.1:1");
    let lake_files = files(&dir.path().join("lake"), ".parquet");
    assert_eq!(lake_files.len(), 3);
    let mut rows = Vec::new();
    for file in &lake_files {
        let decoded =
            sensorlake::decode::decode(Bytes::from(std::fs::read(file).unwrap())).unwrap();
        assert_eq!(decoded.meta(META_DEVICE_ID), Some("gw-lake"));
        let key = decoded.meta(META_OBJECT_KEY).unwrap().to_string();
        assert!(file.ends_with(&key), "{} holds key {key}", file.display());
        decoded.batch.for_each_row(|ts, values| {
            rows.push((ts, values.iter().map(value_bits).collect::<Vec<_>>()));
        });
    }
    let expected: Vec<_> = readings()
        .into_iter()
        .map(|(ts, values)| (ts, values.iter().map(value_bits).collect::<Vec<_>>()))
        .collect();
    assert!(rows == expected, "the lake's rows differ from readings.csv");

    // inspect and ddl read the release's files.
    let args: Vec<&str> = ["inspect", "--json"]
        .into_iter()
        .chain(lake_files.iter().map(|f| f.to_str().unwrap()))
        .collect();
    let inspected = succeeded(&sensorlake(dir.path(), &args), "inspect");
    let total: u64 = inspected
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rows"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 150, "{inspected}");
    let ddl = sensorlake(
        dir.path(),
        &[
            "ddl",
            "--bucket",
            "lake",
            "--prefix",
            "raw",
            "--file",
            lake_files[0].to_str().unwrap(),
        ],
    );
    succeeded(&ddl, "ddl --file");
    let view = String::from_utf8_lossy(&ddl.stdout);
    for column in ["temperature", "humidity", "count", "raw"] {
        assert!(view.contains(column), "ddl has no {column}: {view}");
    }
}
