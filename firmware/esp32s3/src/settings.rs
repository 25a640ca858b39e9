//! The device's settings: NVS (written by `sensorlake provision`) first, the compiled-in
//! development defaults of `cfg.toml` second. The library checks every value.

use anyhow::{Context, Result};
use esp_idf_svc::nvs::{EspDefaultNvsPartition, EspNvs, NvsDefault};
use sensorlake::provision::{self, Provisioning};

/// Development defaults from `cfg.toml` (git-ignored; see `cfg.toml.example`). A
/// production image is built without one and provisioned through NVS.
#[toml_cfg::toml_config]
pub struct Config {
    #[default("")]
    wifi_ssid: &'static str,
    #[default("")]
    wifi_pass: &'static str,
    #[default("")]
    device_id: &'static str,
    #[default("")]
    broker_url: &'static str,
    #[default("")]
    token: &'static str,
    #[default("")]
    prefix: &'static str,
    #[default("")]
    layout: &'static str,
    #[default("")]
    sample_ms: &'static str,
    #[default("")]
    adc1_gpios: &'static str,
}

/// The compiled-in default of `key`, if `cfg.toml` set one.
fn compiled_default(key: &str) -> Option<&'static str> {
    let value = match key {
        provision::KEY_WIFI_SSID => CONFIG.wifi_ssid,
        provision::KEY_WIFI_PASS => CONFIG.wifi_pass,
        provision::KEY_DEVICE_ID => CONFIG.device_id,
        provision::KEY_BROKER_URL => CONFIG.broker_url,
        provision::KEY_TOKEN => CONFIG.token,
        provision::KEY_PREFIX => CONFIG.prefix,
        provision::KEY_LAYOUT => CONFIG.layout,
        provision::KEY_SAMPLE_MS => CONFIG.sample_ms,
        provision::KEY_ADC1_GPIOS => CONFIG.adc1_gpios,
        _ => "",
    };
    // The Wi-Fi password may be empty on purpose (open network) once the SSID is set.
    let empty_is_a_value = key == provision::KEY_WIFI_PASS && !CONFIG.wifi_ssid.is_empty();
    (!value.is_empty() || empty_is_a_value).then_some(value)
}

/// Reads and checks the settings.
pub fn load(partition: &EspDefaultNvsPartition) -> Result<Provisioning> {
    // A device never provisioned has no namespace yet: then only cfg.toml counts.
    let nvs: Option<EspNvs<NvsDefault>> =
        match EspNvs::new(partition.clone(), provision::NAMESPACE, false) {
            Ok(nvs) => Some(nvs),
            Err(e) => {
                log::info!("no provisioned settings in NVS ({e}); using cfg.toml defaults");
                None
            }
        };
    let mut buf = vec![0u8; provision::NVS_MAX_STRING + 1];
    let settings = Provisioning::from_lookup(|key| {
        let stored = match &nvs {
            Some(nvs) => nvs
                .get_str(key, &mut buf)
                .map_err(|e| format!("cannot read NVS: {e}"))?
                .map(str::to_string),
            None => None,
        };
        Ok(stored.or_else(|| compiled_default(key).map(str::to_string)))
    })
    .context("device settings (provision NVS with `sensorlake provision`, or set cfg.toml for development)")?;
    log::info!(
        "settings: device {}, broker {}, layout {}, prefix {:?}, every {:?}, ADC1 GPIOs {:?}",
        settings.device_id,
        settings.broker_url,
        settings.layout.name(),
        settings.prefix,
        settings.sample_period,
        settings.adc1_gpios
    );
    Ok(settings)
}
