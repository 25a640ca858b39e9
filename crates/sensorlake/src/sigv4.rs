//! AWS Signature Version 4 query signing (presigned URLs) on `sha2` + `hmac` alone:
//! the endpoint parser, RFC 3986 encoding and the UTC date are written out here, so
//! the device links neither `url` (with `idna` and its Unicode tables) nor `jiff`.
//!
//! The URLs are byte for byte those of rusty-s3 (which the host used before; the tests
//! compare the two) and sign what botocore signs (tests/presign_fixtures.rs).
//! Endpoints must be ASCII: a host with anything but letters, digits, `-`, `.` and
//! `_`, an IP literal or a `:port`, or a path with anything but unreserved characters
//! and `/`, is refused with a clear error rather than normalised as a URL parser
//! would. Object keys may be any UTF-8; each byte outside the unreserved set is
//! percent-encoded.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = hmac::Hmac<Sha256>;

/// An S3 endpoint, parsed: `http(s)://host[:port][/path]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `https` (else `http`).
    pub secure: bool,
    /// The host, lowercase; an IPv6 address in brackets.
    pub host: String,
    /// The port, unless it is the scheme's default.
    pub port: Option<u16>,
    /// The path prefix, ending with `/`.
    pub path: String,
}

impl Endpoint {
    /// Parses an endpoint URL; a query or fragment is dropped (signing replaces the
    /// query), user info is refused.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("endpoint {text:?}: {why}");
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| bad("not an http:// or https:// URL"))?;
        let secure = if scheme.eq_ignore_ascii_case("https") {
            true
        } else if scheme.eq_ignore_ascii_case("http") {
            false
        } else {
            return Err(bad("not an http:// or https:// URL"));
        };
        let rest = rest.split(['?', '#']).next().unwrap_or("");
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        if authority.contains('@') {
            return Err(bad("user info (`user@`) in an endpoint is not supported"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (addr, after) = v6
                .split_once(']')
                .ok_or_else(|| bad("an unclosed IPv6 bracket"))?;
            let ip: Ipv6Addr = addr.parse().map_err(|_| bad("not an IPv6 address"))?;
            if addr.contains('.') {
                return Err(bad(
                    "IPv6 addresses with an embedded IPv4 part are not supported",
                ));
            }
            let port = match after {
                "" => None,
                p => Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| bad("junk after the IPv6 address"))?,
                ),
            };
            (format!("[{ip}]"), port)
        } else {
            let (host, port) = match authority.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            };
            let host = host.to_ascii_lowercase();
            let ok = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_');
            if host.is_empty() || !host.bytes().all(ok) {
                return Err(bad(
                    "the host must be ASCII letters, digits, '-', '.' or '_' (internationalised names are not supported on the device)",
                ));
            }
            if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
                // Only the canonical dotted quad: a URL parser would rewrite other forms.
                let ip: Ipv4Addr = host
                    .parse()
                    .map_err(|_| bad("not a dotted-quad IPv4 address"))?;
                if ip.to_string() != host {
                    return Err(bad("not a canonical dotted-quad IPv4 address"));
                }
            }
            (host, port)
        };
        let port = match port {
            None | Some("") => None,
            Some(p) if p.bytes().all(|b| b.is_ascii_digit()) => {
                let p: u16 = p.parse().map_err(|_| bad("the port is above 65535"))?;
                (p != if secure { 443 } else { 80 }).then_some(p)
            }
            Some(_) => return Err(bad("the port is not a number")),
        };
        let unreserved =
            |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~');
        if !path.bytes().all(|b| unreserved(b) || b == b'/')
            || path.split('/').any(|s| s == "." || s == "..")
        {
            return Err(bad(
                "the path may hold only letters, digits, '-', '.', '_', '~' and '/', without '.' or '..' segments",
            ));
        }
        let mut path = if path.is_empty() {
            "/".to_string()
        } else {
            path.to_string()
        };
        if !path.ends_with('/') {
            path.push('/');
        }
        Ok(Self {
            secure,
            host,
            port,
            path,
        })
    }

    /// Whether the host is an IP address (then buckets go in the path).
    pub fn is_ip(&self) -> bool {
        self.host.starts_with('[') || self.host.parse::<Ipv4Addr>().is_ok()
    }

    /// Whether the host is `localhost` or a loopback address.
    pub fn is_loopback(&self) -> bool {
        if self.host == "localhost" {
            return true;
        }
        if let Ok(ip) = self.host.parse::<Ipv4Addr>() {
            return ip.is_loopback();
        }
        self.host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .and_then(|h| h.parse::<Ipv6Addr>().ok())
            .is_some_and(|ip| ip.is_loopback())
    }

    /// `host[:port]`, the value of the `Host` header.
    pub fn authority(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{p}", self.host),
            None => self.host.clone(),
        }
    }

    /// `http` or `https`.
    pub fn scheme(&self) -> &'static str {
        if self.secure { "https" } else { "http" }
    }
}

