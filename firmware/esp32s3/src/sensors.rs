//! The built-in sensor sources: the chip's internal temperature sensor and ADC1
//! channels, as `sensorlake::sensor::SensorSource`s. Add your own drivers (an I2C IMU,
//! …) to the list `builtin` returns.
//!
//! The ADC1 pin table is per chip, chosen by the cfg esp-idf-sys sets from `MCU`
//! (`esp32s3`: GPIO1-10, `esp32c3`: GPIO0-4, `esp32c6`: GPIO0-6), and checked at
//! compile time against `sensorlake::chips` (whose host test holds the datasheets'
//! pins). Only the ESP32-S3 table has been compiled against esp-idf-svc; the C3 and C6
//! tables have not (no ESP-IDF SDK where they were written).

use std::sync::Arc;

use anyhow::{bail, Result};
use esp_idf_svc::hal::adc::attenuation::DB_12;
use esp_idf_svc::hal::adc::oneshot::config::{AdcChannelConfig, Calibration};
use esp_idf_svc::hal::adc::oneshot::{AdcChannelDriver, AdcDriver};
use esp_idf_svc::hal::adc::{AdcChannel, ADC1, ADCU1};
use esp_idf_svc::hal::gpio::{self, ADCPin};
use esp_idf_svc::hal::temp_sensor::{TempSensor, TempSensorConfig, TempSensorDriver};
use sensorlake::sensor::{BoxedSource, SensorError, SensorSource};
use sensorlake::{Channel, ChannelType, Value};

/// The chip's internal temperature sensor, °C.
pub struct InternalTemperature {
    driver: TempSensorDriver<'static>,
}

impl InternalTemperature {
    /// Installs and enables the sensor (range -10…80 °C).
    pub fn new(sensor: TempSensor<'static>) -> Result<Self> {
        let mut driver = TempSensorDriver::new(&TempSensorConfig::default(), sensor)?;
        driver.enable()?;
        Ok(Self { driver })
    }
}

impl SensorSource for InternalTemperature {
    fn name(&self) -> &str {
        "internal_temperature"
    }

    fn channels(&self) -> Vec<Channel> {
        vec![Channel::f32("chip_temp_c").unit("degC")]
    }

    fn read(&mut self, out: &mut [Value]) -> Result<(), SensorError> {
        let celsius = self
            .driver
            .get_celsius()
            .map_err(|e| SensorError(format!("temperature sensor: {e}")))?;
        out[0] = Value::F32(celsius);
        Ok(())
    }
}

/// One ADC1 channel in millivolts (12 dB attenuation: about 0-3.1 V; curve-fitting
/// calibration from the chip's eFuse).
pub struct Adc1Channel<C: AdcChannel<AdcUnit = ADCU1>> {
    name: String,
    channel: String,
    driver: AdcChannelDriver<'static, C, Arc<AdcDriver<'static, ADCU1>>>,
}

impl<C: AdcChannel<AdcUnit = ADCU1>> SensorSource for Adc1Channel<C> {
    fn name(&self) -> &str {
        &self.name
    }

    fn channels(&self) -> Vec<Channel> {
        vec![Channel::new(&self.channel, ChannelType::I16).unit("mV")]
    }

    fn read(&mut self, out: &mut [Value]) -> Result<(), SensorError> {
        let mv = self
            .driver
            .read()
            .map_err(|e| SensorError(format!("{}: {e}", self.name)))?;
        out[0] = Value::Int(mv.into());
        Ok(())
    }
}

fn adc1_channel<P>(
    adc: &Arc<AdcDriver<'static, ADCU1>>,
    pin: Option<P>,
    gpio: u8,
) -> Result<BoxedSource>
where
    P: ADCPin + 'static,
    P::AdcChannel: AdcChannel<AdcUnit = ADCU1>,
{
    let Some(pin) = pin else {
        bail!("ADC1 GPIO {gpio} is used twice");
    };
    let config = AdcChannelConfig {
        attenuation: DB_12,
        calibration: Calibration::Curve,
        ..Default::default()
    };
    let driver = AdcChannelDriver::new(adc.clone(), pin, &config)?;
    Ok(Box::new(Adc1Channel {
        name: format!("adc1_gpio{gpio}"),
        channel: format!("adc1_gpio{gpio}_mv"),
        driver,
    }))
}

