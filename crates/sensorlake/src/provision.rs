//! Provisioning: the settings a field device reads at boot, so that one firmware image
//! serves a fleet. They live in the device's NVS (namespace [`NAMESPACE`], string
//! values under the key names below), written from a CSV that
//! [`Provisioning::to_nvs_csv`] makes (`sensorlake provision`) and ESP-IDF's
//! `nvs_partition_gen.py` turns into a partition image. The firmware reads them back
//! with [`Provisioning::from_lookup`]; every value is checked here, on the host and on
//! the device alike, and a bad one is named.

use std::fmt;
use std::time::Duration;

use crate::broker_client::BrokerClient;
use crate::key::{DeviceId, KeyTemplate, Layout};

/// The NVS namespace of the settings.
pub const NAMESPACE: &str = "sensorlake";

/// Wi-Fi network name (1-32 bytes).
pub const KEY_WIFI_SSID: &str = "wifi_ssid";
/// Wi-Fi password (empty for an open network, else 8-64 bytes).
pub const KEY_WIFI_PASS: &str = "wifi_pass";
/// The device id (`[A-Za-z0-9_-]{1,64}`).
pub const KEY_DEVICE_ID: &str = "device_id";
/// The presign broker's base URL (`https://…`).
pub const KEY_BROKER_URL: &str = "broker_url";
/// The device's broker token.
pub const KEY_TOKEN: &str = "token";
/// Object key prefix (optional, default `raw`).
pub const KEY_PREFIX: &str = "prefix";
/// Object key layout, `hive` or `opensensor` (optional, default `hive`).
pub const KEY_LAYOUT: &str = "layout";
/// Sampling period in milliseconds (optional, default 5000).
pub const KEY_SAMPLE_MS: &str = "sample_ms";
/// ADC1 GPIOs to sample, comma-separated, e.g. `1,2` (optional, default none).
pub const KEY_ADC1_GPIOS: &str = "adc1_gpios";

/// Every key, required ones first.
pub const KEYS: [&str; 9] = [
    KEY_WIFI_SSID,
    KEY_WIFI_PASS,
    KEY_DEVICE_ID,
    KEY_BROKER_URL,
    KEY_TOKEN,
    KEY_PREFIX,
    KEY_LAYOUT,
    KEY_SAMPLE_MS,
    KEY_ADC1_GPIOS,
];

/// The longest string NVS stores (bytes, without the terminating NUL).
pub const NVS_MAX_STRING: usize = 3999;

/// A setting is missing or unusable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionError {
    /// The NVS key.
    pub key: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

impl fmt::Display for ProvisionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "setting {:?}: {}", self.key, self.problem)
    }
}

impl std::error::Error for ProvisionError {}

fn bad(key: &'static str, problem: impl Into<String>) -> ProvisionError {
    ProvisionError {
        key,
        problem: problem.into(),
    }
}

/// A device's settings, checked.
#[derive(Clone, PartialEq, Eq)]
pub struct Provisioning {
    /// Wi-Fi network name.
    pub wifi_ssid: String,
    /// Wi-Fi password (empty: open network).
    pub wifi_pass: String,
    /// The device id.
    pub device_id: DeviceId,
    /// The presign broker's base URL.
    pub broker_url: String,
    /// The device's broker token.
    pub token: String,
    /// Object key prefix.
    pub prefix: String,
    /// Object key layout.
    pub layout: Layout,
    /// Sampling period.
    pub sample_period: Duration,
    /// ADC1 GPIOs sampled (ESP32-S3: 1-10, ESP32-C3: 0-4, ESP32-C6: 0-6).
    pub adc1_gpios: Vec<u8>,
}

