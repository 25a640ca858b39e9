//! sensorlake's presigned URLs against botocore's, an independent SigV4 implementation.
//!
//! `tests/fixtures/presign_botocore.json` is written by `scripts/presign_fixtures.py`
//! (see its docstring for the pinned botocore and how to regenerate it). Every case is
//! run through [`sensorlake::presign::Signer`] with the same inputs, and the two URLs
//! must agree on scheme, host and port, on the percent-decoded path, on the query
//! parameters (as a map, so order and encoding style don't matter) and, above all, on
//! `X-Amz-Signature`: it covers the canonical request, so equal signatures prove that
//! both sides canonicalised the path, query and headers identically.
//!
//! Cases marked `"expect": "diverge"` record a known, explained difference (see their
//! `divergence` note): keys with `.`/`..` segments, which botocore signs literally and
//! the `url` crate would silently rewrite. sensorlake refuses them
//! (`PresignError::BadKey`), and the test asserts exactly that.
//!
//! The botocore URL is split by hand, never parsed with the `url` crate: its parser
//! removes `.`/`..` path segments, which would hide the very difference those cases
//! are about.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use percent_encoding::percent_decode_str;
use serde_json::Value;

use sensorlake::presign::{Credentials, PresignError, PutRequest, S3Target, Signer};

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/presign_botocore.json"
);

fn fixtures() -> Value {
    let text = std::fs::read_to_string(FIXTURES)
        .unwrap_or_else(|e| panic!("{FIXTURES} is in the repository: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{FIXTURES} is not JSON: {e}"))
}

fn cases(doc: &Value) -> &[Value] {
    doc["cases"]
        .as_array()
        .expect("fixtures have a `cases` array")
}

/// One fixture case, read strictly: a missing or mistyped field fails the test.
struct Case<'a> {
    name: &'a str,
    method: &'a str,
    endpoint: &'a str,
    bucket: &'a str,
    region: &'a str,
    path_style: bool,
    key: &'a str,
    access_key_id: &'a str,
    secret_access_key: &'a str,
    session_token: Option<&'a str>,
    unix_time: u64,
    expires: u64,
    body: Option<&'a str>,
    headers: BTreeMap<&'a str, &'a str>,
    diverges: bool,
    url: &'a str,
}

impl<'a> Case<'a> {
    fn parse(v: &'a Value) -> Self {
        let name = v["name"].as_str().expect("every case has a string `name`");
        let str_ = |field: &str| {
            v[field]
                .as_str()
                .unwrap_or_else(|| panic!("case {name}: `{field}` is not a string"))
        };
        let opt_str = |field: &str| match &v[field] {
            Value::Null => None,
            Value::String(s) => Some(s.as_str()),
            other => panic!("case {name}: `{field}` is {other}, not a string or null"),
        };
        let u64_ = |field: &str| {
            v[field]
                .as_u64()
                .unwrap_or_else(|| panic!("case {name}: `{field}` is not an unsigned integer"))
        };
        let headers = v["headers"]
            .as_object()
            .unwrap_or_else(|| panic!("case {name}: `headers` is not an object"))
            .iter()
            .map(|(k, v)| {
                let v = v
                    .as_str()
                    .unwrap_or_else(|| panic!("case {name}: header {k} is not a string"));
                (k.as_str(), v)
            })
            .collect();
        let diverges = match str_("expect") {
            "match" => false,
            "diverge" => {
                assert!(
                    v["divergence"].as_str().is_some_and(|s| !s.is_empty()),
                    "case {name}: a diverging case must explain itself in `divergence`"
                );
                true
            }
            other => panic!("case {name}: `expect` is {other:?}, not \"match\" or \"diverge\""),
        };
        Self {
            name,
            method: str_("method"),
            endpoint: str_("endpoint"),
            bucket: str_("bucket"),
            region: str_("region"),
            path_style: v["path_style"]
                .as_bool()
                .unwrap_or_else(|| panic!("case {name}: `path_style` is not a bool")),
            key: str_("key"),
            access_key_id: str_("access_key_id"),
            secret_access_key: str_("secret_access_key"),
            session_token: opt_str("session_token"),
            unix_time: u64_("unix_time"),
            expires: u64_("expires"),
            body: opt_str("body"),
            headers,
            diverges,
            url: str_("url"),
        }
    }

    fn at(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(self.unix_time)
    }

