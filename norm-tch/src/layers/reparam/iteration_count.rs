//! The number of power iterations a spectral-norm layer's last weight computation ran
//! (tolerance mode, [`norm_core::power_iteration`]), kept beside its settings: a forward
//! takes the layer by `&self`, so the count is an atomic.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Iterations run by the last weight computation (or by registration, before any).
#[derive(Debug, Default)]
pub struct IterationCount(AtomicUsize);

impl IterationCount {
    /// A count starting at `n`.
    pub fn new(n: usize) -> Self {
        IterationCount(AtomicUsize::new(n))
    }

    /// The count.
    pub fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }

    /// Records `n`.
    pub fn set(&self, n: usize) {
        self.0.store(n, Ordering::Relaxed)
    }
}

impl Clone for IterationCount {
    fn clone(&self) -> Self {
        IterationCount::new(self.get())
    }
}

impl PartialEq for IterationCount {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}
