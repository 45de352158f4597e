//! `torch.nn.utils.weight_norm` (the hook API) around a [`WeightedLayer`]:
//! `weight = weight_g * weight_v / ‖weight_v‖`, recomputed on every forward with
//! `torch._weight_norm`, and [`WeightNorm::remove`] as `remove_weight_norm`.
//!
//! Registration mirrors `WeightNorm.apply`: `weight` is removed from the VarStore and
//! `weight_g = norm_except_dim(weight, 2, dim)` and `weight_v = weight` are registered
//! under the module's prefix with PyTorch's names and shapes. See
//! [`norm_core::weight_norm`] for the `dim` contract (`None` is stored as -1 and means the
//! whole tensor).

use super::WeightedLayer;
use crate::backend::{tch_err, TchBackend};
use crate::var_store::ModulePath;
use norm_core::weight_norm::{compute_weight, initial_g, WeightNormDim};
use norm_core::{Error, Result};
use tch::nn::VarStore;
use tch::Tensor;

/// A layer with weight normalization on its `weight`.
#[derive(Debug)]
pub struct WeightNorm<L: WeightedLayer> {
    layer: L,
    path: ModulePath,
    weight_g: Tensor,
    weight_v: Tensor,
    dim: WeightNormDim,
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
        Ok(WeightNorm { layer, path, weight_g, weight_v, dim })
    }

    /// `weight_g` (PyTorch's `module.weight_g`).
    pub fn weight_g(&self) -> &Tensor {
        &self.weight_g
    }

    /// `weight_v` (PyTorch's `module.weight_v`).
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
    /// the current parameters (differentiable).
    pub fn weight(&self) -> Result<Tensor> {
        compute_weight::<TchBackend>(&self.weight_v, &self.weight_g, self.dim)
    }

    /// The forward pass: the weight is recomputed first, as the forward pre-hook does.
    pub fn f_forward(&self, xs: &Tensor) -> Result<Tensor> {
        self.layer.forward_with_weight(xs, &self.weight()?)
    }

    /// `remove_weight_norm`: folds `g * v / ‖v‖` into a plain `<prefix>.weight` parameter,
    /// removes `weight_g`/`weight_v` from `vs` (the store given to [`WeightNorm::new`]),
    /// and returns the layer.
    pub fn remove(mut self, vs: &VarStore) -> Result<L> {
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
    let weight = path.get(vs, "weight").ok_or_else(|| Error::MissingParameter { name: path.full_name("weight"), module: format!("the VarStore (module `{}`)", path.prefix()) })?;
    if weight.data_ptr() != layer.weight().data_ptr() {
        return Err(Error::invalid("layer", format!("a layer whose weight is not `{}`", path.full_name("weight")), "the layer registered at that prefix"));
    }
    Ok(weight)
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
