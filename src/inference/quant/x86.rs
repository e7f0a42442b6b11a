//! The x86-64 SIMD kernels: 8-bit and Q4_1 dot products of up to four weight
//! rows with one activation row, as AVX-512 VNNI `vpdpbusd` or AVX2
//! `vpmaddubsw` + `vpmaddwd` (chosen in [`super::dispatch`]).

use super::BLOCK;
use std::arch::x86_64::*;

/// Signed × signed 8-bit products summed in fours to i32: |a| (unsigned)
/// times w with a's sign moved onto it.
macro_rules! kernel {
    ($name:ident, $inner:ident, $features:literal, $dot:ident) => {
        pub(super) fn $name(
            blocks: usize,
            count: usize,
            weights: &[i8],
            weight_scales: &[f32],
            activations: &[i8],
            activation_scales: &[f32],
        ) -> [f32; 4] {
            let cols = blocks * BLOCK;
            assert!(count <= 4 && weights.len() >= count * cols);
            assert!(weight_scales.len() >= count * blocks);
            assert!(activations.len() >= cols && activation_scales.len() >= blocks);
            // SAFETY: the caller chose this kernel after checking the CPU
            // features; the asserts above bound every load.
            unsafe {
                $inner(
                    blocks,
                    count,
                    weights,
                    weight_scales,
                    activations,
                    activation_scales,
                )
            }
        }

        #[target_feature(enable = $features)]
        unsafe fn $inner(
            blocks: usize,
            count: usize,
            weights: &[i8],
            weight_scales: &[f32],
            activations: &[i8],
            activation_scales: &[f32],
        ) -> [f32; 4] {
            let cols = blocks * BLOCK;
            let mut acc = [_mm256_setzero_ps(); 4];
            let w = weights.as_ptr();
            for b in 0..blocks {
                let a = _mm256_loadu_si256(activations.as_ptr().add(b * BLOCK).cast());
                let magnitude = _mm256_sign_epi8(a, a);
                let a_scale = *activation_scales.get_unchecked(b);
                for r in 0..4 {
                    if r < count {
                        let wr = _mm256_loadu_si256(w.add(r * cols + b * BLOCK).cast());
                        let signed = _mm256_sign_epi8(wr, a);
                        let products = _mm256_cvtepi32_ps($dot(magnitude, signed));
                        let scale =
                            _mm256_set1_ps(*weight_scales.get_unchecked(r * blocks + b) * a_scale);
                        acc[r] = _mm256_fmadd_ps(products, scale, acc[r]);
                    }
                }
            }
            let mut sums = [0f32; 4];
            for r in 0..count {
                sums[r] = horizontal_sum(acc[r]);
            }
            sums
        }
    };
}

#[target_feature(enable = "avx2")]
unsafe fn horizontal_sum(v: __m256) -> f32 {
    let pair = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let pair = _mm_add_ps(pair, _mm_movehl_ps(pair, pair));
    let single = _mm_add_ss(pair, _mm_shuffle_ps(pair, pair, 1));
    _mm_cvtss_f32(single)
}

#[inline]
#[target_feature(enable = "avx2,avx512vnni,avx512vl")]
unsafe fn products_vnni(unsigned: __m256i, signed: __m256i) -> __m256i {
    _mm256_dpbusd_epi32(_mm256_setzero_si256(), unsigned, signed)
}

/// No overflow: |a| ≤ 128 and |w| ≤ 127, so a pair sums to at most 32,512.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn products_avx2(unsigned: __m256i, signed: __m256i) -> __m256i {
    _mm256_madd_epi16(_mm256_maddubs_epi16(unsigned, signed), _mm256_set1_epi16(1))
}

kernel!(
    dot_vnni,
    dot_vnni_inner,
    "avx2,fma,avx512vnni,avx512vl",
    products_vnni
);
kernel!(dot_avx2, dot_avx2_inner, "avx2,fma", products_avx2);
macro_rules! q4_kernel {
    ($name:ident, $inner:ident, $features:literal, $dot:ident) => {
        pub(super) fn $name(
            blocks: usize,
            count: usize,
            rows: &super::q4::Q4Rows,
            activations: &[i8],
            activation_scales: &[f32],
            activation_sums: &[f32],
        ) -> [f32; 4] {
            assert!(count <= 4 && rows.nibbles.len() >= count * blocks * BLOCK / 2);
            assert!(rows.scales.len() >= count * blocks && rows.minimums.len() >= count * blocks);
            assert!(activations.len() >= blocks * BLOCK);
            assert!(activation_scales.len() >= blocks && activation_sums.len() >= blocks);
            // SAFETY: chosen after checking the CPU features; the asserts
            // above bound every load.
            unsafe {
                $inner(
                    blocks,
                    count,
                    rows,
                    activations,
                    activation_scales,
                    activation_sums,
                )
            }
        }

        #[target_feature(enable = $features)]
        unsafe fn $inner(
            blocks: usize,
            count: usize,
            rows: &super::q4::Q4Rows,
            activations: &[i8],
            activation_scales: &[f32],
            activation_sums: &[f32],
        ) -> [f32; 4] {
            let low_half = _mm_set1_epi8(0x0F);
            let mut acc = [_mm256_setzero_ps(); 4];
            let mut from_minimums = [0f32; 4];
            let codes = rows.nibbles.as_ptr();
            for b in 0..blocks {
                let a = _mm256_loadu_si256(activations.as_ptr().add(b * BLOCK).cast());
                let a_scale = *activation_scales.get_unchecked(b);
                let a_sum = *activation_sums.get_unchecked(b);
                for r in 0..4 {
                    if r < count {
                        let index = r * blocks + b;
                        let packed = _mm_loadu_si128(codes.add(index * (BLOCK / 2)).cast());
                        let low = _mm_and_si128(packed, low_half);
                        let high = _mm_and_si128(_mm_srli_epi16(packed, 4), low_half);
                        let q = _mm256_set_m128i(high, low);
                        let products = _mm256_cvtepi32_ps($dot(q, a));
                        let d = widen(rows.scales.get_unchecked(index).to_bits());
                        let m = widen(rows.minimums.get_unchecked(index).to_bits());
                        acc[r] = _mm256_fmadd_ps(products, _mm256_set1_ps(d * a_scale), acc[r]);
                        from_minimums[r] += m * a_sum;
                    }
                }
            }
            let mut sums = [0f32; 4];
            for r in 0..count {
                sums[r] = horizontal_sum(acc[r]) + from_minimums[r];
            }
            sums
        }
    };
}

#[inline]
#[target_feature(enable = "f16c")]
unsafe fn widen(bits: u16) -> f32 {
    _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(i32::from(bits))))
}

q4_kernel!(
    q4_vnni,
    q4_vnni_inner,
    "avx2,fma,f16c,avx512vnni,avx512vl",
    products_vnni
);
q4_kernel!(q4_avx2, q4_avx2_inner, "avx2,fma,f16c", products_avx2);
