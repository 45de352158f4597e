//! Keeps `libtorch_cuda.so` linked into this crate's test and doctest binaries, as
//! norm-tch's build does for its own: `DEP_NORM_ATEN_OPS_TORCH_CUDA_LIB` is set when the
//! libtorch has CUDA, and without `--no-as-needed` the linker drops the library (nothing
//! calls it by symbol) so libtorch would see no GPU.

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_NORM_ATEN_OPS_TORCH_CUDA_LIB");
    if std::env::var_os("DEP_NORM_ATEN_OPS_TORCH_CUDA_LIB").is_some() {
        for arg in ["-Wl,--no-as-needed", "-ltorch_cuda", "-Wl,--as-needed"] {
            println!("cargo:rustc-link-arg={arg}");
        }
    }
}
