//! The file's data key: 32 random bytes that encrypt every value. It is wrapped
//! once per master key in the metadata and otherwise exists only in memory, in a
//! zeroizing buffer with no `Debug`.

use rand::RngCore;
use zeroize::Zeroizing;

pub struct DataKey(Zeroizing<[u8; 32]>);

impl DataKey {
    pub fn generate() -> DataKey {
        let mut key = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(key.as_mut());
        DataKey(key)
    }

    pub fn from_bytes(bytes: [u8; 32]) -> DataKey {
        DataKey(Zeroizing::new(bytes))
    }

    /// A data key from an unwrapped blob; `None` unless it is exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<DataKey> {
        let array: [u8; 32] = bytes.try_into().ok()?;
        Some(DataKey::from_bytes(array))
    }

    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl Clone for DataKey {
    fn clone(&self) -> DataKey {
        DataKey(self.0.clone())
    }
}