/// The endpoint-style rule ([`crate::addressing`], botocore's): path style when asked
/// for, for an IP endpoint, or for a bucket that is not a host name (dotted over https).
pub fn uses_path_style(endpoint: &Endpoint, bucket: &str, path_style: bool) -> bool {
    crate::addressing::addressing(path_style, endpoint.scheme(), &endpoint.host, bucket)
        == crate::addressing::Addressing::Path
}

/// Appends `text` percent-encoded per RFC 3986: every byte but the unreserved
/// `A-Z a-z 0-9 - . _ ~` (and `/` when `keep_slash`) as `%XX` (uppercase hex).
pub fn uri_encode(text: &str, keep_slash: bool, out: &mut String) {
    for &b in text.as_bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// A UTC time as (year, month, day, hour, minute, second), from seconds since 1970
/// (Howard Hinnant's days-to-civil algorithm).
pub fn utc(secs: u64) -> (u64, u64, u64, u64, u64, u64) {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day, rem / 3600, rem % 3600 / 60, rem % 60)
}

/// The latest signing time: 9999-12-31T23:59:59Z (SigV4 dates have four-digit years).
pub const MAX_SIGNING_SECS: u64 = 253_402_300_799;

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length: this cannot fail.
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(data);
    mac.finalize().into_bytes().into()
}

fn hex(bytes: &[u8], out: &mut String) {
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
}

/// What to sign.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// `GET` or `PUT`.
    pub method: &'a str,
    /// The endpoint.
    pub endpoint: &'a Endpoint,
    /// Bucket name (already validated).
    pub bucket: &'a str,
    /// Path style (after [`uses_path_style`]).
    pub path_style: bool,
    /// Object key (any UTF-8).
    pub key: &'a str,
    /// Region of the signature.
    pub region: &'a str,
    /// Access key id.
    pub access_key_id: &'a str,
    /// Secret access key.
    pub secret_access_key: &'a str,
    /// Session token (`X-Amz-Security-Token`), if any and not empty.
    pub session_token: Option<&'a str>,
    /// Signed headers besides `host`: lowercase names, sorted, none named `host`.
    pub headers: &'a [(String, String)],
    /// Signing time, seconds since 1970 (≤ [`MAX_SIGNING_SECS`]).
    pub at_secs: u64,
    /// `X-Amz-Expires`.
    pub expires_secs: u64,
}

