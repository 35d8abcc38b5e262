//! Passphrase encryption of sensitive fields, as paperless-ngx 2.10+ (spec §3): PBKDF2-HMAC-SHA256
//! (1 000 000 iterations, 16-byte salt) → a Fernet key; the stored value is the hex encoding of
//! the Fernet token's base64url text.

use aes::Aes128;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE;
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

pub const KEY_ALGO: &str = "pbkdf2_sha256";
pub const ITERATIONS: u32 = 1_000_000;
pub const KEY_SIZE: usize = 32;

/// A derived key and the parameters that made it (for `metadata.json`).
pub struct Crypto {
    key: [u8; 32],
    pub salt_hex: String,
    pub iterations: u32,
}

/// PBKDF2-HMAC-SHA256 of the UTF-8 passphrase.
pub fn derive(passphrase: &str, salt: &[u8], iterations: u32) -> [u8; 32] {
    let mut key = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(passphrase.as_bytes(), salt, iterations, &mut key);
    key
}

/// The Fernet token text for `plain` with a given time and IV.
pub fn fernet_encrypt(key: &[u8; 32], plain: &[u8], time: u64, iv: [u8; 16]) -> String {
    let (sign, enc) = key.split_at(16);
    let ct = cbc::Encryptor::<Aes128>::new(enc.into(), &iv.into())
        .encrypt_padded_vec_mut::<Pkcs7>(plain);
    let mut token = Vec::with_capacity(25 + ct.len() + 32);
    token.push(0x80);
    token.extend_from_slice(&time.to_be_bytes());
    token.extend_from_slice(&iv);
    token.extend_from_slice(&ct);
    let mut mac = Hmac::<Sha256>::new_from_slice(sign).expect("any key length");
    mac.update(&token);
    token.extend_from_slice(&mac.finalize().into_bytes());
    URL_SAFE.encode(token)
}

/// Verifies and decrypts a Fernet token text (no TTL, as upstream).
pub fn fernet_decrypt(key: &[u8; 32], text: &str) -> Result<Vec<u8>, String> {
    let bad =
        || "the passphrase is wrong or the value is damaged (Fernet token invalid)".to_string();
    let token = URL_SAFE.decode(text.trim()).map_err(|_| bad())?;
    if token.len() < 1 + 8 + 16 + 16 + 32 || token[0] != 0x80 {
        return Err(bad());
    }
    let (body, tag) = token.split_at(token.len() - 32);
    let (sign, enc) = key.split_at(16);
    let mut mac = Hmac::<Sha256>::new_from_slice(sign).expect("any key length");
    mac.update(body);
    mac.verify_slice(tag).map_err(|_| bad())?;
    let iv: [u8; 16] = body[9..25].try_into().expect("16 bytes");
    cbc::Decryptor::<Aes128>::new(enc.into(), &iv.into())
        .decrypt_padded_vec_mut::<Pkcs7>(&body[25..])
        .map_err(|_| bad())
}

impl Crypto {
    /// A fresh random salt, for one export run.
    pub fn new_export(passphrase: &str) -> Crypto {
        let mut salt = [0u8; 16];
        rand::rng().fill_bytes(&mut salt);
        Crypto {
            key: derive(passphrase, &salt, ITERATIONS),
            salt_hex: hex::encode(salt),
            iterations: ITERATIONS,
        }
    }

    /// From the `__crypto__` object of an export's `metadata.json`.
    pub fn from_metadata(passphrase: &str, crypto: &serde_json::Value) -> Result<Crypto, String> {
        let algo = crypto["__key_algo__"].as_str().unwrap_or_default();
        if algo != KEY_ALGO {
            return Err(format!("{algo} is an unknown key derivation function"));
        }
        let iterations = crypto["__key_iters__"]
            .as_u64()
            .and_then(|i| u32::try_from(i).ok())
            .ok_or("metadata.json: __key_iters__ is not a number")?;
        if crypto["__key_size__"].as_u64() != Some(KEY_SIZE as u64) {
            return Err("metadata.json: __key_size__ must be 32".into());
        }
        let salt_hex = crypto["__salt_hex__"]
            .as_str()
            .ok_or("metadata.json: __salt_hex__ missing")?;
        let salt = hex::decode(salt_hex).map_err(|_| "metadata.json: __salt_hex__ is not hex")?;
        Ok(Crypto {
            key: derive(passphrase, &salt, iterations),
            salt_hex: salt_hex.to_string(),
            iterations,
        })
    }

