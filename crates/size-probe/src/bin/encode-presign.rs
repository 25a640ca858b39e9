//! Encodes a batch with sensorlake's writer (every device codec reachable) and presigns
//! its PUT: what a device links.

use std::time::{Duration, SystemTime};

use sensorlake::encode::{Encoder, FileMetadata};
use sensorlake::key::DeviceId;
use sensorlake::presign::{Credentials, PutRequest, S3Target, Signer};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seed = args.len() as u64;
    let (batch, options) = size_probe::input(seed, 6, args.get(1).map_or("lz4", String::as_str));
    let mut encoder = Encoder::new(batch.schema().clone(), options).expect("encoder");
    let device = DeviceId::new("probe").expect("id");
    let body = encoder
        .encode_to_vec(
            &batch,
            &FileMetadata {
                device_id: &device,
                object_key: "raw/x.parquet",
            },
        )
        .expect("encode");
    let target = S3Target {
        endpoint: "https://s3.eu-west-1.amazonaws.com".into(),
        bucket: "lake".into(),
        region: "eu-west-1".into(),
        path_style: false,
    };
    let credentials = Credentials::new(
        "AKIAIOSFODNN7EXAMPLE",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    );
    let signer = Signer::new(&target, &credentials, Duration::from_secs(300)).expect("signer");
    let put = signer
        .presign_put(
            &PutRequest::for_body("raw/x.parquet", &body),
            SystemTime::now(),
        )
        .expect("presign");
    println!("{} {}", body.len(), put.url);
}
