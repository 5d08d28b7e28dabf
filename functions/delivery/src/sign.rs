//! Standard Webhooks signatures (<https://www.standardwebhooks.com>).
//!
//! `webhook-signature: v1,<base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}"))>`, where the
//! key is the base64 part of a `whsec_…` secret. During key rotation the secret variable holds
//! several keys separated by spaces; every request then carries one signature per key
//! (space-separated, as the specification allows), so receivers can switch at their own pace.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The shortest key we accept, in bytes (the specification suggests 24 to 64).
const MIN_KEY_BYTES: usize = 16;

/// One or more HMAC keys; `Debug` never shows them.
#[derive(Clone)]
pub(crate) struct SigningKeys(Vec<Vec<u8>>);

impl fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKeys([{} redacted])", self.0.len())
    }
}

impl SigningKeys {
    /// Parses `whsec_<base64>` secrets separated by whitespace. The error says what is wrong
    /// without quoting the secret.
    pub(crate) fn parse(secrets: &str) -> Result<Self, &'static str> {
        let keys = secrets
            .split_whitespace()
            .map(|secret| {
                let encoded = secret
                    .strip_prefix("whsec_")
                    .ok_or("must have the form whsec_<base64>")?;
                let key = STANDARD
                    .decode(encoded)
                    .map_err(|_| "the part after whsec_ is not valid base64")?;
                if key.len() < MIN_KEY_BYTES {
                    return Err("the key is too short: use at least 16 random bytes");
                }
                Ok(key)
            })
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err("must have the form whsec_<base64>");
        }
        Ok(SigningKeys(keys))
    }

    /// The `webhook-signature` header value for one message.
    pub(crate) fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        let signatures: Vec<String> = self
            .0
            .iter()
            .map(|key| {
                // HMAC accepts keys of any length, so this cannot fail.
                let mut mac =
                    <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
                mac.update(msg_id.as_bytes());
                mac.update(b".");
                mac.update(timestamp.to_string().as_bytes());
                mac.update(b".");
                mac.update(body);
                format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
            })
            .collect();
        signatures.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example from the Standard Webhooks specification and its reference libraries.
    #[test]
    fn signs_the_specification_example() -> Result<(), &'static str> {
        let keys = SigningKeys::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?;
        let signature = keys.sign(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        Ok(())
    }

    #[test]
    fn rotation_signs_with_every_key() -> Result<(), &'static str> {
        let keys = SigningKeys::parse(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        )?;
        let signature = keys.sign("id", 1, b"{}");
        assert_eq!(signature.split(' ').count(), 2);
        assert!(signature.split(' ').all(|s| s.starts_with("v1,")));
        Ok(())
    }

    #[test]
    fn rejects_malformed_secrets() {
        assert!(SigningKeys::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
        assert!(SigningKeys::parse("whsec_***").is_err());
        assert!(SigningKeys::parse("whsec_c2hvcnQ=").is_err());
        assert!(SigningKeys::parse("   ").is_err());
    }
}
