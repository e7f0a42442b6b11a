//! The machine's ceilings, measured: how many f32 floating-point operations
//! per second the cores do when they do nothing but independent fused
//! multiply-adds ([`fma_peak`]), and how many bytes per second they read from
//! memory when they do nothing but stream a buffer far larger than the caches
//! ([`read_bandwidth`]). `bench retrieval` holds the encoder's work against
//! both, so a latency target can be compared with what the machine allows in
//! the same run, not with a figure from another machine.

use std::time::{Duration, Instant};

/// Independent accumulators per thread: enough to cover the FMA latency on
/// both FMA ports of current x86 cores (4–5 cycles × 2).
const CHAINS: usize = 12;

/// Peak f32 FLOP/s over `threads` threads running at once, each for about
/// `duration`. `None` where the CPU has no AVX2 + FMA (the encoder's portable
/// loop then has no register-tile ceiling to compare with).
pub fn fma_peak(threads: usize, duration: Duration) -> Option<f64> {
    #[cfg(target_arch = "x86_64")]
    {
        if !(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")) {
            return None;
        }
        let started = Instant::now();
        let flops: f64 = std::thread::scope(|scope| {
            let runs: Vec<_> = (0..threads.max(1))
                .map(|_| scope.spawn(move || run_for(duration)))
                .collect();
            runs.into_iter().map(|r| r.join().unwrap_or(0.0)).sum()
        });
        Some(flops / started.elapsed().as_secs_f64())
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (threads, duration, CHAINS);
        None
    }
}

/// Bytes per second read by `threads` threads at once, each summing its own
/// share of a `megabytes` buffer (make it several times the last-level
/// cache) until about `duration` has passed.
pub fn read_bandwidth(threads: usize, megabytes: usize, duration: Duration) -> f64 {
    let threads = threads.max(1);
    let buffer: Vec<u64> = (0..megabytes * (1 << 20) / 8).map(|i| i as u64).collect();
    let share = buffer.len().div_ceil(threads);
    let started = Instant::now();
    let bytes: f64 = std::thread::scope(|scope| {
        let runs: Vec<_> = buffer
            .chunks(share)
            .map(|part| {
                scope.spawn(move || {
                    let mut bytes = 0.0;
                    let mut total = 0u64;
                    while started.elapsed() < duration {
                        // Four independent sums, so the adds never wait on each other.
                        let mut sums = [0u64; 4];
                        for quad in part.chunks_exact(4) {
                            for (sum, &v) in sums.iter_mut().zip(quad) {
                                *sum = sum.wrapping_add(v);
                            }
                        }
                        total = total.wrapping_add(sums.iter().fold(0, |a, &b| a.wrapping_add(b)));
                        bytes += (part.len() / 4 * 32) as f64;
                    }
                    std::hint::black_box(total);
                    bytes
                })
            })
            .collect();
        runs.into_iter().map(|r| r.join().unwrap_or(0.0)).sum()
    });
    bytes / started.elapsed().as_secs_f64()
}

/// FLOPs done by one thread in rounds until `duration` has passed.
#[cfg(target_arch = "x86_64")]
fn run_for(duration: Duration) -> f64 {
    const ROUNDS: usize = 1 << 20;
    let started = Instant::now();
    let mut flops = 0.0;
    let mut seed = 1.0f32;
    while started.elapsed() < duration {
        // SAFETY: `fma_peak` checked AVX2 and FMA.
        seed = std::hint::black_box(unsafe { fma_rounds(ROUNDS, seed) });
        flops += (ROUNDS * CHAINS * 8 * 2) as f64;
    }
    flops
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn fma_rounds(rounds: usize, seed: f32) -> f32 {
    use std::arch::x86_64::*;
    // x ← x·a + b stays bounded for |a| < 1.
    let a = _mm256_set1_ps(0.999_9);
    let b = _mm256_set1_ps(1e-4);
    let mut chains = [_mm256_set1_ps(seed); CHAINS];
    for (i, chain) in chains.iter_mut().enumerate() {
        *chain = _mm256_add_ps(*chain, _mm256_set1_ps(i as f32));
    }
    for _ in 0..rounds {
        for chain in chains.iter_mut() {
            *chain = _mm256_fmadd_ps(*chain, a, b);
        }
    }
    let mut sum = _mm256_setzero_ps();
    for chain in chains {
        sum = _mm256_add_ps(sum, chain);
    }
    let mut lanes = [0f32; 8];
    _mm256_storeu_ps(lanes.as_mut_ptr(), sum);
    lanes.iter().sum::<f32>() * 1e-9
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_peak_is_positive_where_it_can_be_measured() {
        if let Some(peak) = super::fma_peak(1, std::time::Duration::from_millis(20)) {
            // One AVX2 core does at least one 8-wide FMA every few cycles.
            assert!(peak > 1e9, "{peak}");
        }
    }

    #[test]
    fn a_small_buffer_reads_at_some_positive_rate() {
        let rate = super::read_bandwidth(2, 4, std::time::Duration::from_millis(20));
        assert!(rate > 1e8, "{rate}");
    }
}
