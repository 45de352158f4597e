//! One layer's conversion: its tensors read into one canonical form ([`Canon`]: folded,
//! weight norm `g`/`v`, spectral norm `weight_orig`/`u`/`v`), then written under the target
//! scheme's names, computing what the target needs with PyTorch's arithmetic
//! (`torch._weight_norm`, `norm_except_dim`, and [`super::spectral`]'s). Refusals are
//! [`CheckpointErrorKind::Conversion`]s naming the layer and both schemes.

use super::dims::{resolve_spectral_dim, resolve_weight_norm_dim};
use super::spectral::{fold_spectral, seeded_u_v, upgrade_legacy};
use super::{ConvertOptions, Entry};
use crate::backend::tch_err;
use crate::checkpoint::io::StateDict;
use crate::ffi::CpuGenerator;
use crate::scheme::{Layer, Scheme, Suffix};
use norm_core::error::{CheckpointErrorKind, ConversionRefusal, NormKind};
use norm_core::{Error, Result};
use tch::Tensor;

/// A layer's tensors in one canonical form.
enum Canon {
    Folded(Tensor),
    WeightNorm {
        g: Tensor,
        v: Tensor,
    },
    /// `u`, `v` absent only for a 1-D weight under the parametrization API.
    Spectral {
        orig: Tensor,
        u: Option<Tensor>,
        v: Option<Tensor>,
    },
}

/// What converting one layer needs besides its tensors.
pub(super) struct Context<'a> {
    pub model_shape: &'a dyn Fn(&str) -> Option<Vec<i64>>,
    pub options: &'a ConvertOptions,
    pub generator: &'a mut Option<CpuGenerator>,
}

fn refuse(layer: &Layer, to: Scheme, refusal: ConversionRefusal) -> Error {
    Error::from(CheckpointErrorKind::Conversion {
        prefix: layer.prefix.clone(),
        from: layer.scheme.to_string(),
        to: to.to_string(),
        refusal,
    })
}

fn get(sd: &StateDict, layer: &Layer, suffix: Suffix) -> Result<Tensor> {
    let key = suffix.key(&layer.prefix);
    sd.get(&key).map(Tensor::shallow_clone).ok_or_else(|| {
        Error::from(CheckpointErrorKind::MissingKey {
            key,
            prefix: layer.prefix.clone(),
            scheme: layer.scheme.to_string(),
        })
    })
}

fn check_vector(prefix: &str, suffix: Suffix, t: &Tensor) -> Result<()> {
    if t.dim() != 1 {
        return Err(CheckpointErrorKind::NotAVector { key: suffix.key(prefix), shape: t.size() }.into());
    }
    Ok(())
}

/// Converts `layer` of `sd` to scheme `to`: its entries under `to`'s names, each with the
/// checkpoint key(s) it came from.
pub(super) fn convert_layer(sd: &StateDict, layer: &Layer, to: Scheme, cx: &mut Context<'_>) -> Result<Vec<Entry>> {
    if let (Some(a), Some(b)) = (layer.scheme.norm(), to.norm()) {
        if a != b {
            return Err(refuse(layer, to, ConversionRefusal::DifferentNorms));
        }
    }
    let canon = canonical(sd, layer, to, cx.options)?;
    let mut entries = write(canon, layer, to, cx)?;
    // A rename: each entry comes from the key in the same position of the source scheme.
    let rename =
        layer.scheme.norm().is_some() && layer.scheme != Scheme::SpectralNormLegacy && to.norm() == layer.scheme.norm();
    if rename {
        for (e, s) in entries.iter_mut().zip(layer.scheme.suffixes()) {
            e.source = Some(format!("`{}`", s.key(&layer.prefix)));
        }
    }
    Ok(entries)
}

