//! Quantized weight matrices and their products with f32 activations: the
//! kernels under every matrix of [`super::llama`].
//!
//! Two formats, both in blocks of 32 weights along a row:
//! - [`Q8Matrix`]: one i8 per weight and an f32 scale per block (GGUF's Q8_0
//!   with the scale widened);
//! - [`Q4Matrix`]: GGUF's Q4_1 exactly as shipped: 4-bit codes `q` and per block
//!   an f16 scale `d` and minimum `m`, the weight being `d·q + m`. At 0.625 bytes
//!   per weight instead of 1.125, decoding (which reads every weight once per
//!   token) moves 45 % fewer bytes.
//!
//! Activations are quantized to 8 bits once per product, so each block is an
//! integer dot product and a few float multiplies. On x86-64 the integer part
//! runs as AVX-512 VNNI `vpdpbusd` (one instruction per 32 weights) where the CPU
//! has it, else as AVX2 `vpmaddubsw` + `vpmaddwd`, else as plain Rust; four
//! weight rows are done together so their sums hide each other's latency. Rows
//! are shared out over candle's thread pool (the threads candle's own kernels use).

pub const BLOCK: usize = 32;

/// `rows` outputs by `cols` inputs.
pub struct Q8Matrix {
    pub rows: usize,
    pub cols: usize,
    quants: Vec<i8>,
    scales: Vec<f32>,
}

/// Activations quantized like the weights, `rows × cols`.
struct Q8Rows {
    quants: Vec<i8>,
    scales: Vec<f32>,
}

fn quantize_into(values: &[f32], quants: &mut [i8], scales: &mut [f32]) {
    for ((block, q), scale) in values
        .chunks_exact(BLOCK)
        .zip(quants.chunks_exact_mut(BLOCK))
        .zip(scales.iter_mut())
    {
        let largest = block.iter().fold(0f32, |m, v| m.max(v.abs()));
        let d = largest / 127.0;
        let inverse = if d > 0.0 { 1.0 / d } else { 0.0 };
        for (q, &v) in q.iter_mut().zip(block) {
            *q = (v * inverse).round() as i8;
        }
        *scale = d;
    }
}

impl Q8Matrix {
    /// Quantizes a row-major `rows × cols` matrix; `cols` must be a multiple of 32.
    pub fn from_f32(rows: usize, cols: usize, values: &[f32]) -> Q8Matrix {
        assert!(cols.is_multiple_of(BLOCK) && values.len() == rows * cols);
        let mut quants = vec![0i8; rows * cols];
        let mut scales = vec![0f32; rows * cols / BLOCK];
        quantize_into(values, &mut quants, &mut scales);
        Q8Matrix {
            rows,
            cols,
            quants,
            scales,
        }
    }

    /// From the raw bytes of a GGUF Q8_0 tensor (34-byte blocks: f16 scale, 32
    /// i8 codes), without changing a weight.
    pub fn from_q8_0_bytes(rows: usize, cols: usize, bytes: &[u8]) -> Option<Q8Matrix> {
        let blocks = rows * cols / BLOCK;
        if !cols.is_multiple_of(BLOCK) || bytes.len() != blocks * (2 + BLOCK) {
            return None;
        }
        let mut matrix = Q8Matrix {
            rows,
            cols,
            quants: Vec::with_capacity(rows * cols),
            scales: Vec::with_capacity(blocks),
        };
        for block in bytes.chunks_exact(2 + BLOCK) {
            matrix
                .scales
                .push(half::f16::from_le_bytes([block[0], block[1]]).to_f32());
            matrix.quants.extend(block[2..].iter().map(|&b| b as i8));
        }
        Some(matrix)
    }

    /// One matrix whose rows are those of `parts`, in order (same width).
    pub fn stacked(parts: Vec<Q8Matrix>) -> Q8Matrix {
        let cols = parts[0].cols;
        assert!(parts.iter().all(|p| p.cols == cols));
        let rows = parts.iter().map(|p| p.rows).sum();
        let mut quants = Vec::with_capacity(rows * cols);
        let mut scales = Vec::with_capacity(rows * cols / BLOCK);
        for part in parts {
            quants.extend(part.quants);
            scales.extend(part.scales);
        }
        Q8Matrix {
            rows,
            cols,
            quants,
            scales,
        }
    }

