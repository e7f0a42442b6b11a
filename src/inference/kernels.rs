//! Dense f32 kernels under the sentence encoder ([`super::bert`]): the product
//! of activations with a weight matrix packed once at load, layer
//! normalisation with its residual, the erf GELU and the attention of one head.
//!
//! [`Packed`] keeps a `Linear` weight in panels of [`PANEL`] output columns,
//! each panel contiguous along the inputs. [`linear`] walks the panels in order,
//! so every weight is read from memory once per call and its panel stays in
//! L1/L2 while all activation rows pass it. On x86-64 with AVX2 and FMA a tile
//! of up to six rows by sixteen columns accumulates in twelve registers (two
//! weight loads and six broadcasts per input); elsewhere a plain loop computes
//! the same sums. Panels are shared out by [`super::pool`], where the caller
//! works too and never waits for a helper that has not joined.

/// Output columns per panel: two AVX registers of f32.
pub const PANEL: usize = 16;
/// Activation rows per register tile.
const TILE_ROWS: usize = 6;

/// A `Linear` layer's weight (`outputs × inputs`, PyTorch's row-major layout)
/// and bias, packed for [`linear`].
pub struct Packed {
    pub inputs: usize,
    pub outputs: usize,
    /// `panels × inputs × PANEL`: element `(k, j)` of panel `p` is the weight
    /// from input `k` to output `p·PANEL + j` (zero past the last output).
    panels: Vec<f32>,
    /// Padded with zeros to a whole number of panels.
    bias: Vec<f32>,
}

impl Packed {
    pub fn new(outputs: usize, inputs: usize, weight: &[f32], bias: &[f32]) -> Packed {
        assert_eq!(weight.len(), outputs * inputs, "weight shape");
        assert_eq!(bias.len(), outputs, "bias shape");
        let count = outputs.div_ceil(PANEL);
        let mut panels = vec![0f32; count * PANEL * inputs];
        for (output, row) in weight.chunks_exact(inputs).enumerate() {
            let (panel, column) = (output / PANEL, output % PANEL);
            let base = panel * PANEL * inputs;
            for (k, &w) in row.iter().enumerate() {
                panels[base + k * PANEL + column] = w;
            }
        }
        let mut padded = bias.to_vec();
        padded.resize(count * PANEL, 0.0);
        Packed {
            inputs,
            outputs,
            panels,
            bias: padded,
        }
    }

    /// Stacks layers that read the same input (query, key and value) into one,
    /// their outputs side by side in the order given.
    pub fn stacked(inputs: usize, parts: &[(&[f32], &[f32])]) -> Packed {
        let weight: Vec<f32> = parts.iter().flat_map(|(w, _)| w.iter().copied()).collect();
        let bias: Vec<f32> = parts.iter().flat_map(|(_, b)| b.iter().copied()).collect();
        Packed::new(bias.len(), inputs, &weight, &bias)
    }

    /// Bytes of the packed weights and bias.
    pub fn bytes(&self) -> usize {
        (self.panels.len() + self.bias.len()) * std::mem::size_of::<f32>()
    }

    fn panel_count(&self) -> usize {
        self.bias.len() / PANEL
    }
}

/// What [`linear`] applies to each output before storing it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    None,
    Gelu,
}

