//! Tensors as IEEE-754 bit patterns, ULP distances and bit-equality checks.
//!
//! [`Bits`] is the JSON form the Python scripts write (`data/norm_helpers.py`'s `bits`:
//! `{"shape": [int], "f32_bits": [u32, row-major]}`).

use anyhow::{bail, ensure, Result};
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

/// The float32 bit patterns of a float32 tensor, row-major (detached and flattened first).
///
/// Panics on another dtype (a silent conversion could hide a difference in bits) or when
/// tch cannot read the values.
pub fn f32_bits(t: &Tensor) -> Vec<u32> {
    assert_eq!(t.kind(), Kind::Float, "f32_bits: expected a float32 tensor");
    Vec::<f32>::try_from(t.detach().flatten(0, -1))
        .expect("reading float32 values")
        .into_iter()
        .map(f32::to_bits)
        .collect()
}

/// The bit patterns of a floating-point tensor widened to f64, row-major: exact for f16,
/// bf16, f32 and f64 alike, so one comparison covers every dtype.
///
/// Panics when tch cannot read the values.
pub fn f64_bits(t: &Tensor) -> Vec<u64> {
    Vec::<f64>::try_from(t.to_kind(Kind::Double).flatten(0, -1))
        .expect("reading values as f64")
        .into_iter()
        .map(f64::to_bits)
        .collect()
}

/// A CPU float32 tensor of `shape` holding exactly the bit patterns `bits` (row-major).
pub fn tensor_from_f32_bits(shape: &[i64], bits: &[u32]) -> Result<Tensor> {
    let values: Vec<f32> = bits.iter().map(|&b| f32::from_bits(b)).collect();
    Ok(Tensor::f_from_slice(&values)?.f_reshape(shape)?)
}

/// A float32 bit pattern mapped onto a line where adjacent floats are adjacent integers
/// (-0.0 just below +0.0).
fn ordered(b: u32) -> i64 {
    if b & 0x8000_0000 != 0 {
        -((b & 0x7fff_ffff) as i64) - 1
    } else {
        b as i64
    }
}

/// The distance between two float32 bit patterns in units in the last place: 0 exactly
/// when the bits are equal (NaNs with equal bits count as equal; +0 and -0 are 1 apart).
pub fn ulp_distance_f32(a: u32, b: u32) -> u64 {
    if a == b {
        0
    } else {
        ordered(a).abs_diff(ordered(b))
    }
}

/// The largest [`ulp_distance_f32`] between two bit vectors of one length (0 when empty).
pub fn max_ulp_f32(a: &[u32], b: &[u32]) -> u64 {
    assert_eq!(a.len(), b.len(), "max_ulp_f32: lengths differ");
    a.iter().zip(b).map(|(&x, &y)| ulp_distance_f32(x, y)).max().unwrap_or(0)
}

/// The largest ULP distance between two float32 tensors of one shape (panics if the shapes
/// differ).
pub fn max_ulps(a: &Tensor, b: &Tensor) -> u64 {
    assert_eq!(a.size(), b.size(), "max_ulps: shapes differ");
    max_ulp_f32(&f32_bits(a), &f32_bits(b))
}

/// Checks that two float32 bit vectors are equal; the error names `what`, how many values
/// differ, the largest ULP distance and the first difference (values and bits).
pub fn ensure_f32_bits_eq(what: &str, got: &[u32], expected: &[u32]) -> Result<()> {
    ensure!(got.len() == expected.len(), "{what}: {} values, expected {}", got.len(), expected.len());
    let differing: Vec<usize> = (0..got.len()).filter(|&i| got[i] != expected[i]).collect();
    if let Some(&i) = differing.first() {
        bail!(
            "{what}: {} of {} values differ (max {} ULP); first at {i}: {:e} ({:#010x}) vs expected {:e} ({:#010x})",
            differing.len(),
            got.len(),
            max_ulp_f32(got, expected),
            f32::from_bits(got[i]),
            got[i],
            f32::from_bits(expected[i]),
            expected[i]
        );
    }
    Ok(())
}

/// A float32 tensor's shape and IEEE-754 bit patterns, row-major: the JSON
/// `{"shape": [int], "f32_bits": [u32]}` (`"bits"` is read as `"f32_bits"` too, the key of
/// norm-tch's `tests/checkpoint.py` and `tests/layer_init.py`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bits {
    /// The shape (empty for a 0-dim tensor).
    pub shape: Vec<i64>,
    /// The bit patterns, row-major.
    #[serde(alias = "bits")]
    pub f32_bits: Vec<u32>,
}

impl Bits {
    /// The bits of a float32 tensor (detached, made contiguous, on the CPU); another dtype
    /// is an error.
    pub fn of(t: &Tensor) -> Result<Bits> {
        ensure!(t.kind() == Kind::Float, "expected a float32 tensor, got {:?}", t.kind());
        let t = t.f_detach()?.f_to_device(Device::Cpu)?.f_contiguous()?;
        let values = Vec::<f32>::try_from(&t.f_reshape([-1])?)?;
        Ok(Bits { shape: t.size(), f32_bits: values.iter().map(|v| v.to_bits()).collect() })
    }

