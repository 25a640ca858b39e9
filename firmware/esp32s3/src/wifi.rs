//! Wi-Fi station: start once, then keep reconnecting; never fatal (rows are recorded
//! and spooled whether or not the network is there).

use anyhow::{anyhow, Result};
use esp_idf_svc::eventloop::EspSystemEventLoop;
use esp_idf_svc::hal::modem::Modem;
use esp_idf_svc::nvs::EspDefaultNvsPartition;
use esp_idf_svc::wifi::{AuthMethod, BlockingWifi, ClientConfiguration, Configuration, EspWifi};

/// The station, configured and started (not necessarily connected).
pub type Wifi = BlockingWifi<EspWifi<'static>>;

/// Configures and starts the station for `ssid`/`pass` (an empty password: open network).
pub fn start(
    modem: Modem<'static>,
    sysloop: EspSystemEventLoop,
    nvs: EspDefaultNvsPartition,
    ssid: &str,
    pass: &str,
) -> Result<Wifi> {
    let mut wifi = BlockingWifi::wrap(EspWifi::new(modem, sysloop.clone(), Some(nvs))?, sysloop)?;
    wifi.set_configuration(&Configuration::Client(ClientConfiguration {
        ssid: ssid
            .try_into()
            .map_err(|_| anyhow!("Wi-Fi SSID is longer than 32 bytes"))?,
        password: pass
            .try_into()
            .map_err(|_| anyhow!("Wi-Fi password is longer than 64 bytes"))?,
        auth_method: if pass.is_empty() {
            AuthMethod::None
        } else {
            AuthMethod::WPA2Personal
        },
        ..Default::default()
    }))?;
    wifi.start()?;
    log::info!("Wi-Fi started, connecting to {ssid:?}");
    Ok(wifi)
}

/// Connects if not connected and waits for an address; errors are logged and left to
/// the next call.
pub fn keep_connected(wifi: &mut Wifi) {
    if wifi.is_connected().unwrap_or(false) && wifi.is_up().unwrap_or(false) {
        return;
    }
    let attempt = wifi.connect().and_then(|()| wifi.wait_netif_up());
    match attempt {
        Ok(()) => match wifi.wifi().sta_netif().get_ip_info() {
            Ok(info) => log::info!("Wi-Fi connected, address {}", info.ip),
            Err(_) => log::info!("Wi-Fi connected"),
        },
        Err(e) => {
            log::warn!("Wi-Fi not connected ({e}); retrying");
            // A half-open association blocks the next connect(); start over.
            let _ = wifi.disconnect();
        }
    }
}