/// `out = act(x · Wᵀ + b)` for the `rows` rows of `x` (`rows × w.inputs`);
/// `out` is `rows × w.outputs`.
pub fn linear(x: &[f32], rows: usize, w: &Packed, activation: Activation, out: &mut [f32]) {
    assert!(x.len() >= rows * w.inputs && out.len() >= rows * w.outputs);
    if rows == 0 {
        return;
    }
    let out_address = out.as_mut_ptr() as usize;
    let simd = has_avx2_fma();
    let work = |panels: std::ops::Range<usize>| {
        let mut tile = [0f32; TILE_ROWS * PANEL];
        for panel in panels {
            let weights = &w.panels[panel * PANEL * w.inputs..(panel + 1) * PANEL * w.inputs];
            let bias = &w.bias[panel * PANEL..(panel + 1) * PANEL];
            let first_column = panel * PANEL;
            let columns = (w.outputs - first_column).min(PANEL);
            let mut row = 0;
            while row < rows {
                let count = (rows - row).min(TILE_ROWS);
                let block = &x[row * w.inputs..(row + count) * w.inputs];
                compute_tile(simd, block, count, w.inputs, weights, bias, &mut tile);
                for r in 0..count {
                    let sums = &mut tile[r * PANEL..r * PANEL + columns];
                    if activation == Activation::Gelu {
                        sums.iter_mut().for_each(|v| *v = gelu(*v));
                    }
                    // SAFETY: the columns of this panel are written only by the
                    // work item that owns the panel, and `out` outlives the call.
                    unsafe {
                        let target =
                            (out_address as *mut f32).add((row + r) * w.outputs + first_column);
                        std::ptr::copy_nonoverlapping(sums.as_ptr(), target, columns);
                    }
                }
                row += count;
            }
        }
    };
    super::pool::for_each(w.panel_count(), work);
}

#[allow(clippy::too_many_arguments)]
fn compute_tile(
    simd: bool,
    x: &[f32],
    rows: usize,
    inputs: usize,
    weights: &[f32],
    bias: &[f32],
    tile: &mut [f32; TILE_ROWS * PANEL],
) {
    #[cfg(target_arch = "x86_64")]
    if simd {
        // SAFETY: `simd` is true only where the CPU has AVX2 and FMA, and the
        // slices hold `rows × inputs` activations and `inputs × PANEL` weights.
        unsafe {
            match rows {
                1 => x86::tile::<1>(x, inputs, weights, bias, tile),
                2 => x86::tile::<2>(x, inputs, weights, bias, tile),
                3 => x86::tile::<3>(x, inputs, weights, bias, tile),
                4 => x86::tile::<4>(x, inputs, weights, bias, tile),
                5 => x86::tile::<5>(x, inputs, weights, bias, tile),
                _ => x86::tile::<6>(x, inputs, weights, bias, tile),
            }
        }
        return;
    }
    let _ = simd;
    for r in 0..rows {
        let sums = &mut tile[r * PANEL..(r + 1) * PANEL];
        sums.copy_from_slice(bias);
        let row = &x[r * inputs..(r + 1) * inputs];
        for (&value, panel_row) in row.iter().zip(weights.chunks_exact(PANEL)) {
            for (sum, &w) in sums.iter_mut().zip(panel_row) {
                *sum += value * w;
            }
        }
    }
}

fn has_avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{PANEL, TILE_ROWS};
    use std::arch::x86_64::*;

    /// `R` rows of `x` times one panel, plus the bias, into `tile`.
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA; `x` holds `R × inputs` floats and
    /// `weights` `inputs × PANEL`.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn tile<const R: usize>(
        x: &[f32],
        inputs: usize,
        weights: &[f32],
        bias: &[f32],
        tile: &mut [f32; TILE_ROWS * PANEL],
    ) {
        debug_assert!(x.len() >= R * inputs && weights.len() >= inputs * PANEL);
        let (x, w) = (x.as_ptr(), weights.as_ptr());
        let low_bias = _mm256_loadu_ps(bias.as_ptr());
        let high_bias = _mm256_loadu_ps(bias.as_ptr().add(8));
        let mut low = [low_bias; R];
        let mut high = [high_bias; R];
        for k in 0..inputs {
            let w_low = _mm256_loadu_ps(w.add(k * PANEL));
            let w_high = _mm256_loadu_ps(w.add(k * PANEL + 8));
            for r in 0..R {
                let value = _mm256_broadcast_ss(&*x.add(r * inputs + k));
                low[r] = _mm256_fmadd_ps(value, w_low, low[r]);
                high[r] = _mm256_fmadd_ps(value, w_high, high[r]);
            }
        }
        for r in 0..R {
            _mm256_storeu_ps(tile.as_mut_ptr().add(r * PANEL), low[r]);
            _mm256_storeu_ps(tile.as_mut_ptr().add(r * PANEL + 8), high[r]);
        }
    }
}

