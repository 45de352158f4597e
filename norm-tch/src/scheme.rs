//! The state-dict names of every reparametrization, in one place: the layers register their
//! entries under these suffixes and the checkpoint code detects and converts them.
//!
//! A layer is a module prefix `P` (`""` for the root module) with one of these sets of
//! keys (`P.` omitted):
//!
//! | scheme | keys |
//! | --- | --- |
//! | [`Scheme::Folded`] | `weight` |
//! | [`Scheme::WeightNormHooks`] | `weight_g`, `weight_v` |
//! | [`Scheme::WeightNormParametrizations`] | `parametrizations.weight.original0` (g), `.original1` (v) |
//! | [`Scheme::SpectralNormHooks`] | `weight_orig`, `weight_u`, `weight_v` |
//! | [`Scheme::SpectralNormLegacy`] | `weight_orig`, `weight`, `weight_u` (spectral_norm "version None") |
//! | [`Scheme::SpectralNormParametrizations`] | `parametrizations.weight.original`, `parametrizations.weight.0._u`, `._v` |
//! | [`Scheme::OperatorNorm`] | `weight_orig`, `weight_op_u`, `weight_op_v` (norm's operator norm; no PyTorch equivalent) |
//!
//! `weight_v` belongs to weight norm when `weight_g` is present and to spectral norm when
//! `weight_orig` is. A layer with `weight_orig` and `weight` is legacy unless the
//! checkpoint's `_metadata` records spectral-norm version 1 or later for it, exactly the
//! test of PyTorch's `SpectralNormLoadStateDictPreHook`.

use std::collections::BTreeMap;

/// A layer's naming scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// A plain `weight` (no normalization, or one folded in by `remove_*`).
    Folded,
    /// `torch.nn.utils.weight_norm`: `weight_g`, `weight_v`.
    WeightNormHooks,
    /// `torch.nn.utils.parametrizations.weight_norm`: `parametrizations.weight.original0/1`.
    WeightNormParametrizations,
    /// `torch.nn.utils.spectral_norm`: `weight_orig`, buffers `weight_u`, `weight_v`.
    SpectralNormHooks,
    /// `torch.nn.utils.spectral_norm` before version 1: `weight_orig`, buffers `weight`, `weight_u`.
    SpectralNormLegacy,
    /// `torch.nn.utils.parametrizations.spectral_norm`: `parametrizations.weight.original`,
    /// buffers `parametrizations.weight.0._u`, `._v`.
    SpectralNormParametrizations,
    /// norm's operator-norm normalization ([`crate::layers::operator_norm`], not in PyTorch):
    /// `weight_orig`, buffers `weight_op_u` (`[1, C_out, *S_out]`), `weight_op_v` (`[1, C_in, *S_in]`).
    OperatorNorm,
}

/// The normalization a scheme carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Norm {
    /// Weight normalization.
    Weight,
    /// Spectral normalization.
    Spectral,
    /// Operator-norm normalization of a convolution ([`Scheme::OperatorNorm`]).
    Operator,
}

