//! The `sensorlake` binary as a user runs it: exit codes, files written, messages.

use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_sensorlake");
const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/basicmotions.csv");

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .output()
        .expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn parquet_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(parquet_files(&path));
            } else if path.extension().is_some_and(|e| e == "parquet") {
                out.push(path);
            }
        }
    }
    out
}

#[test]
fn help_documents_every_command() {
    let out = run(&["--help"]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    for command in [
        "demo", "serve", "encode", "inspect", "presign", "ddl", "bench",
    ] {
        assert!(help.contains(command), "--help lacks {command}:\n{help}");
    }
}

#[test]
fn demo_verifies_every_row_and_refuses_a_non_empty_dir() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("lake-data");
    let data_arg = data.to_str().unwrap();
    let out = run(&[
        "demo",
        "--devices",
        "2",
        "--duration",
        "2h",
        "--dir",
        data_arg,
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    // 2 devices x 2 h at 5 s = 2880 rows, all read back through the S3 API.
    assert!(
        stdout.contains("2880 of 2880 rows read back via ListObjectsV2 + GetObject: 0 missing, 0 duplicated, 0 changed - OK"),
        "{stdout}"
    );
    assert!(
        stdout.contains("read_parquet("),
        "a DuckDB query is printed: {stdout}"
    );
    let files = parquet_files(&data.join("lake/raw"));
    assert!(!files.is_empty());
    assert!(files.iter().all(|f| {
        let s = f.to_string_lossy();
        s.contains("/device_id=enviro-0") && s.contains("/dt=") && s.contains("/hour=")
    }));

    let again = run(&["demo", "--duration", "10min", "--dir", data_arg]);
    assert!(!again.status.success());
    assert!(
        text(&again.stderr).contains("is not empty; pass --clean"),
        "{}",
        text(&again.stderr)
    );

    let cleaned = run(&[
        "demo",
        "--devices",
        "1",
        "--duration",
        "10min",
        "--dir",
        data_arg,
        "--clean",
    ]);
    assert!(cleaned.status.success(), "{}", text(&cleaned.stderr));
    assert!(
        parquet_files(&data.join("lake/raw"))
            .iter()
            .all(|f| f.to_string_lossy().contains("enviro-01"))
    );
}

#[test]
fn encode_writes_hive_files_that_inspect_describes() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let out = run(&[
        "encode",
        "--input",
        DATA,
        "--output-dir",
        out_dir.to_str().unwrap(),
        "--rows-per-file",
        "178",
        "--device-id",
        "watch-1",
        "--prefix",
        "raw",
        "--codec",
        "lz4",
        "--float-encoding",
        "byte-stream-split",
        "--ts-encoding",
        "delta",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let files = parquet_files(&out_dir);
    // 4000 rows in 178-row files: 22 full files and one of 84 rows, all in hour 08.
    assert_eq!(files.len(), 23);
    let mut args: Vec<String> = vec!["inspect".into(), "--json".into()];
    args.extend(files.iter().map(|f| f.to_string_lossy().into_owned()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let reports: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let reports = reports.as_array().unwrap();
    let rows: i64 = reports.iter().map(|r| r["rows"].as_i64().unwrap()).sum();
    assert_eq!(rows, 4000);
    for report in reports {
        let columns = report["columns"].as_array().unwrap();
        assert_eq!(columns[0]["name"], "ts");
        assert_eq!(columns[0]["logical_type"], "Timestamp(MICROS, UTC)");
        assert_eq!(columns[0]["codec"], "LZ4_RAW");
        assert!(
            columns[1]["encodings"]
                .as_array()
                .unwrap()
                .contains(&"BYTE_STREAM_SPLIT".into())
        );
        let kv = report["key_value_metadata"].as_array().unwrap();
        assert!(kv.contains(&serde_json::json!(["sensorlake.device_id", "watch-1"])));
    }
    let text_out = run(&["inspect", files[0].to_str().unwrap()]);
    assert!(text(&text_out.stdout).contains("178 rows"));
}

#[test]
fn a_bad_csv_line_names_file_line_and_column_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("bad.csv");
    std::fs::write(
        &csv,
        "timestamp,a,b\n2024-03-01T08:00:00Z,1,2\n2024-03-01T08:00:01Z,1,oops\n",
    )
    .unwrap();
    let output = dir.path().join("out.parquet");
    let out = run(&[
        "encode",
        "--input",
        csv.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("bad.csv:line 3, column 3"), "{err}");
    assert!(err.contains("\"oops\""), "{err}");
    assert!(!output.exists());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no temp files left"
    );
}

#[test]
fn bad_device_ids_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for bad in ["a/b", "..", "x y"] {
        let out = run(&[
            "encode",
            "--input",
            DATA,
            "--output-dir",
            dir.path().to_str().unwrap(),
            "--rows-per-file",
            "178",
            "--device-id",
            bad,
        ]);
        assert!(!out.status.success());
        assert!(
            text(&out.stderr).contains("device id"),
            "{}",
            text(&out.stderr)
        );
    }
    assert!(parquet_files(dir.path()).is_empty());
}

#[test]
fn presign_reproduces_a_url_at_a_given_time() {
    let args = [
        "presign",
        "--endpoint",
        "https://s3.amazonaws.com",
        "--bucket",
        "examplebucket",
        "--key",
        "raw/device_id=gw-1/x.parquet",
        "--at",
        "2024-03-01T08:00:00Z",
    ];
    let missing = run(&args);
    assert!(!missing.status.success());
    assert!(text(&missing.stderr).contains("AWS_ACCESS_KEY_ID"));
    let signed = |extra: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend_from_slice(extra);
        Command::new(BIN)
            .args(&all)
            .env("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
            .env(
                "AWS_SECRET_ACCESS_KEY",
                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            )
            .env_remove("AWS_SESSION_TOKEN")
            .output()
            .unwrap()
    };
    let a = signed(&[]);
    let b = signed(&[]);
    assert!(a.status.success(), "{}", text(&a.stderr));
    assert_eq!(a.stdout, b.stdout);
    let url = text(&a.stdout);
    assert!(
        url.starts_with("https://examplebucket.s3.amazonaws.com/raw/device_id%3Dgw-1/x.parquet?"),
        "{url}"
    );
    assert!(
        url.contains("X-Amz-Date=20240301T080000Z&X-Amz-Expires=300&X-Amz-SignedHeaders=host&"),
        "{url}"
    );
    let with_file = signed(&["--file", DATA]);
    assert!(
        text(&with_file.stdout).contains("content-length%3Bcontent-md5%3Bhost%3Bif-none-match")
    );
    assert!(text(&with_file.stderr).contains("content-md5: "));
}

fn encode_to(csv: &Path, output: &Path) -> Output {
    run(&[
        "encode",
        "--input",
        csv.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
    ])
}

fn decoded_rows(file: &Path) -> Vec<Vec<sensorlake::Value>> {
    let bytes = std::fs::read(file).unwrap();
    let decoded = sensorlake::decode::decode(bytes.into()).unwrap();
    let mut rows = Vec::new();
    decoded
        .batch
        .for_each_row(|_, values| rows.push(values.to_vec()));
    rows
}

#[test]
fn encode_stores_every_value_exactly_or_refuses_it_with_its_position() {
    use sensorlake::Value;
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("in.csv");
    let output = dir.path().join("out.parquet");
    // f32 would store 16777217 as 16777216 and 1e39 as infinity (null): f64 holds both.
    std::fs::write(
        &csv,
        "timestamp,i,x\n2024-03-01T08:00:00Z,16777217,1.5\n2024-03-01T08:00:01Z,16777219,16777217\n2024-03-01T08:00:02Z,3,1e39\n2024-03-01T08:00:03Z,4,\n",
    )
    .unwrap();
    let out = encode_to(&csv, &output);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        decoded_rows(&output),
        [
            [Value::Int(16777217), Value::F64(1.5)],
            [Value::Int(16777219), Value::F64(16777217.0)],
            [Value::Int(3), Value::F64(1e39)],
            [Value::Int(4), Value::Null],
        ]
    );
    let inspect = run(&["inspect", "--json", output.to_str().unwrap()]);
    let report: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(
        report[0]["columns"][2]["physical_type"], "DOUBLE",
        "{report}"
    );
    let ddl = run(&[
        "ddl",
        "--bucket",
        "lake",
        "--file",
        output.to_str().unwrap(),
    ]);
    assert!(
        text(&ddl.stdout).contains("`x` double"),
        "{}",
        text(&ddl.stdout)
    );

    // What no type holds is refused with file:line:column, and nothing is written.
    std::fs::remove_file(&output).unwrap();
    let huge = "9".repeat(50_000_000);
    for (line, message) in [
        (
            "99999999999999999999,",
            "line 3, column 2: 99999999999999999999 is out of range",
        ),
        (huge.as_str(), "is out of range"),
        ("1e-400", "line 3, column 2: 1e-400 underflows to 0"),
        ("-1e400", "line 3, column 2: -1e400 is out of range for f64"),
    ] {
        let cell = line.trim_end_matches(',');
        std::fs::write(
            &csv,
            format!("timestamp,a\n1709280000000000,1\n1709280000000001,{cell}\n"),
        )
        .unwrap();
        let out = encode_to(&csv, &output);
        assert!(!out.status.success());
        let err = text(&out.stderr);
        assert!(err.contains(message), "{}", &err[..err.len().min(300)]);
        assert!(
            err.contains("in.csv:line 3, column 2"),
            "{}",
            &err[..err.len().min(300)]
        );
        assert!(err.len() < 500, "a short message, not the cell");
        assert!(!output.exists());
    }
    // Row-level errors name the line.
    for (rows, message) in [
        (
            "1709280000000000,NaN\n",
            "line 2, column 2: non-finite value NaN in a channel that is not nullable",
        ),
        (
            "-1,1\n",
            "line 2, column 1: timestamp -1 µs is outside 1970-01-01T00:00:00Z..=9999-12-31T23:59:59.999999Z",
        ),
        (
            "--5,1\n",
            "line 2, column 1: timestamp \"--5\" is neither RFC 3339",
        ),
        ("9999-12-31T23:59:59.999999Z,1\n253402300799999999,2\n", ""),
        (
            "2024-03-01T08:00:00+24:00,1\n",
            "line 2, column 1: timestamp \"2024-03-01T08:00:00+24:00\": offset +24:00",
        ),
        (
            "2016-12-31T23:59:60Z,1\n",
            "line 2, column 1: timestamp \"2016-12-31T23:59:60Z\": second 60",
        ),
        ("1709280000000000,\"2\" \n", ""),
    ] {
        std::fs::write(&csv, format!("timestamp,a\n{rows}")).unwrap();
        let out = encode_to(&csv, &output);
        if message.is_empty() {
            assert!(out.status.success(), "{rows}: {}", text(&out.stderr));
            std::fs::remove_file(&output).unwrap();
        } else {
            assert!(!out.status.success(), "{rows}");
            assert!(
                text(&out.stderr).contains(message),
                "{rows}: {}",
                text(&out.stderr)
            );
        }
    }
}

#[test]
fn encode_refuses_to_overwrite_its_input_by_any_name() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("x.csv");
    let body = "timestamp,a\n1709280000000000,1\n";
    std::fs::write(&csv, body).unwrap();
    std::os::unix::fs::symlink(&csv, dir.path().join("link.csv")).unwrap();
    std::fs::hard_link(&csv, dir.path().join("hard.csv")).unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let absolute = csv.to_str().unwrap().to_string();
    for output in ["./x.csv", "sub/../x.csv", &absolute, "link.csv", "hard.csv"] {
        let out = Command::new(BIN)
            .current_dir(dir.path())
            .args(["encode", "--input", "x.csv", "--output", output])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{output}");
        assert!(
            text(&out.stderr).contains("is the input file"),
            "{output}: {}",
            text(&out.stderr)
        );
        assert_eq!(std::fs::read_to_string(&csv).unwrap(), body, "{output}");
    }
    // Another file is fine.
    let out = Command::new(BIN)
        .current_dir(dir.path())
        .args(["encode", "--input", "x.csv", "--output", "x.parquet"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn encode_opensensor_cuts_the_presets_windows_named_by_their_end() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("station.csv");
    // 1800 rows at 1 s from 08:05:00.
    let mut body = String::from("timestamp,temperature\n");
    for i in 0..1800i64 {
        body.push_str(&format!(
            "{},{}\n",
            1_709_280_300_000_000 + i * 1_000_000,
            i % 40
        ));
    }
    std::fs::write(&csv, body).unwrap();
    let out_dir = dir.path().join("lake");
    let out = run(&[
        "encode",
        "--input",
        csv.to_str().unwrap(),
        "--output-dir",
        out_dir.to_str().unwrap(),
        "--layout",
        "opensensor",
        "--device-id",
        "st-1",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let day = out_dir.join("station=st-1/year=2024/month=03/day=01");
    let mut names: Vec<(String, usize)> = parquet_files(&day)
        .iter()
        .map(|f| {
            let name = f.file_name().unwrap().to_string_lossy().into_owned();
            (name, decoded_rows(f).len())
        })
        .collect();
    names.sort();
    assert_eq!(names.len(), 3, "{names:?}");
    // 08:05–08:15 began mid-window and 08:30–08:35 was cut by the end of the input:
    // hashed names, as the agent gives them; 08:15–08:30 is whole: the plain name.
    assert!(names[0].0.starts_with("data_0815_"), "{names:?}");
    assert_eq!(names[0].1, 600);
    assert_eq!(names[1], ("data_0830.parquet".to_string(), 900));
    assert!(names[2].0.starts_with("data_0845_"), "{names:?}");
    assert_eq!(names[2].1, 300);
    // The hive layout still needs a file size.
    let out = run(&[
        "encode",
        "--input",
        csv.to_str().unwrap(),
        "--output-dir",
        dir.path().join("hive").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--rows-per-file"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn every_file_of_one_encode_has_the_columns_type() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("in.csv");
    // Only the last row needs f64; the first files hold only f32-exact values.
    let mut body = String::from("timestamp,x\n");
    for i in 0..9i64 {
        body.push_str(&format!("{},{}.5\n", 1_709_280_000_000_000 + i, i));
    }
    body.push_str("1709280000000009,0.1234567891\n");
    std::fs::write(&csv, body).unwrap();
    let out_dir = dir.path().join("lake");
    let out = run(&[
        "encode",
        "--input",
        csv.to_str().unwrap(),
        "--output-dir",
        out_dir.to_str().unwrap(),
        "--rows-per-file",
        "3",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let files = parquet_files(&out_dir);
    assert_eq!(files.len(), 4);
    for file in &files {
        let rows = decoded_rows(file);
        assert!(
            rows.iter()
                .all(|r| matches!(r[0], sensorlake::Value::F64(_))),
            "{}: {rows:?}",
            file.display()
        );
    }
}

#[test]
fn encode_refuses_batches_that_would_share_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("d.csv");
    // Two identical one-row batches: the same key, so one file would replace the other.
    std::fs::write(
        &csv,
        "timestamp,a\n1709280000000000,5\n1709280000000000,5\n",
    )
    .unwrap();
    let out_dir = dir.path().join("lake");
    let out = run(&[
        "encode",
        "--input",
        csv.to_str().unwrap(),
        "--output-dir",
        out_dir.to_str().unwrap(),
        "--rows-per-file",
        "1",
    ]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("data rows 1-1 and 2-2"), "{err}");
    assert!(parquet_files(&out_dir).is_empty(), "nothing written");
    // The same rows in one batch are two rows of one file.
    let out = run(&[
        "encode",
        "--input",
        csv.to_str().unwrap(),
        "--output-dir",
        out_dir.to_str().unwrap(),
        "--rows-per-file",
        "2",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(parquet_files(&out_dir).len(), 1);
}

const ACCESS: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

/// Runs the binary with its stdout a pipe whose reader is already gone, as after
/// `| head -1` has read its line.
fn run_into_closed_pipe(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .stdin(std::process::Stdio::null())
        .stdout(writer)
        .stderr(std::process::Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("the binary runs")
}

/// An environment variable: name, value.
type Env<'a> = (&'a str, &'a str);

/// A spool directory with one waiting and one quarantined file (made by the library).
fn spool_with_a_quarantined_file(dir: &Path) -> (std::path::PathBuf, String) {
    use sensorlake::spool::{Spool, SpoolConfig};
    use sensorlake::storage::StdStorage;
    let spool_dir = dir.join("spool");
    let mut spool = Spool::open(StdStorage::new(&spool_dir), SpoolConfig::default()).unwrap();
    let bad = spool.push(b"not a parquet file", Some(3)).unwrap();
    spool
        .quarantine(&bad, "test: refused by the server")
        .unwrap();
    spool.push(b"another", Some(5)).unwrap();
    (spool_dir, bad.name)
}

/// Issue 10 §5: `inspect --json … | head -1` panicked with "failed printing to stdout:
/// Broken pipe". Every command that prints now ends quietly with status 141 (128 +
/// SIGPIPE, what a shell reports for a Unix tool stopped by a closed pipe).
#[test]
fn a_closed_stdout_ends_every_printing_command_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let parquet = dir.path().join("m.parquet");
    let out = run(&[
        "encode",
        "--input",
        DATA,
        "--output",
        parquet.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let parquet = parquet.to_str().unwrap();
    let (spool, _) = spool_with_a_quarantined_file(dir.path());
    let spool = spool.to_str().unwrap();
    let registry = dir.path().join("devices.json");
    let registry = registry.to_str().unwrap();
    let encoded = dir.path().join("encoded");
    let encoded = encoded.to_str().unwrap();
    let keys = [
        ("AWS_ACCESS_KEY_ID", ACCESS),
        ("AWS_SECRET_ACCESS_KEY", SECRET),
    ];
    let cases: Vec<(Vec<&str>, &[Env])> = vec![
        (vec!["--help"], &[]),
        (vec!["--version"], &[]),
        (vec!["inspect", "--json", parquet], &[]),
        (vec!["inspect", parquet], &[]),
        (vec!["ddl", "--bucket", "lake", "--prefix", "raw"], &[]),
        (vec!["ddl", "--bucket", "lake", "--duckdb"], &[]),
        (
            vec![
                "presign",
                "--endpoint",
                "http://127.0.0.1:9000",
                "--bucket",
                "lake",
                "--key",
                "k",
            ],
            &keys,
        ),
        (
            vec![
                "encode",
                "--input",
                DATA,
                "--output-dir",
                encoded,
                "--rows-per-file",
                "1000",
            ],
            &[],
        ),
        (vec!["spool", "list", "--dir", spool], &[]),
        (vec!["spool", "list", "--dir", spool, "--json"], &[]),
        (vec!["spool", "stats", "--dir", spool], &[]),
        (vec!["spool", "stats", "--dir", spool, "--json"], &[]),
        (
            vec![
                "broker",
                "add-device",
                "--registry",
                registry,
                "--device-id",
                "gw-1",
            ],
            &[],
        ),
        (vec!["broker", "list-devices", "--registry", registry], &[]),
        (
            vec!["broker", "list-devices", "--registry", registry, "--json"],
            &[],
        ),
        (vec!["demo", "--devices", "1", "--duration", "10min"], &[]),
        (
            vec!["bench", "encode-one", "--dataset", "enviro", "--files", "1"],
            &[],
        ),
        // Last: it empties the quarantine.
        (vec!["spool", "requeue", "--dir", spool], &[]),
    ];
    for (args, envs) in cases {
        let out = run_into_closed_pipe(&args, envs);
        let err = text(&out.stderr);
        assert!(
            !err.contains("panicked") && !err.contains("Broken pipe"),
            "{args:?} panicked on a closed stdout:\n{err}"
        );
        assert_eq!(
            out.status.code(),
            Some(141),
            "{args:?} on a closed stdout:\n{err}"
        );
    }
}

/// Issue 10 §6: `spool requeue` printed each file twice (its line on stdout and the
/// spool's log line on stderr).
#[test]
fn spool_requeue_names_each_file_once() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, name) = spool_with_a_quarantined_file(dir.path());
    let out = run(&["spool", "requeue", "--dir", spool.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(all.matches(name.as_str()).count(), 1, "{all}");
    assert!(
        text(&out.stdout).starts_with(&format!("requeued quarantine/{name} as ready/")),
        "{all}"
    );
    assert!(text(&out.stderr).contains("1 file(s) requeued"), "{all}");
}

/// Issue 10 §6: help texts that contradicted the README.
#[test]
fn help_texts_say_what_the_commands_do() {
    let help = |args: &[&str]| {
        let out = run(args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    };
    let run_help = help(&["run", "--help"]);
    for needle in [
        "[credentials]",
        "~/.aws/credentials",
        "AWS_PROFILE",
        "broker",
    ] {
        assert!(
            run_help.contains(needle),
            "run --help lacks {needle}:\n{run_help}"
        );
    }
    let demo_help = help(&["demo", "--help"]);
    assert!(demo_help.contains("imu-raw"), "{demo_help}");
    assert!(demo_help.contains("--keep"), "{demo_help}");
    let requeue_help = help(&["spool", "requeue", "--help"]);
    assert!(!requeue_help.contains("--json"), "{requeue_help}");
    for action in ["list", "stats"] {
        let h = help(&["spool", action, "--help"]);
        assert!(h.contains("--json"), "spool {action} --help:\n{h}");
    }
    let refused = run(&["spool", "requeue", "--json", "--dir", "x"]);
    assert!(!refused.status.success());
}

/// Issue 10 §6: the demo's duration parser read `1500ms` as 1 s and `250ms` as 0; the
/// whole CLI now has the agent's parser, which also refuses negatives and overflow.
#[test]
fn demo_durations_are_read_exactly_and_bad_ones_refused() {
    // 1.5 s of a 64 Hz IMU: 96 rows (1 s would be 64).
    let out = run(&[
        "demo",
        "--devices",
        "1",
        "--profile",
        "imu",
        "--duration",
        "1500ms",
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains("1 device(s) x 1500ms"), "{stdout}");
    assert!(stdout.contains("96 of 96 rows read back"), "{stdout}");
    for (bad, why) in [
        ("-5s", "negative"),
        ("99999999999999999999s", "too large"),
        ("1.5s", "whole numbers"),
    ] {
        let out = run(&["demo", &format!("--duration={bad}")]);
        assert!(!out.status.success(), "--duration {bad} was accepted");
        let err = text(&out.stderr);
        assert!(err.contains(why) && err.contains(bad), "{bad}: {err}");
    }
    let out = run(&["broker", "serve", "--url-expiry=-1s"]);
    assert!(
        text(&out.stderr).contains("negative"),
        "{}",
        text(&out.stderr)
    );
}

/// Issue 10 §6: every demo without --dir left a directory in the temp dir.
#[test]
fn the_demo_removes_its_temporary_directories_unless_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let demo = |extra: &[&str]| {
        let mut args = vec!["demo", "--devices", "1", "--duration", "10min"];
        args.extend_from_slice(extra);
        let out = Command::new(BIN)
            .args(&args)
            .env("TMPDIR", tmp.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    let left = || -> Vec<String> {
        std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    let stdout = demo(&["--broker"]);
    assert!(stdout.contains("data      removed "), "{stdout}");
    assert!(!stdout.contains("read_parquet("), "{stdout}");
    assert!(stdout.contains("audit log removed"), "{stdout}");
    assert!(left().is_empty(), "left behind: {:?}", left());

    let stdout = demo(&["--broker", "--keep"]);
    let kept = left();
    assert_eq!(kept.len(), 2, "{kept:?}");
    let data = kept
        .iter()
        .find(|n| n.starts_with("sensorlake-demo-"))
        .unwrap();
    assert!(
        kept.iter().any(|n| n.starts_with("sensorlake-broker-")),
        "{kept:?}"
    );
    let data = tmp.path().join(data);
    assert!(
        stdout.contains(&format!("data      {}", data.display())),
        "{stdout}"
    );
    assert!(stdout.contains("read_parquet("), "{stdout}");
    assert!(!parquet_files(&data.join("lake/raw")).is_empty());
}

/// Issue 10 §6: `serve` announced itself and created its directory before failing on
/// a busy port.
#[test]
fn serve_on_a_busy_port_fails_first_naming_the_address() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("s3data");
    let out = Command::new(BIN)
        .args(["serve", "--dir", data.to_str().unwrap(), "--addr", &addr])
        .args(["--create-bucket", "lake"])
        .env("AWS_ACCESS_KEY_ID", ACCESS)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains(&format!("cannot listen on {addr}")) && err.contains("already in use"),
        "{err}"
    );
    assert!(!err.contains("serving") && !err.contains("Ctrl-C"), "{err}");
    assert!(!data.exists(), "the directory was created");
}

/// Issue 11 §3: `presign` with an IP endpoint and virtual-host style failed ("endpoint
/// … is not an http:// or https:// URL"); it now makes a path-style URL, as botocore.
#[test]
fn presign_with_an_ip_endpoint_uses_path_style() {
    for (endpoint, want) in [
        (
            "http://127.0.0.1:9000",
            "http://127.0.0.1:9000/lake/raw/x.parquet?",
        ),
        ("http://[::1]:9000", "http://[::1]:9000/lake/raw/x.parquet?"),
    ] {
        let out = Command::new(BIN)
            .args(["presign", "--endpoint", endpoint, "--bucket", "lake"])
            .args(["--key", "raw/x.parquet"])
            .env("AWS_ACCESS_KEY_ID", ACCESS)
            .env("AWS_SECRET_ACCESS_KEY", SECRET)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(text(&out.stdout).starts_with(want), "{}", text(&out.stdout));
    }
}

fn agent_config(dir: &Path, endpoint: &str, path_style: bool) -> std::path::PathBuf {
    let path = dir.join("sensorlake.toml");
    std::fs::write(
        &path,
        format!(
            "device_id = \"gw-1\"\n[source]\nkind = \"simulate\"\nrows = 20\nrate_hz = 0\n[s3]\nendpoint = \"{endpoint}\"\nbucket = \"lake\"\npath_style = {path_style}\n[upload]\nbackoff_max = \"1s\"\n"
        ),
    )
    .unwrap();
    path
}

/// Issue 10 §6: `localhost` with virtual-host style retried forever at WARN (`resolve
/// lake.localhost:9000 failed`); it now fails at once naming `[s3] path_style`.
#[test]
fn virtual_host_style_on_localhost_fails_once_naming_path_style() {
    use std::net::ToSocketAddrs as _;
    let dir = tempfile::tempdir().unwrap();
    let config = agent_config(dir.path(), "http://localhost:9", false);
    let started = std::time::Instant::now();
    let mut child = Command::new(BIN)
        .args([
            "run",
            "--config",
            config.to_str().unwrap(),
            "--until-drained",
        ])
        .env("AWS_ACCESS_KEY_ID", ACCESS)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The old agent retried forever: give up (and fail) after a generous while.
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > std::time::Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the agent still retries after 120 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let err = text(&out.stderr);
    if ("lake.localhost", 9).to_socket_addrs().is_ok() {
        // This machine resolves *.localhost (systemd-resolved, nss-myhostname): the
        // virtual host is reachable, so start-up must not refuse it.
        assert!(!err.contains("path_style = true"), "{err}");
        return;
    }
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("lake.localhost:9") && err.contains("[s3] path_style = true"),
        "{err}"
    );
    assert!(
        !err.contains("WARN"),
        "it failed once, without retries: {err}"
    );
}

/// Issue 10 §6: transport errors were logged as Rust Debug structs
/// (`HttpError { category: Connect, … }`).
#[test]
fn transport_errors_are_logged_as_sentences() {
    use std::io::BufRead as _;
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let config = agent_config(dir.path(), &format!("http://127.0.0.1:{port}"), true);
    let mut child = Command::new(BIN)
        .args(["run", "--config", config.to_str().unwrap()])
        .env("AWS_ACCESS_KEY_ID", ACCESS)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line_found = None;
    for line in stderr.lines() {
        let line = line.unwrap();
        if line.contains("upload failed") {
            line_found = Some(line);
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let line = line_found.expect("an upload failure is logged");
    assert!(
        line.contains(&format!(
            "HTTP transport error: connect to 127.0.0.1:{port}"
        )),
        "{line}"
    );
    assert!(
        !line.contains("HttpError") && !line.contains("category"),
        "{line}"
    );
}