/// The layer's tensors as [`Canon`] (a legacy spectral norm upgraded on the way).
fn canonical(sd: &StateDict, layer: &Layer, to: Scheme, options: &ConvertOptions) -> Result<Canon> {
    let get = |suffix| get(sd, layer, suffix);
    Ok(match layer.scheme {
        Scheme::Folded => Canon::Folded(get(Suffix::Weight)?),
        Scheme::WeightNormHooks => Canon::WeightNorm { g: get(Suffix::WeightG)?, v: get(Suffix::WeightV)? },
        Scheme::WeightNormParametrizations => {
            Canon::WeightNorm { g: get(Suffix::Original0)?, v: get(Suffix::Original1)? }
        }
        Scheme::SpectralNormHooks => Canon::Spectral {
            orig: get(Suffix::WeightOrig)?,
            u: Some(get(Suffix::WeightU)?),
            v: Some(get(Suffix::WeightV)?),
        },
        Scheme::SpectralNormParametrizations => {
            let orig = get(Suffix::Original)?;
            if orig.dim() == 1 && !layer.present.contains(&Suffix::ParamU) && !layer.present.contains(&Suffix::ParamV) {
                Canon::Spectral { orig, u: None, v: None }
            } else {
                Canon::Spectral { orig, u: Some(get(Suffix::ParamU)?), v: Some(get(Suffix::ParamV)?) }
            }
        }
        Scheme::OperatorNorm => return Err(refuse(layer, to, ConversionRefusal::NeedsGeometry)),
        Scheme::SpectralNormLegacy => {
            let (orig, weight, u) = (get(Suffix::WeightOrig)?, get(Suffix::Weight)?, get(Suffix::WeightU)?);
            check_vector(&layer.prefix, Suffix::WeightU, &u)?;
            let dim = resolve_spectral_dim(&layer.prefix, &orig.size(), u.size()[0], None, &options.spectral_dim)
                .map_err(|r| refuse(layer, to, r))?;
            let v = tch::no_grad(|| upgrade_legacy(&orig, &weight, &u, dim))?;
            Canon::Spectral { orig, u: Some(u), v: Some(v) }
        }
    })
}

/// The canonical tensors under `to`'s names.
fn write(canon: Canon, layer: &Layer, to: Scheme, cx: &mut Context<'_>) -> Result<Vec<Entry>> {
    let source = layer.keys().iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ");
    let entry =
        |suffix: Suffix, tensor: Tensor| Entry { key: suffix.key(&layer.prefix), tensor, source: Some(source.clone()) };
    let pairs = match (canon, to) {
        (Canon::WeightNorm { g, v }, Scheme::WeightNormHooks) => vec![(Suffix::WeightG, g), (Suffix::WeightV, v)],
        (Canon::WeightNorm { g, v }, Scheme::WeightNormParametrizations) => {
            vec![(Suffix::Original0, g), (Suffix::Original1, v)]
        }
        (Canon::WeightNorm { g, v }, Scheme::Folded) => {
            vec![(Suffix::Weight, fold_weight_norm(layer, to, &g, &v, cx)?)]
        }
        (Canon::Spectral { orig, u: Some(u), v: Some(v) }, Scheme::SpectralNormHooks) => {
            vec![(Suffix::WeightOrig, orig), (Suffix::WeightU, u), (Suffix::WeightV, v)]
        }
        (Canon::Spectral { orig, u: Some(u), v: Some(v) }, Scheme::SpectralNormParametrizations) => {
            vec![(Suffix::Original, orig), (Suffix::ParamU, u), (Suffix::ParamV, v)]
        }
        (Canon::Spectral { orig, u: None, v: None }, Scheme::SpectralNormParametrizations) => {
            vec![(Suffix::Original, orig)]
        }
        (Canon::Spectral { u: None, .. }, _) => return Err(refuse(layer, to, ConversionRefusal::NoVectors)),
        (Canon::Spectral { orig, u: Some(u), v: Some(v) }, Scheme::Folded) => {
            vec![(Suffix::Weight, fold_spectral_norm(layer, to, &orig, &u, &v, cx)?)]
        }
        (Canon::Folded(w), Scheme::WeightNormHooks | Scheme::WeightNormParametrizations) => {
            unfold_weight_norm(layer, to, w, cx)?
        }
        (Canon::Folded(w), Scheme::SpectralNormHooks | Scheme::SpectralNormParametrizations) => {
            unfold_spectral_norm(layer, to, w, cx)?
        }
        (_, to) => return Err(refuse(layer, to, ConversionRefusal::NoSuchConversion)),
    };
    Ok(pairs.into_iter().map(|(suffix, tensor)| entry(suffix, tensor)).collect())
}

/// Weight norm → folded: `torch._weight_norm(v, g, dim)`, the weight every forward computes.
fn fold_weight_norm(layer: &Layer, to: Scheme, g: &Tensor, v: &Tensor, cx: &Context<'_>) -> Result<Tensor> {
    let dim = resolve_weight_norm_dim(&layer.prefix, &g.size(), &v.size(), &cx.options.weight_norm_dim)
        .map_err(|r| refuse(layer, to, r))?;
    tch::no_grad(|| Tensor::f_internal_weight_norm(v, g, dim)).map_err(tch_err("_weight_norm"))
}

