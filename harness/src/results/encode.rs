//! Text encodings used in result files.

use base64::Engine as _;

/// `bytes` as standard padded base64 (RFC 4648).
pub fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Decodes standard padded base64.
///
/// # Errors
/// The first invalid symbol or a bad length, as base64's error text.
pub fn base64_decode(text: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip_and_errors() {
        assert_eq!(super::base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(super::base64_decode("Zm9vYg==").unwrap(), b"foob");
        assert!(super::base64_decode("Zm9v!").is_err());
    }
}
