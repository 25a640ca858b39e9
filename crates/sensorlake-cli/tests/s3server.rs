//! The embedded S3 server (s3s + s3s-fs, SigV4 on) against presigned URLs
//! from rusty-s3, sent through `HostConnection` and embedded-svc's `Client`:
//! the same client stack the device's upload code runs on.
//!
//! Keys follow AWS's documentation convention (they contain `EXAMPLE`).

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use embedded_svc::http::Method;
use embedded_svc::http::client::Client;
use embedded_svc::io::{Error as _, ErrorKind, Write as _};
use md5::{Digest as _, Md5};
use rusty_s3::actions::{GetObject, PutObject, S3Action as _};
use rusty_s3::{Bucket, Credentials, UrlStyle};
use sensorlake_cli::http::{HostConnection, HttpConfig, HttpError, HttpErrorCategory};
use sensorlake_cli::s3server::{S3Server, ServerConfig};

const ACCESS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const WRONG_SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYWRONGEXAMPLEKEY";
const BUCKET: &str = "sensorlake";
const REGION: &str = "us-east-1";
const HOUR: Duration = Duration::from_secs(3600);

/// A running server over a temporary directory.
struct Env {
    dir: tempfile::TempDir,
    server: S3Server,
}

impl Env {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = ServerConfig::new(dir.path().join("data"), ACCESS_KEY, SECRET_KEY);
        config.create_buckets = vec![BUCKET.to_owned()];
        let server = S3Server::start(config).unwrap();
        Self { dir, server }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn object_path(&self, key: &str) -> PathBuf {
        self.data().join(BUCKET).join(key)
    }

    fn bucket(&self) -> Bucket {
        bucket_at(&self.server.endpoint(), BUCKET)
    }
}

fn bucket_at(endpoint: &str, name: &str) -> Bucket {
    Bucket::new(
        endpoint.parse().unwrap(),
        UrlStyle::Path,
        name.to_owned(),
        REGION,
    )
    .unwrap()
}

fn credentials() -> Credentials {
    Credentials::new(ACCESS_KEY, SECRET_KEY)
}

fn md5(body: &[u8]) -> [u8; 16] {
    Md5::digest(body).into()
}

fn md5_base64(body: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(md5(body))
}

fn md5_hex(body: &[u8]) -> String {
    md5(body).iter().map(|b| format!("{b:02x}")).collect()
}

/// A presigned PUT signing `headers` (lowercase names, as the uploader does).
fn presign_put(
    bucket: &Bucket,
    creds: &Credentials,
    key: &str,
    headers: &[(&str, &str)],
) -> String {
    let mut action = PutObject::new(bucket, Some(creds), key);
    for &(name, value) in headers {
        action
            .headers_mut()
            .insert(name.to_owned(), value.to_owned());
    }
    action.sign(HOUR).to_string()
}

/// The headers the uploader signs and sends for `body`.
fn put_headers(body: &[u8]) -> Vec<(String, String)> {
    vec![
        ("content-md5".to_owned(), md5_base64(body)),
        ("content-length".to_owned(), body.len().to_string()),
    ]
}

fn as_pairs(headers: &[(String, String)]) -> Vec<(&str, &str)> {
    headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect()
}

/// What came back.
#[derive(Debug)]
struct Reply {
    status: u16,
    etag: Option<String>,
    body: Vec<u8>,
}

impl Reply {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn xml(&self, tag: &str) -> Option<String> {
        let text = self.text();
        let open = format!("<{tag}>");
        let start = text.find(&open)? + open.len();
        let end = start + text[start..].find(&format!("</{tag}>"))?;
        Some(text[start..end].to_owned())
    }

    /// The S3 error code of an error response.
    fn code(&self) -> Option<String> {
        self.xml("Code")
    }

    fn message(&self) -> Option<String> {
        self.xml("Message")
    }
}

/// A client over a `HostConnection`. Like with ESP-IDF, the `Client` is kept
/// for successive requests (`Client::wrap` wants a fresh connection).
type HostClient = Client<HostConnection>;

/// Sends one request through embedded-svc's `Client`.
fn send(
    client: &mut HostClient,
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Reply, HttpError> {
    let mut request = client.request(method, url, headers)?;
    request.write_all(body)?;
    request.flush()?;
    let mut response = request.submit()?;
    let status = response.status();
    let etag = response.header("ETag").map(str::to_owned);
    let mut body = Vec::new();
    let mut buf = [0_u8; 4096];
    loop {
        let n = response.read(&mut buf)?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&buf[..n]);
    }
    Ok(Reply { status, etag, body })
}

