//! The quantized products against f32 and every kernel against the plain ones.

use super::dispatch::*;
use super::q4::*;
use super::q8::*;
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
