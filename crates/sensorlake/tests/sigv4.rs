//! The device presigner (`sigv4`, no `url`/`jiff`) against rusty-s3 byte for byte, at
//! fixed times, over keys of every character class, endpoints with ports and paths,
//! both URL styles, session tokens, GET and PUT.
#![cfg(feature = "host")]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusty_s3::{Bucket, S3Action, UrlStyle};
use sensorlake::presign::{Credentials, PresignError, PutRequest, S3Target, Signer};

fn rusty(
    target: &S3Target,
    creds: &Credentials,
    expiry: Duration,
    key: &str,
    put: Option<&PutRequest>,
    at: u64,
    path_style: bool,
) -> String {
    let bucket = Bucket::new(
        target.endpoint.parse().unwrap(),
        if path_style {
            UrlStyle::Path
        } else {
            UrlStyle::VirtualHost
        },
        target.bucket.clone(),
        target.region.clone(),
    )
    .unwrap();
    let c = match &creds.session_token {
        Some(t) => rusty_s3::Credentials::new_with_token(
            creds.access_key_id.clone(),
            creds.secret_access_key.clone(),
            t.clone(),
        ),
        None => {
            rusty_s3::Credentials::new(creds.access_key_id.clone(), creds.secret_access_key.clone())
        }
    };
    let time = jiff::Timestamp::from_second(at as i64).unwrap();
    match put {
        Some(p) => {
            let mut action = bucket.put_object(Some(&c), key);
            let length = p.content_length.map(|l| l.to_string());
            if let Some(md5) = &p.content_md5 {
                action.headers_mut().insert("content-md5", md5.clone());
            }
            if let Some(l) = &length {
                action.headers_mut().insert("content-length", l.clone());
            }
            if p.if_none_match {
                action.headers_mut().insert("if-none-match", "*");
            }
            action.sign_with_time(expiry, &time).to_string()
        }
        None => bucket
            .get_object(Some(&c), key)
            .sign_with_time(expiry, &time)
            .to_string(),
    }
}

#[test]
fn device_urls_equal_rusty_s3_byte_for_byte() {
    let endpoints = [
        "https://s3.amazonaws.com",
        "https://s3.eu-west-1.amazonaws.com/",
        "http://127.0.0.1:9000",
        "http://localhost:9000",
        "https://objects.example.com:9443",
        "http://minio.internal:80/base/path",
        "https://Storage.Example.COM:443/tenant-1",
        "http://[::1]:9000",
    ];
    let keys = [
        "test.txt",
        "lake/device_id=dev-01/dt=2024-02-29/hour=23/20240229T235959Z-abcd1234.parquet",
        "raw/a b/sensor readings.parquet",
        "raw/a+b/c+d=1.parquet",
        "raw//double//slash.parquet",
        "/rooted/key.parquet",
        "raw/folder/",
        "raw/!$&'()*,;:@[]{}|^`\\\"<>#?%.parquet",
        "raw/AZaz09-_.~.parquet",
        "raw/100%25/%2F/x.parquet",
        "raw/café/üñî/温度.parquet",
        "raw/🌡️/temp.parquet",
        "raw/.hidden/a..b/.../x.parquet",
        "tab\there/new\nline",
    ];
    let buckets = ["lake", "sensor-lake-eu", "my.dotted.bucket"];
    let tokens = [None, Some("FQoGZXIvYXdzEJr//////////wEaDM+/token=")];
    let times = [0u64, 1_369_353_600, 1_709_251_199, 4_102_444_800];
    let mut checked = 0;
    for (i, endpoint) in endpoints.iter().enumerate() {
        for (j, key) in keys.iter().enumerate() {
            let bucket = buckets[(i + j) % buckets.len()];
            let token = tokens[(i + j) % 2];
            let at = times[(i * 3 + j) % times.len()];
            let expiry = Duration::from_secs([1, 300, 86_400, 604_800][j % 4]);
            for asked_path_style in [false, true] {
                let target = S3Target {
                    endpoint: endpoint.to_string(),
                    bucket: bucket.to_string(),
                    region: ["us-east-1", "eu-west-1", "ap-southeast-2"][j % 3].to_string(),
                    path_style: asked_path_style,
                };
                let creds = Credentials::new(
                    "AKIAIOSFODNN7EXAMPLE",
                    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                )
                .with_session_token(token.map(str::to_string));
                let signer = Signer::new(&target, &creds, expiry).unwrap();
                let path_style = signer.path_style();
                // The endpoint-style rule (botocore's): IP hosts use path style, and so
                // do dotted buckets over https (certificates do not match them).
                let ip = endpoint.contains("127.0.0.1") || endpoint.contains('[');
                let dotted_over_https = bucket.contains('.') && endpoint.starts_with("https");
                assert_eq!(
                    path_style,
                    asked_path_style || ip || dotted_over_https,
                    "{endpoint} {bucket}"
                );
                let when = UNIX_EPOCH + Duration::from_secs(at);
                let get = signer.presign_get(key, when).unwrap();
                assert_eq!(
                    get,
                    rusty(&target, &creds, expiry, key, None, at, path_style),
                    "GET {endpoint} {bucket} {key:?}"
                );
                for request in [
                    PutRequest::key_only(key),
                    PutRequest::for_body(key, key.as_bytes()),
                ] {
                    let put = signer.presign_put(&request, when).unwrap();
                    assert_eq!(
                        put.url,
                        rusty(&target, &creds, expiry, key, Some(&request), at, path_style),
                        "PUT {endpoint} {bucket} {key:?}"
                    );
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, endpoints.len() * keys.len() * 2 * 2);
}

#[test]
fn what_the_device_signer_cannot_sign_exactly_is_refused() {
    let creds = Credentials::new("AKID", "SECRET");
    let target = |endpoint: &str| S3Target {
        endpoint: endpoint.into(),
        bucket: "lake".into(),
        region: "us-east-1".into(),
        path_style: true,
    };
    for endpoint in [
        "http://bücher.example",
        "http://user:pw@h",
        "http://127.1:9000",
        "http://h/a b",
    ] {
        match Signer::new(&target(endpoint), &creds, Duration::from_secs(60)) {
            Err(PresignError::UnsupportedEndpoint(why)) => assert!(why.contains(endpoint), "{why}"),
            other => panic!("{endpoint}: {other:?}"),
        }
    }
    let signer = Signer::new(&target("http://h"), &creds, Duration::from_secs(60)).unwrap();
    let after_9999 = UNIX_EPOCH + Duration::from_secs(253_402_300_800);
    assert_eq!(
        signer.presign_get("k", after_9999),
        Err(PresignError::BadTime)
    );
    let before_1970 = UNIX_EPOCH - Duration::from_secs(1);
    assert_eq!(
        signer.presign_get("k", before_1970),
        Err(PresignError::BadTime)
    );
    let _ = SystemTime::now();
}