    /// Row `row`, dequantized.
    pub fn row_into(&self, row: usize, out: &mut [f32]) {
        let blocks = self.cols / BLOCK;
        let quants = &self.quants[row * self.cols..(row + 1) * self.cols];
        let scales = &self.scales[row * blocks..(row + 1) * blocks];
        for ((out, q), &d) in out
            .chunks_exact_mut(BLOCK)
            .zip(quants.chunks_exact(BLOCK))
            .zip(scales)
        {
            for (o, &q) in out.iter_mut().zip(q) {
                *o = f32::from(q) * d;
            }
        }
    }

    /// `out[i × rows + r] = Σ_c self[r][c] · input[i × cols + c]` for the `m`
    /// rows of `input`.
    pub fn apply(&self, input: &[f32], m: usize, out: &mut [f32]) {
        let activations = Q8Rows::quantize(input, m, self.cols);
        let kernel = kernel();
        let (cols, blocks) = (self.cols, self.cols / BLOCK);
        in_row_groups(
            self.rows,
            m,
            out,
            |_, _| (),
            |_, first, count, i| {
                kernel(
                    blocks,
                    count,
                    &self.quants[first * cols..(first + count) * cols],
                    &self.scales[first * blocks..(first + count) * blocks],
                    activations.quants(i, cols),
                    activations.scales(i, blocks),
                )
            },
        );
    }
}

impl Q8Rows {
    fn quantize(input: &[f32], m: usize, cols: usize) -> Q8Rows {
        assert_eq!(input.len(), m * cols);
        let mut rows = Q8Rows {
            quants: vec![0i8; m * cols],
            scales: vec![0f32; m * cols / BLOCK],
        };
        quantize_into(input, &mut rows.quants, &mut rows.scales);
        rows
    }
    fn quants(&self, row: usize, cols: usize) -> &[i8] {
        &self.quants[row * cols..(row + 1) * cols]
    }
    fn scales(&self, row: usize, blocks: usize) -> &[f32] {
        &self.scales[row * blocks..(row + 1) * blocks]
    }
    /// Per block, scale × the sum of its codes (what a Q4_1 minimum multiplies).
    fn block_sums(&self) -> Vec<f32> {
        self.quants
            .chunks_exact(BLOCK)
            .zip(&self.scales)
            .map(|(q, &d)| d * q.iter().map(|&v| i32::from(v)).sum::<i32>() as f32)
            .collect()
    }
}

/// Runs `dot(prepared, first_row, count, activation_row)` for every group of
/// four weight rows and every activation row, over candle's thread pool, and
/// stores the sums in `out` (`m × rows`). `prepare(first_row, count)` runs once
/// per group, before its activation rows.
fn in_row_groups<P>(
    rows: usize,
    m: usize,
    out: &mut [f32],
    prepare: impl Fn(usize, usize) -> P + Sync,
    dot: impl Fn(&P, usize, usize, usize) -> [f32; 4] + Sync,
) {
    assert!(out.len() >= m * rows);
    let out_address = out.as_mut_ptr() as usize;
    let work = |range: std::ops::Range<usize>| {
        for group in range {
            let first = group * 4;
            let count = (rows - first).min(4);
            let prepared = prepare(first, count);
            // The group's weights stay in L1 while every activation row passes.
            for i in 0..m {
                let sums = dot(&prepared, first, count, i);
                // SAFETY: each (i, row) element of `out` is written only by the
                // work item that owns the row's group; `out` outlives the call.
                unsafe {
                    let base = (out_address as *mut f32).add(i * rows + first);
                    for (r, &sum) in sums[..count].iter().enumerate() {
                        *base.add(r) = sum;
                    }
                }
            }
        }
    };
    candle_core::utils::barrier_pool().execute_chunked(rows.div_ceil(4), work);
}

/// Bytes of 4-bit codes per block.
const NIBBLE_BYTES: usize = BLOCK / 2;

/// GGUF Q4_1 blocks, split into codes, scales and minimums. The codes of a
/// block are 16 bytes: byte j holds weight j in its low half and weight j + 16
/// in its high half.
pub struct Q4Matrix {
    pub rows: usize,
    pub cols: usize,
    nibbles: Vec<u8>,
    scales: Vec<half::f16>,
    minimums: Vec<half::f16>,
}

