//! `sensorlake provision`: the CSV it writes, what it refuses, and (with ESP-IDF's NVS
//! partition generator from PyPI) the NVS image a device boots with, read back entry
//! by entry as the firmware's `nvs_get_str` would.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Output};

use sensorlake::provision::{NAMESPACE, Provisioning};

const BIN: &str = env!("CARGO_BIN_EXE_sensorlake");
const TOKEN: &str = "sl1.gw-7.EXAMPLEtokenEXAMPLEtokenEXAMPLE0123";

/// Runs `sensorlake provision` with good settings, `overrides` replacing some.
fn provision(dir: &Path, overrides: &[(&str, &str)]) -> Output {
    let mut args = vec![
        ("--wifi-ssid", "lab \"north\", 2nd floor"),
        ("--device-id", "gw-7"),
        ("--broker-url", "https://broker.example:8443"),
        ("--adc1-gpios", "1,2"),
        ("--sample-ms", "1000"),
        ("--out", "gw-7.csv"),
    ];
    for (flag, value) in overrides {
        args.retain(|(f, _)| f != flag);
        args.push((flag, value));
    }
    Command::new(BIN)
        .arg("provision")
        .args(args.iter().flat_map(|(f, v)| [*f, *v]))
        .env("SENSORLAKE_WIFI_PASS", "correct horse battery")
        .env("SENSORLAKE_DEVICE_TOKEN", TOKEN)
        .current_dir(dir)
        .output()
        .expect("the binary runs")
}

fn expected() -> Provisioning {
    let mut p = Provisioning::new(
        "lab \"north\", 2nd floor",
        "correct horse battery",
        "gw-7",
        "https://broker.example:8443",
        TOKEN,
    )
    .unwrap();
    p.adc1_gpios = vec![1, 2];
    p.sample_period = std::time::Duration::from_secs(1);
    p
}

#[test]
fn writes_the_settings_as_an_nvs_csv_readable_only_by_its_owner() {
    let dir = tempfile::tempdir().unwrap();
    let out = provision(dir.path(), &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = dir.path().join("gw-7.csv");
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        expected().to_nvs_csv()
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "mode {mode:o}");
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains(TOKEN), "the token is never printed");
    // An existing file is not replaced without --force.
    let again = provision(dir.path(), &[]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
}

#[test]
fn bad_settings_are_refused_by_name_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    for (flag, value, key) in [
        ("--device-id", "gw/7", "device_id"),
        ("--adc1-gpios", "12", "adc1_gpios"),
        ("--broker-url", "ftp://broker.example", "broker_url"),
    ] {
        let out = provision(dir.path(), &[(flag, value), ("--out", "bad.csv")]);
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(&format!("\"{key}\"")), "{key}: {stderr}");
        assert!(!dir.path().join("bad.csv").exists());
    }
}

/// The string entries of an NVS partition image, by namespace and key (the layout of
/// ESP-IDF's "NVS Flash" documentation: 4 KiB pages, a 32-byte header, a 2-bit state
/// per entry, 126 entries of 32 bytes; strings span the entries after their header).
fn nvs_strings(image: &[u8]) -> HashMap<(String, String), String> {
    let cstr = |b: &[u8]| {
        let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
        String::from_utf8(b[..end].to_vec()).unwrap()
    };
    let mut namespaces = HashMap::new();
    let mut strings = Vec::new();
    for page in image.chunks(4096) {
        if page[..4] == [0xff; 4] {
            continue; // an empty page
        }
        let bitmap = &page[32..64];
        let mut i = 0;
        while i < 126 {
            let state = (bitmap[i / 4] >> ((i % 4) * 2)) & 0b11;
            let entry = &page[64 + 32 * i..64 + 32 * (i + 1)];
            let span = usize::from(entry[2]).max(1);
            if state == 0b10 {
                let (ns, ty, key) = (entry[0], entry[1], cstr(&entry[8..24]));
                match (ns, ty) {
                    (0, 0x01) => {
                        namespaces.insert(entry[24], key);
                    }
                    (_, 0x21) => {
                        let size = usize::from(u16::from_le_bytes([entry[24], entry[25]]));
                        let start = 64 + 32 * (i + 1);
                        strings.push((ns, key, cstr(&page[start..start + size])));
                    }
                    _ => {}
                }
            }
            i += span;
        }
    }
    strings
        .into_iter()
        .map(|(ns, key, value)| ((namespaces[&ns].clone(), key), value))
        .collect()
}

#[test]
fn the_esp_idf_generator_turns_the_csv_into_the_nvs_image_the_device_reads() {
    // ./test.sh creates the venv (python/requirements.txt) before running the tests.
    let python = std::env::var("SENSORLAKE_NVS_GEN_PYTHON").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../.venv/bin/python").to_string()
    });
    assert!(
        std::path::Path::new(&python).exists(),
        "{python} is missing: run ./test.sh once (it creates the venv with ESP-IDF's NVS generator), \
         or point SENSORLAKE_NVS_GEN_PYTHON at a python with esp-idf-nvs-partition-gen"
    );
    let dir = tempfile::tempdir().unwrap();
    let out = provision(dir.path(), &[]);
    assert!(out.status.success());
    let generated = Command::new(&python)
        .args([
            "-m",
            "esp_idf_nvs_partition_gen",
            "generate",
            "gw-7.csv",
            "nvs.bin",
            "0x6000",
        ])
        .current_dir(dir.path())
        .output()
        .expect("python runs");
    assert!(
        generated.status.success(),
        "{}{}",
        String::from_utf8_lossy(&generated.stdout),
        String::from_utf8_lossy(&generated.stderr)
    );
    let image = std::fs::read(dir.path().join("nvs.bin")).unwrap();
    assert_eq!(image.len(), 0x6000, "the size of the nvs partition");
    let strings = nvs_strings(&image);
    let settings = Provisioning::from_lookup(|key| {
        Ok(strings
            .get(&(NAMESPACE.to_string(), key.to_string()))
            .cloned())
    })
    .unwrap();
    assert_eq!(settings, expected());
}
