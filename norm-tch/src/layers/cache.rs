//! The eval-mode weight cache every [`Normalized`](super::Normalized) layer carries
//! ([`CacheStats`]).
//!
//! Every normalized layer keeps the last weight it computed for an eval-mode forward
//! (`f_forward_t(xs, false)`, or `forward` of the weight-norm layers, whose mode does not matter) and
//! reuses it until one of its parameters or buffers changes. Changes are detected without
//! any call from the user: the key is, per tensor, ATen's version counter (bumped by every
//! in-place op: optimizer steps, `copy_` from `VarStore::load`/`copy`, `fill_`, ...), its
//! data pointer and its sizes/strides/dtype/device (which `set_data`, as in
//! `VarStore::set_kind`, changes without bumping the version). The cached weight is the
//! same computation on the same inputs as the uncached one, so its bits are the same.
//!
//! - The cache is only used when the weight needs no autograd graph: grad mode off
//!   (`tch::no_grad`), or no parameter requires grad (a frozen store). An eval forward with
//!   grad mode on and parameters requiring grad recomputes every time (so backpropagating
//!   through it gives exact gradients for g, v, ...) and drops the cached weight: that is
//!   what a training loop does.
//! - A training forward (`f_forward_t(xs, true)`) always recomputes (spectral norm
//!   iterates) and drops the cached weight.
//! - Writes the key cannot see (through raw data pointers) need
//!   [`Normalized::clear_cache`](super::Normalized::clear_cache).
//! - Memory: one weight-sized tensor per layer while an entry is cached.

use crate::ffi;
use norm_core::Result;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use tch::Tensor;

// The eval-mode weight cache.

/// Counters of a layer's eval-mode weight cache (see the [module docs](self)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Eval forwards that reused the cached weight.
    pub hits: u64,
    /// Eval forwards that computed the weight and cached it (first use, or a parameter changed).
    pub computed: u64,
    /// Forwards that computed the weight without the cache: training forwards, and eval
    /// forwards whose weight needs a graph (grad mode on, parameters requiring grad).
    pub bypassed: u64,
}

/// At most this many tensors key a cached weight (spectral norm: weight, u, v).
const MAX_KEYED: usize = 3;
type Key = [[i64; 3]; MAX_KEYED];

#[derive(Debug)]
struct Entry {
    key: Key,
    weight: Tensor,
}

/// The last eval-mode weight of a layer with the fingerprints of the tensors it came from.
/// `Send + Sync` (a mutex), as `tch::nn::Module` requires.
#[derive(Debug, Default)]
pub(crate) struct WeightCache {
    entry: Mutex<Option<Entry>>,
    hits: AtomicU64,
    computed: AtomicU64,
    bypassed: AtomicU64,
}

impl WeightCache {
    fn lock(&self) -> MutexGuard<'_, Option<Entry>> {
        // A poisoned lock only means a compute panicked; the entry is still consistent.
        self.entry.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The weight for an eval-mode forward: the cached one if the tensors `keyed` are
    /// unchanged since it was computed, else `compute()` (cached when it needs no graph).
    pub(crate) fn eval_weight(&self, keyed: &[&Tensor], compute: impl FnOnce() -> Result<Tensor>) -> Result<Tensor> {
        let mut key: Key = [[0; 3]; MAX_KEYED];
        match ffi::tensor_fingerprints(keyed, &mut key) {
            Ok(false) => {}
            // The weight needs a graph (or a tensor has no version counter): no caching.
            Ok(true) | Err(_) => return self.bypass(compute),
        }
        let mut entry = self.lock();
        if let Some(e) = entry.as_ref().filter(|e| e.key == key) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(e.weight.shallow_clone());
        }
        *entry = None; // free the stale weight before computing the new one
        let weight = compute()?;
        self.computed.fetch_add(1, Ordering::Relaxed);
        *entry = Some(Entry { key, weight: weight.shallow_clone() });
        Ok(weight)
    }

    /// `compute()` without the cache, dropping the cached weight (training forwards).
    pub(crate) fn bypass(&self, compute: impl FnOnce() -> Result<Tensor>) -> Result<Tensor> {
        self.note_bypass();
        compute()
    }

    /// What [`WeightCache::bypass`] records, for a training forward that computes its weight
    /// inside the layer's fused forward: the cached weight dropped, one bypass counted.
    pub(crate) fn note_bypass(&self) {
        self.clear();
        self.bypassed.fetch_add(1, Ordering::Relaxed);
    }

    /// Drops the cached weight.
    pub(crate) fn clear(&self) {
        *self.lock() = None;
    }

    pub(crate) fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            computed: self.computed.load(Ordering::Relaxed),
            bypassed: self.bypassed.load(Ordering::Relaxed),
        }
    }
}
