//! The MAC: uppercase hex SHA-512 over the canonical plaintext of every non-null,
//! non-comment leaf in walk order (keys are not hashed), sealed with the data key
//! under the `lastmodified` AAD (docs/sops-format.md §3).

use sha2::{Digest, Sha512};

use super::cipher::{self, CipherError, EncValue, TypeTag};
use super::datakey::DataKey;

/// `sha256("sops")`: fed first when `mac_only_encrypted` is set, so the two MAC
/// modes never produce the same digest.
const MAC_ONLY_ENCRYPTED_PREFIX: [u8; 32] = [
    0x8a, 0x3f, 0xd2, 0xad, 0x54, 0xce, 0x66, 0x52, 0x7b, 0x10, 0x34, 0xf3, 0xd1, 0x47, 0xbe, 0x0b,
    0x0b, 0x97, 0x5b, 0x3b, 0xf4, 0x4f, 0x72, 0xc6, 0xfd, 0xad, 0xec, 0x81, 0x76, 0xf2, 0x7d, 0x69,
];

pub(crate) struct MacHasher {
    hash: Sha512,
    only_encrypted: bool,
}

impl MacHasher {
    pub fn new(only_encrypted: bool) -> MacHasher {
        let mut hash = Sha512::new();
        if only_encrypted {
            hash.update(MAC_ONLY_ENCRYPTED_PREFIX);
        }
        MacHasher {
            hash,
            only_encrypted,
        }
    }

    /// Feed one leaf's canonical plaintext; unencrypted leaves only count when
    /// `mac_only_encrypted` is off.
    pub fn leaf(&mut self, canonical: &[u8], encrypted: bool) {
        if encrypted || !self.only_encrypted {
            self.hash.update(canonical);
        }
    }

    pub fn finish(self) -> String {
        hex::encode_upper(self.hash.finalize())
    }
}

/// Seal a MAC for the metadata.
pub fn seal(key: &DataKey, mac_hex: &str, aad: &str) -> String {
    cipher::encrypt(
        key,
        mac_hex.as_bytes(),
        aad,
        TypeTag::Str,
        &cipher::random_iv(),
    )
}

/// Open the stored MAC; `Ok(None)` when the file has none (an empty `mac`).
pub fn open(key: &DataKey, stored: &str, aad: &str) -> Result<Option<String>, CipherError> {
    if stored.is_empty() {
        return Ok(None);
    }
    let value = EncValue::parse(stored)?;
    let bytes = cipher::decrypt(key, &value, aad)?;
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_tree_has_the_known_digest() {
        assert_eq!(
            MacHasher::new(false).finish(),
            "CF83E1357EEFB8BDF1542850D66D8007D620E4050B5715DC83F4A921D36CE9CE47D0D13C5D85F2B0FF8318D2877EEC2F63B931BD47417A81A538327AF927DA3E"
        );
        assert_eq!(
            hex::encode(sha2::Sha256::digest(b"sops")),
            hex::encode(MAC_ONLY_ENCRYPTED_PREFIX)
        );
    }
}
