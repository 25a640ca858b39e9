//! Host-only modules of the `sensorlake` command: the embedded S3-compatible
//! server and the blocking HTTP(S) client that runs the device's upload code
//! on a host.

pub mod http;
pub mod s3server;
