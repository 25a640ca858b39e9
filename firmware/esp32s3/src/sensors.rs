//! The built-in sensor sources: the ESP32-S3's internal temperature sensor and ADC1
//! channels (GPIO1-10), as `sensorlake::sensor::SensorSource`s. Add your own drivers
//! (an I2C IMU, …) to the list `builtin` returns.

use std::sync::Arc;

use anyhow::{bail, Result};
use esp_idf_svc::hal::adc::attenuation::DB_12;
use esp_idf_svc::hal::adc::oneshot::config::{AdcChannelConfig, Calibration};
use esp_idf_svc::hal::adc::oneshot::{AdcChannelDriver, AdcDriver};
use esp_idf_svc::hal::adc::{AdcChannel, ADC1, ADCU1};
use esp_idf_svc::hal::gpio::{
    ADCPin, Gpio1, Gpio10, Gpio2, Gpio3, Gpio4, Gpio5, Gpio6, Gpio7, Gpio8, Gpio9,
};
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

/// The GPIOs of ADC1 on the ESP32-S3, taken from `Peripherals::pins` one by one.
pub struct Adc1Pins {
    pub gpio1: Option<Gpio1<'static>>,
    pub gpio2: Option<Gpio2<'static>>,
    pub gpio3: Option<Gpio3<'static>>,
    pub gpio4: Option<Gpio4<'static>>,
    pub gpio5: Option<Gpio5<'static>>,
    pub gpio6: Option<Gpio6<'static>>,
    pub gpio7: Option<Gpio7<'static>>,
    pub gpio8: Option<Gpio8<'static>>,
    pub gpio9: Option<Gpio9<'static>>,
    pub gpio10: Option<Gpio10<'static>>,
}

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
        sources.push(match gpio {
            1 => adc1_channel(&adc, pins.gpio1.take(), gpio)?,
            2 => adc1_channel(&adc, pins.gpio2.take(), gpio)?,
            3 => adc1_channel(&adc, pins.gpio3.take(), gpio)?,
            4 => adc1_channel(&adc, pins.gpio4.take(), gpio)?,
            5 => adc1_channel(&adc, pins.gpio5.take(), gpio)?,
            6 => adc1_channel(&adc, pins.gpio6.take(), gpio)?,
            7 => adc1_channel(&adc, pins.gpio7.take(), gpio)?,
            8 => adc1_channel(&adc, pins.gpio8.take(), gpio)?,
            9 => adc1_channel(&adc, pins.gpio9.take(), gpio)?,
            10 => adc1_channel(&adc, pins.gpio10.take(), gpio)?,
            other => bail!("GPIO {other} is not on ADC1 of the ESP32-S3 (1-10)"),
        });
    }
    Ok(sources)
}
