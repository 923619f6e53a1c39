//! The protobuf wire format: a bounds-checked reader and the writer helpers.

use super::ProtobufError;

pub(crate) const WIRE_VARINT: u8 = 0;
pub(crate) const WIRE_FIXED64: u8 = 1;
pub(crate) const WIRE_LEN: u8 = 2;
pub(crate) const WIRE_FIXED32: u8 = 5;

/// Reads one message's bytes. Offsets in errors are absolute (relative to the start of the body).
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Reader<'a> {
    /// `base` is the absolute offset of `buf[0]` in the request body.
    pub(crate) fn new(buf: &'a [u8], base: usize) -> Self {
        Reader { buf, pos: 0, base }
    }

    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// Absolute offset of the next byte.
    pub(crate) fn offset(&self) -> usize {
        self.base + self.pos
    }

    pub(crate) fn varint(&mut self) -> Result<u64, ProtobufError> {
        let start = self.offset();
        let mut value: u64 = 0;
        for i in 0..10 {
            let Some(&byte) = self.buf.get(self.pos) else {
                return Err(ProtobufError::MalformedVarint { offset: start });
            };
            self.pos += 1;
            if i == 9 && byte > 1 {
                // The tenth byte may only contribute the 64th bit.
                return Err(ProtobufError::MalformedVarint { offset: start });
            }
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(ProtobufError::MalformedVarint { offset: start })
    }

    /// A field key: (field number, wire type).
    pub(crate) fn key(&mut self) -> Result<(u32, u8), ProtobufError> {
        let offset = self.offset();
        let key = self.varint()?;
        let wire_type = (key & 7) as u8;
        let number = key >> 3;
        if number == 0 || number >= 1 << 29 {
            return Err(ProtobufError::MalformedKey {
                offset,
                reason: "field number out of range",
            });
        }
        if !matches!(
            wire_type,
            WIRE_VARINT | WIRE_FIXED64 | WIRE_LEN | WIRE_FIXED32
        ) {
            return Err(ProtobufError::MalformedKey {
                offset,
                reason: "groups and wire types 6 and 7 are not supported",
            });
        }
        Ok((number as u32, wire_type))
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], ProtobufError> {
        let available = self.buf.len() - self.pos;
        if n > available as u64 {
            return Err(ProtobufError::Truncated {
                offset: self.offset(),
                needed: n,
                available,
            });
        }
        let out = &self.buf[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(out)
    }

    /// A length-delimited payload and its absolute offset.
    pub(crate) fn len_delimited(&mut self) -> Result<(&'a [u8], usize), ProtobufError> {
        let len = self.varint()?;
        let offset = self.offset();
        Ok((self.take(len)?, offset))
    }

    pub(crate) fn fixed64(&mut self) -> Result<u64, ProtobufError> {
        let bytes = self.take(8)?;
        Ok(u64::from_le_bytes(bytes.try_into().expect("took 8 bytes")))
    }

    pub(crate) fn fixed32(&mut self) -> Result<u32, ProtobufError> {
        let bytes = self.take(4)?;
        Ok(u32::from_le_bytes(bytes.try_into().expect("took 4 bytes")))
    }

    /// Skips a value of an unknown field.
    pub(crate) fn skip(&mut self, wire_type: u8) -> Result<(), ProtobufError> {
        match wire_type {
            WIRE_VARINT => self.varint().map(drop),
            WIRE_FIXED64 => self.fixed64().map(drop),
            WIRE_LEN => self.len_delimited().map(drop),
            WIRE_FIXED32 => self.fixed32().map(drop),
            _ => Err(ProtobufError::MalformedKey {
                offset: self.offset(),
                reason: "unknown wire type",
            }),
        }
    }
}

pub(crate) fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

pub(crate) fn put_key(out: &mut Vec<u8>, number: u32, wire_type: u8) {
    put_varint(out, (u64::from(number) << 3) | u64::from(wire_type));
}

pub(crate) fn put_bytes(out: &mut Vec<u8>, number: u32, bytes: &[u8]) {
    put_key(out, number, WIRE_LEN);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A varint field; negative int32/int64 values are sign-extended to 10 bytes, as protobuf requires.
pub(crate) fn put_int(out: &mut Vec<u8>, number: u32, value: i64) {
    put_key(out, number, WIRE_VARINT);
    put_varint(out, value as u64);
}