/// Spectral norm → folded: `weight_orig / σ` from the stored `u`, `v`.
fn fold_spectral_norm(
    layer: &Layer,
    to: Scheme,
    orig: &Tensor,
    u: &Tensor,
    v: &Tensor,
    cx: &Context<'_>,
) -> Result<Tensor> {
    let parametrized = layer.scheme == Scheme::SpectralNormParametrizations;
    let (u_suffix, v_suffix) =
        if parametrized { (Suffix::ParamU, Suffix::ParamV) } else { (Suffix::WeightU, Suffix::WeightV) };
    check_vector(&layer.prefix, u_suffix, u)?;
    check_vector(&layer.prefix, v_suffix, v)?;
    let dim =
        resolve_spectral_dim(&layer.prefix, &orig.size(), u.size()[0], Some(v.size()[0]), &cx.options.spectral_dim)
            .map_err(|r| refuse(layer, to, r))?;
    tch::no_grad(|| fold_spectral(orig, u, v, dim, parametrized))
}

/// The shape of the model's variable `suffix` of this layer.
fn model_var_shape(layer: &Layer, to: Scheme, suffix: Suffix, norm: NormKind, cx: &Context<'_>) -> Result<Vec<i64>> {
    let key = suffix.key(&layer.prefix);
    (cx.model_shape)(&key).ok_or_else(|| refuse(layer, to, ConversionRefusal::NoModelVariable { key, norm }))
}

/// Folded → weight norm (into a model): `g = norm_except_dim(w, 2, dim)`, `v = w`, as
/// `weight_norm(module)` registers them; the dim from the model's `g`.
fn unfold_weight_norm(layer: &Layer, to: Scheme, w: Tensor, cx: &Context<'_>) -> Result<Vec<(Suffix, Tensor)>> {
    let (g_suffix, v_suffix) = if to == Scheme::WeightNormHooks {
        (Suffix::WeightG, Suffix::WeightV)
    } else {
        (Suffix::Original0, Suffix::Original1)
    };
    let g_shape = model_var_shape(layer, to, g_suffix, NormKind::WeightNorm, cx)?;
    let dim = resolve_weight_norm_dim(&layer.prefix, &g_shape, &w.size(), &cx.options.weight_norm_dim)
        .map_err(|r| refuse(layer, to, r))?;
    let g = tch::no_grad(|| Tensor::f_norm_except_dim(&w, 2, dim)).map_err(tch_err("norm_except_dim"))?;
    let v = crate::var_store::detached_copy(&w)?;
    Ok(vec![(g_suffix, g), (v_suffix, v)])
}

/// Folded → spectral norm (into a model, with a seed): `u`, `v` drawn as
/// `torch.manual_seed(seed)` then `spectral_norm(module)` draws them; the dim from the
/// model's `u` (and `v`).
fn unfold_spectral_norm(layer: &Layer, to: Scheme, w: Tensor, cx: &mut Context<'_>) -> Result<Vec<(Suffix, Tensor)>> {
    let parametrized = to == Scheme::SpectralNormParametrizations;
    if parametrized && w.dim() == 1 {
        return Ok(vec![(Suffix::Original, w)]);
    }
    let Some(seed) = cx.options.spectral_seed else { return Err(refuse(layer, to, ConversionRefusal::NeedsSeed)) };
    let (orig_suffix, u_suffix, v_suffix) = if parametrized {
        (Suffix::Original, Suffix::ParamU, Suffix::ParamV)
    } else {
        (Suffix::WeightOrig, Suffix::WeightU, Suffix::WeightV)
    };
    let u_len = model_var_shape(layer, to, u_suffix, NormKind::SpectralNorm, cx)?.first().copied();
    let u_len = u_len.ok_or_else(|| {
        let key = u_suffix.key(&layer.prefix);
        refuse(layer, to, ConversionRefusal::NoModelVariable { key, norm: NormKind::SpectralNorm })
    })?;
    let v_len = (cx.model_shape)(&v_suffix.key(&layer.prefix)).and_then(|s| s.first().copied());
    let dim = resolve_spectral_dim(&layer.prefix, &w.size(), u_len, v_len, &cx.options.spectral_dim)
        .map_err(|r| refuse(layer, to, r))?;
    if cx.generator.is_none() {
        *cx.generator = Some(CpuGenerator::new(seed)?);
    }
    let generator = cx.generator.as_mut().expect("set above");
    let (u, v) = tch::no_grad(|| seeded_u_v(&w, dim, parametrized, cx.options, generator))?;
    Ok(vec![(orig_suffix, w), (u_suffix, u), (v_suffix, v)])
}
