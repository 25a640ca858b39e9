//! The ADC1 GPIOs of every chip the firmware names (firmware/esp32s3/src/sensors.rs
//! takes its pin table from here, per chip, by the `esp32s3` / `esp32c3` / `esp32c6`
//! cfgs esp-idf-sys sets). Taken from Espressif's datasheets (ADC1 channels):
//! ESP32-S3 ADC1_CH0–CH9 on GPIO1–10, ESP32-C3 ADC1_CH0–CH4 on GPIO0–4 (GPIO5 is
//! ADC2), ESP32-C6 ADC1_CH0–CH6 on GPIO0–6.

/// A chip the firmware builds for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chip {
    /// ESP32-S3 (Xtensa, `xtensa-esp32s3-espidf`).
    Esp32S3,
    /// ESP32-C3 (RISC-V, `riscv32imc-esp-espidf`).
    Esp32C3,
    /// ESP32-C6 (RISC-V, `riscv32imac-esp-espidf`).
    Esp32C6,
}

/// ADC1 GPIOs of the ESP32-S3, in channel order (GPIO n is ADC1 channel n − 1).
pub const ESP32S3_ADC1_GPIOS: [u8; 10] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
/// ADC1 GPIOs of the ESP32-C3, in channel order (GPIO n is ADC1 channel n).
pub const ESP32C3_ADC1_GPIOS: [u8; 5] = [0, 1, 2, 3, 4];
/// ADC1 GPIOs of the ESP32-C6, in channel order (GPIO n is ADC1 channel n).
pub const ESP32C6_ADC1_GPIOS: [u8; 7] = [0, 1, 2, 3, 4, 5, 6];

impl Chip {
    /// Every chip the firmware names.
    pub const ALL: [Chip; 3] = [Self::Esp32S3, Self::Esp32C3, Self::Esp32C6];

    /// The chip's name as Espressif writes it (`ESP32-S3`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Esp32S3 => "ESP32-S3",
            Self::Esp32C3 => "ESP32-C3",
            Self::Esp32C6 => "ESP32-C6",
        }
    }

    /// The cfg esp-idf-sys sets for the chip (and the `MCU` value).
    pub fn cfg(self) -> &'static str {
        match self {
            Self::Esp32S3 => "esp32s3",
            Self::Esp32C3 => "esp32c3",
            Self::Esp32C6 => "esp32c6",
        }
    }

    /// The GPIOs of ADC1, in channel order.
    pub fn adc1_gpios(self) -> &'static [u8] {
        match self {
            Self::Esp32S3 => &ESP32S3_ADC1_GPIOS,
            Self::Esp32C3 => &ESP32C3_ADC1_GPIOS,
            Self::Esp32C6 => &ESP32C6_ADC1_GPIOS,
        }
    }

    /// The GPIOs as text: `1-10`.
    pub fn adc1_range(self) -> String {
        let g = self.adc1_gpios();
        format!("{}-{}", g[0], g[g.len() - 1])
    }
}

/// Whether `gpio` is an ADC1 GPIO of any chip the firmware names (what provisioning,
/// which does not know the chip, accepts; the firmware refuses the others of its chip).
pub fn is_adc1_gpio_of_some_chip(gpio: u8) -> bool {
    Chip::ALL.iter().any(|c| c.adc1_gpios().contains(&gpio))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Espressif's documented ADC1 pins, written out as (GPIO, channel) pairs.
    #[test]
    fn tables_are_the_documented_adc1_pins() {
        let s3: Vec<(u8, u8)> = (1..=10).map(|g| (g, g - 1)).collect();
        let c3: Vec<(u8, u8)> = (0..=4).map(|g| (g, g)).collect();
        let c6: Vec<(u8, u8)> = (0..=6).map(|g| (g, g)).collect();
        for (chip, documented) in [
            (Chip::Esp32S3, s3),
            (Chip::Esp32C3, c3),
            (Chip::Esp32C6, c6),
        ] {
            let table: Vec<(u8, u8)> = chip
                .adc1_gpios()
                .iter()
                .enumerate()
                .map(|(channel, &gpio)| (gpio, channel as u8))
                .collect();
            assert_eq!(table, documented, "{}", chip.name());
        }
        // The C3's GPIO5 is on ADC2 and its GPIO6-10 are no ADC pins (E0271/E0277).
        assert!(!Chip::Esp32C3.adc1_gpios().iter().any(|&g| g >= 5));
        assert_eq!(Chip::Esp32S3.adc1_range(), "1-10");
        assert!(is_adc1_gpio_of_some_chip(0) && !is_adc1_gpio_of_some_chip(11));
    }
}
