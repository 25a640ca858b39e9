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
    let server = std::thread::spawn(move || serve_until_signal(config));

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