impl Scheme {
    /// A short name (`weight_norm hooks`, `spectral_norm parametrizations`, `folded`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Folded => "folded",
            Scheme::WeightNormHooks => "weight_norm hooks",
            Scheme::WeightNormParametrizations => "weight_norm parametrizations",
            Scheme::SpectralNormHooks => "spectral_norm hooks",
            Scheme::SpectralNormLegacy => "spectral_norm legacy (version None)",
            Scheme::SpectralNormParametrizations => "spectral_norm parametrizations",
            Scheme::OperatorNorm => "operator_norm",
        }
    }

    /// The normalization, `None` for [`Scheme::Folded`].
    pub fn norm(self) -> Option<Norm> {
        match self {
            Scheme::Folded => None,
            Scheme::WeightNormHooks | Scheme::WeightNormParametrizations => Some(Norm::Weight),
            Scheme::SpectralNormHooks | Scheme::SpectralNormLegacy | Scheme::SpectralNormParametrizations => {
                Some(Norm::Spectral)
            }
            Scheme::OperatorNorm => Some(Norm::Operator),
        }
    }

    /// The entry that holds the weight itself, which becomes the plain `weight` when a
    /// normalized layer is folded: weight norm's v (`weight_v`, `original1`), spectral norm's
    /// `weight_orig`/`original`.
    pub fn plain(self) -> Suffix {
        match self {
            Scheme::Folded => Suffix::Weight,
            Scheme::WeightNormHooks => Suffix::WeightV,
            Scheme::WeightNormParametrizations => Suffix::Original1,
            Scheme::SpectralNormHooks | Scheme::SpectralNormLegacy | Scheme::OperatorNorm => Suffix::WeightOrig,
            Scheme::SpectralNormParametrizations => Suffix::Original,
        }
    }

    /// The key suffixes of the scheme, in PyTorch's `state_dict()` order.
    pub fn suffixes(self) -> &'static [Suffix] {
        match self {
            Scheme::Folded => &[Suffix::Weight],
            Scheme::WeightNormHooks => &[Suffix::WeightG, Suffix::WeightV],
            Scheme::WeightNormParametrizations => &[Suffix::Original0, Suffix::Original1],
            Scheme::SpectralNormHooks => &[Suffix::WeightOrig, Suffix::WeightU, Suffix::WeightV],
            Scheme::SpectralNormLegacy => &[Suffix::WeightOrig, Suffix::Weight, Suffix::WeightU],
            Scheme::SpectralNormParametrizations => &[Suffix::Original, Suffix::ParamU, Suffix::ParamV],
            Scheme::OperatorNorm => &[Suffix::WeightOrig, Suffix::WeightOpU, Suffix::WeightOpV],
        }
    }
}

impl std::fmt::Display for Scheme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The last component(s) of a weight-related key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Suffix {
    /// `weight`
    Weight,
    /// `weight_g`
    WeightG,
    /// `weight_v`
    WeightV,
    /// `weight_orig`
    WeightOrig,
    /// `weight_u`
    WeightU,
    /// `parametrizations.weight.original0`
    Original0,
    /// `parametrizations.weight.original1`
    Original1,
    /// `parametrizations.weight.original`
    Original,
    /// `parametrizations.weight.0._u`
    ParamU,
    /// `parametrizations.weight.0._v`
    ParamV,
    /// `weight_op_u` (operator norm's `u`)
    WeightOpU,
    /// `weight_op_v` (operator norm's `v`)
    WeightOpV,
}

const SUFFIXES: &[(Suffix, &str)] = &[
    (Suffix::Original0, "parametrizations.weight.original0"),
    (Suffix::Original1, "parametrizations.weight.original1"),
    (Suffix::Original, "parametrizations.weight.original"),
    (Suffix::ParamU, "parametrizations.weight.0._u"),
    (Suffix::ParamV, "parametrizations.weight.0._v"),
    (Suffix::WeightOpU, "weight_op_u"),
    (Suffix::WeightOpV, "weight_op_v"),
    (Suffix::WeightG, "weight_g"),
    (Suffix::WeightV, "weight_v"),
    (Suffix::WeightOrig, "weight_orig"),
    (Suffix::WeightU, "weight_u"),
    (Suffix::Weight, "weight"),
];

impl Suffix {
    /// The suffix as written in keys.
    pub fn as_str(self) -> &'static str {
        SUFFIXES.iter().find(|(s, _)| *s == self).map(|(_, n)| *n).expect("every suffix is listed")
    }

    /// The full key of this suffix under module `prefix`.
    pub fn key(self, prefix: &str) -> String {
        if prefix.is_empty() {
            self.as_str().to_string()
        } else {
            format!("{prefix}.{}", self.as_str())
        }
    }
}

/// Splits `key` into its module prefix and weight suffix, if it ends in one.
pub fn split_key(key: &str) -> Option<(&str, Suffix)> {
    SUFFIXES.iter().find_map(|&(suffix, text)| {
        if key == text {
            Some(("", suffix))
        } else {
            key.strip_suffix(text).and_then(|p| p.strip_suffix('.')).map(|p| (p, suffix))
        }
    })
}

/// One layer found in a set of keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layer {
    /// The module prefix (`""` for the root module).
    pub prefix: String,
    /// Its scheme.
    pub scheme: Scheme,
    /// The suffixes of the scheme present among the keys (a subset of
    /// [`Scheme::suffixes`]; a missing one is reported when the layer is converted or loaded).
    pub present: Vec<Suffix>,
}

