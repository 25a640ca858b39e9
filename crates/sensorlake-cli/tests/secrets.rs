//! No credential in the repository: every file git tracks (or would add) is scanned for
//! strings that look like AWS keys — access key ids (`AKIA…`/`ASIA…` and 16 more
//! uppercase letters or digits) and 40-character secret keys (mixed-case base64) — and
//! only AWS's documentation samples, which contain `EXAMPLE`, are allowed.

use std::path::{Path, PathBuf};
use std::process::Command;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '/' || c == '+' || c == '='
}

/// Strings in `text` that look like AWS credentials and do not contain `EXAMPLE`.
fn suspicious(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for run in text.split(|c: char| !is_key_char(c)) {
        // Access key ids inside a run (a run may also hold `=` or `/` around them).
        for part in run.split(['/', '+', '=']) {
            for (at, _) in part.match_indices("AKIA").chain(part.match_indices("ASIA")) {
                let boundary = at == 0 || !part.as_bytes()[at - 1].is_ascii_alphanumeric();
                let id = &part[at..];
                let body: String = id
                    .chars()
                    .skip(4)
                    .take_while(char::is_ascii_alphanumeric)
                    .collect();
                if boundary
                    && body.len() == 16
                    && body
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
                {
                    found.push(id[..20].to_string());
                }
            }
        }
        // Secret access keys: exactly 40 base64 characters of mixed case with a digit
        // (hex digests are single-case; longer runs are other base64 data).
        let secret_like = run.len() == 40
            && run.chars().any(|c| c.is_ascii_uppercase())
            && run.chars().any(|c| c.is_ascii_lowercase())
            && run.chars().any(|c| c.is_ascii_digit());
        if secret_like {
            found.push(run.to_string());
        }
    }
    found.retain(|s| !s.contains("EXAMPLE"));
    found
}

fn repository_files() -> Vec<PathBuf> {
    let output = Command::new("git")
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .current_dir(ROOT)
        .output()
        .expect("git runs");
    assert!(
        output.status.success(),
        "git ls-files failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
        .stdout
        .split(|b| *b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| Path::new(ROOT).join(String::from_utf8_lossy(p).as_ref()))
        .filter(|p| p.is_file())
        .collect()
}

#[test]
fn the_detector_finds_key_shaped_strings() {
    // Built at run time, so this file itself holds no key-shaped literal.
    let id = format!("AKIA{}", "Z7Q2".repeat(4));
    let session_id = format!("ASIA{}", "Q2Z7".repeat(4));
    let secret = format!("{}/{}", "aB3dE5gH7jK9".repeat(2), "mN1pQ3rS5tU7v");
    assert_eq!(secret.len(), 38);
    let secret = format!("{secret}x9");
    let text = format!(
        "id={id}\nAWS_SESSION_KEY_ID={session_id}\nsecret = \"{secret}\"\nsha1 {}\n",
        "a1".repeat(20)
    );
    assert_eq!(
        suspicious(&text),
        vec![id.clone(), session_id, secret.clone()]
    );
    // Documentation samples are allowed.
    assert!(suspicious("AKIAIOSFODNN7EXAMPLE wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY").is_empty());
    // Inside URLs and assignments too.
    assert_eq!(
        suspicious(&format!("X-Amz-Credential={id}%2F20240301")),
        vec![id]
    );
}

#[test]
fn the_repository_holds_no_credentials() {
    let files = repository_files();
    assert!(files.len() > 20, "only {} files found", files.len());
    let mut hits = Vec::new();
    for file in &files {
        let Ok(bytes) = std::fs::read(file) else {
            continue;
        };
        let text = String::from_utf8_lossy(&bytes);
        for hit in suspicious(&text) {
            hits.push(format!(
                "{}: {hit}",
                file.strip_prefix(ROOT).unwrap_or(file).display()
            ));
        }
    }
    assert!(
        hits.is_empty(),
        "strings that look like AWS credentials (use AWS's EXAMPLE keys in tests and docs, read real ones from the environment):\n{}",
        hits.join("\n")
    );
}
