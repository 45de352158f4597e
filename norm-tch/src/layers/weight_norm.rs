//! `torch.nn.utils.weight_norm` (the hook API) around a [`WeightedLayer`]:
//! `weight = weight_g * weight_v / ‖weight_v‖`, recomputed on every forward with
//! `torch._weight_norm`, and [`WeightNorm::remove`] as `remove_weight_norm`.
//!
//! Registration mirrors `WeightNorm.apply`: `weight` is removed from the VarStore and
//! `weight_g = norm_except_dim(weight, 2, dim)` and `weight_v = weight` are registered
//! under the module's prefix with PyTorch's names and shapes. See
//! [`norm_core::weight_norm`] for the `dim` contract (`None` is stored as -1 and means the
//! whole tensor).
//!
//! Beyond PyTorch: [`WeightNorm::fold`]/[`WeightNorm::unfold`] trade `weight_g`/`weight_v`
//! for a plain `weight` and back keeping the tensors an optimizer holds, and a forward that
//! needs no graph (under `tch::no_grad`) reuses the weight it computed last while `g` and
//! `v` are unchanged; see [`super::fold`].

use super::fold::{self, CacheStats, Foldable, WeightCache};
use super::WeightedLayer;
use crate::backend::{tch_err, TchBackend};
use crate::var_store::ModulePath;
use norm_core::weight_norm::{compute_weight, initial_g, WeightNormDim};
use norm_core::{Backend, Error, Result};
use tch::nn::VarStore;
use tch::Tensor;

/// A layer with weight normalization on its `weight`.
///
/// Folded ([`WeightNorm::fold`]), the layer is the plain layer with `<prefix>.weight`,
/// which is the tensor of `weight_v`; `weight_g` is kept out of the store until
/// [`WeightNorm::unfold`].
#[derive(Debug)]
pub struct WeightNorm<L: WeightedLayer> {
    layer: L,
    path: ModulePath,
    weight_g: Tensor,
    weight_v: Tensor,
    dim: WeightNormDim,
    /// Whether folded.
    folded: bool,
    /// g's optimizer group (`None`: a buffer) while folded.
    g_group: Option<usize>,
    cache: WeightCache,
}

impl<L: WeightedLayer> WeightNorm<L> {
    /// `weight_norm(module, name="weight", dim=dim)` for the layer registered at `prefix`
    /// in `vs` (its `weight` must be the variable `<prefix>.weight`).
    ///
    /// Errors: `dim` out of range for the weight's rank; the layer already carrying a
    /// weight norm (`<prefix>.weight_g` exists); `<prefix>.weight` missing or not the layer's.
    pub fn new(vs: &VarStore, prefix: &str, layer: L, dim: Option<i64>) -> Result<Self> {
        let path = ModulePath::new(prefix);
        let dim = WeightNormDim::new(dim);
        if path.get(vs, "weight_g").is_some() || path.get(vs, "weight_v").is_some() {
            return Err(Error::AlreadyRegistered { norm: "weight_norm", name: path.full_name("weight") });
        }
        let weight = layer_weight(vs, &path, &layer)?;
        let rank = weight.dim();
        dim.resolve(rank)?;
        let g = tch::no_grad(|| initial_g::<TchBackend>(&weight, dim))?;
        drop(path.remove(vs, "weight")?);
        let weight_g = path.add_parameter(vs, "weight_g", &g)?;
        let weight_v = path.add_parameter(vs, "weight_v", &weight)?;
        Ok(WeightNorm {
            layer,
            path,
            weight_g,
            weight_v,
            dim,
            folded: false,
            g_group: None,
            cache: WeightCache::default(),
        })
    }

    /// A folded weight norm around the plain layer registered at `prefix` (its
    /// `<prefix>.weight` stays as it is): [`WeightNorm::unfold`] then sets `v = weight`
    /// (the same tensor, so an optimizer holding it keeps working, unlike
    /// [`WeightNorm::new`], which copies as PyTorch does) and `g = norm_except_dim(weight, 2,
    /// dim)`, registering `weight_g` in optimizer group 0.
    ///
    /// Errors as [`WeightNorm::new`].
    pub fn new_folded(vs: &VarStore, prefix: &str, mut layer: L, dim: Option<i64>) -> Result<Self> {
        let path = ModulePath::new(prefix);
        let dim = WeightNormDim::new(dim);
        if path.get(vs, "weight_g").is_some() || path.get(vs, "weight_v").is_some() {
            return Err(Error::AlreadyRegistered { norm: "weight_norm", name: path.full_name("weight") });
        }
        let weight = layer_weight(vs, &path, &layer)?;
        dim.resolve(weight.dim())?;
        // A leaf parameter outside the store until unfold overwrites and registers it.
        let g = tch::no_grad(|| initial_g::<TchBackend>(&weight, dim))?;
        let weight_g =
            crate::var_store::detached_copy(&g)?.f_set_requires_grad(true).map_err(tch_err("requires_grad_"))?;
        layer.set_weight(weight.shallow_clone());
        Ok(WeightNorm {
            layer,
            path,
            weight_g,
            weight_v: weight,
            dim,
            folded: true,
            g_group: Some(0),
            cache: WeightCache::default(),
        })
    }