    fn signer(&self) -> Signer {
        let target = S3Target {
            endpoint: self.endpoint.to_string(),
            bucket: self.bucket.to_string(),
            region: self.region.to_string(),
            path_style: self.path_style,
        };
        let credentials = Credentials::new(self.access_key_id, self.secret_access_key)
            .with_session_token(self.session_token.map(str::to_string));
        Signer::new(&target, &credentials, Duration::from_secs(self.expires))
            .unwrap_or_else(|e| panic!("case {}: Signer::new failed: {e}", self.name))
    }

    fn put_request(&self) -> PutRequest {
        for name in self.headers.keys() {
            assert!(
                matches!(*name, "content-md5" | "content-length" | "if-none-match"),
                "case {}: PutRequest cannot sign header {name:?}",
                self.name
            );
        }
        let request = PutRequest {
            key: self.key.to_string(),
            content_md5: self.headers.get("content-md5").map(|s| s.to_string()),
            content_length: self.headers.get("content-length").map(|s| {
                s.parse()
                    .unwrap_or_else(|_| panic!("case {}: bad content-length {s:?}", self.name))
            }),
            if_none_match: match self.headers.get("if-none-match") {
                None => false,
                Some(&"*") => true,
                Some(other) => panic!("case {}: if-none-match must be *, is {other}", self.name),
            },
        };
        if let Some(body) = self.body {
            // The headers were computed by Python's hashlib from the same body.
            assert_eq!(
                PutRequest::for_body(self.key, body.as_bytes()),
                request,
                "case {}: PutRequest::for_body disagrees with the fixture's headers",
                self.name
            );
        }
        request
    }

    /// sensorlake's URL for this case (and, for a PUT, its returned headers checked).
    fn sign(&self) -> Result<String, PresignError> {
        let signer = self.signer();
        match self.method {
            "GET" => {
                assert!(
                    self.headers.is_empty(),
                    "case {}: GET signs only host",
                    self.name
                );
                signer.presign_get(self.key, self.at())
            }
            "PUT" => {
                let put = signer.presign_put(&self.put_request(), self.at())?;
                let returned: BTreeMap<&str, &str> = put
                    .headers
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                assert_eq!(
                    returned, self.headers,
                    "case {}: the headers to send are not the signed ones",
                    self.name
                );
                assert_eq!(
                    put.expires_at,
                    self.at() + Duration::from_secs(self.expires),
                    "case {}: expires_at",
                    self.name
                );
                Ok(put.url)
            }
            other => panic!("case {}: unknown method {other:?}", self.name),
        }
    }
}

/// A URL split by hand (see the module docs for why not with the `url` crate).
#[derive(Debug)]
struct Parts<'a> {
    scheme: &'a str,
    host: String,
    port: u16,
    raw_path: &'a str,
    query: BTreeMap<String, String>,
}

fn decode(s: &str) -> String {
    percent_decode_str(s)
        .decode_utf8()
        .unwrap_or_else(|e| panic!("{s:?} does not decode to UTF-8: {e}"))
        .into_owned()
}

fn split(url: &str) -> Result<Parts<'_>, String> {
    let (scheme, rest) = url.split_once("://").ok_or("no scheme")?;
    if url.contains('#') {
        return Err("has a fragment".into());
    }
    let (before_query, raw_query) = rest.split_once('?').ok_or("no query string")?;
    let slash = before_query.find('/').ok_or("no path")?;
    let (authority, raw_path) = before_query.split_at(slash);
    if authority.contains('@') {
        return Err(format!("unsupported authority {authority:?}"));
    }
    let default_port = match scheme {
        "http" => 80,
        "https" => 443,
        other => return Err(format!("scheme {other:?}")),
    };
    // An IPv6 host keeps its brackets: `[::1]:9000`.
    let host_end = match authority.strip_prefix('[') {
        Some(rest) => rest.find(']').ok_or("unclosed '['")? + 2,
        None => authority.find(':').unwrap_or(authority.len()),
    };
    let (host, port) = match &authority[host_end..] {
        "" => (&authority[..host_end], default_port),
        rest => match rest.strip_prefix(':') {
            Some(port) => (
                &authority[..host_end],
                port.parse().map_err(|_| "bad port")?,
            ),
            None => return Err(format!("bad authority {authority:?}")),
        },
    };
    let mut query = BTreeMap::new();
    for pair in raw_query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        // RFC 3986 decoding: a literal '+' would stay '+', not become a space.
        if query.insert(decode(k), decode(v)).is_some() {
            return Err(format!("query parameter {k:?} is repeated"));
        }
    }
    Ok(Parts {
        scheme,
        host: host.to_ascii_lowercase(),
        port,
        raw_path,
        query,
    })
}