    /// The `__crypto__` object for `metadata.json`.
    pub fn metadata(&self) -> serde_json::Value {
        serde_json::json!({
            "__key_algo__": KEY_ALGO,
            "__key_iters__": self.iterations,
            "__key_size__": KEY_SIZE,
            "__salt_hex__": self.salt_hex,
        })
    }

    /// The stored form of a sensitive value.
    pub fn encrypt(&self, plain: &str) -> String {
        let mut iv = [0u8; 16];
        rand::rng().fill_bytes(&mut iv);
        let time = chrono::Utc::now().timestamp().max(0) as u64;
        hex::encode(fernet_encrypt(&self.key, plain.as_bytes(), time, iv))
    }

    pub fn decrypt(&self, stored: &str) -> Result<String, String> {
        let text = hex::decode(stored)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or("the value is not an encrypted field (not hex): wrong export or passphrase")?;
        String::from_utf8(fernet_decrypt(&self.key, &text)?)
            .map_err(|_| "decrypted value is not UTF-8".to_string())
    }
}

/// Sensitive fields per model (spec §3.1), only non-empty values are encrypted.
pub const SENSITIVE: &[(&str, &[&str])] =
    &[("paperless_mail.mailaccount", &["password", "refresh_token"])];

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_HEX: &str = "c04ea934a97b9f7755b904f627271f64fd94edefe919641948983d3d7342c526";
    const TOKEN: &str = "gAAAAABlU_EAAAECAwQFBgcICQoLDA0OD8vFLHiSO1f0hvfY42WcqOCjbm7U9BObEw_Jb7c3vf43ZmyJsaSbq8yMVeRNx_Byhg==";
    const STORED: &str = "674141414141426c555f454141414543417751464267634943516f4c4441304f443876464c4869534f3166306876665934325763714f436a626d375539424f6245775f4a62376333766634335a6d794a736153627138794d5665524e785f427968673d3d";

    fn iv() -> [u8; 16] {
        std::array::from_fn(|i| i as u8)
    }

    #[test]
    fn spec_vector_key_derivation() {
        let salt = hex::decode("000102030405060708090a0b0c0d0e0f").unwrap();
        let key = derive("securepassword", &salt, ITERATIONS);
        assert_eq!(hex::encode(key), KEY_HEX);
        assert_eq!(
            URL_SAFE.encode(key),
            "wE6pNKl7n3dVuQT2JycfZP2U7e_pGWQZSJg9PXNCxSY="
        );
    }

    #[test]
    fn spec_vector_token_and_stored_value() {
        let key: [u8; 32] = hex::decode(KEY_HEX).unwrap().try_into().unwrap();
        let token = fernet_encrypt(&key, b"mypassword", 1_700_000_000, iv());
        assert_eq!(token, TOKEN);
        assert_eq!(hex::encode(&token), STORED);
        let c = Crypto {
            key,
            salt_hex: String::new(),
            iterations: ITERATIONS,
        };
        assert_eq!(c.decrypt(STORED).unwrap(), "mypassword");
    }

    #[test]
    fn wrong_key_or_plain_value_is_refused() {
        let mut key: [u8; 32] = hex::decode(KEY_HEX).unwrap().try_into().unwrap();
        key[0] ^= 1;
        let c = Crypto {
            key,
            salt_hex: String::new(),
            iterations: 1,
        };
        assert!(
            c.decrypt(STORED)
                .unwrap_err()
                .contains("passphrase is wrong")
        );
        assert!(c.decrypt("mypassword").is_err());
    }
}
