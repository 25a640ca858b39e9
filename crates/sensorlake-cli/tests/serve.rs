//! `serve_until_signal` serves until SIGTERM. In its own test binary: the
//! signal handler it installs is process-wide.
#![cfg(unix)]

use std::net::TcpListener;
use std::time::{Duration, Instant};

use embedded_svc::http::client::Client;
use sensorlake_cli::http::{HostConnection, HttpConfig};
use sensorlake_cli::s3server::{ServerConfig, serve_until_signal};

#[test]
fn serves_until_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    // A free port (released just before the server binds it).
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut config = ServerConfig::new(
        dir.path(),
        "AKIAIOSFODNN7EXAMPLE",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    );
    config.addr = addr;
    config.create_buckets = vec!["sensorlake".to_owned()];
    let server = std::thread::spawn(move || serve_until_signal(config, |_| {}));

    // The server answers only once its signal handler is installed.
    let mut client = Client::wrap(HostConnection::new(HttpConfig::default()).unwrap());
    let started = Instant::now();
    let status = loop {
        match client
            .get(&format!("http://{addr}/"))
            .and_then(|r| r.submit().map(|r| r.status()))
        {
            Ok(status) => break status,
            Err(_) if started.elapsed() < Duration::from_secs(10) => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(err) => panic!("the server did not come up: {err}"),
        }
    };
    assert_eq!(status, 403, "unsigned ListBuckets is refused");
    assert!(dir.path().join("sensorlake").is_dir());

    let kill = std::process::Command::new("kill")
        .args(["-TERM", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let result = server.join().unwrap();
    assert!(result.is_ok(), "{result:?}");
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "no longer listening"
    );
}

const BIN: &str = env!("CARGO_BIN_EXE_sensorlake");
const ACCESS: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../sensorlake.example.toml");

/// Kills the child on drop (a failing assertion must not leave a server running).
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Replaces the one line `from` of `text` (it must be there exactly once).
fn replace_line(text: &str, from: &str, to: &str) -> String {
    let hits = text.lines().filter(|l| *l == from).count();
    assert_eq!(hits, 1, "sensorlake.example.toml has {hits} lines {from:?}");
    text.lines()
        .map(|l| if l == from { to } else { l })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Issue 10 §6: sensorlake.example.toml against `sensorlake serve` failed with
/// `endpoint "http://127.0.0.1:9000" is not an http:// or https:// URL` (virtual-host
/// style with an IP address). Now it uploads, path style, as botocore would. Changed
/// from the file: only the port (a free one instead of 9000, which another program may
/// hold) and a finite, fast source (`rows`, `rate_hz`), so that `--until-drained` ends.
#[test]
fn the_example_config_works_against_serve() {
    use sensorlake::presign::{Credentials, S3Target, Signer};
    use sensorlake_cli::s3client;

    let dir = tempfile::tempdir().unwrap();
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let example = std::fs::read_to_string(EXAMPLE).unwrap();
    assert!(
        example.contains("path_style = false"),
        "the example's default"
    );
    let config = replace_line(
        &example,
        "endpoint = \"http://127.0.0.1:9000\"",
        &format!("endpoint = \"http://{addr}\""),
    );
    let config = replace_line(&config, "rows = 0", "rows = 400");
    let config = replace_line(
        &config,
        "kind = \"simulate\"",
        "kind = \"simulate\"\nrate_hz = 0",
    );
    let config_path = dir.path().join("sensorlake.toml");
    std::fs::write(&config_path, config).unwrap();

    let data = dir.path().join("s3data");
    let server = std::process::Command::new(BIN)
        .args([
            "serve",
            "--dir",
            data.to_str().unwrap(),
            "--addr",
            &addr.to_string(),
        ])
        .args(["--create-bucket", "lake"])
        .env("AWS_ACCESS_KEY_ID", ACCESS)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let _server = Running(server);
    let started = Instant::now();
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "serve did not come up"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let out = std::process::Command::new(BIN)
        .args([
            "run",
            "--config",
            config_path.to_str().unwrap(),
            "--until-drained",
        ])
        .env("AWS_ACCESS_KEY_ID", ACCESS)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("SENSORLAKE_FAILPOINT")
        .env_remove("SENSORLAKE_CLOCK_OFFSET_SECS")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("the endpoint is an IP address"), "{log}");

    // Every row back through the S3 API, equal to the simulator's.
    let target = S3Target {
        endpoint: format!("http://{addr}"),
        bucket: "lake".into(),
        region: "us-east-1".into(),
        path_style: false,
    };
    let signer = Signer::new(
        &target,
        &Credentials::new(ACCESS, SECRET),
        Duration::from_secs(300),
    )
    .unwrap();
    let mut conn = HostConnection::new(HttpConfig::default()).unwrap();
    let objects =
        s3client::list_objects(&mut conn, &signer, "", std::time::SystemTime::now).unwrap();
    assert!(!objects.is_empty());
    let mut rows = Vec::new();
    for object in &objects {
        let body = s3client::get_object(
            &mut conn,
            &signer,
            &object.key,
            std::time::SystemTime::now(),
        )
        .unwrap();
        let decoded = sensorlake::decode::decode(body.into()).unwrap();
        assert_eq!(
            decoded.meta(sensorlake::encode::META_DEVICE_ID),
            Some("gw-1")
        );
        decoded
            .batch
            .for_each_row(|ts, values| rows.push((ts, values.to_vec())));
    }
    rows.sort_by_key(|(ts, _)| *ts);
    assert_eq!(rows.len(), 400, "every row once");
    let sim = sensorlake::simulate::Simulator::new(
        sensorlake::simulate::Profile::Enviro,
        "gw-1",
        1,
        rows[0].0,
    );
    let mut values = Vec::new();
    for (i, (ts, stored)) in rows.iter().enumerate() {
        assert_eq!(sim.row(i as u64, &mut values), *ts, "row {i}");
        assert_eq!(&values, stored, "row {i}");
    }
}
