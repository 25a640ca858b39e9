//! Shared by the reliability tests: the embedded S3 server, reading every row back
//! through the S3 API, and comparing rows generated with rows stored.

#![allow(dead_code)]

pub mod fault_proxy;
pub mod garage;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use sensorlake::batch::Value;
use sensorlake::encode::{META_DEVICE_ID, META_OBJECT_KEY};
use sensorlake::presign::{Credentials, S3Target, Signer};
use sensorlake::spool::verify_rows;
use sensorlake_cli::http::{HostConnection, HttpConfig};
use sensorlake_cli::s3client;
use sensorlake_cli::s3server::{S3Server, ServerConfig};

pub const ACCESS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
pub const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
pub const BUCKET: &str = "lake";

/// The embedded S3 server (SigV4 on) with one bucket.
pub struct Lake {
    pub dir: tempfile::TempDir,
    pub server: S3Server,
}

impl Lake {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = ServerConfig::new(dir.path(), ACCESS_KEY, SECRET_KEY);
        config.create_buckets = vec![BUCKET.into()];
        let server = S3Server::start(config).unwrap();
        Self { dir, server }
    }

    pub fn target(&self, endpoint: &str) -> S3Target {
        S3Target {
            endpoint: endpoint.to_string(),
            bucket: BUCKET.into(),
            region: "us-east-1".into(),
            path_style: true,
        }
    }

    /// A signer for `endpoint` (the server's, or a proxy's in front of it).
    pub fn signer(&self, endpoint: &str, secret: &str) -> Signer {
        Signer::new(
            &self.target(endpoint),
            &Credentials::new(ACCESS_KEY, secret),
            Duration::from_secs(300),
        )
        .unwrap()
    }

    /// The object keys under `prefix` (ListObjectsV2).
    #[allow(dead_code)]
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        let signer = self.signer(&self.server.endpoint(), SECRET_KEY);
        let mut conn = HostConnection::new(HttpConfig::default()).unwrap();
        s3client::list_objects(&mut conn, &signer, prefix, SystemTime::now)
            .unwrap()
            .into_iter()
            .map(|o| o.key)
            .collect()
    }

    /// One object's bytes (GetObject).
    #[allow(dead_code)]
    pub fn get(&self, key: &str) -> Vec<u8> {
        let signer = self.signer(&self.server.endpoint(), SECRET_KEY);
        let mut conn = HostConnection::new(HttpConfig::default()).unwrap();
        s3client::get_object(&mut conn, &signer, key, SystemTime::now()).unwrap()
    }

    /// Every row under `prefix`, read back through ListObjectsV2 + GetObject.
    pub fn rows(&self, prefix: &str) -> StoredRows {
        rows_via(&self.signer(&self.server.endpoint(), SECRET_KEY), prefix)
    }
}

/// Every row under `prefix` of the bucket `signer` signs for, read back through
/// ListObjectsV2 + GetObject; each object is verified and decoded.
pub fn rows_via(signer: &Signer, prefix: &str) -> StoredRows {
    let mut conn = HostConnection::new(HttpConfig::default()).unwrap();
    let objects = s3client::list_objects(&mut conn, signer, prefix, SystemTime::now).unwrap();
    let mut stored = StoredRows::default();
    for object in &objects {
        let body = s3client::get_object(&mut conn, signer, &object.key, SystemTime::now()).unwrap();
        stored.objects += 1;
        if let Err(why) = verify_rows(&body) {
            stored.bad_objects.push(format!("{}: {why}", object.key));
            continue;
        }
        let decoded = sensorlake::decode::decode(Bytes::from(body)).unwrap();
        if decoded.meta(META_OBJECT_KEY) != Some(object.key.as_str()) {
            stored
                .bad_objects
                .push(format!("{}: another key inside", object.key));
        }
        let device = decoded.meta(META_DEVICE_ID).unwrap_or_default().to_string();
        decoded.batch.for_each_row(|ts, values| {
            stored
                .rows
                .entry((device.clone(), ts))
                .or_default()
                .push(values.iter().map(value_bits).collect());
        });
    }
    stored
}

/// A value as comparable bits.
pub fn value_bits(v: &Value) -> (u8, u64) {
    match v {
        Value::Null => (0, 0),
        Value::F32(f) => (1, u64::from(f.to_bits())),
        Value::Int(i) => (2, *i as u64),
        Value::F64(f) => (3, f.to_bits()),
    }
}

/// A row's values as comparable bits.
pub type RowBits = Vec<(u8, u64)>;

/// Rows found in the bucket: every copy of each (device, ts).
#[derive(Debug, Default)]
pub struct StoredRows {
    pub objects: usize,
    pub rows: BTreeMap<(String, i64), Vec<RowBits>>,
    pub bad_objects: Vec<String>,
}

/// How the bucket compares with what the source produced.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Comparison {
    pub generated: usize,
    pub in_s3: usize,
    pub lost: usize,
    pub duplicated: usize,
    pub changed: usize,
    pub unexpected: usize,
}

impl Comparison {
    pub fn is_exact(&self) -> bool {
        self.lost == 0 && self.duplicated == 0 && self.changed == 0 && self.unexpected == 0
    }
}

impl std::fmt::Display for Comparison {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "rows generated {}, rows in S3 {}, lost {}, duplicated {}, changed {}, unexpected {}",
            self.generated, self.in_s3, self.lost, self.duplicated, self.changed, self.unexpected
        )
    }
}

/// Compares the expected rows of `device` (ts, values) with the bucket.
pub fn compare(device: &str, expected: &[(i64, Vec<Value>)], stored: &StoredRows) -> Comparison {
    let mut c = Comparison {
        generated: expected.len(),
        in_s3: stored.rows.values().map(Vec::len).sum(),
        ..Comparison::default()
    };
    let mut seen = std::collections::BTreeSet::new();
    for (ts, values) in expected {
        let key = (device.to_string(), *ts);
        seen.insert(key.clone());
        let want: Vec<(u8, u64)> = values.iter().map(value_bits).collect();
        match stored.rows.get(&key) {
            None => c.lost += 1,
            Some(copies) => {
                c.duplicated += copies.len() - 1;
                if copies.iter().any(|v| *v != want) {
                    c.changed += 1;
                }
            }
        }
    }
    c.unexpected = stored
        .rows
        .iter()
        .filter(|(k, _)| !seen.contains(*k))
        .map(|(_, v)| v.len())
        .sum();
    c
}
