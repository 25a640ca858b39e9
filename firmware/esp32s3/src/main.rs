//! sensorlake on an ESP32-S3: glue between ESP-IDF and the sensorlake library.
//!
//! The library does the work (sampling loop, batching, Parquet, spool, clock logic,
//! upload loop); this file only wires the hardware to it:
//!
//! 1. settings from NVS (`sensorlake provision`) or cfg.toml, the spool partition
//!    mounted (LittleFS), the sensors opened;
//! 2. the sampling thread starts at once, network or not: rows taken before the first
//!    SNTP sync are held with their time since boot and re-stamped by the library;
//! 3. Wi-Fi and SNTP start; SNTP reports each sync to the sampling thread;
//! 4. the upload thread drains the spool over HTTPS (certificate bundle), signing
//!    nothing before the clock is valid;
//! 5. the main task keeps Wi-Fi connected.
//!
//! Both threads are subscribed to the task watchdog and feed it at least once a second.

mod sensors;
mod settings;
mod spool_fs;
mod time_store;
mod wifi;

use std::sync::atomic::AtomicBool;
use std::thread;
use std::time::Duration;

use anyhow::Result;
use esp_idf_svc::eventloop::EspSystemEventLoop;
use esp_idf_svc::hal::peripherals::Peripherals;
use esp_idf_svc::hal::task::watchdog::{TWDTConfig, TWDTDriver};
use esp_idf_svc::http::client::{Configuration as HttpConfiguration, EspHttpConnection};
use esp_idf_svc::nvs::EspDefaultNvsPartition;
use esp_idf_svc::sntp::{EspSntp, SntpConf};
use sensorlake::clock::SystemClock;
use sensorlake::device::{self, DeviceConfig};
use sensorlake::sensor::Sensors;
use sensorlake::storage::StdStorage;
use sensorlake::url_source::AnyUrlSource;

/// Never set: the device runs until reset. The library's loops take a stop flag so
/// that the host tests can end them.
static STOP: AtomicBool = AtomicBool::new(false);

/// Stack sizes of the worker threads (Parquet encoding and TLS need more than the
/// 8 KiB default; large buffers go to PSRAM through malloc).
const SAMPLER_STACK: usize = 48 * 1024;
const UPLOADER_STACK: usize = 32 * 1024;

/// Microseconds since boot (esp_timer).
fn uptime_us() -> i64 {
    // SAFETY: esp_timer_get_time has no preconditions once the system is up.
    unsafe { esp_idf_svc::sys::esp_timer_get_time() }
}

fn main() -> Result<()> {
    esp_idf_svc::sys::link_patches();
    esp_idf_svc::log::EspLogger::initialize_default();
    log::info!("sensorlake {} starting", env!("CARGO_PKG_VERSION"));

    let peripherals = Peripherals::take()?;
    let sysloop = EspSystemEventLoop::take()?;
    let nvs = EspDefaultNvsPartition::take()?;
    let settings = settings::load(&nvs)?;
    let _spool = spool_fs::mount()?;

    let adc1_pins = sensors::Adc1Pins::new(peripherals.pins);
    let sources = sensors::builtin(
        peripherals.temp_sensor,
        peripherals.adc1,
        adc1_pins,
        &settings.adc1_gpios,
    )?;
    let sensors = Sensors::new(sources)?;

    let mut config = DeviceConfig::new(settings.device_id.clone(), settings.key_template());
    config.sample_period = settings.sample_period;
    let (mut sampler, mut uploads) = device::open(
        StdStorage::new(spool_fs::SPOOL_DIR),
        time_store::NvsTimeStore::new(nvs.clone())?,
        sensors,
        AnyUrlSource::Broker(settings.broker_client()),
        &config,
    )?;
    let sync_signal = sampler.sync_signal();

    let twdt = TWDTDriver::new(peripherals.twdt, &TWDTConfig::default())?;

    let mut twdt_sampler = twdt.clone();
    thread::Builder::new()
        .name("sampler".into())
        .stack_size(SAMPLER_STACK)
        .spawn(move || {
            let mut watch = twdt_sampler.watch_current_task().ok();
            sampler.run(uptime_us, &STOP, &mut || {
                if let Some(watch) = &mut watch {
                    let _ = watch.feed();
                }
            });
        })?;

    let mut wifi = wifi::start(
        peripherals.modem,
        sysloop,
        nvs,
        &settings.wifi_ssid,
        &settings.wifi_pass,
    )?;
    wifi::keep_connected(&mut wifi);

    // Each sync (the first, then hourly) goes to the sampling thread with the uptime at
    // which it happened.
    let _sntp = EspSntp::new_with_callback(&SntpConf::default(), move |synced: Duration| {
        sync_signal.post(synced.as_micros() as i64, uptime_us());
    })?;

    let http = HttpConfiguration {
        // Presigned URLs (with a session token) are longer than the 512-byte default.
        buffer_size: Some(4096),
        buffer_size_tx: Some(4096),
        timeout: Some(Duration::from_secs(20)),
        crt_bundle_attach: Some(esp_idf_svc::sys::esp_crt_bundle_attach),
        ..Default::default()
    };
    let mut twdt_uploader = twdt.clone();
    thread::Builder::new()
        .name("uploader".into())
        .stack_size(UPLOADER_STACK)
        .spawn(move || {
            let mut watch = twdt_uploader.watch_current_task().ok();
            uploads.run(
                || EspHttpConnection::new(&http),
                &SystemClock,
                &STOP,
                &mut || {
                    if let Some(watch) = &mut watch {
                        let _ = watch.feed();
                    }
                },
            );
        })?;

    loop {
        thread::sleep(Duration::from_secs(10));
        wifi::keep_connected(&mut wifi);
    }
}
