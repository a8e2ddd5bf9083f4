//! Percent-encoding of one URL path segment or query value: everything but
//! RFC 3986's unreserved characters, so `/`, `&`, `=`, `?`, `#`, `%` and
//! spaces inside a name never change the URL's shape.

/// `s` percent-encoded as one path segment or query value.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.push('%');
                out.push(HEX[usize::from(b >> 4)] as char);
                out.push(HEX[usize::from(b & 0xf)] as char);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::encode;

    #[test]
    fn unreserved_characters_stay() {
        assert_eq!(encode("reviews-v1.default_~"), "reviews-v1.default_~");
    }

    #[test]
    fn separators_spaces_and_utf8_are_escaped() {
        assert_eq!(encode("a/b?c=d&e#f%"), "a%2Fb%3Fc%3Dd%26e%23f%25");
        assert_eq!(encode("x y+z"), "x%20y%2Bz");
        assert_eq!(encode("é"), "%C3%A9");
        assert_eq!(encode(""), "");
    }
}