    /// `weight_g` (PyTorch's `module.weight_g`). While folded: the g kept out of the store
    /// (unused, overwritten by [`WeightNorm::unfold`]).
    pub fn weight_g(&self) -> &Tensor {
        &self.weight_g
    }

    /// `weight_v` (PyTorch's `module.weight_v`). While folded: the same tensor, which is
    /// then the plain `<prefix>.weight`.
    pub fn weight_v(&self) -> &Tensor {
        &self.weight_v
    }

    /// The stored dim (`-1` for `None`).
    pub fn dim(&self) -> WeightNormDim {
        self.dim
    }

    /// The wrapped layer.
    pub fn layer(&self) -> &L {
        &self.layer
    }

    /// The effective weight `_weight_norm(weight_v, weight_g, dim)`, recomputed now from
    /// the current parameters (differentiable). While folded: the plain weight itself.
    pub fn weight(&self) -> Result<Tensor> {
        if self.folded {
            return Ok(self.weight_v.shallow_clone());
        }
        compute_weight::<TchBackend>(&self.weight_v, &self.weight_g, self.dim)
    }

    /// [`WeightNorm::weight`]'s bits written into `out`, a contiguous CPU tensor of the
    /// weight's shape that the caller reuses (no allocation; no autograd graph: call it
    /// under `tch::no_grad`). Dims 0 and `rank - 1` only; see [`fn@crate::weight_norm_out`].
    /// While folded: a copy of the plain weight.
    pub fn weight_out(&self, out: &mut Tensor) -> Result<()> {
        if self.folded {
            if out.size() != self.weight_v.size() {
                return Err(Error::ShapeMismatch {
                    what: "weight_out's out".into(),
                    expected: TchBackend::shape(&self.weight_v),
                    got: TchBackend::shape(out),
                });
            }
            return tch::no_grad(|| out.f_copy_(&self.weight_v)).map_err(tch_err("copy_"));
        }
        crate::weight_norm_out(&self.weight_v, &self.weight_g, self.dim, out)
    }

    /// The forward pass, with the weight the forward pre-hook computes. When that weight
    /// needs no graph (under `tch::no_grad`, or `g` and `v` not requiring grad), the weight
    /// computed by the last such forward is reused while `g` and `v` are unchanged (same
    /// bits); otherwise it is recomputed. While folded: the plain layer's forward.
    pub fn f_forward(&self, xs: &Tensor) -> Result<Tensor> {
        self.f_forward_t(xs, false)
    }