    /// A CPU float32 tensor with exactly these bits.
    pub fn to_tensor(&self) -> Result<Tensor> {
        tensor_from_f32_bits(&self.shape, &self.f32_bits)
    }

    /// The largest distance in units in the last place to `other` ([`ulp_distance_f32`]: 0
    /// is bit-equal, +0 and -0 are 1 apart); `None` if the shapes differ.
    pub fn max_ulp(&self, other: &Bits) -> Option<u64> {
        if self.shape != other.shape || self.f32_bits.len() != other.f32_bits.len() {
            return None;
        }
        Some(max_ulp_f32(&self.f32_bits, &other.f32_bits))
    }

    /// The largest absolute difference to `other` (of the same length), as f64.
    pub fn max_abs_diff(&self, other: &Bits) -> f64 {
        self.f32_bits
            .iter()
            .zip(&other.f32_bits)
            .map(|(&a, &b)| (f32::from_bits(a) as f64 - f32::from_bits(b) as f64).abs())
            .fold(0.0, f64::max)
    }

    /// How many elements differ in their bits from `other` (of the same length).
    pub fn count_differing(&self, other: &Bits) -> usize {
        self.f32_bits.iter().zip(&other.f32_bits).filter(|(a, b)| a != b).count()
    }

    /// Checks that `self` has the shape and bits of `expected`; the error says `what`, both
    /// shapes, or how many values differ, by how many ULP, and the first difference.
    pub fn ensure_eq(&self, what: &str, expected: &Bits) -> Result<()> {
        ensure!(self.shape == expected.shape, "{what}: shape {:?}, expected {:?}", self.shape, expected.shape);
        ensure_f32_bits_eq(what, &self.f32_bits, &expected.f32_bits)
    }

    /// A one-line summary: shape, the first values, and an FNV-1a hash of the bits (equal
    /// hashes: equal bits, for comparing runs by eye).
    pub fn summary(&self) -> String {
        let first: Vec<String> = self.f32_bits.iter().take(4).map(|&b| format!("{:.7e}", f32::from_bits(b))).collect();
        let more = if self.f32_bits.len() > 4 { ", ..." } else { "" };
        format!("shape {:?}, [{}{more}], bits hash {:016x}", self.shape, first.join(", "), self.hash())
    }

    /// FNV-1a (64-bit) over the little-endian bytes of the bit patterns.
    pub fn hash(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in self.f32_bits.iter().flat_map(|u| u.to_le_bytes()) {
            h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
        h
    }
}

/// `what: bit-equal`, or `what: max N ULP, max abs diff D (k of n values differ)`, or the
/// two shapes when they differ: one line for a program to print.
pub fn describe_difference(what: &str, ours: &Bits, theirs: &Bits) -> String {
    match ours.max_ulp(theirs) {
        None => format!("{what}: shapes differ ({:?} vs {:?})", ours.shape, theirs.shape),
        Some(0) if ours == theirs => format!("{what}: bit-equal"),
        Some(u) => format!(
            "{what}: max {u} ULP, max abs diff {:.3e} ({} of {} values differ)",
            ours.max_abs_diff(theirs),
            ours.count_differing(theirs),
            ours.f32_bits.len()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulp_distance_counts_representable_steps() {
        assert_eq!(ulp_distance_f32(1.0f32.to_bits(), 1.0f32.to_bits()), 0);
        assert_eq!(ulp_distance_f32(1.0f32.to_bits(), f32::from_bits(1.0f32.to_bits() + 3).to_bits()), 3);
        assert_eq!(ulp_distance_f32(0.0f32.to_bits(), (-0.0f32).to_bits()), 1);
        assert_eq!(ulp_distance_f32(f32::from_bits(1).to_bits(), f32::from_bits(0x8000_0001).to_bits()), 3);
        assert_eq!(ulp_distance_f32(f32::NAN.to_bits(), f32::NAN.to_bits()), 0);
    }

    #[test]
    fn bits_round_trip_and_differences_are_described() -> Result<()> {
        let t = Tensor::from_slice(&[1.0f32, -0.0, 3.5, f32::MIN_POSITIVE]).reshape([2, 2]);
        let b = Bits::of(&t)?;
        assert_eq!(b.shape, [2, 2]);
        assert_eq!(b.f32_bits, f32_bits(&t));
        assert_eq!(Bits::of(&b.to_tensor()?)?, b);
        assert_eq!(f64_bits(&t)[2], 3.5f64.to_bits());
        b.ensure_eq("same", &b)?;
        let mut c = b.clone();
        c.f32_bits[2] += 2;
        assert_eq!(b.max_ulp(&c), Some(2));
        let e = c.ensure_eq("changed", &b).unwrap_err().to_string();
        assert!(e.contains("changed: 1 of 4 values differ (max 2 ULP); first at 2"), "{e}");
        assert!(describe_difference("x", &b, &b).ends_with("bit-equal"));
        let json: Bits = serde_json::from_str(r#"{"shape": [1], "bits": [7]}"#)?;
        assert_eq!(json.f32_bits, [7]);
        Ok(())
    }
}
