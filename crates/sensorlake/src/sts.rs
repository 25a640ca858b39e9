//! Local signing with temporary credentials (access key, secret, session token, expiry),
//! refreshed before they expire: a [`UrlSource`] for devices that should not hold
//! long-term keys but sign their own URLs.
//!
//! Where temporary credentials come from is a [`CredentialsProvider`]. The one for field
//! devices on AWS is the **AWS IoT credentials provider** ([`IotCredentialsProvider`]):
//!
//! 1. the device holds an X.509 certificate and private key registered with AWS IoT
//!    (ideally in a secure element or the ESP32's encrypted flash);
//! 2. an IAM role grants `s3:PutObject` on `arn:aws:s3:::BUCKET/PREFIX/device_id=${credentials-iot:ThingName}/*`
//!    (the policy variable makes the scope per device), and a *role alias* points at it;
//!    the certificate's IoT policy allows `iot:AssumeRoleWithCertificate` on the alias;
//! 3. the device does an HTTPS GET, with its certificate as the TLS client certificate,
//!    to `https://<account endpoint>/role-aliases/<alias>/credentials` with the header
//!    `x-amzn-iot-thingname: <thing>`; the answer is
//!    `{"credentials":{"accessKeyId":…,"secretAccessKey":…,"sessionToken":…,"expiration":"…Z"}}`,
//!    valid for the alias's `credentialDurationSeconds` (15 min to 12 h, default 1 h).
//!
//! A stolen device then signs only into its own prefix, only until the credentials expire,
//! and revoking its certificate in AWS IoT ends that. The client certificate is configured
//! on the HTTP connection (ESP-IDF: `esp_idf_svc::http::client::Configuration`'s
//! `client_certificate` and `private_key`), not here.
//!
//! [`StsSigner`] fetches credentials on first use and again once they are within
//! `refresh_before` (default 5 min) of expiring; if a refresh fails while the current
//! credentials still work, it keeps signing with them (and logs a warning). URLs never
//! outlive the credentials that signed them. Providers must return a session token:
//! long-term keys are refused.

use std::fmt;
use std::time::{Duration, SystemTime};

use embedded_svc::http::Method;
use embedded_svc::http::client::Connection;
use serde::Deserialize;

use crate::presign::{Credentials, DEFAULT_EXPIRY, PresignedPut, PutRequest, S3Target, Signer};
use crate::url_source::{UrlError, UrlSource};

/// Refresh credentials this long before they expire, by default.
pub const DEFAULT_REFRESH_BEFORE: Duration = Duration::from_secs(300);
/// Shortest useful remaining lifetime: less and the credentials are refreshed now.
const MIN_REMAINING: Duration = Duration::from_secs(10);
/// The largest credentials answer read.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Temporary credentials and when they stop working.
#[derive(Clone, PartialEq, Eq)]
pub struct TemporaryCredentials {
    /// Access key, secret and session token.
    pub credentials: Credentials,
    /// Expiry, by the provider's clock.
    pub expires_at: SystemTime,
}

impl fmt::Debug for TemporaryCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TemporaryCredentials")
            .field("credentials", &self.credentials)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// A source of temporary credentials.
pub trait CredentialsProvider {
    /// Fresh credentials as of `now`. `conn` is the uploader's HTTP connection, for
    /// providers that ask a remote service. Errors use the uploader's kinds:
    /// [`UrlError::Unauthorized`] pauses uploads, [`UrlError::Unavailable`] retries.
    fn fetch<C: Connection>(
        &mut self,
        conn: &mut C,
        now: SystemTime,
    ) -> Result<TemporaryCredentials, UrlError>;
}

/// Signs URLs locally with temporary credentials from a [`CredentialsProvider`],
/// refreshing them before they expire.
pub struct StsSigner<P> {
    target: S3Target,
    url_expiry: Duration,
    refresh_before: Duration,
    provider: P,
    current: Option<TemporaryCredentials>,
    fetches: u64,
}

impl<P> fmt::Debug for StsSigner<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StsSigner")
            .field("target", &self.target)
            .field("url_expiry", &self.url_expiry)
            .field("refresh_before", &self.refresh_before)
            .field("expires_at", &self.current.as_ref().map(|c| c.expires_at))
            .field("fetches", &self.fetches)
            .finish()
    }
}

impl<P: CredentialsProvider> StsSigner<P> {
    /// Signs for `target` with credentials from `provider`; URLs live
    /// [`DEFAULT_EXPIRY`], credentials are refreshed [`DEFAULT_REFRESH_BEFORE`] ahead.
    pub fn new(target: S3Target, provider: P) -> Self {
        Self {
            target,
            url_expiry: DEFAULT_EXPIRY,
            refresh_before: DEFAULT_REFRESH_BEFORE,
            provider,
            current: None,
            fetches: 0,
        }
    }

