//! `sensorlake broker …` and `sensorlake demo --broker` as a user runs them: the token is
//! printed once and never logged, the running broker's TRACE-level log holds no
//! credential, revocation works on a running broker, the demo's devices hold only tokens.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use sensorlake::broker_client::BrokerClient;
use sensorlake::key::{KeyTemplate, Layout};
use sensorlake::presign::PutRequest;
use sensorlake::url_source::{UrlError, UrlSource};
use sensorlake_cli::http::{HostConnection, HttpConfig};

const BIN: &str = env!("CARGO_BIN_EXE_sensorlake");
const ACCESS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

fn command() -> Command {
    let mut command = Command::new(BIN);
    command
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env("NO_COLOR", "1");
    command
}

fn run(args: &[&str]) -> Output {
    command().args(args).output().expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn add_device(registry: &Path, id: &str) -> String {
    let out = run(&[
        "broker",
        "add-device",
        "--registry",
        registry.to_str().unwrap(),
        "--device-id",
        id,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let token = stdout.trim().to_string();
    assert_eq!(
        stdout.lines().count(),
        1,
        "only the token on stdout: {stdout}"
    );
    assert!(token.starts_with(&format!("sl1.{id}.")), "{token}");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("shown only now") && !stderr.contains(&token),
        "{stderr}"
    );
    token
}

/// A child process that is killed and reaped when dropped (also when a test fails).
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The running `broker serve`, its base URL, its stderr so far and its further lines.
fn serve(registry: &Path, audit: &Path) -> (Running, String, String, mpsc::Receiver<String>) {
    let mut child = Running(
        command()
            .args([
                "broker",
                "serve",
                "--registry",
                registry.to_str().unwrap(),
                "--audit-log",
                audit.to_str().unwrap(),
                "--addr",
                "127.0.0.1:0",
                "--endpoint",
                "http://127.0.0.1:9",
                "--path-style",
                "--bucket",
                "lake",
            ])
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .env("RUST_LOG", "trace")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let (lines_tx, lines) = mpsc::channel();
    let stderr = child.0.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut early = String::new();
    loop {
        let line = lines
            .recv_timeout(Duration::from_secs(30))
            .expect("the broker logs where it listens");
        early.push_str(&line);
        early.push('\n');
        if let Some(at) = line.find("broker listening on http://") {
            let url: String = line[at + "broker listening on ".len()..]
                .chars()
                .take_while(|c| !c.is_whitespace())
                .collect();
            return (child, url, early, lines);
        }
    }
}

#[test]
fn the_broker_command_issues_revokes_and_never_logs_a_credential() {
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("devices.json");
    let audit = dir.path().join("audit.jsonl");
    let token1 = add_device(&registry, "gw-1");
    let token2 = add_device(&registry, "gw-2");
    let again = run(&[
        "broker",
        "add-device",
        "--registry",
        registry.to_str().unwrap(),
        "--device-id",
        "gw-1",
    ]);
    assert!(!again.status.success() && text(&again.stderr).contains("--rotate"));

    let (child, url, early, lines) = serve(&registry, &audit);
    let template = KeyTemplate::new(Layout::Hive, "raw").unwrap();
    let now = jiff::Timestamp::now().as_microsecond();
    let key = |device: &str| {
        format!(
            "raw/device_id={device}/dt={}/hour={:02}/{now}-0123abcd.parquet",
            jiff::Timestamp::from_microsecond(now)
                .unwrap()
                .strftime("%Y-%m-%d"),
            jiff::Timestamp::from_microsecond(now)
                .unwrap()
                .to_zoned(jiff::tz::TimeZone::UTC)
                .hour()
        )
    };
    assert!(template.parse(&key("gw-1")).is_ok(), "{}", key("gw-1"));
    let mut conn = HostConnection::new(HttpConfig::default()).unwrap();
    let request = |device: &str| [PutRequest::for_body(&key(device), b"parquet bytes")];
    let put = BrokerClient::new(&url, &token1)
        .unwrap()
        .presign(&mut conn, &request("gw-1"), SystemTime::now())
        .unwrap()
        .remove(0);
    let signature = put
        .url
        .split("X-Amz-Signature=")
        .nth(1)
        .unwrap()
        .to_string();
    let refused = BrokerClient::new(&url, &token1)
        .unwrap()
        .presign(&mut conn, &request("gw-2"), SystemTime::now())
        .unwrap_err();
    assert!(
        matches!(refused, UrlError::Refused { index: 0, .. }),
        "{refused:?}"
    );

    // Revoked while the broker runs.
    let out = run(&[
        "broker",
        "revoke-device",
        "--registry",
        registry.to_str().unwrap(),
        "--device-id",
        "gw-2",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let revoked = BrokerClient::new(&url, &token2)
        .unwrap()
        .presign(&mut conn, &request("gw-2"), SystemTime::now())
        .unwrap_err();
    assert!(
        matches!(revoked, UrlError::Unauthorized(ref m) if m.contains("revoked")),
        "{revoked:?}"
    );
    let list = run(&[
        "broker",
        "list-devices",
        "--registry",
        registry.to_str().unwrap(),
    ]);
    let listed = text(&list.stdout);
    assert!(
        listed.contains("gw-1") && listed.contains("active") && listed.contains("revoked"),
        "{listed}"
    );

    drop(child);
    let mut logs = early;
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(5)) {
        logs.push_str(&line);
        logs.push('\n');
    }
    assert!(
        logs.contains("signing with credentials from the AWS_* environment variables"),
        "{logs}"
    );
    assert!(
        logs.contains("presign request denied") && logs.contains("file refused"),
        "{logs}"
    );
    assert!(
        logs.contains("TRACE") || logs.contains("DEBUG"),
        "RUST_LOG=trace is on: {logs}"
    );
    let listed_and_logged = format!("{logs}{listed}");
    for secret in [
        token1.as_str(),
        token2.as_str(),
        SECRET_KEY,
        signature.as_str(),
        "X-Amz-Signature",
    ] {
        assert!(
            !listed_and_logged.contains(secret),
            "a credential was logged or listed: {secret}"
        );
    }
    let audit = std::fs::read_to_string(&audit).unwrap();
    assert_eq!(audit.lines().count(), 3, "{audit}");
    assert!(
        !audit.contains(&token1) && !audit.contains(&signature),
        "{audit}"
    );
}

#[test]
fn serve_refuses_plain_http_off_loopback_and_needs_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("devices.json");
    let base = [
        "broker",
        "serve",
        "--registry",
        registry.to_str().unwrap(),
        "--endpoint",
        "http://127.0.0.1:9",
        "--bucket",
        "lake",
    ];
    let out = command()
        .args(base)
        .env("HOME", dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no AWS credentials"),
        "{}",
        text(&out.stderr)
    );
    let out = command()
        .args(base)
        .args(["--addr", "0.0.0.0:0"])
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("refusing to serve plain HTTP"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn demo_with_broker_devices_hold_only_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("lake-data");
    let out = run(&[
        "demo",
        "--broker",
        "--keep", // the broker's audit log, read below
        "--devices",
        "2",
        "--duration",
        "1h",
        "--dir",
        data.to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(
        stdout.contains("1440 of 1440 rows read back via ListObjectsV2 + GetObject: 0 missing, 0 duplicated, 0 changed - OK"),
        "{stdout}"
    );
    let files: u64 = stdout
        .split("uploaded  ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("the files count");
    let line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("broker"))
        .expect("a broker line");
    assert!(
        line.contains(&format!(
            "{files} URLs issued to 2 devices holding only a token, no keys (0 refused, 0 denied)"
        )),
        "{line}"
    );
    let audit_path = line.rsplit("audit log ").next().unwrap().trim();
    let audit = std::fs::read_to_string(audit_path).unwrap();
    assert_eq!(audit.lines().count() as u64, files);
    assert!(
        audit.lines().all(|l| l.contains(r#""outcome":"issued""#)),
        "{audit}"
    );
    let _ = std::fs::remove_dir_all(Path::new(audit_path).parent().unwrap());
}
