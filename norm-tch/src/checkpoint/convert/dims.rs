//! The `dim` of a normalization, read from the stored shapes: weight norm's from `g`'s
//! shape (`norm_except_dim` keeps axis `dim`), spectral norm's from `u`'s and `v`'s lengths
//! (`W_mat` has `weight.size(dim)` rows). Where the shapes fit several dims, the
//! [`DimChoice`] decides, else the conversion is refused
//! ([`ConversionRefusal::AmbiguousDim`]).

use super::DimChoice;
use norm_core::error::{ConversionRefusal, DimEvidence};
use norm_core::weight_norm::WeightNormDim;

/// The dims weight norm's `g` shape fits for a `v` of shape `v`: `[-1]` (whole tensor)
/// for a 0-dim `g`, else every axis `d` with `g.shape == [1, .., v.shape[d], .., 1]`.
pub fn weight_norm_dims(g: &[i64], v: &[i64]) -> Vec<i64> {
    (-1..v.len() as i64).filter(|&d| fits_weight_norm(d, g, v)).collect()
}

fn fits_weight_norm(dim: i64, g: &[i64], v: &[i64]) -> bool {
    let v_usize: Vec<usize> = v.iter().map(|&x| x.max(0) as usize).collect();
    match WeightNormDim::new(Some(dim)).g_shape(&v_usize) {
        Ok(expected) => expected.iter().map(|&x| x as i64).eq(g.iter().copied()),
        Err(_) => false,
    }
}

/// The axes `d` of a weight of shape `w` that spectral norm's `u` (length `u_len`) and `v`
/// (length `v_len`, when known) fit: `w[d] == u_len` and `numel / w[d] == v_len`.
pub fn spectral_dims(w: &[i64], u_len: i64, v_len: Option<i64>) -> Vec<i64> {
    let numel: i64 = w.iter().product();
    (0..w.len() as i64).filter(|&d| fits_spectral(d, w, numel, u_len, v_len)).collect()
}

fn fits_spectral(d: i64, w: &[i64], numel: i64, u_len: i64, v_len: Option<i64>) -> bool {
    let Ok(d) = usize::try_from(d) else { return false };
    d < w.len()
        && w[d] == u_len
        && match v_len {
            None => true,
            Some(v) => w[d] > 0 && numel / w[d] == v,
        }
}

/// Weight norm's dim for layer `prefix`: the per-layer choice (which must fit), else the
/// default choice if it fits, else the one dim the shapes fit.
pub(super) fn resolve_weight_norm_dim(
    prefix: &str,
    g: &[i64],
    v: &[i64],
    choice: &DimChoice,
) -> Result<i64, ConversionRefusal> {
    let fits = weight_norm_dims(g, v);
    let evidence = || DimEvidence::WeightNorm { g: g.to_vec(), v: v.to_vec() };
    if let Some(&dim) = choice.per_layer.get(prefix) {
        if fits_weight_norm(dim, g, v) {
            return Ok(dim);
        }
        return Err(ConversionRefusal::DimDoesNotFit { dim, evidence: evidence(), fits });
    }
    if let Some(dim) = choice.default.filter(|&d| fits_weight_norm(d, g, v)) {
        return Ok(dim);
    }
    match fits.as_slice() {
        [dim] => Ok(*dim),
        [] => Err(ConversionRefusal::NoDimFits { evidence: evidence() }),
        _ => Err(ConversionRefusal::AmbiguousDim { evidence: evidence(), fits }),
    }
}