impl Q4Matrix {
    /// From the raw bytes of a GGUF Q4_1 tensor (20-byte blocks: f16 d, f16 m,
    /// 16 bytes of codes), without changing a weight.
    pub fn from_q4_1_bytes(rows: usize, cols: usize, bytes: &[u8]) -> Option<Q4Matrix> {
        let blocks = rows * cols / BLOCK;
        if !cols.is_multiple_of(BLOCK) || bytes.len() != blocks * (4 + NIBBLE_BYTES) {
            return None;
        }
        let mut matrix = Q4Matrix {
            rows,
            cols,
            nibbles: Vec::with_capacity(blocks * NIBBLE_BYTES),
            scales: Vec::with_capacity(blocks),
            minimums: Vec::with_capacity(blocks),
        };
        for block in bytes.chunks_exact(4 + NIBBLE_BYTES) {
            matrix
                .scales
                .push(half::f16::from_le_bytes([block[0], block[1]]));
            matrix
                .minimums
                .push(half::f16::from_le_bytes([block[2], block[3]]));
            matrix.nibbles.extend_from_slice(&block[4..]);
        }
        Some(matrix)
    }

    pub fn stacked(parts: Vec<Q4Matrix>) -> Q4Matrix {
        let cols = parts[0].cols;
        assert!(parts.iter().all(|p| p.cols == cols));
        let rows = parts.iter().map(|p| p.rows).sum();
        let mut all = Q4Matrix {
            rows,
            cols,
            nibbles: Vec::with_capacity(rows * cols / 2),
            scales: Vec::with_capacity(rows * cols / BLOCK),
            minimums: Vec::with_capacity(rows * cols / BLOCK),
        };
        for part in parts {
            all.nibbles.extend(part.nibbles);
            all.scales.extend(part.scales);
            all.minimums.extend(part.minimums);
        }
        all
    }

    pub fn row_into(&self, row: usize, out: &mut [f32]) {
        let blocks = self.cols / BLOCK;
        for (b, out) in out.chunks_exact_mut(BLOCK).enumerate() {
            let index = row * blocks + b;
            let codes = &self.nibbles[index * NIBBLE_BYTES..(index + 1) * NIBBLE_BYTES];
            let (d, m) = (self.scales[index].to_f32(), self.minimums[index].to_f32());
            for (j, &byte) in codes.iter().enumerate() {
                out[j] = d * f32::from(byte & 0x0F) + m;
                out[j + NIBBLE_BYTES] = d * f32::from(byte >> 4) + m;
            }
        }
    }

    pub fn apply(&self, input: &[f32], m: usize, out: &mut [f32]) {
        let activations = Q8Rows::quantize(input, m, self.cols);
        let sums = activations.block_sums();
        let (cols, blocks) = (self.cols, self.cols / BLOCK);
        let rows_of = |first: usize, count: usize| Q4Rows {
            nibbles: &self.nibbles[first * cols / 2..(first + count) * cols / 2],
            scales: &self.scales[first * blocks..(first + count) * blocks],
            minimums: &self.minimums[first * blocks..(first + count) * blocks],
        };
        if m == 1 {
            // Decoding: each weight is read once, straight from its 4-bit codes.
            let kernel = q4_kernel();
            in_row_groups(
                self.rows,
                m,
                out,
                |_, _| (),
                |_, first, count, i| {
                    kernel(
                        blocks,
                        count,
                        &rows_of(first, count),
                        activations.quants(i, cols),
                        activations.scales(i, blocks),
                        &sums[i * blocks..(i + 1) * blocks],
                    )
                },
            );
            return;
        }
        // A prompt: each group is widened once to 8-bit codes c = q - 8 (so
        // w = d·c + (m + 8d)) and every activation row reuses it through the
        // 8-bit kernel, plus the minimums' share.
        let kernel = kernel();
        let widen = |first: usize, count: usize| {
            let rows = rows_of(first, count);
            let mut codes = vec![0i8; count * cols];
            for (block, out) in rows
                .nibbles
                .chunks_exact(NIBBLE_BYTES)
                .zip(codes.chunks_exact_mut(BLOCK))
            {
                for (j, &byte) in block.iter().enumerate() {
                    out[j] = (byte & 0x0F) as i8 - 8;
                    out[j + NIBBLE_BYTES] = (byte >> 4) as i8 - 8;
                }
            }
            let scales: Vec<f32> = rows.scales.iter().map(|d| d.to_f32()).collect();
            let minimums: Vec<f32> = rows
                .minimums
                .iter()
                .zip(&scales)
                .map(|(m, d)| m.to_f32() + 8.0 * d)
                .collect();
            (codes, scales, minimums)
        };
        in_row_groups(
            self.rows,
            m,
            out,
            widen,
            |(codes, scales, minimums), _, count, i| {
                let mut result = kernel(
                    blocks,
                    count,
                    codes,
                    scales,
                    activations.quants(i, cols),
                    activations.scales(i, blocks),
                );
                let row_sums = &sums[i * blocks..(i + 1) * blocks];
                for (r, value) in result.iter_mut().enumerate().take(count) {
                    *value += minimums[r * blocks..(r + 1) * blocks]
                        .iter()
                        .zip(row_sums)
                        .map(|(m, s)| m * s)
                        .sum::<f32>();
                }
                result
            },
        );
    }
}

