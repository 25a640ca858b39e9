//! The library's time record in NVS (namespace `sl_time`, two blob keys written in turn).

use esp_idf_svc::nvs::{EspDefaultNvsPartition, EspNvs, NvsDefault};
use esp_idf_svc::sys::EspError;
use sensorlake::timebase::TimeStore;

/// NVS namespace of the time record.
const NAMESPACE: &str = "sl_time";

/// [`TimeStore`] over NVS blobs.
pub struct NvsTimeStore {
    nvs: EspNvs<NvsDefault>,
}

impl NvsTimeStore {
    /// Opens (creates) the namespace.
    pub fn new(partition: EspDefaultNvsPartition) -> Result<Self, EspError> {
        Ok(Self {
            nvs: EspNvs::new(partition, NAMESPACE, true)?,
        })
    }
}

impl TimeStore for NvsTimeStore {
    fn load(&mut self, key: &str) -> Result<Option<Vec<u8>>, String> {
        let len = match self.nvs.blob_len(key).map_err(|e| e.to_string())? {
            Some(len) => len,
            None => return Ok(None),
        };
        let mut buf = vec![0u8; len];
        let value = self.nvs.get_blob(key, &mut buf).map_err(|e| e.to_string())?;
        Ok(value.map(<[u8]>::to_vec))
    }

    /// `EspNvs::set_blob` erases the key before writing and commits after: a power cut
    /// in between loses this slot, and the library then reads the other one.
    fn save(&mut self, key: &str, value: &[u8]) -> Result<(), String> {
        self.nvs.set_blob(key, value).map_err(|e| e.to_string())
    }
}
