//! The `ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]` value encoding.
//!
//! sops encrypts every value on its own with AES-256-GCM under the file's data key,
//! with a **32-byte** nonce (non-standard, so the GCM type is `AesGcm<Aes256, U32>`)
//! and the value's path string as AAD. Any IV length is accepted when decrypting,
//! because sops builds its GCM with the nonce size of the stored IV.

use aes_gcm::aead::consts::{U12, U16, U32};
use aes_gcm::aead::generic_array::GenericArray;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::aes::Aes256;
use aes_gcm::AesGcm;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand::RngCore;
use zeroize::Zeroizing;

use super::datakey::DataKey;

type SopsGcm = AesGcm<Aes256, U32>;

/// The `type:` tag of an encrypted value (docs/sops-format.md §1.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TypeTag {
    Str,
    Int,
    Float,
    Bool,
    Time,
    Comment,
    /// Never written by sops; accepted on decrypt as raw bytes.
    Bytes,
}

impl TypeTag {
    pub fn as_str(self) -> &'static str {
        match self {
            TypeTag::Str => "str",
            TypeTag::Int => "int",
            TypeTag::Float => "float",
            TypeTag::Bool => "bool",
            TypeTag::Time => "time",
            TypeTag::Comment => "comment",
            TypeTag::Bytes => "bytes",
        }
    }

    fn parse(s: &str) -> Option<TypeTag> {
        Some(match s {
            "str" => TypeTag::Str,
            "int" => TypeTag::Int,
            "float" => TypeTag::Float,
            "bool" => TypeTag::Bool,
            "time" => TypeTag::Time,
            "comment" => TypeTag::Comment,
            "bytes" => TypeTag::Bytes,
            _ => return None,
        })
    }
}

/// Why an `ENC[...]` value could not be read or opened.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CipherError {
    #[error("the value is not in sops' ENC[AES256_GCM,data:…,iv:…,tag:…,type:…] format")]
    Malformed,
    #[error("the {field} field of the encrypted value is not valid base64")]
    BadBase64 { field: &'static str },
    #[error(
        "unknown value type `type:{0}` (sops knows str, int, float, bool, time, comment, bytes)"
    )]
    UnknownType(String),
    #[error("the encrypted value's IV is empty or its tag is not 16 bytes")]
    BadShape,
    #[error("authentication failed: the value was tampered with, moved to another key, or belongs to another data key")]
    Authentication,
}

/// A parsed `ENC[...]` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncValue {
    pub data: Vec<u8>,
    pub iv: Vec<u8>,
    pub tag: Vec<u8>,
    pub(crate) type_tag: TypeTag,
}

/// Does this string look like an encrypted value at all (sops' anchored prefix)?
pub fn is_enc(s: &str) -> bool {
    s.starts_with("ENC[AES256_GCM,")
}

impl EncValue {
    /// Parse like sops' regex `^ENC\[AES256_GCM,data:(.+),iv:(.+),tag:(.+),type:(.+)\]`:
    /// greedy groups, each non-empty, nothing checked after the last `]`.
    pub fn parse(s: &str) -> Result<EncValue, CipherError> {
        let rest = s
            .strip_prefix("ENC[AES256_GCM,data:")
            .ok_or(CipherError::Malformed)?;
        let close = rest.rfind(']').ok_or(CipherError::Malformed)?;
        let body = &rest[..close];
        // Greedy `(.+)` groups: each field ends at the *last* occurrence of the next label.
        let type_at = body.rfind(",type:").ok_or(CipherError::Malformed)?;
        let (before_type, type_str) = (&body[..type_at], &body[type_at + 6..]);
        let tag_at = before_type.rfind(",tag:").ok_or(CipherError::Malformed)?;
        let (before_tag, tag) = (&before_type[..tag_at], &before_type[tag_at + 5..]);
        let iv_at = before_tag.rfind(",iv:").ok_or(CipherError::Malformed)?;
        let (data, iv) = (&before_tag[..iv_at], &before_tag[iv_at + 4..]);
        if [data, iv, tag, type_str].iter().any(|f| f.is_empty())
            || [data, iv, tag, type_str].iter().any(|f| f.contains('\n'))
        {
            return Err(CipherError::Malformed);
        }
        let decode = |field: &'static str, text: &str| {
            STANDARD
                .decode(text)
                .map_err(|_| CipherError::BadBase64 { field })
        };
        let type_tag = TypeTag::parse(type_str)
            .ok_or_else(|| CipherError::UnknownType(type_str.to_string()))?;
        Ok(EncValue {
            data: decode("data", data)?,
            iv: decode("iv", iv)?,
            tag: decode("tag", tag)?,
            type_tag,
        })
    }

    pub fn render(&self) -> String {
        format!(
            "ENC[AES256_GCM,data:{},iv:{},tag:{},type:{}]",
            STANDARD.encode(&self.data),
            STANDARD.encode(&self.iv),
            STANDARD.encode(&self.tag),
            self.type_tag.as_str()
        )
    }
}