/// `x = LayerNorm(x + residual)` on each row of `width` values, with the
/// layer's scale `gamma` and shift `beta`.
pub fn add_layer_norm(
    x: &mut [f32],
    residual: &[f32],
    width: usize,
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
) {
    for (row, skip) in x.chunks_exact_mut(width).zip(residual.chunks_exact(width)) {
        row.iter_mut().zip(skip).for_each(|(v, s)| *v += s);
        layer_norm_row(row, gamma, beta, eps);
    }
}

/// LayerNorm of one row in place: mean and (population) variance over the row.
pub fn layer_norm_row(row: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
    let n = row.len() as f32;
    let mean = row.iter().sum::<f32>() / n;
    let variance = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
    let inverse = 1.0 / (variance + eps).sqrt();
    for ((v, g), b) in row.iter_mut().zip(gamma).zip(beta) {
        *v = (*v - mean) * inverse * g + b;
    }
}

/// GELU with the exact (erf) form BERT was trained with: `x·Φ(x)`.
#[inline]
pub fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// The error function, by Abramowitz and Stegun's formula 7.1.26 (absolute
/// error below 1.5e-7, about f32's rounding near 1).
#[inline]
pub fn erf(x: f32) -> f32 {
    const P: f32 = 0.327_591_1;
    const A: [f32; 5] = [
        0.254_829_6,
        -0.284_496_74,
        1.421_413_8,
        -1.453_152,
        1.061_405_4,
    ];
    let z = x.abs();
    let t = 1.0 / (1.0 + P * z);
    let poly = t * (A[0] + t * (A[1] + t * (A[2] + t * (A[3] + t * A[4]))));
    let y = 1.0 - poly * (-z * z).exp();
    y.copysign(x)
}

/// One head's attention over one sequence of `tokens` tokens: for every query
/// row, a softmax over the scaled dot products with every key row, then the
/// weighted sum of the value rows into `context`. Rows are `stride` floats
/// apart; each slice starts at the head's first dimension.
pub struct HeadRows<'a> {
    pub queries: &'a [f32],
    pub keys: &'a [f32],
    pub values: &'a [f32],
    pub stride: usize,
}

