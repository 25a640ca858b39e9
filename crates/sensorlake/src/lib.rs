//! sensorlake: sensor readings to query-ready Parquet in an S3 data lake, without
//! losing or duplicating a reading and without long-term keys on the device.
//!
//! The flow, one module per step:
//! [`schema`] → [`batch`] (rows → batches) → [`encode`] (batch → Parquet bytes) →
//! [`key`] (the object key, a pure function of the batch) → [`presign`] (SigV4 URL) →
//! [`upload`] (PUT through any `embedded_svc` HTTP connection). [`csv`] reads rows
//! from CSV text.
//!
//! Everything here is plain `std` Rust that runs on a host and on ESP-IDF: no async
//! runtime, no server, pure-Rust codecs only (cargo feature `device`).

pub mod batch;
pub mod csv;
pub mod decode;
pub mod encode;
pub mod key;
pub mod opensensor;
mod pqwrite;
pub mod presign;
pub mod schema;
pub mod simulate;
mod thrift;
pub mod upload;
pub mod url_source;

pub use batch::{Batch, BatchConfig, BatchError, Batcher, Value};
pub use encode::{
    Codec, EncodeOptions, Encoder, FileMetadata, FloatEncoding, IntEncoding, Statistics,
};
pub use key::{DeviceId, KeyTemplate, Layout};
pub use presign::{Credentials, PresignedPut, PutRequest, S3Target, Signer};
pub use schema::{Channel, ChannelType, Schema};