/// A weight matrix in whichever format keeps its weights as shipped.
pub enum Matrix {
    Q8(Q8Matrix),
    Q4(Q4Matrix),
    /// Unquantized, multiplied in plain f32: the exact reference for tests.
    F32 {
        rows: usize,
        cols: usize,
        values: Vec<f32>,
    },
}

impl Matrix {
    pub fn rows(&self) -> usize {
        match self {
            Matrix::Q8(m) => m.rows,
            Matrix::Q4(m) => m.rows,
            Matrix::F32 { rows, .. } => *rows,
        }
    }
    pub fn cols(&self) -> usize {
        match self {
            Matrix::Q8(m) => m.cols,
            Matrix::Q4(m) => m.cols,
            Matrix::F32 { cols, .. } => *cols,
        }
    }
    pub fn apply(&self, input: &[f32], m: usize, out: &mut [f32]) {
        match self {
            Matrix::Q8(matrix) => matrix.apply(input, m, out),
            Matrix::Q4(matrix) => matrix.apply(input, m, out),
            Matrix::F32 { rows, cols, values } => {
                for (input, out) in input.chunks_exact(*cols).zip(out.chunks_exact_mut(*rows)) {
                    for (o, row) in out.iter_mut().zip(values.chunks_exact(*cols)) {
                        *o = row.iter().zip(input).map(|(w, x)| w * x).sum();
                    }
                }
            }
        }
    }
    pub fn row_into(&self, row: usize, out: &mut [f32]) {
        match self {
            Matrix::Q8(matrix) => matrix.row_into(row, out),
            Matrix::Q4(matrix) => matrix.row_into(row, out),
            Matrix::F32 { cols, values, .. } => {
                out.copy_from_slice(&values[row * cols..(row + 1) * cols])
            }
        }
    }
    /// The rows of `parts` in order; parts in different formats are all made Q8
    /// (or all f32 when one is).
    pub fn stacked(parts: Vec<Matrix>) -> Matrix {
        if parts.iter().any(|p| matches!(p, Matrix::F32 { .. })) {
            let cols = parts[0].cols();
            let rows = parts.iter().map(Matrix::rows).sum();
            let mut values = vec![0f32; rows * cols];
            let mut at = 0;
            for part in &parts {
                for row in 0..part.rows() {
                    part.row_into(row, &mut values[at * cols..(at + 1) * cols]);
                    at += 1;
                }
            }
            return Matrix::F32 { rows, cols, values };
        }
        if parts.iter().all(|p| matches!(p, Matrix::Q4(_))) {
            return Matrix::Q4(Q4Matrix::stacked(
                parts
                    .into_iter()
                    .filter_map(|p| match p {
                        Matrix::Q4(m) => Some(m),
                        _ => None,
                    })
                    .collect(),
            ));
        }
        Matrix::Q8(Q8Matrix::stacked(
            parts
                .into_iter()
                .map(|p| match p {
                    Matrix::Q8(m) => m,
                    Matrix::F32 { .. } => unreachable!("handled above"),
                    Matrix::Q4(m) => {
                        let mut values = vec![0f32; m.rows * m.cols];
                        for (row, out) in values.chunks_exact_mut(m.cols).enumerate() {
                            m.row_into(row, out);
                        }
                        Q8Matrix::from_f32(m.rows, m.cols, &values)
                    }
                })
                .collect(),
        ))
    }
}

