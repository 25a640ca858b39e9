//! Presigns one PUT (SigV4, Content-MD5): the signing part of the device library.

use std::time::{Duration, SystemTime};

use sensorlake::presign::{Credentials, PutRequest, S3Target, Signer};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let body = args.get(1).cloned().unwrap_or_default().into_bytes();
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
    println!("{}", put.url);
}