/// The presigned URL for `request`.
pub fn presign(request: &Request<'_>) -> String {
    let e = request.endpoint;
    let (host, mut path) = if request.path_style {
        let mut path = e.path.clone();
        uri_encode(request.bucket, false, &mut path);
        path.push('/');
        (e.host.clone(), path)
    } else {
        (format!("{}.{}", request.bucket, e.host), e.path.clone())
    };
    uri_encode(request.key, true, &mut path);
    let authority = match e.port {
        Some(p) => format!("{host}:{p}"),
        None => host,
    };

    let (y, mo, d, h, mi, s) = utc(request.at_secs.min(MAX_SIGNING_SECS));
    let date = format!("{y:04}{mo:02}{d:02}");
    let stamp = format!("{date}T{h:02}{mi:02}{s:02}Z");
    let scope = format!("{date}/{}/s3/aws4_request", request.region);
    let credential = format!("{}/{scope}", request.access_key_id);

    // Signed headers, sorted: the caller's and `host`.
    let mut headers: Vec<(&str, &str)> = request
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    headers.push(("host", &authority));
    headers.sort_by(|a, b| a.0.cmp(b.0));
    let signed: Vec<&str> = headers.iter().map(|(k, _)| *k).collect();
    let signed = signed.join(";");

    let expires = request.expires_secs.to_string();
    let mut query_pairs = vec![
        ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
        ("X-Amz-Credential", credential.as_str()),
        ("X-Amz-Date", stamp.as_str()),
        ("X-Amz-Expires", expires.as_str()),
    ];
    if let Some(token) = request.session_token.filter(|t| !t.is_empty()) {
        query_pairs.push(("X-Amz-Security-Token", token));
    }
    query_pairs.push(("X-Amz-SignedHeaders", signed.as_str()));
    let mut query = String::new();
    for (i, (k, v)) in query_pairs.iter().enumerate() {
        if i > 0 {
            query.push('&');
        }
        uri_encode(k, false, &mut query);
        query.push('=');
        uri_encode(v, false, &mut query);
    }

    let mut canonical = String::with_capacity(256 + path.len() + query.len());
    canonical.push_str(request.method);
    canonical.push('\n');
    canonical.push_str(&path);
    canonical.push('\n');
    canonical.push_str(&query);
    canonical.push('\n');
    for (k, v) in &headers {
        canonical.push_str(k);
        canonical.push(':');
        let mut first = true;
        for word in v.split_whitespace() {
            if !first {
                canonical.push(' ');
            }
            first = false;
            canonical.push_str(word);
        }
        canonical.push('\n');
    }
    canonical.push('\n');
    canonical.push_str(&signed);
    canonical.push_str("\nUNSIGNED-PAYLOAD");

    let mut to_sign = format!("AWS4-HMAC-SHA256\n{stamp}\n{scope}\n");
    hex(&Sha256::digest(canonical.as_bytes()), &mut to_sign);

    let mut secret = String::with_capacity(4 + request.secret_access_key.len());
    secret.push_str("AWS4");
    secret.push_str(request.secret_access_key);
    let k_date = hmac(secret.as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, request.region.as_bytes());
    let k_service = hmac(&k_region, b"s3");
    let k_signing = hmac(&k_service, b"aws4_request");
    let signature = hmac(&k_signing, to_sign.as_bytes());

    let mut url = format!(
        "{}://{authority}{path}?{query}&X-Amz-Signature=",
        e.scheme()
    );
    hex(&signature, &mut url);
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates_match_the_calendar() {
        assert_eq!(utc(0), (1970, 1, 1, 0, 0, 0));
        assert_eq!(utc(951_782_400), (2000, 2, 29, 0, 0, 0));
        assert_eq!(utc(1_709_251_199), (2024, 2, 29, 23, 59, 59));
        assert_eq!(utc(MAX_SIGNING_SECS), (9999, 12, 31, 23, 59, 59));
        // Every day start from 1970 to 2100 against a day counter.
        let mut days = 0u64;
        for year in 1970..2100u64 {
            let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
            let lens = [
                31,
                if leap { 29 } else { 28 },
                31,
                30,
                31,
                30,
                31,
                31,
                30,
                31,
                30,
                31,
            ];
            for (m, len) in lens.iter().enumerate() {
                for d in 1..=*len {
                    assert_eq!(utc(days * 86_400 + 3661), (year, m as u64 + 1, d, 1, 1, 1));
                    days += 1;
                }
            }
        }
    }

    #[test]
    fn rfc3986_encoding() {
        let mut out = String::new();
        uri_encode("a b/c+d=é~_.-", true, &mut out);
        assert_eq!(out, "a%20b/c%2Bd%3D%C3%A9~_.-");
        out.clear();
        uri_encode("k/v", false, &mut out);
        assert_eq!(out, "k%2Fv");
    }

    #[test]
    fn endpoints_parse_or_are_refused_clearly() {
        let e = Endpoint::parse("HTTP://Example.COM:80").unwrap();
        assert_eq!(
            (e.secure, e.host.as_str(), e.port, e.path.as_str()),
            (false, "example.com", None, "/")
        );
        let e = Endpoint::parse("https://h:9443/base?x=1#f").unwrap();
        assert_eq!((e.port, e.path.as_str()), (Some(9443), "/base/"));
        assert!(Endpoint::parse("http://127.0.0.1:9000").unwrap().is_ip());
        assert!(Endpoint::parse("http://[::1]:9000").unwrap().is_loopback());
        assert!(Endpoint::parse("http://localhost").unwrap().is_loopback());
        for bad in [
            "ftp://x",
            "x",
            "http://",
            "http://bücher.de",
            "http://127.1",
            "http://user@h",
            "http://h:99999",
            "http://h:x",
            "http://h/a b",
            "http://h/../x",
        ] {
            let e = Endpoint::parse(bad).unwrap_err();
            assert!(e.contains(bad), "{e}");
        }
    }

    #[test]
    fn ip_endpoints_and_dotted_buckets_use_path_style() {
        let ip = Endpoint::parse("http://10.0.0.1:9000").unwrap();
        let v6 = Endpoint::parse("http://[fd00::1]").unwrap();
        let name = Endpoint::parse("https://s3.amazonaws.com").unwrap();
        assert!(uses_path_style(&ip, "lake", false));
        assert!(uses_path_style(&v6, "lake", false));
        assert!(uses_path_style(&name, "my.lake", false));
        assert!(!uses_path_style(&name, "lake", false));
        assert!(uses_path_style(&name, "lake", true));
        let plain = Endpoint::parse("http://minio.local:9000").unwrap();
        assert!(
            !uses_path_style(&plain, "my.lake", false),
            "dots are host labels over http"
        );
    }
}
