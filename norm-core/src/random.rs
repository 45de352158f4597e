//! Python's `random` module: MT19937 seeded as CPython's `random.seed(int)`, and
//! `random.random()` returning the same f64 as CPython for every seed.
//!
//! Seeding (CPython `random_seed` → `init_by_array`): the key is `abs(seed)` split into
//! 32-bit words, least significant first (`[0]` for seed 0), fed to the reference
//! `init_by_array`. `random()` is `(a * 2^26 + b) / 2^53` with `a = next_u32() >> 5` and
//! `b = next_u32() >> 6`, as in `_randommodule.c`.

const N: usize = 624;
const M: usize = 397;
const MATRIX_A: u32 = 0x9908_b0df;
const UPPER_MASK: u32 = 0x8000_0000;
const LOWER_MASK: u32 = 0x7fff_ffff;

/// A Mersenne Twister with CPython's seeding: `PyRandom::new(s)` then
/// [`PyRandom::random`] gives the stream of `random.seed(s); random.random()`.
#[derive(Clone)]
pub struct PyRandom {
    state: [u32; N],
    index: usize,
}

impl std::fmt::Debug for PyRandom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PyRandom").field("index", &self.index).finish_non_exhaustive()
    }
}

impl PyRandom {
    /// `random.seed(seed)` for a non-negative integer seed below 2^64.
    pub fn new(seed: u64) -> Self {
        let key: Vec<u32> = if seed >> 32 == 0 { vec![seed as u32] } else { vec![seed as u32, (seed >> 32) as u32] };
        Self::from_key(&key)
    }

    /// `random.seed(n)` for an integer `n` of any size, given as `abs(n)`'s 32-bit words,
    /// least significant first. Leading zero words are ignored, as CPython does.
    pub fn from_key(key: &[u32]) -> Self {
        let mut used = key.len();
        while used > 1 && key[used - 1] == 0 {
            used -= 1;
        }
        let key = if used == 0 { &[0u32][..] } else { &key[..used] };
        let mut rng = PyRandom { state: [0; N], index: N };
        rng.init_genrand(19_650_218);
        let (mut i, mut j) = (1usize, 0usize);
        for _ in 0..N.max(key.len()) {
            let prev = rng.state[i - 1];
            rng.state[i] = (rng.state[i] ^ (prev ^ (prev >> 30)).wrapping_mul(1_664_525))
                .wrapping_add(key[j])
                .wrapping_add(j as u32);
            i += 1;
            j += 1;
            if i >= N {
                rng.state[0] = rng.state[N - 1];
                i = 1;
            }
            if j >= key.len() {
                j = 0;
            }
        }
        for _ in 0..N - 1 {
            let prev = rng.state[i - 1];
            rng.state[i] = (rng.state[i] ^ (prev ^ (prev >> 30)).wrapping_mul(1_566_083_941)).wrapping_sub(i as u32);
            i += 1;
            if i >= N {
                rng.state[0] = rng.state[N - 1];
                i = 1;
            }
        }
        rng.state[0] = 0x8000_0000;
        rng
    }

    fn init_genrand(&mut self, s: u32) {
        self.state[0] = s;
        for i in 1..N {
            let prev = self.state[i - 1];
            self.state[i] = 1_812_433_253u32.wrapping_mul(prev ^ (prev >> 30)).wrapping_add(i as u32);
        }
        self.index = N;
    }

    fn twist(&mut self) {
        let mag01 = [0u32, MATRIX_A];
        for kk in 0..N {
            let y = (self.state[kk] & UPPER_MASK) | (self.state[(kk + 1) % N] & LOWER_MASK);
            self.state[kk] = self.state[(kk + M) % N] ^ (y >> 1) ^ mag01[(y & 1) as usize];
        }
        self.index = 0;
    }

    /// The next 32-bit output (`genrand_uint32`).
    pub fn next_u32(&mut self) -> u32 {
        if self.index >= N {
            self.twist();
        }
        let mut y = self.state[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^= y >> 18;
        y
    }

    /// `random.random()`: a float in [0, 1) with 53 random bits.
    pub fn random(&mut self) -> f64 {
        let a = (self.next_u32() >> 5) as f64;
        let b = (self.next_u32() >> 6) as f64;
        (a * 67_108_864.0 + b) * (1.0 / 9_007_199_254_740_992.0)
    }

    /// `random.getrandbits(k)` for `1 <= k <= 32`.
    pub fn getrandbits_u32(&mut self, k: u32) -> u32 {
        debug_assert!((1..=32).contains(&k));
        self.next_u32() >> (32 - k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Values printed by CPython 3.11: `random.seed(s); [random.random() for _ in range(3)]`.
    #[test]
    fn matches_cpython_small_seeds() {
        let cases: &[(u64, [f64; 3])] = &[
            (0, [0.8444218515250481, 0.7579544029403025, 0.420571580830845]),
            (1, [0.13436424411240122, 0.8474337369372327, 0.763774618976614]),
            (42, [0.6394267984578837, 0.025010755222666936, 0.27502931836911926]),
            (4_294_967_301, [0.15727238718789782, 0.2824866316461999, 0.6044540318498407]),
            (9_223_372_036_854_775_819, [0.36331966238356994, 0.9235553612208116, 0.7366714746094223]),
        ];
        for (seed, expected) in cases {
            let mut rng = PyRandom::new(*seed);
            for e in expected {
                assert_eq!(rng.random().to_bits(), e.to_bits(), "seed {seed}");
            }
        }
    }

    #[test]
    fn leading_zero_words_are_ignored() {
        let mut a = PyRandom::new(7);
        let mut b = PyRandom::from_key(&[7, 0, 0]);
        assert_eq!(a.next_u32(), b.next_u32());
    }
}
