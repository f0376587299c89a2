//! Standard base64 (RFC 4648, with padding), for serialized histograms.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// `bytes` as standard padded base64.
pub fn base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard padded base64 (whitespace ignored), the inverse of [`base64`].
///
/// # Errors
/// A message naming the first character that is not base64, or a length that is not a
/// multiple of four.
pub fn decode_base64(text: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if digits.len() % 4 != 0 {
        return Err(format!(
            "base64 length {} is not a multiple of 4",
            digits.len()
        ));
    }
    let mut out = Vec::with_capacity(digits.len() / 4 * 3);
    for (i, chunk) in digits.chunks(4).enumerate() {
        let mut n = 0u32;
        let mut pad = 0;
        for (j, &c) in chunk.iter().enumerate() {
            let v = match c {
                b'=' if j >= 2 => {
                    pad += 1;
                    0
                }
                _ if pad > 0 => return Err(format!("base64: data after padding at {}", i * 4 + j)),
                _ => ALPHABET.iter().position(|&a| a == c).ok_or_else(|| {
                    format!("base64: invalid character {:?} at {}", c as char, i * 4 + j)
                })? as u32,
            };
            n = (n << 6) | v;
        }
        if pad > 0 && (i + 1) * 4 != digits.len() {
            return Err(format!("base64: padding before the end at {}", i * 4));
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in cases {
            assert_eq!(super::base64(plain.as_bytes()), encoded);
            assert_eq!(super::decode_base64(encoded).unwrap(), plain.as_bytes());
        }
        assert!(super::decode_base64("Zm9v!A==").is_err());
        assert!(super::decode_base64("Zm9").is_err());
    }
}
