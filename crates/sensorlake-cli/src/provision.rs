//! `sensorlake provision`: writes a device's settings (Wi-Fi, device id, broker URL,
//! token, sampling) as the CSV input of ESP-IDF's NVS partition generator, so one
//! firmware image serves a fleet and each device gets its own NVS partition image.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use sensorlake::provision::{
    KEY_ADC1_GPIOS, KEY_BROKER_URL, KEY_DEVICE_ID, KEY_LAYOUT, KEY_PREFIX, KEY_SAMPLE_MS,
    KEY_TOKEN, KEY_WIFI_PASS, KEY_WIFI_SSID, Provisioning,
};

/// `sensorlake provision …`
#[derive(Debug, Args)]
pub struct ProvisionArgs {
    /// Wi-Fi network name.
    #[arg(long)]
    wifi_ssid: String,
    /// Wi-Fi password (empty for an open network). Prefer the variable to the
    /// command line, which shells keep in their history.
    #[arg(
        long,
        env = "SENSORLAKE_WIFI_PASS",
        default_value = "",
        hide_env_values = true
    )]
    wifi_pass: String,
    /// The device id ([A-Za-z0-9_-]{1,64}).
    #[arg(long)]
    device_id: String,
    /// The presign broker's base URL (https://host[:port]).
    #[arg(long)]
    broker_url: String,
    /// A file holding the device's broker token (as printed by `sensorlake broker add-device`).
    #[arg(long, conflicts_with = "token")]
    token_file: Option<PathBuf>,
    /// The device's broker token (prefer --token-file or the variable).
    #[arg(long, env = "SENSORLAKE_DEVICE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Object key prefix.
    #[arg(long, default_value = "raw")]
    prefix: String,
    /// Object key layout: hive or opensensor.
    #[arg(long, default_value = "hive")]
    layout: String,
    /// Sampling period in milliseconds.
    #[arg(long, default_value_t = 5000)]
    sample_ms: u64,
    /// ADC1 GPIOs to sample, e.g. 1,2 (ESP32-S3: 1-10; none by default).
    #[arg(long, default_value = "")]
    adc1_gpios: String,
    /// Where to write the CSV (it holds secrets: created readable by its owner only).
    #[arg(long)]
    out: PathBuf,
    /// Replace an existing file.
    #[arg(long)]
    force: bool,
}

/// The settings the arguments describe, checked as the device will check them.
pub fn settings(args: &ProvisionArgs) -> Result<Provisioning> {
    let token = match (&args.token_file, &args.token) {
        (Some(path), _) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the token file {}", path.display()))?
            .trim()
            .to_string(),
        (None, Some(token)) => token.trim().to_string(),
        (None, None) => {
            bail!("give the device's token with --token-file or SENSORLAKE_DEVICE_TOKEN")
        }
    };
    let sample_ms = args.sample_ms.to_string();
    let settings = Provisioning::from_lookup(|key| {
        Ok(Some(match key {
            KEY_WIFI_SSID => args.wifi_ssid.clone(),
            KEY_WIFI_PASS => args.wifi_pass.clone(),
            KEY_DEVICE_ID => args.device_id.clone(),
            KEY_BROKER_URL => args.broker_url.clone(),
            KEY_TOKEN => token.clone(),
            KEY_PREFIX => args.prefix.clone(),
            KEY_LAYOUT => args.layout.clone(),
            KEY_SAMPLE_MS => sample_ms.clone(),
            KEY_ADC1_GPIOS => args.adc1_gpios.clone(),
            _ => return Ok(None),
        }))
    })?;
    Ok(settings)
}

/// Writes the CSV and prints how to turn it into an NVS image and flash it.
pub fn run(args: ProvisionArgs) -> Result<()> {
    let settings = settings(&args)?;
    if args.out.exists() && !args.force {
        bail!("{} exists; give --force to replace it", args.out.display());
    }
    write_private(&args.out, settings.to_nvs_csv().as_bytes())?;
    let csv = args.out.display();
    eprintln!(
        "wrote {csv} for device {} (it holds the Wi-Fi password and the token: keep it secret)\n\
         next:\n  \
         python -m esp_idf_nvs_partition_gen generate {csv} nvs.bin 0x6000\n  \
         espflash write-bin 0x9000 nvs.bin   # the nvs partition of firmware/esp32s3/partitions.csv",
        settings.device_id
    );
    Ok(())
}

#[cfg(unix)]
fn write_private(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(not(unix))]
fn write_private(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    crate::fsutil::write_atomically(path, bytes)
}