impl Layer {
    /// The full keys of the layer's present entries.
    pub fn keys(&self) -> Vec<String> {
        self.present.iter().map(|s| s.key(&self.prefix)).collect()
    }
}

/// Finds the layers among `keys`, in order of first appearance. `spectral_norm_version`
/// gives the `_metadata` version of a prefix (`None`: absent, PyTorch's "version None").
/// Keys that complete no scheme (a lone `weight_u`, say) belong to no layer.
pub fn detect<'a>(
    keys: impl IntoIterator<Item = &'a str>,
    spectral_norm_version: impl Fn(&str) -> Option<i64>,
) -> Vec<Layer> {
    let mut order: Vec<&str> = Vec::new();
    let mut found: BTreeMap<&str, Vec<Suffix>> = BTreeMap::new();
    for key in keys {
        if let Some((prefix, suffix)) = split_key(key) {
            let list = found.entry(prefix).or_default();
            if list.is_empty() {
                order.push(prefix);
            }
            list.push(suffix);
        }
    }
    let mut layers = Vec::new();
    for prefix in order {
        let have = &found[prefix];
        let has = |s: Suffix| have.contains(&s);
        let scheme = if has(Suffix::Original0) || has(Suffix::Original1) {
            Scheme::WeightNormParametrizations
        } else if has(Suffix::Original) {
            Scheme::SpectralNormParametrizations
        } else if has(Suffix::WeightG) {
            Scheme::WeightNormHooks
        } else if has(Suffix::WeightOpU) || has(Suffix::WeightOpV) {
            Scheme::OperatorNorm
        } else if has(Suffix::WeightOrig) {
            let version = spectral_norm_version(prefix);
            if has(Suffix::Weight) && !matches!(version, Some(v) if v >= 1) {
                Scheme::SpectralNormLegacy
            } else {
                Scheme::SpectralNormHooks
            }
        } else if has(Suffix::Weight) {
            Scheme::Folded
        } else {
            continue;
        };
        let present = scheme.suffixes().iter().copied().filter(|s| has(*s)).collect();
        layers.push(Layer { prefix: prefix.to_string(), scheme, present });
    }
    layers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_every_scheme() {
        let keys = [
            "a.weight",
            "a.bias",
            "b.weight_g",
            "b.weight_v",
            "c.parametrizations.weight.original0",
            "c.parametrizations.weight.original1",
            "d.weight_orig",
            "d.weight_u",
            "d.weight_v",
            "e.weight_orig",
            "e.weight",
            "e.weight_u",
            "f.parametrizations.weight.original",
            "f.parametrizations.weight.0._u",
            "f.parametrizations.weight.0._v",
            "weight_g",
            "weight_v",
            "g.weight_u",
            "h.weight_orig",
            "h.weight_op_u",
            "h.weight_op_v",
        ];
        let layers = detect(keys, |_| None);
        let got: Vec<(&str, Scheme)> = layers.iter().map(|l| (l.prefix.as_str(), l.scheme)).collect();
        assert_eq!(
            got,
            vec![
                ("a", Scheme::Folded),
                ("b", Scheme::WeightNormHooks),
                ("c", Scheme::WeightNormParametrizations),
                ("d", Scheme::SpectralNormHooks),
                ("e", Scheme::SpectralNormLegacy),
                ("f", Scheme::SpectralNormParametrizations),
                ("", Scheme::WeightNormHooks),
                ("h", Scheme::OperatorNorm),
            ]
        );
        // With version 1 recorded, `weight` next to `weight_orig` is just an extra key.
        let layers = detect(["e.weight_orig", "e.weight", "e.weight_u", "e.weight_v"], |_| Some(1));
        assert_eq!(layers[0].scheme, Scheme::SpectralNormHooks);
        assert_eq!(layers[0].present, vec![Suffix::WeightOrig, Suffix::WeightU, Suffix::WeightV]);
    }

    #[test]
    fn splits_keys() {
        assert_eq!(split_key("enc.0.weight_g"), Some(("enc.0", Suffix::WeightG)));
        assert_eq!(split_key("weight"), Some(("", Suffix::Weight)));
        assert_eq!(split_key("a.myweight"), None);
        assert_eq!(split_key("a.parametrizations.weight.0._u"), Some(("a", Suffix::ParamU)));
    }
}
