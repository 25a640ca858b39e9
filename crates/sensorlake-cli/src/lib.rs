//! Host-only parts of the `sensorlake` command: the embedded S3-compatible server,
//! the blocking HTTP(S) client that runs the device's upload code on a host, CSV
//! encoding, inspection and the demo. Nothing here is linked into firmware.

#![warn(missing_docs)]

pub mod agent;
pub mod agent_config;
pub mod aws_credentials;
pub mod bench;
pub mod broker;
pub mod ddl;
pub mod demo;
pub mod duration;
pub mod encode_csv;
pub mod endpoint;
pub mod fsutil;
pub mod http;
pub mod inspect;
pub mod provision;
pub mod s3client;
pub mod s3server;
pub mod server_thread;
pub mod sources;
pub mod spool_cmd;
pub mod stdout;
