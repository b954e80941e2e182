//! Little binary helpers shared by every encoder: varints, zigzag, and a
//! bounds-checked reader for untrusted bytes (WAL records, segment blocks).
//!
//! The reader never panics and never allocates more than the input could
//! justify: every length it is given is checked against what is left.

use crate::error::{Result, StorageError};

pub fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

pub fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

pub fn put_ivarint(out: &mut Vec<u8>, v: i64) {
    put_uvarint(out, zigzag(v));
}

pub fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_uvarint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// A cursor over untrusted bytes. Errors say what was being read.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }
    pub fn position(&self) -> usize {
        self.pos
    }
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }
    fn short(&self, what: &'static str) -> StorageError {
        StorageError::Decode {
            what,
            offset: self.pos,
        }
    }
    pub fn u8(&mut self, what: &'static str) -> Result<u8> {
        let b = *self.buf.get(self.pos).ok_or_else(|| self.short(what))?;
        self.pos += 1;
        Ok(b)
    }
    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(self.short(what));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    pub fn u32_le(&mut self, what: &'static str) -> Result<u32> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub fn u64_le(&mut self, what: &'static str) -> Result<u64> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    pub fn f64_le(&mut self, what: &'static str) -> Result<f64> {
        Ok(f64::from_bits(self.u64_le(what)?))
    }
    pub fn uvarint(&mut self, what: &'static str) -> Result<u64> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.u8(what)?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                if shift == 63 && b > 1 {
                    return Err(self.short(what));
                }
                return Ok(v);
            }
        }
        Err(self.short(what))
    }
    pub fn ivarint(&mut self, what: &'static str) -> Result<i64> {
        Ok(unzigzag(self.uvarint(what)?))
    }
    /// A length that must not exceed what is left (so a forged length can
    /// never trigger a huge allocation).
    pub fn len_prefix(&mut self, what: &'static str) -> Result<usize> {
        let n = self.uvarint(what)?;
        if n > self.remaining() as u64 {
            return Err(self.short(what));
        }
        Ok(n as usize)
    }
    pub fn bytes(&mut self, what: &'static str) -> Result<&'a [u8]> {
        let n = self.len_prefix(what)?;
        self.take(n, what)
    }
    pub fn str(&mut self, what: &'static str) -> Result<&'a str> {
        let at = self.pos;
        let b = self.bytes(what)?;
        std::str::from_utf8(b).map_err(|_| StorageError::Decode { what, offset: at })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        let mut out = Vec::new();
        let vals = [0i64, 1, -1, 63, -64, 1 << 40, i64::MIN, i64::MAX];
        for v in vals {
            put_ivarint(&mut out, v);
        }
        put_uvarint(&mut out, u64::MAX);
        let mut r = Reader::new(&out);
        for v in vals {
            assert_eq!(r.ivarint("v").unwrap(), v);
        }
        assert_eq!(r.uvarint("u").unwrap(), u64::MAX);
        assert!(r.is_empty());
    }

    #[test]
    fn reader_rejects_truncation_and_forged_lengths() {
        let mut out = Vec::new();
        put_uvarint(&mut out, 1000);
        out.extend_from_slice(b"abc");
        let mut r = Reader::new(&out);
        assert!(r.bytes("s").is_err());
        assert!(Reader::new(&[0x80, 0x80]).uvarint("u").is_err());
        assert!(Reader::new(&[0xff; 11]).uvarint("u").is_err());
    }
}