pub fn attend(
    head: &HeadRows,
    tokens: usize,
    dims: usize,
    scores: &mut Vec<f32>,
    context: &mut [f32],
    context_stride: usize,
) {
    let scale = 1.0 / (dims as f32).sqrt();
    scores.resize(tokens, 0.0);
    for i in 0..tokens {
        let query = &head.queries[i * head.stride..i * head.stride + dims];
        let mut largest = f32::NEG_INFINITY;
        for (j, score) in scores.iter_mut().enumerate() {
            let key = &head.keys[j * head.stride..j * head.stride + dims];
            *score = super::embedder::dot(query, key) * scale;
            largest = largest.max(*score);
        }
        let mut total = 0.0;
        for score in scores.iter_mut() {
            *score = (*score - largest).exp();
            total += *score;
        }
        let out = &mut context[i * context_stride..i * context_stride + dims];
        out.fill(0.0);
        for (j, &score) in scores.iter().enumerate() {
            let weight = score / total;
            let value = &head.values[j * head.stride..j * head.stride + dims];
            out.iter_mut()
                .zip(value)
                .for_each(|(o, v)| *o += weight * v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, seed: f32) -> Vec<f32> {
        (0..n).map(|i| ((i as f32 + seed) * 0.731).sin()).collect()
    }

    fn reference(
        x: &[f32],
        rows: usize,
        inputs: usize,
        w: &[f32],
        b: &[f32],
        outputs: usize,
    ) -> Vec<f32> {
        let mut out = vec![0f32; rows * outputs];
        for r in 0..rows {
            for o in 0..outputs {
                let sum: f64 = (0..inputs)
                    .map(|k| x[r * inputs + k] as f64 * w[o * inputs + k] as f64)
                    .sum();
                out[r * outputs + o] = sum as f32 + b[o];
            }
        }
        out
    }

    #[test]
    fn linear_matches_the_plain_product_for_every_tile_shape() {
        // Outputs not a multiple of the panel, rows not a multiple of the tile.
        for &(rows, inputs, outputs) in &[(1, 8, 16), (7, 40, 37), (13, 384, 50), (6, 3, 1)] {
            let (x, w, b) = (
                values(rows * inputs, 1.0),
                values(outputs * inputs, 2.0),
                values(outputs, 3.0),
            );
            let packed = Packed::new(outputs, inputs, &w, &b);
            let mut out = vec![f32::NAN; rows * outputs];
            linear(&x, rows, &packed, Activation::None, &mut out);
            let expected = reference(&x, rows, inputs, &w, &b, outputs);
            for (a, e) in out.iter().zip(&expected) {
                assert!(
                    (a - e).abs() < 1e-5 * e.abs().max(1.0),
                    "{rows}x{inputs}x{outputs}: {a} vs {e}"
                );
            }
            let mut plain = [0f32; TILE_ROWS * PANEL];
            let mut fast = [0f32; TILE_ROWS * PANEL];
            let count = rows.min(TILE_ROWS);
            compute_tile(
                false,
                &x,
                count,
                inputs,
                &packed.panels[..inputs * PANEL],
                &packed.bias[..PANEL],
                &mut plain,
            );
            compute_tile(
                has_avx2_fma(),
                &x,
                count,
                inputs,
                &packed.panels[..inputs * PANEL],
                &packed.bias[..PANEL],
                &mut fast,
            );
            for (a, e) in fast.iter().zip(&plain) {
                assert!((a - e).abs() < 1e-4);
            }
        }
    }

    #[test]
    fn stacked_layers_put_their_outputs_side_by_side() {
        let (w1, b1, w2, b2) = (
            values(3 * 4, 1.0),
            values(3, 2.0),
            values(2 * 4, 3.0),
            values(2, 4.0),
        );
        let x = values(4, 5.0);
        let packed = Packed::stacked(4, &[(&w1, &b1), (&w2, &b2)]);
        let mut out = vec![0f32; 5];
        linear(&x, 1, &packed, Activation::None, &mut out);
        let mut expected = reference(&x, 1, 4, &w1, &b1, 3);
        expected.extend(reference(&x, 1, 4, &w2, &b2, 2));
        for (a, e) in out.iter().zip(&expected) {
            assert!((a - e).abs() < 1e-5);
        }
    }

    #[test]
    fn erf_and_gelu_match_known_values() {
        // erf(0.5), erf(1), erf(2) to 7 places; erf is odd.
        for &(x, e) in &[
            (0.5f32, 0.520_499_9f32),
            (1.0, 0.842_700_8),
            (2.0, 0.995_322_3),
            (0.0, 0.0),
        ] {
            assert!((erf(x) - e).abs() < 2e-7, "erf({x})");
            assert!((erf(-x) + e).abs() < 2e-7);
        }
        assert!((gelu(1.0) - 0.841_344_7).abs() < 1e-6);
        assert!(gelu(-10.0).abs() < 1e-6 && (gelu(10.0) - 10.0).abs() < 1e-5);
    }

    #[test]
    fn attention_over_one_key_returns_its_value_and_weights_sum_to_one() {
        let dims = 4;
        let (q, k, v) = (
            values(3 * dims, 1.0),
            values(3 * dims, 2.0),
            vec![1.0f32; 3 * dims],
        );
        let head = HeadRows {
            queries: &q,
            keys: &k,
            values: &v,
            stride: dims,
        };
        let mut context = vec![0f32; 3 * dims];
        attend(&head, 3, dims, &mut Vec::new(), &mut context, dims);
        // Every value row is all ones, so any convex combination is all ones.
        assert!(context.iter().all(|c| (c - 1.0).abs() < 1e-6));
    }

    #[test]
    fn layer_norm_gives_zero_mean_unit_variance_before_scale_and_shift() {
        let mut x = values(2 * 8, 1.0);
        let residual = vec![0.5f32; 16];
        add_layer_norm(&mut x, &residual, 8, &[1.0; 8], &[0.0; 8], 1e-12);
        for row in x.chunks(8) {
            let mean = row.iter().sum::<f32>() / 8.0;
            let variance = row.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / 8.0;
            assert!(mean.abs() < 1e-5 && (variance - 1.0).abs() < 1e-4);
        }
    }
}
