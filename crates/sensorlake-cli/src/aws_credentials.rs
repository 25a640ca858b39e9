//! Long-term or session credentials for host tools (the broker, a gateway agent), found
//! the way aws-cli finds them — the part of its chain that needs no network:
//!
//! 1. an explicitly named profile (`--profile`), from the shared files;
//! 2. else `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` (and `AWS_SESSION_TOKEN`);
//! 3. else the profile `AWS_PROFILE` (default `default`) from the shared credentials file
//!    (`AWS_SHARED_CREDENTIALS_FILE`, default `~/.aws/credentials`) or the config file
//!    (`AWS_CONFIG_FILE`, default `~/.aws/config`, sections `[profile NAME]`).
//!
//! SSO, `credential_process`, role assumption and instance metadata are not supported:
//! export their result into the environment instead. Nothing here logs a secret; the
//! [`Source`] says where credentials came from, without them.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use sensorlake::presign::Credentials;

/// Where credentials were found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The `AWS_*` environment variables.
    Environment,
    /// A profile in a shared file.
    Profile {
        /// Profile name.
        name: String,
        /// The file.
        file: PathBuf,
    },
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Environment => write!(f, "the AWS_* environment variables"),
            Self::Profile { name, file } => write!(f, "profile {name:?} in {}", file.display()),
        }
    }
}

/// Resolves credentials from the process environment (see the module documentation).
pub fn resolve(profile: Option<&str>) -> Result<(Credentials, Source)> {
    resolve_with(profile, &|name| std::env::var(name).ok())
}

/// [`resolve`] with the environment given by `env` (for tests).
pub fn resolve_with(
    profile: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Credentials, Source)> {
    let get = |name: &str| env(name).filter(|v| !v.is_empty());
    if profile.is_none()
        && let (Some(id), Some(secret)) = (get("AWS_ACCESS_KEY_ID"), get("AWS_SECRET_ACCESS_KEY"))
    {
        let credentials =
            Credentials::new(&id, &secret).with_session_token(get("AWS_SESSION_TOKEN"));
        return Ok((credentials, Source::Environment));
    }
    let name = profile
        .map(str::to_string)
        .or_else(|| get("AWS_PROFILE"))
        .unwrap_or_else(|| "default".to_string());
    let home = get("HOME").or_else(|| get("USERPROFILE"));
    let in_home = |rel: &str| home.as_ref().map(|h| Path::new(h).join(rel));
    let credentials_file = get("AWS_SHARED_CREDENTIALS_FILE")
        .map(PathBuf::from)
        .or_else(|| in_home(".aws/credentials"));
    let config_file = get("AWS_CONFIG_FILE")
        .map(PathBuf::from)
        .or_else(|| in_home(".aws/config"));
    for (file, section) in [
        (credentials_file, name.clone()),
        (
            config_file,
            if name == "default" {
                name.clone()
            } else {
                format!("profile {name}")
            },
        ),
    ] {
        let Some(file) = file else { continue };
        let text = match std::fs::read_to_string(&file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", file.display())),
        };
        if let Some(credentials) = profile_credentials(&text, &section)
            .with_context(|| format!("{}: profile {name:?}", file.display()))?
        {
            return Ok((credentials, Source::Profile { name, file }));
        }
    }
    bail!(
        "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), or put aws_access_key_id and aws_secret_access_key in profile {name:?} of ~/.aws/credentials (SSO, credential_process and role profiles are not supported: export their credentials instead)"
    )
}

/// The keys of `[section]` in an INI-style AWS file, if it has them.
fn profile_credentials(text: &str, section: &str) -> Result<Option<Credentials>> {
    let mut in_section = false;
    let mut found = false;
    let (mut id, mut secret, mut token) = (None, None, None);
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_section = name.trim() == section;
            found |= in_section;
            continue;
        }
        if !in_section {
            continue;
        }
        if let Some((key, value)) = line.split_once('=') {
            let value = value.trim().to_string();
            match key.trim().to_ascii_lowercase().as_str() {
                "aws_access_key_id" => id = Some(value),
                "aws_secret_access_key" => secret = Some(value),
                "aws_session_token" => token = Some(value),
                _ => {}
            }
        }
    }
    match (id, secret) {
        (Some(id), Some(secret)) => Ok(Some(
            Credentials::new(&id, &secret).with_session_token(token),
        )),
        (None, None) => Ok(None),
        _ if found => bail!("has only one of aws_access_key_id and aws_secret_access_key"),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "AKIAIOSFODNN7EXAMPLE";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    #[test]
    fn environment_then_profiles() {
        let dir = tempfile::tempdir().unwrap();
        let creds = dir.path().join("credentials");
        std::fs::write(
            &creds,
            format!("[default]\naws_access_key_id = {ID}\naws_secret_access_key = {SECRET}\n\n[ci]\naws_access_key_id=ASIAEXAMPLEEXAMPLE01\naws_secret_access_key = {SECRET}\naws_session_token = TOKENEXAMPLE\n"),
        )
        .unwrap();
        let config = dir.path().join("config");
        std::fs::write(&config, format!("[profile lab]\naws_access_key_id = {ID}\naws_secret_access_key = {SECRET}\n[profile half]\naws_access_key_id = {ID}\n")).unwrap();
        let files = |extra: &'static [(&'static str, &'static str)]| {
            let creds = creds.clone();
            let config = config.clone();
            move |name: &str| match name {
                "AWS_SHARED_CREDENTIALS_FILE" => Some(creds.display().to_string()),
                "AWS_CONFIG_FILE" => Some(config.display().to_string()),
                _ => extra
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string()),
            }
        };
        let env_keys: &'static [(&str, &str)] = &[
            ("AWS_ACCESS_KEY_ID", "AKIAENVEXAMPLE000000"),
            ("AWS_SECRET_ACCESS_KEY", SECRET),
        ];
        let (c, source) = resolve_with(None, &files(env_keys)).unwrap();
        assert_eq!(
            (c.access_key_id.as_str(), source),
            ("AKIAENVEXAMPLE000000", Source::Environment)
        );
        // An explicit profile wins over the environment, as in aws-cli.
        let (c, source) = resolve_with(Some("ci"), &files(env_keys)).unwrap();
        assert_eq!(c.session_token.as_deref(), Some("TOKENEXAMPLE"));
        assert!(matches!(source, Source::Profile { ref name, .. } if name == "ci"));
        let (c, _) = resolve_with(None, &files(&[])).unwrap();
        assert_eq!(c.access_key_id, ID);
        let (_, source) = resolve_with(None, &files(&[("AWS_PROFILE", "lab")])).unwrap();
        assert!(matches!(source, Source::Profile { ref file, .. } if file == &config));
        let half = resolve_with(Some("half"), &files(&[])).unwrap_err();
        assert!(format!("{half:#}").contains("only one of"), "{half:#}");
        let missing = resolve_with(Some("nope"), &files(&[]))
            .unwrap_err()
            .to_string();
        assert!(
            missing.contains("no AWS credentials") && !missing.contains(SECRET),
            "{missing}"
        );
    }
}
