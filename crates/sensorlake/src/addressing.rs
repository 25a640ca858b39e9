//! Path or virtual-host style: how a bucket is put into a URL, by the rule botocore (the
//! AWS SDK for Python's core, 1.44's S3 endpoint rule set) applies to a custom
//! endpoint. Plain string functions, so every signer (host and device) uses one rule.
//!
//! Virtual-host style (`bucket.host/key`) is used unless path style was asked for, or:
//! - the endpoint's host is an IP address (v4 or v6): `lake.127.0.0.1` is no host
//!   name at all;
//! - the bucket is not one DNS label (3–63 of `[a-z0-9-]`, not shaped like an IPv4
//!   address). A bucket with dots is still virtual-hosted over plain `http` (each
//!   dot-separated part a label), but never over `https`: AWS's wildcard certificate
//!   `*.s3.<region>.amazonaws.com` does not match `my.dotted.bucket.s3…`.
//!
//! Then path style (`host/bucket/key`) is used, as botocore does. One difference on
//! purpose: botocore virtual-hosts a dotted bucket on an `http` IP endpoint
//! (`http://a.b.c.127.0.0.1:9000`, even `a.b.c.[::1]`); here an IP endpoint is always
//! path style.
//!
//! A default port written out (`https://host:443`) changes nothing: the signed `host`
//! omits it, as botocore's does.

/// How a bucket is addressed in a URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Addressing {
    /// `endpoint/bucket/key`.
    Path,
    /// `bucket.endpoint/key`.
    VirtualHost,
}

/// Why a virtual-host request is made path style instead (`None`: it is not).
///
/// `scheme` is `http` or `https`; `host` is the endpoint's host as written in a URL,
/// without the port (an IPv6 address in brackets, or bare).
pub fn path_style_fallback(scheme: &str, host: &str, bucket: &str) -> Option<&'static str> {
    if is_ip_address(host) {
        return Some("the endpoint is an IP address");
    }
    if is_host_label_bucket(bucket) {
        return None;
    }
    let dotted_ok = scheme.eq_ignore_ascii_case("http")
        && bucket.len() >= 3
        && !looks_like_ipv4(bucket)
        && bucket.split('.').all(is_lowercase_host_label);
    if dotted_ok {
        None
    } else if bucket.contains('.') {
        Some("the bucket name has dots, which https certificates of virtual hosts do not match")
    } else {
        Some("the bucket name is not a valid host name label")
    }
}

/// The style a request is made with: path style when asked for or when
/// [`path_style_fallback`] gives a reason, else virtual-host.
pub fn addressing(path_style: bool, scheme: &str, host: &str, bucket: &str) -> Addressing {
    if path_style || path_style_fallback(scheme, host, bucket).is_some() {
        Addressing::Path
    } else {
        Addressing::VirtualHost
    }
}

/// Whether `host` is an IPv4 address (four dot-separated groups of 1–3 digits, as
/// botocore matches it) or an IPv6 address (with or without brackets).
pub fn is_ip_address(host: &str) -> bool {
    looks_like_ipv4(host) || host.contains(':')
}

fn looks_like_ipv4(text: &str) -> bool {
    let parts: Vec<&str> = text.split('.').collect();
    parts.len() == 4
        && parts
            .iter()
            .all(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
}

/// One DNS label of lowercase letters, digits and inner hyphens, 1–63 long.
fn is_lowercase_host_label(label: &str) -> bool {
    let b = label.as_bytes();
    (1..=63).contains(&b.len())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// A bucket that is a single host label of 3–63 characters.
fn is_host_label_bucket(bucket: &str) -> bool {
    bucket.len() >= 3 && is_lowercase_host_label(bucket)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_endpoints_are_path_style() {
        for host in [
            "127.0.0.1",
            "10.0.0.5",
            "[::1]",
            "::1",
            "[2001:db8::1]",
            "[::ffff:127.0.0.1]",
        ] {
            for scheme in ["http", "https"] {
                assert_eq!(
                    path_style_fallback(scheme, host, "lake"),
                    Some("the endpoint is an IP address"),
                    "{scheme}://{host}"
                );
                assert_eq!(
                    addressing(false, scheme, host, "a.b.c"),
                    Addressing::Path,
                    "{host}"
                );
            }
        }
    }

    #[test]
    fn host_names_are_virtual_hosted_unless_the_bucket_cannot_be() {
        let virt = |scheme, host, bucket| addressing(false, scheme, host, bucket);
        assert_eq!(
            virt("https", "s3.eu-west-1.amazonaws.com", "lake"),
            Addressing::VirtualHost
        );
        assert_eq!(virt("http", "localhost", "lake"), Addressing::VirtualHost);
        assert_eq!(
            virt("https", "objects.example.com", "a--b"),
            Addressing::VirtualHost
        );
        // Dots: path style over https, virtual-host over http (botocore).
        assert_eq!(
            virt("https", "s3.eu-central-1.amazonaws.com", "my.dotted.bucket"),
            Addressing::Path
        );
        assert_eq!(
            virt("http", "objects.example.com", "a.b.c"),
            Addressing::VirtualHost
        );
        // Shaped like an IP address, or a label starting with '-': path style.
        assert_eq!(
            virt("http", "objects.example.com", "1.2.3.4"),
            Addressing::Path
        );
        assert_eq!(
            virt("http", "objects.example.com", "a.-b"),
            Addressing::Path
        );
        assert_eq!(
            virt("http", "objects.example.com", "Lake_Upper"),
            Addressing::Path
        );
        // Asked for.
        assert_eq!(
            addressing(true, "https", "s3.amazonaws.com", "lake"),
            Addressing::Path
        );
    }
}
