//! Which kernel a product runs: the kernels' signatures, the CPU feature
//! check (AVX-512 VNNI, AVX2, none) that picks one, and the plain-Rust
//! kernels for both formats, the reference the SIMD ones are tested against.

use super::q4::{Q4Rows, NIBBLE_BYTES};
#[cfg(target_arch = "x86_64")]
use super::x86;
use super::BLOCK;

/// Dot products of `count` Q4 rows with one activation row: blocks, count,
/// rows, activation codes, activation scales, activation block sums.
pub(super) type Q4Kernel = fn(usize, usize, &Q4Rows, &[i8], &[f32], &[f32]) -> [f32; 4];

pub(super) fn q4_kernel() -> Q4Kernel {
    match simd() {
        #[cfg(target_arch = "x86_64")]
        Simd::Vnni => x86::q4_vnni,
        #[cfg(target_arch = "x86_64")]
        Simd::Avx2 => x86::q4_avx2,
        Simd::None => q4_plain,
    }
}

pub(super) fn q4_plain(
    blocks: usize,
    count: usize,
    rows: &Q4Rows,
    activations: &[i8],
    activation_scales: &[f32],
    activation_sums: &[f32],
) -> [f32; 4] {
    let mut sums = [0f32; 4];
    for (r, sum) in sums.iter_mut().enumerate().take(count) {
        for b in 0..blocks {
            let index = r * blocks + b;
            let codes = &rows.nibbles[index * NIBBLE_BYTES..(index + 1) * NIBBLE_BYTES];
            let a = &activations[b * BLOCK..(b + 1) * BLOCK];
            let mut dot = 0i32;
            for (j, &byte) in codes.iter().enumerate() {
                dot += i32::from(byte & 0x0F) * i32::from(a[j]);
                dot += i32::from(byte >> 4) * i32::from(a[j + NIBBLE_BYTES]);
            }
            *sum += rows.scales[index].to_f32() * activation_scales[b] * dot as f32
                + rows.minimums[index].to_f32() * activation_sums[b];
        }
    }
    sums
}

/// Dot products of `count` (1..=4) consecutive weight rows with one activation
/// row, all `blocks × 32` long.
pub(super) type Kernel = fn(usize, usize, &[i8], &[f32], &[i8], &[f32]) -> [f32; 4];

pub(super) fn kernel() -> Kernel {
    match simd() {
        #[cfg(target_arch = "x86_64")]
        Simd::Vnni => x86::dot_vnni,
        #[cfg(target_arch = "x86_64")]
        Simd::Avx2 => x86::dot_avx2,
        Simd::None => dot_plain,
    }
}

/// The instruction sets the kernels can use on this CPU.
#[derive(Clone, Copy)]
enum Simd {
    /// AVX-512 VNNI (on 256-bit registers) with AVX2, FMA and F16C.
    #[cfg(target_arch = "x86_64")]
    Vnni,
    /// AVX2, FMA and F16C.
    #[cfg(target_arch = "x86_64")]
    Avx2,
    None,
}

fn simd() -> Simd {
    #[cfg(target_arch = "x86_64")]
    {
        use std::sync::OnceLock;
        static LEVEL: OnceLock<Simd> = OnceLock::new();
        *LEVEL.get_or_init(|| {
            let avx2 = is_x86_feature_detected!("avx2")
                && is_x86_feature_detected!("fma")
                && is_x86_feature_detected!("f16c");
            if avx2
                && is_x86_feature_detected!("avx512vnni")
                && is_x86_feature_detected!("avx512vl")
            {
                Simd::Vnni
            } else if avx2 {
                Simd::Avx2
            } else {
                Simd::None
            }
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        Simd::None
    }
}

/// The same sums in plain Rust: the reference the SIMD kernels are tested against.
pub(super) fn dot_plain(
    blocks: usize,
    count: usize,
    weights: &[i8],
    weight_scales: &[f32],
    activations: &[i8],
    activation_scales: &[f32],
) -> [f32; 4] {
    let cols = blocks * BLOCK;
    let mut sums = [0f32; 4];
    for (r, sum) in sums.iter_mut().enumerate().take(count) {
        for b in 0..blocks {
            let w = &weights[r * cols + b * BLOCK..][..BLOCK];
            let a = &activations[b * BLOCK..][..BLOCK];
            let dot: i32 = w
                .iter()
                .zip(a)
                .map(|(&w, &a)| i32::from(w) * i32::from(a))
                .sum();
            *sum += dot as f32 * weight_scales[r * blocks + b] * activation_scales[b];
        }
    }
    sums
}