    /// URLs live `expiry` (but never past the credentials' expiry).
    pub fn with_url_expiry(mut self, expiry: Duration) -> Self {
        self.url_expiry = expiry;
        self
    }

    /// Refresh credentials `margin` before they expire.
    pub fn with_refresh_before(mut self, margin: Duration) -> Self {
        self.refresh_before = margin;
        self
    }

    /// When the credentials in use expire (`None` before the first fetch).
    pub fn credentials_expire_at(&self) -> Option<SystemTime> {
        self.current.as_ref().map(|c| c.expires_at)
    }

    /// How many times credentials were asked for (successfully or not).
    pub fn fetches(&self) -> u64 {
        self.fetches
    }

    /// The provider.
    pub fn provider(&self) -> &P {
        &self.provider
    }

    /// The provider, to reconfigure it.
    pub fn provider_mut(&mut self) -> &mut P {
        &mut self.provider
    }

    fn remaining(&self, now: SystemTime) -> Duration {
        self.current
            .as_ref()
            .and_then(|c| c.expires_at.duration_since(now).ok())
            .unwrap_or(Duration::ZERO)
    }

    /// Fetches credentials if there are none or they expire within `refresh_before`.
    fn ensure_fresh<C: Connection>(
        &mut self,
        conn: &mut C,
        now: SystemTime,
    ) -> Result<(), UrlError> {
        let remaining = self.remaining(now);
        if self.current.is_some() && remaining > self.refresh_before {
            return Ok(());
        }
        self.fetches += 1;
        match self.provider.fetch(conn, now) {
            Ok(fresh) => {
                if fresh.credentials.session_token.is_none() {
                    return Err(UrlError::Unauthorized(
                        "the credentials provider returned long-term keys (no session token); temporary credentials are required".into(),
                    ));
                }
                let lifetime = fresh
                    .expires_at
                    .duration_since(now)
                    .unwrap_or(Duration::ZERO);
                if lifetime < MIN_REMAINING {
                    return Err(UrlError::Unavailable(format!(
                        "the credentials provider returned credentials that expire in {lifetime:?} (is the clock right?)"
                    )));
                }
                log::info!(
                    "temporary credentials refreshed, valid for {} s",
                    lifetime.as_secs()
                );
                self.current = Some(fresh);
                Ok(())
            }
            Err(e) if remaining >= MIN_REMAINING => {
                log::warn!(
                    "refreshing temporary credentials failed ({e}); signing with the current ones, valid for {} s more",
                    remaining.as_secs()
                );
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}

impl<P: CredentialsProvider> UrlSource for StsSigner<P> {
    fn presign<C: Connection>(
        &mut self,
        conn: &mut C,
        requests: &[PutRequest],
        now: SystemTime,
    ) -> Result<Vec<PresignedPut>, UrlError> {
        self.ensure_fresh(conn, now)?;
        let Some(current) = &self.current else {
            return Err(UrlError::Unavailable("no temporary credentials".into()));
        };
        // A URL signed with temporary credentials stops working when they expire.
        let expiry = self.url_expiry.min(self.remaining(now));
        let signer = Signer::new(&self.target, &current.credentials, expiry)
            .map_err(|e| UrlError::Unauthorized(format!("cannot sign: {e}")))?;
        requests
            .iter()
            .enumerate()
            .map(|(index, r)| {
                signer.presign_put(r, now).map_err(|e| UrlError::Refused {
                    index,
                    reason: e.to_string(),
                })
            })
            .collect()
    }
}

/// The AWS IoT credentials provider (see the module documentation): X.509 client
/// certificate → role alias → temporary credentials. The connection passed to
/// [`CredentialsProvider::fetch`] must present the device's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IotCredentialsProvider {
    url: String,
    thing_name: Option<String>,
}

#[derive(Deserialize)]
struct IotAnswer {
    credentials: IotCredentials,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct IotCredentials {
    access_key_id: String,
    secret_access_key: String,
    session_token: String,
    expiration: String,
}

impl IotCredentialsProvider {
    /// `endpoint` is the account's credentials endpoint (`aws iot describe-endpoint
    /// --endpoint-type iot:CredentialProvider`, as `https://…`); `role_alias` as created
    /// with `aws iot create-role-alias` (`[A-Za-z0-9_=,@-]{1,128}`); `thing_name` is sent
    /// as `x-amzn-iot-thingname` (needed for `${credentials-iot:ThingName}` in policies).
    pub fn new(endpoint: &str, role_alias: &str, thing_name: Option<&str>) -> Result<Self, String> {
        let endpoint = endpoint.trim_end_matches('/');
        let url = crate::sigv4::Endpoint::parse(endpoint)
            .map_err(|e| format!("credentials endpoint {endpoint:?} is not a URL: {e}"))?;
        let https = url.secure;
        let loopback_http = !url.secure && url.is_loopback();
        if !(https || loopback_http) {
            return Err(format!(
                "credentials endpoint {endpoint:?} is not an https:// URL (plain http:// only to a loopback address)"
            ));
        }
        let alias_ok = (1..=128).contains(&role_alias.len())
            && role_alias.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'_' | b'=' | b',' | b'@' | b'-')
            });
        if !alias_ok {
            return Err(format!(
                "role alias {role_alias:?} is not valid: 1-128 characters of [A-Za-z0-9_=,@-]"
            ));
        }
        if let Some(thing) = thing_name
            && !(1..=128).contains(&thing.len())
        {
            return Err(format!("thing name {thing:?} is not 1-128 characters"));
        }
        Ok(Self {
            url: format!("{endpoint}/role-aliases/{role_alias}/credentials"),
            thing_name: thing_name.map(str::to_string),
        })
    }

