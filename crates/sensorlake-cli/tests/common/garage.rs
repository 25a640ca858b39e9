//! Garage 2.5.0, an independent S3 server that checks SigV4, started on loopback for one
//! test: a generated single-node configuration, `layout assign` + `layout apply`, a
//! bucket and an imported key. The binary comes from `scripts/install-garage.sh`
//! (`./test.sh` runs it); a test that needs Garage fails when it is missing, it never
//! skips.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

use sensorlake::presign::{Credentials, S3Target, Signer};
use sensorlake_cli::http::{HostConnection, HttpConfig};
use sensorlake_cli::s3client;

use super::{BUCKET, StoredRows, rows_via};

/// The access key imported into every test Garage (Garage's `GK` + 24 hex digits form).
pub const GARAGE_ACCESS_KEY: &str = "GK5e2d0c1b9a8f7e6d5c4b3a29";
/// Its secret (64 hex digits).
pub const GARAGE_SECRET_KEY: &str =
    "9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a0";
/// The region Garage is configured with (`[s3_api] s3_region`); signatures for any
/// other region are refused.
pub const GARAGE_REGION: &str = "garage";

/// The Garage binary: `$SENSORLAKE_GARAGE`, or where `scripts/install-garage.sh` puts it.
pub fn garage_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("SENSORLAKE_GARAGE") {
        return PathBuf::from(path);
    }
    let tools = std::env::var_os("SENSORLAKE_TOOLS").map_or_else(
        || PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/sensorlake"),
        PathBuf::from,
    );
    tools.join("garage-2.5.0/bin/garage")
}

/// A running Garage; killed when dropped.
pub struct Garage {
    dir: tempfile::TempDir,
    child: Child,
    api: SocketAddr,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Garage {
    /// Starts Garage with bucket `lake` and the test key (read, write, owner).
    pub fn start() -> Self {
        let binary = garage_binary();
        assert!(
            binary.is_file(),
            "Garage is not installed at {}: run scripts/install-garage.sh (./test.sh does), or set SENSORLAKE_GARAGE",
            binary.display()
        );
        // A port taken between choosing and binding fails the start: try again.
        let mut last = String::new();
        for _ in 0..3 {
            match Self::try_start(&binary) {
                Ok(garage) => return garage,
                Err(why) => last = why,
            }
        }
        panic!("Garage did not start: {last}");
    }

    fn try_start(binary: &Path) -> Result<Self, String> {
        let dir = tempfile::tempdir().unwrap();
        let (rpc, api) = (free_port(), free_port());
        let secret: String = (0..32)
            .map(|i| format!("{:02x}", (i * 37 + 11) % 256))
            .collect();
        let config = format!(
            r#"metadata_dir = "{meta}"
data_dir = "{data}"
db_engine = "lmdb"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:{rpc}"
rpc_public_addr = "127.0.0.1:{rpc}"
rpc_secret = "{secret}"

[s3_api]
s3_region = "{GARAGE_REGION}"
api_bind_addr = "127.0.0.1:{api}"
root_domain = ".s3.garage.localhost"
"#,
            meta = dir.path().join("meta").display(),
            data = dir.path().join("data").display(),
        );
        std::fs::write(dir.path().join("garage.toml"), config).unwrap();
        let log = std::fs::File::create(dir.path().join("garage.log")).unwrap();
        let child = Command::new(binary)
            .arg("-c")
            .arg(dir.path().join("garage.toml"))
            .arg("server")
            .env("RUST_LOG", "garage=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
        let mut garage = Self {
            dir,
            child,
            api: SocketAddr::from(([127, 0, 0, 1], api)),
        };
        garage.set_up(binary)?;
        Ok(garage)
    }

    fn admin(&self, binary: &Path, args: &[&str]) -> Output {
        Command::new(binary)
            .arg("-c")
            .arg(self.dir.path().join("garage.toml"))
            .args(args)
            .env("RUST_LOG", "garage=warn")
            .output()
            .unwrap()
    }

    fn set_up(&mut self, binary: &Path) -> Result<(), String> {
        // The node answers its admin RPC once it is up (a loaded machine may take a while).
        let deadline = Instant::now() + Duration::from_secs(60);
        let node = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Err(format!("garage server exited ({status}):\n{}", self.log()));
            }
            let out = self.admin(binary, &["node", "id", "-q"]);
            if out.status.success() {
                let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
                break text.split('@').next().unwrap_or_default().to_string();
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "garage node id failed for 60 s: {}\n{}",
                    String::from_utf8_lossy(&out.stderr),
                    self.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        for args in [
            vec!["layout", "assign", "-z", "dc1", "-c", "1G", &node],
            vec!["layout", "apply", "--version", "1"],
            vec!["bucket", "create", BUCKET],
            vec![
                "key",
                "import",
                "--yes",
                "-n",
                "sensorlake-test",
                GARAGE_ACCESS_KEY,
                GARAGE_SECRET_KEY,
            ],
            vec![
                "bucket",
                "allow",
                "--read",
                "--write",
                "--owner",
                BUCKET,
                "--key",
                "sensorlake-test",
            ],
        ] {
            let out = self.admin(binary, &args);
            if !out.status.success() {
                return Err(format!(
                    "garage {}: {}{}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
        Ok(())
    }

    /// What Garage logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("garage.log")).unwrap_or_default()
    }

    /// The S3 API's address.
    pub fn addr(&self) -> SocketAddr {
        self.api
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.api)
    }

    /// The bucket at `endpoint` (Garage's, or a proxy's in front of it), path style.
    pub fn target(&self, endpoint: &str) -> S3Target {
        S3Target {
            endpoint: endpoint.to_string(),
            bucket: BUCKET.into(),
            region: GARAGE_REGION.into(),
            path_style: true,
        }
    }

    /// A signer with the test key for `endpoint`.
    pub fn signer(&self, endpoint: &str) -> Signer {
        Signer::new(
            &self.target(endpoint),
            &Credentials::new(GARAGE_ACCESS_KEY, GARAGE_SECRET_KEY),
            Duration::from_secs(300),
        )
        .unwrap()
    }

    /// Every row under `prefix`, read back through ListObjectsV2 + GetObject.
    pub fn rows(&self, prefix: &str) -> StoredRows {
        rows_via(&self.signer(&self.endpoint()), prefix)
    }

    /// The object keys under `prefix`.
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        let mut conn = HostConnection::new(HttpConfig::default()).unwrap();
        s3client::list_objects(
            &mut conn,
            &self.signer(&self.endpoint()),
            prefix,
            SystemTime::now,
        )
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect()
    }

    /// One object's bytes.
    pub fn get(&self, key: &str) -> Vec<u8> {
        let mut conn = HostConnection::new(HttpConfig::default()).unwrap();
        s3client::get_object(
            &mut conn,
            &self.signer(&self.endpoint()),
            key,
            SystemTime::now(),
        )
        .unwrap()
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