/// A fresh random 32-byte IV.
pub fn random_iv() -> [u8; 32] {
    let mut iv = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut iv);
    iv
}

/// Encrypt `plaintext` (non-empty; sops never encrypts empty values) under `key`.
pub fn encrypt(
    key: &DataKey,
    plaintext: &[u8],
    aad: &str,
    type_tag: TypeTag,
    iv: &[u8; 32],
) -> String {
    let cipher = SopsGcm::new(GenericArray::from_slice(key.bytes()));
    let sealed = cipher
        .encrypt(
            GenericArray::from_slice(iv),
            Payload {
                msg: plaintext,
                aad: aad.as_bytes(),
            },
        )
        // AES-GCM encryption only fails for messages beyond 64 GiB.
        .unwrap_or_default();
    let split = sealed.len().saturating_sub(16);
    EncValue {
        data: sealed[..split].to_vec(),
        iv: iv.to_vec(),
        tag: sealed[split..].to_vec(),
        type_tag,
    }
    .render()
}

/// Decrypt a parsed value with `aad`; returns the plaintext bytes.
pub fn decrypt(
    key: &DataKey,
    value: &EncValue,
    aad: &str,
) -> Result<Zeroizing<Vec<u8>>, CipherError> {
    if value.tag.len() != 16 || value.iv.is_empty() {
        return Err(CipherError::BadShape);
    }
    let mut sealed = Vec::with_capacity(value.data.len() + 16);
    sealed.extend_from_slice(&value.data);
    sealed.extend_from_slice(&value.tag);
    let payload = Payload {
        msg: &sealed,
        aad: aad.as_bytes(),
    };
    let key_bytes = GenericArray::from_slice(key.bytes());
    // The nonce size is a type parameter: dispatch on the lengths that occur
    // (32 from sops, 12 from the standard GCM and some other writers).
    let opened = match value.iv.len() {
        32 => SopsGcm::new(key_bytes).decrypt(GenericArray::from_slice(&value.iv), payload),
        12 => AesGcm::<Aes256, U12>::new(key_bytes)
            .decrypt(GenericArray::from_slice(&value.iv), payload),
        16 => AesGcm::<Aes256, U16>::new(key_bytes)
            .decrypt(GenericArray::from_slice(&value.iv), payload),
        _ => return Err(CipherError::BadShape),
    };
    opened
        .map(Zeroizing::new)
        .map_err(|_| CipherError::Authentication)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decrypts_the_sops_test_vector() {
        // aes/cipher_test.go: key = 32 × 'f', AAD "bar:", plaintext "foo".
        let key = DataKey::from_bytes([0x66; 32]);
        let enc = "ENC[AES256_GCM,data:oYyi,iv:MyIDYbT718JRr11QtBkcj3Dwm4k1aCGZBVeZf0EyV8o=,tag:t5z2Z023Up0kxwCgw1gNxg==,type:str]";
        let v = EncValue::parse(enc).unwrap();
        assert_eq!(v.type_tag, TypeTag::Str);
        assert_eq!(decrypt(&key, &v, "bar:").unwrap().as_slice(), b"foo");
        assert_eq!(decrypt(&key, &v, "baz:"), Err(CipherError::Authentication));
    }

    #[test]
    fn round_trips_with_a_32_byte_iv() {
        let key = DataKey::from_bytes([7; 32]);
        let iv = random_iv();
        let enc = encrypt(&key, b"hunter2", "db:password:", TypeTag::Str, &iv);
        let v = EncValue::parse(&enc).unwrap();
        assert_eq!(v.iv.len(), 32);
        assert_eq!(
            decrypt(&key, &v, "db:password:").unwrap().as_slice(),
            b"hunter2"
        );
        // Deterministic for the same IV: this is what keeps unchanged values byte-stable.
        assert_eq!(
            enc,
            encrypt(&key, b"hunter2", "db:password:", TypeTag::Str, &iv)
        );
    }

    #[test]
    fn rejects_malformed_values() {
        assert_eq!(
            EncValue::parse("ENC[AES256_GCM,data:,iv:a,tag:b,type:str]"),
            Err(CipherError::Malformed)
        );
        assert_eq!(
            EncValue::parse("ENC[AES256_GCM,data:QUJD,iv:QUJD"),
            Err(CipherError::Malformed)
        );
        assert_eq!(
            EncValue::parse("ENC[AES256_GCM,data:QUJD,iv:QUJD,tag:QUJD,type:blob]"),
            Err(CipherError::UnknownType("blob".into()))
        );
        assert_eq!(
            EncValue::parse("ENC[AES256_GCM,data:Q!JD,iv:QUJD,tag:QUJD,type:str]"),
            Err(CipherError::BadBase64 { field: "data" })
        );
        assert!(!is_enc("plain"));
    }
}