fn connection() -> HostClient {
    Client::wrap(HostConnection::new(HttpConfig::default()).unwrap())
}

fn put(conn: &mut HostClient, url: &str, headers: &[(String, String)], body: &[u8]) -> Reply {
    send(conn, Method::Put, url, &as_pairs(headers), body).unwrap()
}

/// Uploads `body` at `key` with a correctly signed URL.
fn put_ok(env: &Env, conn: &mut HostClient, key: &str, body: &[u8]) {
    let headers = put_headers(body);
    let url = presign_put(&env.bucket(), &credentials(), key, &as_pairs(&headers));
    let reply = put(conn, &url, &headers, body);
    assert_eq!(reply.status, 200, "{}", reply.text());
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

#[test]
fn presigned_put_is_stored_with_md5_etag() {
    let env = Env::start();
    let mut conn = connection();
    for (key, body) in [
        ("plain/object.bin", b"PAR1 plain body PAR1".as_slice()),
        (
            "raw/device_id=a b/dt=2024-03-01/hour=08/1-abc.parquet",
            b"PAR1 partitioned body with = and spaces in its key PAR1".as_slice(),
        ),
    ] {
        let headers = put_headers(body);
        let url = presign_put(&env.bucket(), &credentials(), key, &as_pairs(&headers));
        if key.contains(' ') {
            // rusty-s3 percent-encodes ' ' and '=' in the path.
            assert!(
                url.contains("/device_id%3Da%20b/dt%3D2024-03-01/hour%3D08/"),
                "{url}"
            );
        }
        let reply = put(&mut conn, &url, &headers, body);
        assert_eq!(reply.status, 200, "{key}: {}", reply.text());
        assert_eq!(
            reply.etag.as_deref(),
            Some(format!("\"{}\"", md5_hex(body)).as_str())
        );
        assert_eq!(read(&env.object_path(key)), body, "{key}");
    }
}

#[test]
fn presigned_get_returns_the_bytes() {
    let env = Env::start();
    let mut conn = connection();
    let key = "raw/device_id=a b/dt=2024-03-01/hour=08/2-def.parquet";
    let body: Vec<u8> = (0..100_000_u32).map(|i| (i % 251) as u8).collect();
    put_ok(&env, &mut conn, key, &body);

    let bucket = env.bucket();
    let creds = credentials();
    let url = GetObject::new(&bucket, Some(&creds), key).sign(HOUR);
    // The same connection: the socket is reused (keep-alive).
    let reply = send(&mut conn, Method::Get, url.as_str(), &[], &[]).unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.body, body);
    assert_eq!(
        reply.etag.as_deref(),
        Some(format!("\"{}\"", md5_hex(&body)).as_str())
    );
}

#[test]
fn wrong_secret_is_signature_does_not_match() {
    let env = Env::start();
    let mut conn = connection();
    let body = b"signed with the wrong secret";
    let headers = put_headers(body);
    let wrong = Credentials::new(ACCESS_KEY, WRONG_SECRET_KEY);
    let url = presign_put(
        &env.bucket(),
        &wrong,
        "k/wrong-secret.bin",
        &as_pairs(&headers),
    );
    let reply = put(&mut conn, &url, &headers, body);
    assert_eq!(reply.status, 403, "{}", reply.text());
    assert_eq!(
        reply.code().as_deref(),
        Some("SignatureDoesNotMatch"),
        "{}",
        reply.text()
    );
    assert!(!env.object_path("k/wrong-secret.bin").exists());
}

#[test]
fn wrong_secret_with_a_large_body_still_reports_the_s3_error() {
    // s3s rejects the signature before reading the body: the adapter must
    // still deliver the 403, not a broken pipe, when the server stops reading.
    let env = Env::start();
    let mut conn = connection();
    let body = vec![7_u8; 8 * 1024 * 1024];
    let headers = put_headers(&body);
    let wrong = Credentials::new(ACCESS_KEY, WRONG_SECRET_KEY);
    let url = presign_put(&env.bucket(), &wrong, "k/large.bin", &as_pairs(&headers));
    let reply = put(&mut conn, &url, &headers, &body);
    assert_eq!(reply.status, 403, "{}", reply.text());
    assert_eq!(reply.code().as_deref(), Some("SignatureDoesNotMatch"));
    assert!(!env.object_path("k/large.bin").exists());
}

