//! The firmware's ADC1 pin tables (firmware/esp32s3/src/sensors.rs, which cannot be
//! compiled here: no ESP-IDF SDK) against `sensorlake::chips`: one `adc1_chip!` per
//! chip the firmware names, under the cfg esp-idf-sys sets for it, listing exactly the
//! chip's ADC1 GPIOs as `n => gpioN: GpioN` (the E0271/E0277 errors of a C3 build came
//! from an S3 table used for every chip).

use sensorlake::chips::Chip;

const SENSORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../firmware/esp32s3/src/sensors.rs"
);

#[test]
fn every_chip_has_its_own_documented_pin_table() {
    let text = std::fs::read_to_string(SENSORS).expect("firmware/esp32s3/src/sensors.rs");
    let mut seen = 0;
    for chip in Chip::ALL {
        let cfg = format!("#[cfg({})]\nadc1_chip!(\"{}\",", chip.cfg(), chip.name());
        let start = text
            .find(&cfg)
            .unwrap_or_else(|| panic!("no `{cfg}` in sensors.rs"));
        let call = &text[start + cfg.len()..];
        let call = &call[..call.find(");").expect("adc1_chip! closes")];
        let (table, entries) = call.split_once(',').expect("table, entries");
        let table_name = format!(
            "sensorlake::chips::{}_ADC1_GPIOS",
            chip.cfg().to_ascii_uppercase()
        );
        assert_eq!(table.trim(), table_name, "{}", chip.name());
        let gpios: Vec<u8> = entries
            .split(',')
            .map(|e| {
                let (n, rest) = e.split_once("=>").expect("n => field: Type");
                let n: u8 = n.trim().parse().expect("a GPIO number");
                let (field, ty) = rest.split_once(':').expect("field: Type");
                assert_eq!(field.trim(), format!("gpio{n}"), "{}", chip.name());
                assert_eq!(ty.trim(), format!("Gpio{n}"), "{}", chip.name());
                n
            })
            .collect();
        assert_eq!(gpios, chip.adc1_gpios(), "{}", chip.name());
        seen += 1;
    }
    assert_eq!(
        text.matches("\nadc1_chip!(").count(),
        seen,
        "a table for an unknown chip"
    );
}
