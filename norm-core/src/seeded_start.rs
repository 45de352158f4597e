//! A seeded warm start for spectral norm's `u`, `v` (opt-in; issue 11, item 4): standard
//! normal draws from a per-layer seed, independent of (and not consuming) any global
//! generator, the same on every device.
//!
//! The draws are computed on the host in float64, then cast to the layer's dtype and moved
//! to its device, so CPU and CUDA layers get the same values:
//!
//! - splitmix64 from `seed`: `state += 0x9E3779B97F4A7C15`, then
//!   `z = (z ^ (z >> 30)) · 0xBF58476D1CE4E5B9`, `z = (z ^ (z >> 27)) · 0x94D049BB133111EB`,
//!   `z ^ (z >> 31)` (wrapping arithmetic);
//! - Box–Muller on consecutive pairs `(a, b)` of outputs: `u₁ = ((a >> 11) + 1) / 2⁵³ ∈ (0, 1]`,
//!   `u₂ = (b >> 11) / 2⁵³ ∈ [0, 1)`, `r = sqrt(−2 ln u₁)`, giving `r cos(2π u₂)` then
//!   `r sin(2π u₂)`;
//! - `u` takes the first `h` values of this stream, `v` the next `w` (the stream continues
//!   across the two; an odd `h` leaves the pair's second value to `v`).
//!
//! The spectral-norm registrations then normalize them as PyTorch normalizes its own draws
//! (`normalize(draw, dim=0, eps)`), and iterate as they would.

/// splitmix64's next output from `state` (advanced in place).
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The stream of standard normal float64 draws of a seed (see the [module docs](self)).
///
/// ```
/// use norm_core::seeded_start::SeededNormal;
/// let mut a = SeededNormal::new(7);
/// let u = a.take(3);
/// let v = a.take(2);
/// let all = SeededNormal::new(7).take(5);
/// assert_eq!([u, v].concat(), all); // u then v: one stream
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct SeededNormal {
    state: u64,
    spare: Option<f64>,
}

impl SeededNormal {
    /// The stream of `seed`.
    pub fn new(seed: u64) -> Self {
        SeededNormal { state: seed, spare: None }
    }

    /// The next draw.
    pub fn next_normal(&mut self) -> f64 {
        if let Some(z) = self.spare.take() {
            return z;
        }
        let scale = 1.0 / (1u64 << 53) as f64;
        let u1 = ((splitmix64(&mut self.state) >> 11) + 1) as f64 * scale;
        let u2 = (splitmix64(&mut self.state) >> 11) as f64 * scale;
        let r = (-2.0 * u1.ln()).sqrt();
        let angle = 2.0 * std::f64::consts::PI * u2;
        self.spare = Some(r * angle.sin());
        r * angle.cos()
    }

    /// The next `n` draws.
    pub fn take(&mut self, n: usize) -> Vec<f64> {
        (0..n).map(|_| self.next_normal()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_matches_the_reference_sequence() {
        // Vigna's splitmix64.c from seed 0 (the first outputs, as widely tabulated).
        let mut s = 0u64;
        assert_eq!(splitmix64(&mut s), 0xE220_A839_7B1D_CDAF);
        assert_eq!(splitmix64(&mut s), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn draws_look_standard_normal_and_depend_on_the_seed() {
        let z = SeededNormal::new(1).take(20_000);
        let mean = z.iter().sum::<f64>() / z.len() as f64;
        let var = z.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / z.len() as f64;
        assert!(mean.abs() < 0.03 && (var - 1.0).abs() < 0.05, "mean {mean}, var {var}");
        assert_ne!(SeededNormal::new(1).take(4), SeededNormal::new(2).take(4));
    }
}