#[test]
fn expired_url_is_access_denied() {
    let env = Env::start();
    let mut conn = connection();
    let body = b"too late";
    let headers = put_headers(body);
    let bucket = env.bucket();
    let creds = credentials();
    let mut action = PutObject::new(&bucket, Some(&creds), "k/expired.bin");
    for (name, value) in &headers {
        action.headers_mut().insert(name.clone(), value.clone());
    }
    let signed_at = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(2 * 3600);
    let url = action.sign_with_time(Duration::from_secs(60), &signed_at);
    let reply = put(&mut conn, url.as_str(), &headers, body);
    assert_eq!(reply.status, 403, "{}", reply.text());
    assert_eq!(
        reply.code().as_deref(),
        Some("AccessDenied"),
        "{}",
        reply.text()
    );
    assert_eq!(reply.message().as_deref(), Some("Request has expired"));
    assert!(!env.object_path("k/expired.bin").exists());
}

#[test]
fn tampered_key_is_rejected() {
    let env = Env::start();
    let mut conn = connection();
    let body = b"meant for key A";
    let headers = put_headers(body);
    let url = presign_put(
        &env.bucket(),
        &credentials(),
        "k/a.bin",
        &as_pairs(&headers),
    );
    assert!(url.contains("/k/a.bin?"), "{url}");
    let tampered = url.replacen("/k/a.bin?", "/k/b.bin?", 1);
    let reply = put(&mut conn, &tampered, &headers, body);
    assert_eq!(reply.status, 403, "{}", reply.text());
    assert_eq!(reply.code().as_deref(), Some("SignatureDoesNotMatch"));
    assert!(!env.object_path("k/a.bin").exists());
    assert!(!env.object_path("k/b.bin").exists());
}

#[test]
fn body_not_matching_content_md5_is_bad_digest_and_keeps_the_object() {
    let env = Env::start();
    let mut conn = connection();
    let key = "k/digest.bin";
    let original = b"original object body";
    put_ok(&env, &mut conn, key, original);

    let signed_for = b"the body that was signed";
    let corrupted = b"the body that was SIGNED"; // same length, other bytes
    let headers = put_headers(signed_for);
    let url = presign_put(&env.bucket(), &credentials(), key, &as_pairs(&headers));
    let reply = put(&mut conn, &url, &headers, corrupted);
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert_eq!(
        reply.code().as_deref(),
        Some("BadDigest"),
        "{}",
        reply.text()
    );
    assert_eq!(reply.message().as_deref(), Some("content_md5 mismatch"));
    assert_eq!(read(&env.object_path(key)), original);
}

#[test]
fn body_longer_than_signed_content_length_is_rejected() {
    let env = Env::start();
    let mut conn = connection();
    let key = "k/length.bin";
    let signed_body = b"0123456789";
    let url = presign_put(
        &env.bucket(),
        &credentials(),
        key,
        &[("content-length", &signed_body.len().to_string())],
    );

    // An honest client sends the real length: the signed header differs.
    let longer = b"0123456789 and more";
    let headers = vec![("content-length".to_owned(), longer.len().to_string())];
    let reply = put(&mut conn, &url, &headers, longer);
    assert_eq!(reply.status, 403, "{}", reply.text());
    assert_eq!(reply.code().as_deref(), Some("SignatureDoesNotMatch"));
    assert!(!env.object_path(key).exists());

    // Declaring the signed length and writing more is refused by the adapter
    // before anything past the declared length is sent.
    let headers = vec![("content-length".to_owned(), signed_body.len().to_string())];
    let pairs = as_pairs(&headers);
    let mut request = conn.request(Method::Put, &url, &pairs).unwrap();
    let err = request.write(longer).unwrap_err();
    assert_eq!(err.category(), HttpErrorCategory::InvalidRequest);
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(
        err.to_string()
            .contains("exceeds the declared Content-Length"),
        "{err}"
    );
    // The request can still be completed correctly.
    request.write_all(signed_body).unwrap();
    let mut response = request.submit().unwrap();
    assert_eq!(response.status(), 200);
    let mut sink = [0_u8; 64];
    while response.read(&mut sink).unwrap() > 0 {}
    assert_eq!(read(&env.object_path(key)), signed_body);
}

