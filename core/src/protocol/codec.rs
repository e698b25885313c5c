//! Encoding of the fields inside a frame's payload: big-endian integers and
//! length-prefixed strings and byte strings.
//!
//! Decoding never trusts a length: every read is checked against what is left of
//! the payload, which itself is bounded by [`super::MAX_PAYLOAD`].

use super::ProtocolError;

/// Appends fields to a payload buffer.
#[derive(Default)]
pub struct Encoder {
    buf: Vec<u8>,
}

impl Encoder {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }
    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.u8(v as u8)
    }
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.u32(v.len() as u32);
        self.buf.extend_from_slice(v);
        self
    }
    pub fn str(&mut self, v: &str) -> &mut Self {
        self.bytes(v.as_bytes())
    }
    /// A file name or path: its bytes (see [`crate::display::name_to_bytes`]).
    pub fn name(&mut self, v: &str) -> &mut Self {
        self.bytes(&crate::display::name_to_bytes(v))
    }
    /// Raw bytes with no length: only for the last field of a payload.
    pub fn rest(&mut self, v: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(v);
        self
    }
    pub fn len(&self) -> usize {
        self.buf.len()
    }
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// Reads fields from a payload, failing with [`ProtocolError::Truncated`] instead
/// of panicking when the payload is shorter than its fields claim.
pub struct Decoder<'a> {
    buf: &'a [u8],
}

impl<'a> Decoder<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], ProtocolError> {
        if self.buf.len() < n {
            return Err(ProtocolError::Truncated(what));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }
    pub fn u8(&mut self, what: &'static str) -> Result<u8, ProtocolError> {
        Ok(self.take(1, what)?[0])
    }
    pub fn bool(&mut self, what: &'static str) -> Result<bool, ProtocolError> {
        Ok(self.u8(what)? != 0)
    }
    pub fn u32(&mut self, what: &'static str) -> Result<u32, ProtocolError> {
        Ok(u32::from_be_bytes(self.take(4, what)?.try_into().unwrap()))
    }
    pub fn u64(&mut self, what: &'static str) -> Result<u64, ProtocolError> {
        Ok(u64::from_be_bytes(self.take(8, what)?.try_into().unwrap()))
    }
    pub fn i64(&mut self, what: &'static str) -> Result<i64, ProtocolError> {
        Ok(i64::from_be_bytes(self.take(8, what)?.try_into().unwrap()))
    }
    pub fn bytes(&mut self, what: &'static str) -> Result<&'a [u8], ProtocolError> {
        let n = self.u32(what)? as usize;
        self.take(n, what)
    }
    pub fn str(&mut self, what: &'static str) -> Result<&'a str, ProtocolError> {
        std::str::from_utf8(self.bytes(what)?).map_err(|_| ProtocolError::BadUtf8)
    }
    /// A file name or path, any bytes (see [`crate::display::name_from_bytes`]).
    pub fn name(&mut self, what: &'static str) -> Result<String, ProtocolError> {
        Ok(crate::display::name_from_bytes(self.bytes(what)?).into_owned())
    }
    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], ProtocolError> {
        Ok(self.take(N, what)?.try_into().unwrap())
    }
    /// Everything that is left.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }
    /// Fails when bytes are left over: a payload longer than its fields is as
    /// suspicious as a shorter one.
    pub fn end(&self) -> Result<(), ProtocolError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(ProtocolError::Unexpected(format!(
                "{} bytes after the last field",
                self.buf.len()
            )))
        }
    }
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip() {
        let mut e = Encoder::new();
        e.u8(7)
            .bool(true)
            .u32(0xdead_beef)
            .u64(u64::MAX)
            .i64(-5)
            .str("héllo")
            .bytes(b"\0\x01");
        let buf = e.finish();
        let mut d = Decoder::new(&buf);
        assert_eq!(d.u8("a").unwrap(), 7);
        assert!(d.bool("b").unwrap());
        assert_eq!(d.u32("c").unwrap(), 0xdead_beef);
        assert_eq!(d.u64("d").unwrap(), u64::MAX);
        assert_eq!(d.i64("e").unwrap(), -5);
        assert_eq!(d.str("f").unwrap(), "héllo");
        assert_eq!(d.bytes("g").unwrap(), b"\0\x01");
        d.end().unwrap();
    }

    #[test]
    fn a_string_longer_than_the_payload_is_truncated_not_a_panic() {
        let mut e = Encoder::new();
        e.u32(u32::MAX).rest(b"abc");
        let buf = e.finish();
        assert!(matches!(
            Decoder::new(&buf).str("name"),
            Err(ProtocolError::Truncated("name"))
        ));
    }

    #[test]
    fn invalid_utf8_is_an_error() {
        let mut e = Encoder::new();
        e.bytes(&[0xff, 0xfe]);
        let buf = e.finish();
        assert!(matches!(
            Decoder::new(&buf).str("x"),
            Err(ProtocolError::BadUtf8)
        ));
    }
}