impl fmt::Debug for Provisioning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Provisioning")
            .field("wifi_ssid", &self.wifi_ssid)
            .field("wifi_pass", &"<redacted>")
            .field("device_id", &self.device_id)
            .field("broker_url", &self.broker_url)
            .field("token", &"<redacted>")
            .field("prefix", &self.prefix)
            .field("layout", &self.layout)
            .field("sample_period", &self.sample_period)
            .field("adc1_gpios", &self.adc1_gpios)
            .finish()
    }
}

impl Provisioning {
    /// Settings with the defaults for the optional keys; checked.
    pub fn new(
        wifi_ssid: &str,
        wifi_pass: &str,
        device_id: &str,
        broker_url: &str,
        token: &str,
    ) -> Result<Self, ProvisionError> {
        Self::from_lookup(|key| {
            Ok(match key {
                KEY_WIFI_SSID => Some(wifi_ssid.to_string()),
                KEY_WIFI_PASS => Some(wifi_pass.to_string()),
                KEY_DEVICE_ID => Some(device_id.to_string()),
                KEY_BROKER_URL => Some(broker_url.to_string()),
                KEY_TOKEN => Some(token.to_string()),
                _ => None,
            })
        })
    }

    /// Reads every key through `get` (NVS on the device: `None` when a key is not
    /// set) and checks the values. Required: Wi-Fi SSID and password (may be empty),
    /// device id, broker URL, token.
    pub fn from_lookup(
        mut get: impl FnMut(&'static str) -> Result<Option<String>, String>,
    ) -> Result<Self, ProvisionError> {
        let mut value = |key: &'static str| get(key).map_err(|e| bad(key, e));
        let mut required = |key: &'static str| {
            value(key)?.ok_or_else(|| bad(key, "not provisioned (see `sensorlake provision`)"))
        };
        let wifi_ssid = required(KEY_WIFI_SSID)?;
        let wifi_pass = required(KEY_WIFI_PASS)?;
        let device_id = required(KEY_DEVICE_ID)?;
        let broker_url = required(KEY_BROKER_URL)?;
        let token = required(KEY_TOKEN)?;
        let prefix = value(KEY_PREFIX)?.unwrap_or_else(|| "raw".to_string());
        let layout = value(KEY_LAYOUT)?;
        let sample_ms = value(KEY_SAMPLE_MS)?;
        let adc1_gpios = value(KEY_ADC1_GPIOS)?;

        if !(1..=32).contains(&wifi_ssid.len()) {
            return Err(bad(KEY_WIFI_SSID, "must be 1-32 bytes"));
        }
        if !(wifi_pass.is_empty() || (8..=64).contains(&wifi_pass.len())) {
            return Err(bad(
                KEY_WIFI_PASS,
                "must be empty (open network) or 8-64 bytes",
            ));
        }
        let device_id = DeviceId::new(&device_id).map_err(|e| bad(KEY_DEVICE_ID, e.to_string()))?;
        BrokerClient::new(&broker_url, &token).map_err(|e| {
            let key = match e {
                crate::broker_client::BrokerClientError::BadToken => KEY_TOKEN,
                _ => KEY_BROKER_URL,
            };
            bad(key, e.to_string())
        })?;
        let layout = match layout.as_deref().map(str::trim) {
            None | Some("") => Layout::Hive,
            Some(text) => Layout::parse(text).map_err(|e| bad(KEY_LAYOUT, e.to_string()))?,
        };
        KeyTemplate::new(layout, &prefix).map_err(|e| bad(KEY_PREFIX, e.to_string()))?;
        let sample_period = match sample_ms.as_deref().map(str::trim) {
            None | Some("") => Duration::from_secs(5),
            Some(text) => match text.parse::<u64>() {
                Ok(ms) if (10..=3_600_000).contains(&ms) => Duration::from_millis(ms),
                _ => {
                    return Err(bad(
                        KEY_SAMPLE_MS,
                        format!(
                            "{text:?} is not a whole number of milliseconds from 10 to 3600000"
                        ),
                    ));
                }
            },
        };
        let adc1_gpios = parse_adc1_gpios(adc1_gpios.as_deref().unwrap_or(""))
            .map_err(|e| bad(KEY_ADC1_GPIOS, e))?;
        let settings = Self {
            wifi_ssid,
            wifi_pass,
            device_id,
            broker_url,
            token,
            prefix,
            layout,
            sample_period,
            adc1_gpios,
        };
        for (key, text) in settings.entries() {
            if text.len() > NVS_MAX_STRING {
                return Err(bad(
                    key,
                    format!("longer than NVS stores ({NVS_MAX_STRING} bytes)"),
                ));
            }
        }
        Ok(settings)
    }

