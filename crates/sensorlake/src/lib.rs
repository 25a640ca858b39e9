//! sensorlake: sensor readings to query-ready Parquet in an S3 data lake, without
//! losing or duplicating a reading and without long-term keys on the device.
//!
//! The flow, one module per step:
//! [`schema`] → [`batch`] (rows → batches) → [`encode`] (batch → Parquet bytes) →
//! [`key`] (the object key, a pure function of the batch, in a [`layout`]) →
//! [`presign`] (SigV4 URL) →
//! [`upload`] (PUT through any `embedded_svc` HTTP connection). [`csv`] reads rows
//! from CSV text.
//!
//! Reliability: [`spool`] (durable file queue over a [`storage::Storage`] trait),
//! [`journal`] (optional row journal), [`uploader`] (retry/backoff/pause state machine
//! with [`clock`] skew correction and [`backoff`]), and [`pipeline`], the facade the
//! firmware and the host agent both call. [`failpoint`] marks the crash-test phases;
//! `sim_storage` (cargo feature `sim`, tests only) simulates power loss.
//!
//! Everything here is plain `std` Rust that runs on a host and on ESP-IDF: no async
//! runtime, no server, pure-Rust codecs only (cargo feature `device`).

#![warn(missing_docs)]

extern crate alloc;

pub mod addressing;
pub mod backoff;
pub mod batch;
pub mod body;
pub mod broker_api;
pub mod broker_client;
pub mod chips;
pub mod civil;
pub mod clock;
#[cfg(feature = "host")]
pub mod csv;
pub mod decode;
pub mod device;
pub mod encode;
pub mod failpoint;
pub mod holding;
pub mod journal;
pub mod key;
pub mod layout;
pub mod opensensor;
pub mod options;
pub mod pipeline;
pub mod pqread;
mod pqwrite;
pub mod presign;
pub mod provision;
pub mod schema;
pub mod sensor;
pub mod sigv4;
#[cfg(any(test, feature = "sim"))]
pub mod sim_storage;
pub mod simulate;
pub mod spool;
pub mod storage;
pub mod sts;
mod thrift;
pub mod timebase;
pub mod timefmt;
pub mod upload;
pub mod uploader;
pub mod url_source;

pub use batch::{Batch, BatchConfig, BatchError, Batcher, Value};
pub use encode::{
    Codec, EncodeOptions, Encoder, FileMetadata, FloatEncoding, IntEncoding, Statistics,
};
pub use key::{DeviceId, KeyTemplate, Layout};
pub use key::{KeyRefusal, ParsedKey, TimeWindow};
pub use presign::{Credentials, PresignedPut, PutRequest, S3Target, Signer};
pub use schema::{Channel, ChannelType, Schema};
