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