/// Spectral norm's dim for layer `prefix` (non-negative), chosen as
/// [`resolve_weight_norm_dim`]'s; a negative choice counts from the end.
pub(super) fn resolve_spectral_dim(
    prefix: &str,
    w: &[i64],
    u_len: i64,
    v_len: Option<i64>,
    choice: &DimChoice,
) -> Result<usize, ConversionRefusal> {
    let fits = spectral_dims(w, u_len, v_len);
    let numel: i64 = w.iter().product();
    let normalize = |d: i64| if d < 0 { d + w.len() as i64 } else { d };
    let evidence = || DimEvidence::SpectralNorm { weight: w.to_vec(), u_len, v_len };
    if let Some(&dim) = choice.per_layer.get(prefix) {
        if fits_spectral(normalize(dim), w, numel, u_len, v_len) {
            return Ok(normalize(dim) as usize);
        }
        return Err(ConversionRefusal::DimDoesNotFit { dim, evidence: evidence(), fits });
    }
    if let Some(dim) = choice.default.map(normalize).filter(|&d| fits_spectral(d, w, numel, u_len, v_len)) {
        return Ok(dim as usize);
    }
    match fits.as_slice() {
        [dim] => Ok(*dim as usize),
        [] => Err(ConversionRefusal::NoDimFits { evidence: evidence() }),
        _ => Err(ConversionRefusal::AmbiguousDim { evidence: evidence(), fits }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dims_from_shapes() {
        assert_eq!(weight_norm_dims(&[4, 1, 1], &[4, 3, 3]), vec![0]);
        assert_eq!(weight_norm_dims(&[], &[4, 3]), vec![-1]);
        assert_eq!(weight_norm_dims(&[1, 5, 1], &[4, 5, 2]), vec![1]);
        assert_eq!(weight_norm_dims(&[1, 1], &[1, 1]), vec![0, 1]);
        assert_eq!(spectral_dims(&[6, 7], 6, Some(7)), vec![0]);
        assert_eq!(spectral_dims(&[5, 5], 5, Some(5)), vec![0, 1]);
        assert_eq!(spectral_dims(&[4, 5, 2], 5, None), vec![1]);
    }

    #[test]
    fn dim_flags() {
        let mut c = DimChoice::default();
        c.add_flag("1").unwrap();
        c.add_flag("enc.0=0").unwrap();
        assert_eq!(c.default, Some(1));
        assert_eq!(c.per_layer.get("enc.0"), Some(&0));
        assert!(c.add_flag("x=y").is_err());
        assert_eq!(resolve_spectral_dim("a", &[5, 5], 5, Some(5), &c).unwrap(), 1);
        assert_eq!(resolve_spectral_dim("enc.0", &[5, 5], 5, Some(5), &c).unwrap(), 0);
    }

    #[test]
    fn undecidable_dims_are_typed_refusals() {
        let none = DimChoice::default();
        let square = DimEvidence::SpectralNorm { weight: vec![5, 5], u_len: 5, v_len: Some(5) };
        assert_eq!(
            resolve_spectral_dim("a", &[5, 5], 5, Some(5), &none),
            Err(ConversionRefusal::AmbiguousDim { evidence: square.clone(), fits: vec![0, 1] })
        );
        let mut c = DimChoice::default();
        c.add_flag("a=1").unwrap();
        assert_eq!(
            resolve_spectral_dim("a", &[5, 6], 5, Some(6), &c),
            Err(ConversionRefusal::DimDoesNotFit {
                dim: 1,
                evidence: DimEvidence::SpectralNorm { weight: vec![5, 6], u_len: 5, v_len: Some(6) },
                fits: vec![0],
            })
        );
        let tiny = DimEvidence::WeightNorm { g: vec![1, 1], v: vec![1, 1] };
        let e = resolve_weight_norm_dim("b", &[1, 1], &[1, 1], &none).unwrap_err();
        assert_eq!(e, ConversionRefusal::AmbiguousDim { evidence: tiny, fits: vec![0, 1] });
        // The library's text names the option, never a command-line flag.
        assert!(e.to_string().contains("ConvertOptions::weight_norm_dim") && !e.to_string().contains("--"), "{e}");
        assert_eq!(
            resolve_weight_norm_dim("b", &[3], &[4, 3], &none),
            Err(ConversionRefusal::NoDimFits { evidence: DimEvidence::WeightNorm { g: vec![3], v: vec![4, 3] } })
        );
    }
}