#[test]
fn if_none_match_star_on_an_existing_key_is_precondition_failed() {
    let env = Env::start();
    let mut conn = connection();
    let key = "k/once.bin";
    let first = b"first writer wins";
    let mut headers = put_headers(first);
    headers.push(("if-none-match".to_owned(), "*".to_owned()));
    let url = presign_put(&env.bucket(), &credentials(), key, &as_pairs(&headers));
    let reply = put(&mut conn, &url, &headers, first);
    assert_eq!(reply.status, 200, "{}", reply.text());

    let second = b"second writer loses";
    let mut headers = put_headers(second);
    headers.push(("if-none-match".to_owned(), "*".to_owned()));
    let url = presign_put(&env.bucket(), &credentials(), key, &as_pairs(&headers));
    let reply = put(&mut conn, &url, &headers, second);
    assert_eq!(reply.status, 412, "{}", reply.text());
    assert_eq!(reply.code().as_deref(), Some("PreconditionFailed"));
    assert_eq!(reply.message().as_deref(), Some("Object already exists"));
    assert_eq!(read(&env.object_path(key)), first);
}

#[test]
fn invalid_and_missing_buckets_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServerConfig::new(dir.path(), ACCESS_KEY, SECRET_KEY);
    config.create_buckets = vec!["ab".to_owned()];
    let err = S3Server::start(config).unwrap_err().to_string();
    assert!(
        err.contains("\"ab\"") && err.contains("shorter than 3"),
        "{err}"
    );
    assert!(!dir.path().join("ab").exists());

    let env = Env::start();
    let mut conn = connection();
    let body = b"x";
    let headers = put_headers(body);
    let endpoint = env.server.endpoint();

    let url = presign_put(
        &bucket_at(&endpoint, "ab"),
        &credentials(),
        "k",
        &as_pairs(&headers),
    );
    let reply = put(&mut conn, &url, &headers, body);
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert_eq!(reply.code().as_deref(), Some("InvalidBucketName"));
    assert!(!env.data().join("ab").exists());

    let url = presign_put(
        &bucket_at(&endpoint, "nobucket"),
        &credentials(),
        "k",
        &as_pairs(&headers),
    );
    let reply = put(&mut conn, &url, &headers, body);
    assert_eq!(reply.status, 404, "{}", reply.text());
    assert_eq!(reply.code().as_deref(), Some("NoSuchBucket"));
    assert!(!env.data().join("nobucket").exists());
}

#[test]
fn unsigned_request_is_access_denied() {
    let env = Env::start();
    let mut conn = connection();
    let url = format!("{}/{BUCKET}/k/unsigned.bin", env.server.endpoint());
    let reply = put(&mut conn, &url, &put_headers(b"x"), b"x");
    assert_eq!(reply.status, 403, "{}", reply.text());
    assert_eq!(reply.code().as_deref(), Some("AccessDenied"));
    assert!(!env.object_path("k/unsigned.bin").exists());
}

#[test]
fn shutdown_stops_the_server() {
    let env = Env::start();
    let addr = env.server.addr();
    assert!(addr.ip().is_loopback() && addr.port() != 0);
    assert_eq!(
        env.server.endpoint(),
        format!("http://127.0.0.1:{}", addr.port())
    );
    let Env { dir, server } = env;
    server.shutdown();
    let err = send(
        &mut connection(),
        Method::Get,
        &format!("http://{addr}/{BUCKET}/k"),
        &[],
        &[],
    )
    .unwrap_err();
    assert_eq!(err.category(), HttpErrorCategory::Connect, "{err}");
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
    drop(dir);
}

/// A TLS terminator (tokio-rustls) in front of a plain TCP backend.
struct TlsFront {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    _runtime: tokio::runtime::Runtime,
}

/// Test PKI: a self-signed CA and a server certificate for localhost/127.0.0.1.
struct Pki {
    ca_pem: String,
    cert: rustls::pki_types::CertificateDer<'static>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
}

fn pki() -> Pki {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair, KeyUsagePurpose,
    };
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.distinguished_name
        .push(DnType::CommonName, "sensorlake test CA");
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();

    let mut leaf =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.distinguished_name
        .push(DnType::CommonName, "localhost");
    let leaf_key = KeyPair::generate().unwrap();
    let cert = leaf.signed_by(&leaf_key, &ca).unwrap();
    Pki {
        ca_pem: ca.pem(),
        cert: cert.der().clone(),
        key: rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
    }
}

