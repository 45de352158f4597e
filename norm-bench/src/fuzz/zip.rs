//! The zip container of a `torch.save` file, as far as the fuzzer needs it: the entries of
//! a stored (uncompressed) archive read from its central directory, and written back with
//! right CRC-32s and each entry's data aligned to 64 bytes (as PyTorch's writer pads it),
//! so a mutation of one entry reaches the reader's parser rather than a checksum.

/// One entry: its name and its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The name (`archive/data.pkl`, `archive/data/0`, ...).
    pub name: String,
    /// The stored bytes.
    pub data: Vec<u8>,
}

fn u16_at(b: &[u8], at: usize) -> Option<usize> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?) as usize)
}

fn u32_at(b: &[u8], at: usize) -> Option<usize> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?) as usize)
}

/// The entries of a stored zip archive, in central-directory order; `None` if `bytes` is
/// not one.
pub fn read(bytes: &[u8]) -> Option<Vec<Entry>> {
    let eocd = (0..bytes.len().saturating_sub(21)).rev().find(|&i| bytes[i..].starts_with(b"PK\x05\x06"))?;
    let count = u16_at(bytes, eocd + 10)?;
    let mut at = u32_at(bytes, eocd + 16)?;
    let mut entries = Vec::with_capacity(count);
    for _ in 0..count {
        if !bytes.get(at..)?.starts_with(b"PK\x01\x02") {
            return None;
        }
        let size = u32_at(bytes, at + 20)?;
        let (name_len, extra_len, comment_len) =
            (u16_at(bytes, at + 28)?, u16_at(bytes, at + 30)?, u16_at(bytes, at + 32)?);
        let local = u32_at(bytes, at + 42)?;
        let name = String::from_utf8(bytes.get(at + 46..at + 46 + name_len)?.to_vec()).ok()?;
        let data_at = local + 30 + u16_at(bytes, local + 26)? + u16_at(bytes, local + 28)?;
        entries.push(Entry { name, data: bytes.get(data_at..data_at + size)?.to_vec() });
        at += 46 + name_len + extra_len + comment_len;
    }
    Some(entries)
}

/// CRC-32 (IEEE 802.3, reflected, as zip uses it).
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// A stored zip archive of `entries` (duplicates and all), each entry's data aligned to 64
/// bytes with a padding extra field, as PyTorch writes it.
pub fn write(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for e in entries {
        let offset = out.len();
        let header_end = offset + 30 + e.name.len() + 4;
        let pad = (64 - header_end % 64) % 64;
        let crc = crc32(&e.data);
        let size = e.data.len() as u32;
        out.extend_from_slice(b"PK\x03\x04");
        out.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
        out.extend_from_slice(&((4 + pad) as u16).to_le_bytes());
        out.extend_from_slice(e.name.as_bytes());
        out.extend_from_slice(b"FB");
        out.extend_from_slice(&(pad as u16).to_le_bytes());
        out.extend(std::iter::repeat_n(b'Z', pad));
        out.extend_from_slice(&e.data);

        central.extend_from_slice(b"PK\x01\x02");
        central.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        central.extend_from_slice(&crc.to_le_bytes());
        central.extend_from_slice(&size.to_le_bytes());
        central.extend_from_slice(&size.to_le_bytes());
        central.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
        central.extend_from_slice(&[0; 12]);
        central.extend_from_slice(&(offset as u32).to_le_bytes());
        central.extend_from_slice(e.name.as_bytes());
    }
    let central_at = out.len();
    out.extend_from_slice(&central);
    out.extend_from_slice(b"PK\x05\x06\0\0\0\0");
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&(central_at as u32).to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    out
}

/// Byte offsets of the central-directory records in `bytes` (for mutating their fields).
pub fn central_records(bytes: &[u8]) -> Vec<usize> {
    bytes.windows(4).enumerate().filter(|(_, w)| *w == b"PK\x01\x02").map(|(i, _)| i).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_of_a_known_string() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn write_then_read_round_trips() {
        let entries = vec![
            Entry { name: "archive/data.pkl".into(), data: b"\x80\x02}q\x00.".to_vec() },
            Entry { name: "archive/data/0".into(), data: vec![7; 100] },
        ];
        let bytes = write(&entries);
        assert_eq!(read(&bytes).unwrap(), entries);
        assert_eq!(central_records(&bytes).len(), 2);
    }
}