    /// The URL source the settings describe: the presign broker with the device token.
    pub fn broker_client(&self) -> BrokerClient {
        BrokerClient::new(&self.broker_url, &self.token)
            .expect("checked by Provisioning::from_lookup")
    }

    /// The object key template.
    pub fn key_template(&self) -> KeyTemplate {
        KeyTemplate::new(self.layout, &self.prefix).expect("checked by Provisioning::from_lookup")
    }

    /// Every key with its value as stored in NVS.
    pub fn entries(&self) -> Vec<(&'static str, String)> {
        let gpios: Vec<String> = self.adc1_gpios.iter().map(u8::to_string).collect();
        vec![
            (KEY_WIFI_SSID, self.wifi_ssid.clone()),
            (KEY_WIFI_PASS, self.wifi_pass.clone()),
            (KEY_DEVICE_ID, self.device_id.as_str().to_string()),
            (KEY_BROKER_URL, self.broker_url.clone()),
            (KEY_TOKEN, self.token.clone()),
            (KEY_PREFIX, self.prefix.clone()),
            (KEY_LAYOUT, self.layout.name().to_string()),
            (KEY_SAMPLE_MS, self.sample_period.as_millis().to_string()),
            (KEY_ADC1_GPIOS, gpios.join(",")),
        ]
    }

    /// The settings as an input file of ESP-IDF's NVS partition generator
    /// (`nvs_partition_gen.py generate <csv> <bin> <size>`): namespace [`NAMESPACE`],
    /// every key as a `string`. It holds the Wi-Fi password and the token: keep it
    /// secret, never commit it.
    pub fn to_nvs_csv(&self) -> String {
        let mut out = String::from("key,type,encoding,value\n");
        out.push_str(NAMESPACE);
        out.push_str(",namespace,,\n");
        for (key, value) in self.entries() {
            out.push_str(key);
            out.push_str(",data,string,");
            out.push_str(&csv_field(&value));
            out.push('\n');
        }
        out
    }
}

/// Quotes a CSV field when it needs it (comma, quote, line break, edge spaces).
fn csv_field(value: &str) -> String {
    let plain =
        !value.contains([',', '"', '\n', '\r']) && value.trim() == value && !value.is_empty();
    if plain {
        value.to_string()
    } else {
        format!("\"{}\"", value.replace('"', "\"\""))
    }
}