fn tls_front(backend: SocketAddr, pki: &Pki) -> TlsFront {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![pki.cert.clone()], pki.key.clone_key())
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    runtime.spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(socket).await else {
                    return;
                };
                let Ok(mut upstream) = tokio::net::TcpStream::connect(backend).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
            });
        }
    });
    TlsFront {
        addr,
        accepted,
        _runtime: runtime,
    }
}

#[test]
fn https_with_the_ca_file_succeeds_and_without_it_fails_on_the_certificate() {
    let env = Env::start();
    let pki = pki();
    let front = tls_front(env.server.addr(), &pki);
    let ca_file = env.dir.path().join("ca.pem");
    std::fs::write(&ca_file, &pki.ca_pem).unwrap();

    let endpoint = format!("https://127.0.0.1:{}", front.addr.port());
    let bucket = bucket_at(&endpoint, BUCKET);
    let key = "tls/device_id=x/1.parquet";
    let body = b"PAR1 over TLS PAR1";
    let headers = put_headers(body);
    let url = presign_put(&bucket, &credentials(), key, &as_pairs(&headers));

    // Without the CA (webpki roots only): the self-signed chain is refused.
    let err = send(
        &mut connection(),
        Method::Put,
        &url,
        &as_pairs(&headers),
        body,
    )
    .unwrap_err();
    assert_eq!(err.category(), HttpErrorCategory::Certificate, "{err}");
    assert_eq!(err.kind(), ErrorKind::InvalidData, "{err}");
    assert!(
        err.to_string().contains("TLS handshake with 127.0.0.1:"),
        "{err}"
    );
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");
    assert!(!env.object_path(key).exists());

    // With the CA file: accepted, and the socket is kept alive for the GET.
    let config = HttpConfig {
        ca_file: Some(ca_file),
        ..HttpConfig::default()
    };
    let mut conn = Client::wrap(HostConnection::new(config).unwrap());
    let accepted_before = front.accepted.load(Ordering::SeqCst);
    let reply = send(&mut conn, Method::Put, &url, &as_pairs(&headers), body).unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(read(&env.object_path(key)), body);
    let creds = credentials();
    let get = GetObject::new(&bucket, Some(&creds), key).sign(HOUR);
    let reply = send(&mut conn, Method::Get, get.as_str(), &[], &[]).unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.body, body);
    assert_eq!(
        front.accepted.load(Ordering::SeqCst) - accepted_before,
        1,
        "both requests on one kept-alive TLS connection"
    );
}

#[test]
fn a_silent_server_times_out() {
    // The kernel completes the TCP handshake; nobody ever answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let timeout = Duration::from_millis(500);
    let mut conn = Client::wrap(
        HostConnection::new(HttpConfig {
            timeout,
            ..HttpConfig::default()
        })
        .unwrap(),
    );
    let started = Instant::now();
    let err = send(
        &mut conn,
        Method::Put,
        &format!("http://{addr}/{BUCKET}/k"),
        &[("content-length", "3")],
        b"abc",
    )
    .unwrap_err();
    let elapsed = started.elapsed();
    assert!(err.is_timeout(), "{err}");
    assert_eq!(err.category(), HttpErrorCategory::Timeout);
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
    assert!(
        elapsed >= timeout / 2 && elapsed < timeout * 10,
        "{elapsed:?}"
    );
    drop(listener);
}