    /// The URL credentials are fetched from.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl CredentialsProvider for IotCredentialsProvider {
    fn fetch<C: Connection>(
        &mut self,
        conn: &mut C,
        _now: SystemTime,
    ) -> Result<TemporaryCredentials, UrlError> {
        let unreachable =
            |e: C::Error| UrlError::Unavailable(format!("credentials provider unreachable: {e:?}"));
        let mut headers = vec![("accept", "application/json")];
        if let Some(thing) = &self.thing_name {
            headers.push(("x-amzn-iot-thingname", thing.as_str()));
        }
        conn.initiate_request(Method::Get, &self.url, &headers)
            .map_err(unreachable)?;
        conn.initiate_response().map_err(unreachable)?;
        let status = conn.status();
        let answer = crate::body::read_limited(conn, MAX_ANSWER_BYTES, crate::body::Beyond::Stop)
            .map_err(unreachable)?;
        if answer.truncated {
            return Err(UrlError::Unavailable(
                "credentials provider answer is too large".into(),
            ));
        }
        let answer = answer.bytes;
        match status {
            200 => {}
            429 | 500..=599 => {
                return Err(UrlError::Unavailable(format!(
                    "credentials provider answered HTTP {status}"
                )));
            }
            // 400 (bad thing name), 403 (certificate or policy), 404 (no such alias):
            // configuration to fix, not a passing failure.
            _ => {
                return Err(UrlError::Unauthorized(format!(
                    "credentials provider answered HTTP {status}: {}",
                    String::from_utf8_lossy(&answer[..answer.len().min(200)])
                )));
            }
        }
        // Never echo a 200 body: it holds the secret.
        let parsed: IotAnswer = serde_json::from_slice(&answer).map_err(|_| {
            UrlError::Unavailable(
                "credentials provider answer is not {\"credentials\":{accessKeyId, secretAccessKey, sessionToken, expiration}}".into(),
            )
        })?;
        let c = parsed.credentials;
        let expires_at = crate::timefmt::parse_rfc3339(&c.expiration).ok_or_else(|| {
            UrlError::Unavailable(format!(
                "credentials expiration {:?} is not an RFC 3339 time between 1970 and 9999",
                c.expiration
            ))
        })?;
        Ok(TemporaryCredentials {
            credentials: Credentials::new(&c.access_key_id, &c.secret_access_key)
                .with_session_token(Some(c.session_token)),
            expires_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iot_provider_urls() {
        let p = IotCredentialsProvider::new(
            "https://c2example.credentials.iot.eu-west-1.amazonaws.com/",
            "sensorlake-uploader",
            Some("gw-1"),
        )
        .unwrap();
        assert_eq!(
            p.url(),
            "https://c2example.credentials.iot.eu-west-1.amazonaws.com/role-aliases/sensorlake-uploader/credentials"
        );
        assert!(IotCredentialsProvider::new("https://x.example", "bad/alias", None).is_err());
        assert!(IotCredentialsProvider::new("ftp://x.example", "alias", None).is_err());
        assert!(IotCredentialsProvider::new("http://x.example", "alias", None).is_err());
        assert!(IotCredentialsProvider::new("http://127.0.0.1:8080", "alias", None).is_ok());
    }
}