/// Whether two GPIO lists are equal (for the compile-time check of each table).
const fn same_gpios(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// The ADC1 pins of one chip: `Adc1Pins` (the GPIOs taken from `Peripherals::pins`)
/// and `adc1_source` (the source for one provisioned GPIO), from `number => field:
/// type` entries that must list exactly the chip's table in `sensorlake::chips`.
macro_rules! adc1_chip {
    ($chip:literal, $table:expr, $($gpio:literal => $field:ident: $ty:ident),+ $(,)?) => {
        /// The chip these pins are for.
        pub const CHIP: &str = $chip;

        const _: () = assert!(
            same_gpios(&[$($gpio),+], &$table),
            "the ADC1 pin table differs from sensorlake::chips"
        );

        /// The GPIOs of ADC1, taken from `Peripherals::pins` one by one.
        pub struct Adc1Pins {
            $($field: Option<gpio::$ty<'static>>,)+
        }

        impl Adc1Pins {
            /// Takes the ADC1 GPIOs out of the chip's pins.
            pub fn new(pins: gpio::Pins) -> Self {
                Self {
                    $($field: Some(pins.$field),)+
                }
            }
        }

        fn adc1_source(
            adc: &Arc<AdcDriver<'static, ADCU1>>,
            pins: &mut Adc1Pins,
            gpio: u8,
        ) -> Result<BoxedSource> {
            match gpio {
                $($gpio => adc1_channel(adc, pins.$field.take(), gpio),)+
                other => bail!(
                    "GPIO {other} is not on ADC1 of the {CHIP} ({:?})",
                    $table
                ),
            }
        }
    };
}

#[cfg(esp32s3)]
adc1_chip!("ESP32-S3", sensorlake::chips::ESP32S3_ADC1_GPIOS,
    1 => gpio1: Gpio1, 2 => gpio2: Gpio2, 3 => gpio3: Gpio3, 4 => gpio4: Gpio4,
    5 => gpio5: Gpio5, 6 => gpio6: Gpio6, 7 => gpio7: Gpio7, 8 => gpio8: Gpio8,
    9 => gpio9: Gpio9, 10 => gpio10: Gpio10);

#[cfg(esp32c3)]
adc1_chip!("ESP32-C3", sensorlake::chips::ESP32C3_ADC1_GPIOS,
    0 => gpio0: Gpio0, 1 => gpio1: Gpio1, 2 => gpio2: Gpio2, 3 => gpio3: Gpio3,
    4 => gpio4: Gpio4);

#[cfg(esp32c6)]
adc1_chip!("ESP32-C6", sensorlake::chips::ESP32C6_ADC1_GPIOS,
    0 => gpio0: Gpio0, 1 => gpio1: Gpio1, 2 => gpio2: Gpio2, 3 => gpio3: Gpio3,
    4 => gpio4: Gpio4, 5 => gpio5: Gpio5, 6 => gpio6: Gpio6);

#[cfg(not(any(esp32s3, esp32c3, esp32c6)))]
compile_error!(
    "no ADC1 pin table for this chip: add one to src/sensors.rs (and sensorlake::chips)"
);

/// The internal temperature sensor, then one ADC1 channel per provisioned GPIO.
pub fn builtin(
    temp_sensor: TempSensor<'static>,
    adc1: ADC1<'static>,
    mut pins: Adc1Pins,
    adc1_gpios: &[u8],
) -> Result<Vec<BoxedSource>> {
    let mut sources: Vec<BoxedSource> = vec![Box::new(InternalTemperature::new(temp_sensor)?)];
    if adc1_gpios.is_empty() {
        return Ok(sources);
    }
    let adc = Arc::new(AdcDriver::new(adc1)?);
    for &gpio in adc1_gpios {
        sources.push(adc1_source(&adc, &mut pins, gpio)?);
    }
    Ok(sources)
}