/// Parses `1,2,5`: ADC1 GPIOs, no repeats. The provisioning file does not name the
/// chip: any ADC1 GPIO of a chip the firmware names is accepted here (ESP32-S3 1-10,
/// ESP32-C3 0-4, ESP32-C6 0-6, [`crate::chips`]); the firmware refuses at boot a GPIO
/// its own chip's ADC1 lacks.
pub fn parse_adc1_gpios(text: &str) -> Result<Vec<u8>, String> {
    let mut gpios = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let gpio = match part.parse::<u8>() {
            Ok(n) if crate::chips::is_adc1_gpio_of_some_chip(n) => n,
            _ => {
                return Err(format!(
                    "{part:?} is not an ADC1 GPIO (ESP32-S3 1-10, ESP32-C3 0-4, ESP32-C6 0-6)"
                ));
            }
        };
        if gpios.contains(&gpio) {
            return Err(format!("GPIO {gpio} is listed twice"));
        }
        gpios.push(gpio);
    }
    Ok(gpios)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "sl1.gw-1.EXAMPLEtokenEXAMPLEtokenEXAMPLE";

    fn good() -> Provisioning {
        Provisioning::new(
            "lab, 2nd floor",
            "correct horse",
            "gw-1",
            "https://broker.example:8443",
            TOKEN,
        )
        .unwrap()
    }

    #[test]
    fn defaults_fill_the_optional_keys() {
        let p = good();
        assert_eq!(p.prefix, "raw");
        assert_eq!(p.layout, Layout::Hive);
        assert_eq!(p.sample_period, Duration::from_secs(5));
        assert!(p.adc1_gpios.is_empty());
        let debug = format!("{p:?}");
        assert!(
            !debug.contains("correct horse") && !debug.contains(TOKEN),
            "{debug}"
        );
    }

    #[test]
    fn the_csv_reads_back_to_the_same_settings() {
        let p = good();
        let csv = p.to_nvs_csv();
        assert!(csv.starts_with("key,type,encoding,value\nsensorlake,namespace,,\n"));
        assert!(
            csv.contains("wifi_ssid,data,string,\"lab, 2nd floor\"\n"),
            "{csv}"
        );
        // Read the CSV back the way the device reads NVS: key → value.
        let mut values = std::collections::HashMap::new();
        for line in csv.lines().skip(2) {
            let (key, rest) = line.split_once(",data,string,").unwrap();
            let value = rest
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .map_or(rest.to_string(), |v| v.replace("\"\"", "\""));
            values.insert(key.to_string(), value);
        }
        let back = Provisioning::from_lookup(|key| Ok(values.get(key).cloned())).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn every_bad_value_is_named_by_its_key() {
        let base: Vec<(&str, String)> = good().entries();
        let with = |key: &str, value: Option<&str>| {
            let map: std::collections::HashMap<&str, Option<String>> = base
                .iter()
                .map(|(k, v)| {
                    (
                        *k,
                        if *k == key {
                            value.map(str::to_string)
                        } else {
                            Some(v.clone())
                        },
                    )
                })
                .collect();
            Provisioning::from_lookup(|k| Ok(map[k].clone())).unwrap_err()
        };
        for (key, value) in [
            (KEY_WIFI_SSID, None),
            (KEY_WIFI_SSID, Some("")),
            (KEY_WIFI_PASS, Some("short")),
            (KEY_DEVICE_ID, Some("../etc")),
            (KEY_DEVICE_ID, None),
            (KEY_BROKER_URL, Some("http://broker.example")),
            (KEY_TOKEN, Some("has space")),
            (KEY_LAYOUT, Some("flat")),
            (KEY_PREFIX, Some("../up")),
            (KEY_SAMPLE_MS, Some("5s")),
            (KEY_SAMPLE_MS, Some("1")),
            (KEY_ADC1_GPIOS, Some("1,11")),
            (KEY_ADC1_GPIOS, Some("2,2")),
        ] {
            let err = with(key, value);
            assert_eq!(err.key, key, "{key}={value:?}: {err}");
        }
        let err = Provisioning::from_lookup(|k| {
            if k == KEY_TOKEN {
                Err("ESP_ERR_NVS_INVALID_LENGTH".into())
            } else {
                Ok(base.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone()))
            }
        })
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "setting \"token\": ESP_ERR_NVS_INVALID_LENGTH"
        );
    }

    #[test]
    fn adc_gpio_lists() {
        assert_eq!(parse_adc1_gpios(" 1, 2 ,10").unwrap(), vec![1, 2, 10]);
        assert_eq!(parse_adc1_gpios("").unwrap(), Vec::<u8>::new());
        assert_eq!(parse_adc1_gpios("0").unwrap(), vec![0]);
        assert!(parse_adc1_gpios("11").is_err());
    }
}
