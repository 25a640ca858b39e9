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