    /// The forward pass in training (`train = true`: the weight is always recomputed and
    /// the cached one dropped) or eval mode (as [`WeightNorm::f_forward`]). The hook API
    /// computes the same weight in both modes; only the caching differs.
    pub fn f_forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        if self.folded {
            return self.layer.forward_with_weight(xs, &self.weight_v);
        }
        let weight = if train {
            self.cache.bypass(|| self.weight())?
        } else {
            self.cache.eval_weight(&[&self.weight_g, &self.weight_v], || self.weight())?
        };
        self.layer.forward_with_weight(xs, &weight)
    }

    /// The counters of the eval-mode weight cache.
    pub fn cache_stats(&self) -> CacheStats {
        self.cache.stats()
    }

    /// Drops the cached eval-mode weight (only needed after writes the cache cannot see:
    /// through raw data pointers).
    pub fn clear_cache(&self) {
        self.cache.clear();
    }

    /// Whether the layer is folded into a plain `weight`.
    pub fn is_folded(&self) -> bool {
        self.folded
    }

    /// Folds `g * v / ‖v‖` (computed under `no_grad`) into the tensor of `weight_v`, in
    /// place, which becomes the plain `<prefix>.weight`; `weight_g` leaves the store. An
    /// optimizer holding v keeps updating the weight the layer uses. Nothing if folded.
    /// See [`super::fold`].
    pub fn fold(&mut self, vs: &VarStore) -> Result<()> {
        if self.folded {
            return Ok(());
        }
        fold::check_entries(
            vs,
            &self.path,
            &[("weight_g", &self.weight_g), ("weight_v", &self.weight_v)],
            &["weight"],
        )?;
        let weight = tch::no_grad(|| self.weight())?;
        fold::write_in_place(&self.weight_v, &weight)?;
        let group = fold::take_entry(vs, &self.path, "weight_g")?;
        drop(self.path.rename(vs, "weight_v", "weight")?);
        fold::clear_grad(&self.weight_v)?;
        fold::clear_grad(&self.weight_g)?;
        self.layer.set_weight(self.weight_v.shallow_clone());
        self.folded = true;
        self.g_group = group;
        self.cache.clear();
        Ok(())
    }

    /// Unfolds the plain weight `w`: `weight_v` is `w` (the same tensor, renamed), and
    /// `weight_g = norm_except_dim(w, 2, dim)` is written in place into the kept g, which
    /// returns to the store (in its optimizer group). Nothing if not folded.
    pub fn unfold(&mut self, vs: &VarStore) -> Result<()> {
        if !self.folded {
            return Ok(());
        }
        fold::check_entries(vs, &self.path, &[("weight", &self.weight_v)], &["weight_g", "weight_v"])?;
        fold::match_device_and_kind(&self.weight_g, &self.weight_v)?;
        let g = tch::no_grad(|| initial_g::<TchBackend>(&self.weight_v, self.dim))?;
        fold::write_in_place(&self.weight_g, &g)?;
        drop(self.path.rename(vs, "weight", "weight_v")?);
        fold::put_entry(vs, &self.path, "weight_g", &self.weight_g, self.g_group)?;
        fold::clear_grad(&self.weight_v)?;
        fold::clear_grad(&self.weight_g)?;
        self.folded = false;
        self.cache.clear();
        Ok(())
    }

    /// `remove_weight_norm`: folds `g * v / ‖v‖` into a plain `<prefix>.weight` parameter,
    /// removes `weight_g`/`weight_v` from `vs` (the store given to [`WeightNorm::new`]),
    /// and returns the layer. A folded layer is returned as it is (its `weight` is the
    /// plain parameter already).
    pub fn remove(mut self, vs: &VarStore) -> Result<L> {
        if self.folded {
            fold::check_entries(vs, &self.path, &[("weight", &self.weight_v)], &[])?;
            self.layer.set_weight(self.weight_v);
            return Ok(self.layer);
        }
        let weight = tch::no_grad(|| self.weight())?.f_detach().map_err(tch_err("detach"))?;
        drop(self.path.remove(vs, "weight_g")?);
        drop(self.path.remove(vs, "weight_v")?);
        let weight = self.path.add_parameter(vs, "weight", &weight)?;
        self.layer.set_weight(weight);
        Ok(self.layer)
    }
}

/// The variable `<prefix>.weight`, checked to be `layer`'s weight.
pub(crate) fn layer_weight<L: WeightedLayer>(vs: &VarStore, path: &ModulePath, layer: &L) -> Result<Tensor> {
    let weight = path.get(vs, "weight").ok_or_else(|| Error::MissingParameter {
        name: path.full_name("weight"),
        module: format!("the VarStore (module `{}`)", path.prefix()),
    })?;
    if weight.data_ptr() != layer.weight().data_ptr() {
        return Err(Error::invalid(
            "layer",
            format!("a layer whose weight is not `{}`", path.full_name("weight")),
            "the layer registered at that prefix",
        ));
    }
    Ok(weight)
}

impl<L: WeightedLayer> Foldable for WeightNorm<L> {
    fn is_folded(&self) -> bool {
        WeightNorm::is_folded(self)
    }
    fn fold(&mut self, vs: &VarStore) -> Result<()> {
        WeightNorm::fold(self, vs)
    }
    fn unfold(&mut self, vs: &VarStore) -> Result<()> {
        WeightNorm::unfold(self, vs)
    }
}

impl<L: WeightedLayer + std::fmt::Debug + Send> tch::nn::Module for WeightNorm<L> {
    /// Panics on a libtorch error (as tch's own layers do); use [`WeightNorm::f_forward`]
    /// to get a `Result`.
    fn forward(&self, xs: &Tensor) -> Tensor {
        match self.f_forward(xs) {
            Ok(ys) => ys,
            Err(e) => panic!("WeightNorm forward failed: {e}"),
        }
    }
}