/// Up to four consecutive rows of a [`Q4Matrix`].
pub(crate) struct Q4Rows<'a> {
    nibbles: &'a [u8],
    scales: &'a [half::f16],
    minimums: &'a [half::f16],
}

/// Dot products of `count` Q4 rows with one activation row: blocks, count,
/// rows, activation codes, activation scales, activation block sums.
type Q4Kernel = fn(usize, usize, &Q4Rows, &[i8], &[f32], &[f32]) -> [f32; 4];

fn q4_kernel() -> Q4Kernel {
    match simd() {
        #[cfg(target_arch = "x86_64")]
        Simd::Vnni => x86::q4_vnni,
        #[cfg(target_arch = "x86_64")]
        Simd::Avx2 => x86::q4_avx2,
        Simd::None => q4_plain,
    }
}

fn q4_plain(
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
type Kernel = fn(usize, usize, &[i8], &[f32], &[i8], &[f32]) -> [f32; 4];

fn kernel() -> Kernel {
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
fn dot_plain(
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

#[cfg(target_arch = "x86_64")]
mod x86 {
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
                            let scale = _mm256_set1_ps(
                                *weight_scales.get_unchecked(r * blocks + b) * a_scale,
                            );
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
                rows: &super::Q4Rows,
                activations: &[i8],
                activation_scales: &[f32],
                activation_sums: &[f32],
            ) -> [f32; 4] {
                assert!(count <= 4 && rows.nibbles.len() >= count * blocks * BLOCK / 2);
                assert!(
                    rows.scales.len() >= count * blocks && rows.minimums.len() >= count * blocks
                );
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
                rows: &super::Q4Rows,
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(rows: usize, cols: usize, seed: u32) -> Vec<f32> {
        let mut state = seed;
        (0..rows * cols)
            .map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (state >> 8) as f32 / (1 << 24) as f32 * 2.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn product_is_close_to_the_f32_product() {
        let (rows, cols, m) = (7, 96, 3);
        let weights = sample(rows, cols, 1);
        let input = sample(m, cols, 2);
        let matrix = Q8Matrix::from_f32(rows, cols, &weights);
        let mut out = vec![0f32; m * rows];
        matrix.apply(&input, m, &mut out);
        for i in 0..m {
            for r in 0..rows {
                let exact: f32 = (0..cols)
                    .map(|c| weights[r * cols + c] * input[i * cols + c])
                    .sum();
                assert!((out[i * rows + r] - exact).abs() < 0.05, "{i},{r}");
            }
        }
    }

    #[test]
    fn every_kernel_gives_the_plain_sums() {
        let (blocks, cols) = (5, 5 * BLOCK);
        let weights = Q8Matrix::from_f32(4, cols, &sample(4, cols, 3));
        let mut activations = vec![0i8; cols];
        let mut scales = vec![0f32; blocks];
        quantize_into(&sample(1, cols, 4), &mut activations, &mut scales);
        // Extremes too: -128 is not produced by quantizing, but must not break.
        activations[0] = -128;
        activations[1] = 127;
        let mut kernels: Vec<Kernel> = vec![kernel()];
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            kernels.push(x86::dot_avx2);
        }
        for (kernel, count) in kernels.iter().flat_map(|k| (1..=4).map(move |c| (k, c))) {
            let expected = dot_plain(
                blocks,
                count,
                &weights.quants,
                &weights.scales,
                &activations,
                &scales,
            );
            let got = kernel(
                blocks,
                count,
                &weights.quants,
                &weights.scales,
                &activations,
                &scales,
            );
            for r in 0..count {
                assert!((got[r] - expected[r]).abs() < 1e-3, "{count} rows, row {r}");
            }
        }
    }

    /// Q4_1 bytes for `rows × cols` weights drawn from `sample`.
    fn q4_sample(rows: usize, cols: usize) -> (Q4Matrix, Vec<f32>) {
        let values = sample(rows, cols, 5);
        let mut bytes = Vec::new();
        for block in values.chunks_exact(BLOCK) {
            let low = block.iter().fold(f32::MAX, |m, &v| m.min(v));
            let high = block.iter().fold(f32::MIN, |m, &v| m.max(v));
            let d = half::f16::from_f32((high - low) / 15.0);
            let m = half::f16::from_f32(low);
            bytes.extend(d.to_le_bytes());
            bytes.extend(m.to_le_bytes());
            let code = |v: f32| ((v - m.to_f32()) / d.to_f32()).round().clamp(0.0, 15.0) as u8;
            for j in 0..NIBBLE_BYTES {
                bytes.push(code(block[j]) | code(block[j + NIBBLE_BYTES]) << 4);
            }
        }
        let matrix = Q4Matrix::from_q4_1_bytes(rows, cols, &bytes).unwrap();
        let mut exact = vec![0f32; rows * cols];
        for (row, out) in exact.chunks_exact_mut(cols).enumerate() {
            matrix.row_into(row, out);
        }
        (matrix, exact)
    }

    #[test]
    fn q4_products_match_the_dequantized_weights_one_row_or_many() {
        let (rows, cols, m) = (67, 576, 37);
        let (matrix, weights) = q4_sample(rows, cols);
        let input = sample(m, cols, 6);
        let mut many = vec![0f32; m * rows];
        matrix.apply(&input, m, &mut many);
        for i in 0..m {
            let mut one = vec![0f32; rows];
            matrix.apply(&input[i * cols..(i + 1) * cols], 1, &mut one);
            for r in 0..rows {
                let terms = (0..cols).map(|c| weights[r * cols + c] * input[i * cols + c]);
                let exact: f32 = terms.clone().sum();
                let size: f32 = terms.map(f32::abs).sum();
                assert!(
                    (one[r] - exact).abs() < 0.01 * size,
                    "one row: {i},{r}: {} vs {exact}",
                    one[r]
                );
                assert!(
                    (many[i * rows + r] - one[r]).abs() < 1e-3 * size,
                    "many rows: {i},{r}: {} vs {}",
                    many[i * rows + r],
                    one[r]
                );
            }
        }
        let mut codes = [0f32; 4];
        #[allow(unused_mut)]
        let mut q4_kernels: Vec<Q4Kernel> = vec![q4_plain, q4_kernel()];
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("f16c") {
            q4_kernels.push(x86::q4_avx2);
        }
        let mut activations = vec![0i8; cols];
        let mut scales = vec![0f32; cols / BLOCK];
        quantize_into(&input[..cols], &mut activations, &mut scales);
        let sums: Vec<f32> = Q8Rows {
            quants: activations.clone(),
            scales: scales.clone(),
        }
        .block_sums();
        for kernel in q4_kernels {
            let got = kernel(
                cols / BLOCK,
                4,
                &Q4Rows {
                    nibbles: &matrix.nibbles[..4 * cols / 2],
                    scales: &matrix.scales[..4 * cols / BLOCK],
                    minimums: &matrix.minimums[..4 * cols / BLOCK],
                },
                &activations,
                &scales,
                &sums,
            );
            if codes == [0.0; 4] {
                codes = got;
            }
            for r in 0..4 {
                assert!((got[r] - codes[r]).abs() < 1e-3);
            }
        }
    }

    #[test]
    fn stacking_keeps_rows_in_order_and_rows_dequantize() {
        let a = Q8Matrix::from_f32(1, 32, &[0.5; 32]);
        let b = Q8Matrix::from_f32(2, 32, &[-1.0; 64]);
        let both = Q8Matrix::stacked(vec![a, b]);
        assert_eq!((both.rows, both.cols), (3, 32));
        let mut row = [0f32; 32];
        both.row_into(0, &mut row);
        assert!(row.iter().all(|&v| (v - 0.5).abs() < 1e-6));
        both.row_into(2, &mut row);
        assert!(row.iter().all(|&v| (v + 1.0).abs() < 1e-6));
    }
}