/// RFC 3986 §5.2.4 remove_dot_segments, what the `url` crate does to a path.
fn remove_dot_segments(path: &str) -> String {
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let mut out: Vec<&str> = Vec::new();
    for (i, segment) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        match *segment {
            "." | ".." => {
                if *segment == ".." {
                    out.pop();
                }
                if last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    format!("/{}", out.join("/"))
}

/// Compares one case; returns a description of every difference.
fn compare(case: &Case, ours: &str) -> Vec<String> {
    let theirs = match split(case.url) {
        Ok(p) => p,
        Err(e) => return vec![format!("botocore URL {}: {e}", case.url)],
    };
    let mine = match split(ours) {
        Ok(p) => p,
        Err(e) => return vec![format!("sensorlake URL {ours}: {e}")],
    };
    let mut problems = Vec::new();
    if (mine.scheme, &mine.host, mine.port) != (theirs.scheme, &theirs.host, theirs.port) {
        problems.push(format!(
            "origin {}://{}:{} != botocore's {}://{}:{}",
            mine.scheme, mine.host, mine.port, theirs.scheme, theirs.host, theirs.port
        ));
    }
    let without_signature = |q: &BTreeMap<String, String>| {
        let mut q = q.clone();
        q.remove("X-Amz-Signature");
        q
    };
    if without_signature(&mine.query) != without_signature(&theirs.query) {
        problems.push(format!(
            "query parameters differ:\n      sensorlake {:?}\n      botocore   {:?}",
            mine.query, theirs.query
        ));
    }
    let (my_sig, their_sig) = (
        mine.query.get("X-Amz-Signature"),
        theirs.query.get("X-Amz-Signature"),
    );
    if their_sig.is_none_or(|s| s.len() != 64) {
        problems.push(format!("botocore's X-Amz-Signature is {their_sig:?}"));
    }
    let (my_path, their_path) = (decode(mine.raw_path), decode(theirs.raw_path));
    if my_path != their_path {
        problems.push(format!(
            "decoded path {my_path:?} != botocore's {their_path:?} (raw {:?} vs {:?})",
            mine.raw_path, theirs.raw_path
        ));
    }
    if my_sig != their_sig {
        problems.push(format!(
            "X-Amz-Signature {my_sig:?} != botocore's {their_sig:?}"
        ));
    }
    problems
}

#[test]
fn every_case_matches_botocore() {
    let doc = fixtures();
    let mut failures = Vec::new();
    let (mut matched, mut diverged) = (0, 0);
    for value in cases(&doc) {
        let case = Case::parse(value);
        let problems = match (case.sign(), case.diverges) {
            (Ok(ours), false) => compare(&case, &ours)
                .into_iter()
                .map(|p| format!("{p}\n    sensorlake {ours}"))
                .collect(),
            // The documented divergence: the `url` crate would drop the dot segments
            // and sign another key, so sensorlake refuses such keys outright.
            (Err(PresignError::BadKey(_)), true) => {
                let path = split(case.url)
                    .map(|p| p.raw_path.to_string())
                    .unwrap_or_default();
                if remove_dot_segments(&path) == path {
                    vec!["marked `diverge` but botocore's path has no dot segment".to_string()]
                } else {
                    Vec::new()
                }
            }
            (Ok(ours), true) => vec![format!(
                "a dot-segment key was signed instead of refused: {ours}"
            )],
            (Err(e), _) => vec![format!("signing failed: {e}")],
        };
        if problems.is_empty() {
            if case.diverges {
                diverged += 1;
            } else {
                matched += 1;
            }
        } else {
            failures.push(format!(
                "case {} (key {:?}):\n    botocore   {}\n    - {}",
                case.name,
                case.key,
                case.url,
                problems.join("\n    - ")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from botocore {}:\n{}",
        failures.len(),
        cases(&doc).len(),
        doc["botocore_version"],
        failures.join("\n")
    );
    eprintln!("{matched} cases match botocore; {diverged} dot-segment keys are refused");
}

/// The fixture file must keep covering every dimension, so it can't silently shrink
/// to nothing (or to only the easy cases).
#[test]
fn fixtures_cover_every_dimension() {
    let doc = fixtures();
    assert!(
        doc["botocore_version"]
            .as_str()
            .is_some_and(|v| !v.is_empty()),
        "the fixtures must say which botocore made them"
    );
    let all: Vec<Case> = cases(&doc).iter().map(Case::parse).collect();
    let matching: Vec<&Case> = all.iter().filter(|c| !c.diverges).collect();
    let count = |what: &str, pred: &dyn Fn(&Case) -> bool, min: usize| {
        let n = matching.iter().filter(|c| pred(c)).count();
        assert!(
            n >= min,
            "only {n} matching cases cover {what}, want at least {min}"
        );
    };

    count("anything", &|_| true, 40);
    count("path-style URLs", &|c| c.path_style, 10);
    count("virtual-host URLs", &|c| !c.path_style, 10);
    for region in ["us-east-1", "eu-west-1", "ap-southeast-2"] {
        count(region, &|c| c.region == region, 2);
    }
    count(
        "http://127.0.0.1:9000",
        &|c| c.endpoint == "http://127.0.0.1:9000",
        5,
    );
    count(
        "AWS endpoints",
        &|c| c.endpoint.ends_with(".amazonaws.com"),
        10,
    );
    count(
        "a non-default port with a virtual host",
        &|c| !c.path_style && split(c.url).is_ok_and(|p| p.port != 80 && p.port != 443),
        1,
    );
    // Issue 11 §3: virtual-host asked for where botocore uses path style.
    let botocore_path_style =
        |c: &Case| split(c.url).is_ok_and(|p| p.raw_path.starts_with(&format!("/{}/", c.bucket)));
    count(
        "IP endpoints with virtual-host asked for (path style used)",
        &|c| {
            !c.path_style
                && botocore_path_style(c)
                && split(c.url).is_ok_and(|p| {
                    p.host.starts_with('[')
                        || p.host.bytes().all(|b| b.is_ascii_digit() || b == b'.')
                })
        },
        5,
    );
    count("IPv6 endpoints", &|c| c.endpoint.contains('['), 3);
    count("dotted buckets", &|c| c.bucket.contains('.'), 3);
    count(
        "default ports written out (:443 on https, :80 on http)",
        &|c| {
            (c.endpoint.starts_with("https://") && c.endpoint.ends_with(":443"))
                || (c.endpoint.starts_with("http://") && c.endpoint.ends_with(":80"))
        },
        4,
    );
    count("Hive partition keys ('=')", &|c| c.key.contains('='), 10);
    count("keys with spaces", &|c| c.key.contains(' '), 2);
    count("keys with '+'", &|c| c.key.contains('+'), 2);
    count("non-ASCII keys", &|c| !c.key.is_ascii(), 4);
    count(
        "nested keys (4+ segments)",
        &|c| c.key.matches('/').count() >= 3,
        10,
    );
    count("a session token", &|c| c.session_token.is_some(), 10);
    count("no session token", &|c| c.session_token.is_none(), 10);
    count(
        "content-md5 + content-length + if-none-match",
        &|c| c.headers.len() == 3,
        10,
    );
    count(
        "host-only PUTs",
        &|c| c.method == "PUT" && c.headers.is_empty(),
        10,
    );
    count(
        "partial header sets",
        &|c| (1..3).contains(&c.headers.len()),
        2,
    );
    count("PUT body-bound via for_body", &|c| c.body.is_some(), 10);
    count("expiry 300 s", &|c| c.expires == 300, 10);
    count("expiry 604800 s", &|c| c.expires == 604_800, 2);
    count("GET URLs", &|c| c.method == "GET", 2);

    for c in &all {
        assert!(
            c.access_key_id.contains("EXAMPLE") && c.secret_access_key.contains("EXAMPLE"),
            "case {}: credentials must be AWS documentation examples",
            c.name
        );
        assert!(
            c.session_token.is_none_or(|t| t.contains("EXAMPLE")),
            "case {}: session tokens must be examples",
            c.name
        );
    }
    let mut names: Vec<&str> = all.iter().map(|c| c.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), all.len(), "case names must be unique");
}

#[test]
fn remove_dot_segments_follows_rfc_3986() {
    assert_eq!(remove_dot_segments("/lake/raw/../x"), "/lake/x");
    assert_eq!(remove_dot_segments("/lake/raw/./x"), "/lake/raw/x");
    assert_eq!(remove_dot_segments("/lake/raw/.."), "/lake/");
    assert_eq!(remove_dot_segments("/lake/a..b/.../x"), "/lake/a..b/.../x");
    assert_eq!(remove_dot_segments("/lake//x/"), "/lake//x/");
}
