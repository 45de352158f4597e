//! The writer: `data.pkl` as `torch.save(state_dict)` pickles an `OrderedDict` of tensors
//! (`torch.serialization._save` at pickle protocol 2, torch.save's default), each tensor a
//! `_rebuild_tensor_v2` over its own storage `data/<i>`.

use super::value::storage_type_name;
use norm_core::CheckpointErrorKind;
use tch::Kind;

/// One tensor entry to pickle: its key, dtype and shape; its storage is `data/<index>`.
pub(crate) struct PickleEntry<'a> {
    pub key: &'a str,
    pub kind: Kind,
    pub size: Vec<i64>,
}

fn put_int(out: &mut Vec<u8>, v: i64) {
    if (0..256).contains(&v) {
        out.extend_from_slice(&[b'K', v as u8]);
    } else if (0..65536).contains(&v) {
        out.push(b'M');
        out.extend_from_slice(&(v as u16).to_le_bytes());
    } else if i32::try_from(v).is_ok() {
        out.push(b'J');
        out.extend_from_slice(&(v as i32).to_le_bytes());
    } else {
        out.extend_from_slice(&[0x8a, 8]);
        out.extend_from_slice(&v.to_le_bytes());
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'X');
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_int_tuple(out: &mut Vec<u8>, values: &[i64]) {
    match values.len() {
        0 => out.push(b')'),
        n @ 1..=3 => {
            values.iter().for_each(|&v| put_int(out, v));
            out.push(0x84 + n as u8);
        }
        _ => {
            out.push(b'(');
            values.iter().for_each(|&v| put_int(out, v));
            out.push(b't');
        }
    }
}

/// `pickle.dumps(OrderedDict(entries), protocol=2)` with torch.save's persistent ids:
/// each tensor is `_rebuild_tensor_v2(storage i, 0, size, contiguous stride, False,
/// OrderedDict())` over its own storage `data/<i>` (contiguous, offset 0).
pub(crate) fn pickle_state_dict(entries: &[PickleEntry<'_>]) -> norm_core::Result<Vec<u8>> {
    let mut out = vec![0x80, 2];
    out.extend_from_slice(b"ccollections\nOrderedDict\n)R");
    out.push(b'(');
    for (i, e) in entries.iter().enumerate() {
        let storage = storage_type_name(e.kind).ok_or_else(|| CheckpointErrorKind::UnsupportedDType {
            key: e.key.to_string(),
            dtype: format!("{:?}", e.kind),
        })?;
        put_str(&mut out, e.key);
        out.extend_from_slice(b"ctorch._utils\n_rebuild_tensor_v2\n");
        out.push(b'(');
        out.push(b'(');
        put_str(&mut out, "storage");
        out.extend_from_slice(format!("ctorch\n{storage}\n").as_bytes());
        put_str(&mut out, &i.to_string());
        put_str(&mut out, "cpu");
        put_int(&mut out, e.size.iter().product());
        out.push(b't');
        out.push(b'Q');
        put_int(&mut out, 0);
        put_int_tuple(&mut out, &e.size);
        let mut stride = vec![1i64; e.size.len()];
        for d in (0..e.size.len().saturating_sub(1)).rev() {
            stride[d] = stride[d + 1] * e.size[d + 1].max(1);
        }
        put_int_tuple(&mut out, &stride);
        out.push(0x89);
        out.extend_from_slice(b"ccollections\nOrderedDict\n)R");
        out.push(b't');
        out.push(b'R');
    }
    out.push(b'u');
    out.push(b'.');
    Ok(out)
}

/// One tensor reference as a hostile file may declare it (tests only): any storage key,
/// element count, offset, sizes and strides.
#[cfg(test)]
pub(crate) struct RawTensor<'a> {
    pub key: &'a str,
    pub storage: &'a str,
    pub kind: Kind,
    pub numel: i64,
    pub offset: i64,
    pub size: Vec<i64>,
    pub stride: Vec<i64>,
}

/// `data.pkl` of an `OrderedDict` of these tensor references, unchecked (tests only).
#[cfg(test)]
pub(crate) fn pickle_raw(entries: &[RawTensor<'_>]) -> Vec<u8> {
    let mut out = vec![0x80, 2];
    out.extend_from_slice(b"ccollections\nOrderedDict\n)R(");
    for e in entries {
        put_str(&mut out, e.key);
        out.extend_from_slice(b"ctorch._utils\n_rebuild_tensor_v2\n((");
        put_str(&mut out, "storage");
        let storage = storage_type_name(e.kind).unwrap_or("FloatStorage");
        out.extend_from_slice(format!("ctorch\n{storage}\n").as_bytes());
        put_str(&mut out, e.storage);
        put_str(&mut out, "cpu");
        put_int(&mut out, e.numel);
        out.extend_from_slice(b"tQ");
        put_int(&mut out, e.offset);
        put_int_tuple(&mut out, &e.size);
        put_int_tuple(&mut out, &e.stride);
        out.push(0x89);
        out.extend_from_slice(b"ccollections\nOrderedDict\n)RtR");
    }
    out.extend_from_slice(b"u.");
    out
}
