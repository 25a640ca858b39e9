//! The registered key layouts: distinct names, one device partition each, keys that
//! parse back, and sources a future `no_std` core can own (`core` and `alloc` only, no
//! `jiff`). A third layout, defined outside the library, is in the CLI's
//! `tests/layouts.rs` (it also renders table definitions).

use std::sync::Arc;

use sensorlake::batch::{Batch, Value};
use sensorlake::key::{DeviceId, KeyTemplate};
use sensorlake::layout::{BUILT_IN, Layout, PartitionKind};
use sensorlake::schema::{Channel, Schema};

#[test]
fn built_in_layouts_have_distinct_names_and_one_device_partition() {
    let all = BUILT_IN.all();
    assert_eq!(BUILT_IN.names(), "hive or opensensor");
    assert_eq!(Layout::default(), Layout::Hive);
    for (i, layout) in all.iter().enumerate() {
        assert_eq!(Layout::parse(layout.name()), Ok(*layout));
        assert_eq!(layout.name().parse::<Layout>(), Ok(*layout));
        for other in &all[..i] {
            assert_ne!(layout.name(), other.name());
            for alias in layout.aliases() {
                assert!(!other.aliases().contains(alias) && other.name() != *alias);
            }
        }
        let devices = layout
            .partitions()
            .iter()
            .filter(|p| p.kind == PartitionKind::Device)
            .count();
        assert_eq!(devices, 1, "{layout:?}");
        layout.batch_defaults().validate().unwrap();
    }
    assert_eq!(Layout::parse("default"), Ok(Layout::Hive));
    assert_eq!(
        Layout::parse("weekly").unwrap_err().to_string(),
        "unknown layout \"weekly\": expected hive or opensensor"
    );
}

#[test]
fn every_layout_parses_the_keys_it_renders() {
    let schema = Arc::new(Schema::new(vec![Channel::f32("a")]).unwrap());
    let t0 = 1_709_280_000_000_000; // 2024-03-01T08:00:00Z
    let rows = [(t0 + 1_500_000, [Value::F32(1.0)])];
    let batch = Batch::from_rows(schema, rows.iter().map(|(t, v)| (*t, v.as_slice()))).unwrap();
    let id = DeviceId::new("gw-1").unwrap();
    for &layout in BUILT_IN.all() {
        let template = KeyTemplate::new(layout, "raw").unwrap();
        let key = template.render(&id, &batch).unwrap();
        let device = format!("raw/{}=gw-1/", layout.device_partition());
        assert!(key.starts_with(&device), "{key}");
        let parsed = template.parse(&key).unwrap();
        assert_eq!(parsed.device, id);
        assert_eq!(template.check(&key, &id, &batch), Ok(()), "{key}");
    }
}

#[test]
fn layout_sources_use_only_core_and_alloc() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/layout");
    let mut files = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for banned in ["std::", "jiff", "println!", "HashMap", "SystemTime"] {
                assert!(
                    !code.contains(banned),
                    "{}:{}: {banned} in a layout (core + alloc only): {line}",
                    path.display(),
                    n + 1
                );
            }
        }
        files += 1;
    }
    assert!(files >= 3, "mod.rs and one file per layout");
}

#[test]
fn a_pipeline_config_batches_as_its_key_layout_does() {
    use sensorlake::encode::EncodeOptions;
    use sensorlake::pipeline::PipelineConfig;
    let schema = Arc::new(Schema::new(vec![Channel::f32("a")]).unwrap());
    let id = DeviceId::new("st-1").unwrap();
    for &layout in BUILT_IN.all() {
        let keys = KeyTemplate::new(layout, "").unwrap();
        let config = PipelineConfig::new(id.clone(), schema.clone(), keys).with_seed(7);
        assert_eq!(config.batch, layout.batch_defaults());
        assert_eq!(config.encode, EncodeOptions::default());
        assert!(config.journal.is_none());
        assert_eq!(config.seed, 7);
    }
}
