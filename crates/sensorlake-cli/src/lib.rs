//! Host-only parts of the `sensorlake` command: CSV encoding, inspection, the demo,
//! and (from other modules) the embedded S3 server and the host HTTP connection.
//! Nothing here is linked into firmware.

pub mod encode_csv;
pub mod fsutil;
pub mod inspect;
