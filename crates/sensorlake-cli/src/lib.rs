//! Host-only parts of the `sensorlake` command: the embedded S3-compatible server,
//! the blocking HTTP(S) client that runs the device's upload code on a host, CSV
//! encoding, inspection and the demo. Nothing here is linked into firmware.

pub mod bench;
pub mod ddl;
pub mod demo;
pub mod encode_csv;
pub mod fsutil;
pub mod http;
pub mod inspect;
pub mod s3client;
pub mod s3server;