/// Sends `head` and `body` on a raw socket, half-closes it, and returns
/// everything the server answers until it closes the connection.
fn raw_exchange(addr: SocketAddr, head: &str, body: &[u8]) -> String {
    use std::io::{Read as _, Write as _};
    let mut socket = std::net::TcpStream::connect(addr).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    socket.write_all(head.as_bytes()).unwrap();
    socket.write_all(body).unwrap();
    socket.shutdown(std::net::Shutdown::Write).unwrap();
    let mut answer = Vec::new();
    socket.read_to_end(&mut answer).unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn a_body_longer_than_the_declared_content_length_is_cut_or_bad_digest() {
    // A client that declares the signed Content-Length but sends more bytes
    // (impossible through HostConnection): HTTP framing ends the body at the
    // declared length, so without Content-MD5 the first bytes are stored;
    // with the Content-MD5 of the real body the upload is a BadDigest.
    let env = Env::start();
    let addr = env.server.addr();
    let full = b"0123456789EXTRA";
    let declared = 10;
    for with_md5 in [false, true] {
        let key = format!("k/lie-{with_md5}.bin");
        let mut headers = vec![("content-length".to_owned(), declared.to_string())];
        if with_md5 {
            headers.push(("content-md5".to_owned(), md5_base64(full)));
        }
        let url = presign_put(&env.bucket(), &credentials(), &key, &as_pairs(&headers));
        let target = &url[url.find(&format!("/{BUCKET}/")).unwrap()..];
        let mut head = format!("PUT {target} HTTP/1.1\r\nHost: {addr}\r\n");
        for (name, value) in &headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let answer = raw_exchange(addr, &head, full);
        if with_md5 {
            assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
            assert!(answer.contains("<Code>BadDigest</Code>"), "{answer}");
            assert!(!env.object_path(&key).exists());
        } else {
            assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
            assert_eq!(read(&env.object_path(&key)), &full[..declared]);
        }
    }
}

/// HMAC-SHA256 (RFC 2104) on `sha2` alone, for [`presign_raw`].
fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    use sha2::{Digest as _, Sha256};
    let mut block = [0_u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(data)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A SigV4 presigned PUT for the raw request path `path` (no normalisation at all, so
/// `/lake/../other/x` is signed as it is, as botocore would), signing only `host`.
fn presign_raw(endpoint: &str, path: &str, region: &str) -> String {
    use sha2::{Digest as _, Sha256};
    let host = endpoint.trim_start_matches("http://");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let (date, time) = {
        let days = now / 86_400;
        let secs = now % 86_400;
        // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
        let z = days as i64 + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + i64::from(m <= 2);
        (
            format!("{y:04}{m:02}{d:02}"),
            format!("{:02}{:02}{:02}", secs / 3600, secs / 60 % 60, secs % 60),
        )
    };
    let scope = format!("{date}/{region}/s3/aws4_request");
    let query = format!(
        "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={ACCESS_KEY}%2F{}&X-Amz-Date={date}T{time}Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host",
        scope.replace('/', "%2F")
    );
    let canonical = format!("PUT\n{path}\n{query}\nhost:{host}\n\nhost\nUNSIGNED-PAYLOAD");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{date}T{time}Z\n{scope}\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let mut key = hmac_sha256(format!("AWS4{SECRET_KEY}").as_bytes(), date.as_bytes());
    for part in [region, "s3", "aws4_request"] {
        key = hmac_sha256(&key, part.as_bytes());
    }
    let signature = hex(&hmac_sha256(&key, to_sign.as_bytes()));
    format!("{endpoint}{path}?{query}&X-Amz-Signature={signature}")
}

#[test]
fn a_signed_key_with_dot_segments_stays_inside_its_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServerConfig::new(dir.path().join("data"), ACCESS_KEY, SECRET_KEY);
    config.create_buckets = vec!["lake".to_owned(), "other".to_owned()];
    let server = S3Server::start(config).unwrap();
    let mut conn = connection();
    // The hand signer is right: a plain key is stored.
    let url = presign_raw(&server.endpoint(), "/lake/plain.bin", REGION);
    let reply = send(
        &mut conn,
        Method::Put,
        &url,
        &[("content-length", "2")],
        b"ok",
    )
    .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(read(&dir.path().join("data/lake/plain.bin")), b"ok");

    for path in [
        "/lake/../other/x.bin",
        "/lake/..",
        "/lake/a/./b",
        "/lake/a//b",
    ] {
        let url = presign_raw(&server.endpoint(), path, REGION);
        let reply = send(
            &mut conn,
            Method::Put,
            &url,
            &[("content-length", "6")],
            b"escape",
        )
        .unwrap();
        assert_eq!(reply.status, 400, "{path}: {}", reply.text());
        assert_eq!(reply.code().as_deref(), Some("InvalidArgument"), "{path}");
    }
    assert!(!dir.path().join("data/other/x.bin").exists());
    assert!(!dir.path().join("data/x.bin").exists());
}

#[test]
fn a_signature_for_another_region_names_the_expected_one() {
    let env = Env::start();
    let mut conn = connection();
    let body = b"x";
    let headers = put_headers(body);
    let elsewhere = Bucket::new(
        env.server.endpoint().parse().unwrap(),
        UrlStyle::Path,
        BUCKET.to_owned(),
        "eu-central-1",
    )
    .unwrap();
    let url = presign_put(&elsewhere, &credentials(), "k/r.bin", &as_pairs(&headers));
    let reply = put(&mut conn, &url, &headers, body);
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert_eq!(
        reply.code().as_deref(),
        Some("AuthorizationHeaderMalformed")
    );
    let message = reply.message().unwrap_or_default();
    assert!(
        message.contains("eu-central-1") && message.contains(REGION),
        "{message}"
    );
    assert!(!env.object_path("k/r.bin").exists());
}

#[test]
fn long_keys_and_trailing_slashes_get_s3_answers() {
    let env = Env::start();
    let mut conn = connection();
    // The longest key s3s-fs can hold in this bucket (its metadata file is named after
    // the base64 of bucket and key): stored.
    let long = "k/".repeat(79);
    assert_eq!(long.len(), 158);
    let long = format!("{}x", &long[..157]);
    put_ok(&env, &mut conn, &long, b"long");
    assert_eq!(read(&env.object_path(&long)), b"long");

    for (key, status, code) in [
        (format!("{long}x"), 400, "KeyTooLongError"),
        ("k".repeat(1025), 400, "KeyTooLongError"),
        ("dir/".to_owned(), 501, "NotImplemented"),
    ] {
        let body = b"body";
        let headers = put_headers(body);
        let url = presign_put(&env.bucket(), &credentials(), &key, &as_pairs(&headers));
        let reply = put(&mut conn, &url, &headers, body);
        assert_eq!(
            reply.status,
            status,
            "{} bytes: {}",
            key.len(),
            reply.text()
        );
        assert_eq!(reply.code().as_deref(), Some(code));
    }
}

#[test]
fn of_concurrent_if_none_match_puts_to_a_new_key_exactly_one_wins() {
    let env = Env::start();
    let key = "k/race.bin";
    let replies: Vec<(Vec<u8>, u16)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..20)
            .map(|i| {
                let env = &env;
                s.spawn(move || {
                    let body = format!("writer {i}").into_bytes();
                    let mut headers = put_headers(&body);
                    headers.push(("if-none-match".to_owned(), "*".to_owned()));
                    let url = presign_put(&env.bucket(), &credentials(), key, &as_pairs(&headers));
                    let status = put(&mut connection(), &url, &headers, &body).status;
                    (body, status)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let winners: Vec<_> = replies.iter().filter(|(_, s)| *s == 200).collect();
    assert_eq!(winners.len(), 1, "{replies:?}");
    assert!(
        replies.iter().all(|(_, s)| *s == 200 || *s == 412),
        "{replies:?}"
    );
    assert_eq!(read(&env.object_path(key)), winners[0].0);
}

#[test]
fn idle_connections_are_closed_and_a_full_server_serves_again() {
    use std::io::Read as _;
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServerConfig::new(dir.path().join("data"), ACCESS_KEY, SECRET_KEY);
    config.create_buckets = vec![BUCKET.to_owned()];
    config.header_timeout = Duration::from_secs(1);
    config.max_connections = 4;
    let server = S3Server::start(config).unwrap();
    // More idle sockets than the server serves at once.
    let idle: Vec<std::net::TcpStream> = (0..10)
        .map(|_| std::net::TcpStream::connect(server.addr()).unwrap())
        .collect();
    // A correct upload still goes through once the idle ones time out.
    let body = b"after the idle ones";
    let headers = put_headers(body);
    let bucket = bucket_at(&server.endpoint(), BUCKET);
    let url = presign_put(&bucket, &credentials(), "k/after.bin", &as_pairs(&headers));
    let reply = put(&mut connection(), &url, &headers, body);
    assert_eq!(reply.status, 200, "{}", reply.text());
    // Every idle socket was closed by the server (read gives EOF or a reset), long
    // before this generous limit.
    for mut socket in idle {
        socket
            .set_read_timeout(Some(Duration::from_secs(120)))
            .unwrap();
        let mut buf = [0_u8; 1];
        match socket.read(&mut buf) {
            Ok(0) => {}
            Ok(n) => panic!("an idle connection got {n} bytes"),
            Err(err) => assert!(
                !matches!(
                    err.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ),
                "an idle connection stayed open: {err}"
            ),
        }
    }
}
