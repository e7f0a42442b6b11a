//! Work sharing for the encoder's kernels: [`for_each`] runs the items of one
//! product (or one attention pass) on the calling thread and on whichever
//! helper threads are awake to join it.
//!
//! A barrier pool (candle's, llama.cpp's) makes every op wait for every thread
//! to check in. On a machine with more runnable processes than cores, one
//! descheduled thread then stalls each of the thirty ops of a forward pass for
//! a time slice: a batch-1 embedding fell from about 250 to 15 sentences/s with
//! a compiler running on the other core. Here the caller claims items from a
//! shared cursor itself, a helper counts only once it has joined, and the
//! caller, when the items run out, closes the job and waits only for helpers
//! that joined (each finishing the item in its hands). A helper that is asleep
//! or descheduled costs nothing. Helpers spin for a short while after each job,
//! so the next op of the same pass finds them awake, then park.
//!
//! One job runs at a time; a second caller meanwhile runs its items inline.

use std::cell::UnsafeCell;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// `state`: the job's generation in the high 32 bits, [`OPEN`], and in the
/// low bits how many helpers have joined the current job.
const OPEN: u64 = 1 << 31;
const JOINED: u64 = OPEN - 1;
/// How long an idle helper spins before it parks.
const SPIN: Duration = Duration::from_micros(200);

type Work = dyn Fn(Range<usize>) + Sync;

struct Job {
    work: *const Work,
    items: usize,
    chunk: usize,
    cursor: AtomicUsize,
}

struct Pool {
    state: AtomicU64,
    job: UnsafeCell<Job>,
    /// Held by the caller of the running job.
    calling: Mutex<()>,
    sleepers: Mutex<usize>,
    wake: Condvar,
    helper_panicked: AtomicBool,
    helpers: usize,
}

// SAFETY: `job` is written only by the caller holding `calling`, while no
// helper has joined (the previous job is closed with zero joined), and read by
// helpers only after they joined the open job; `work` points to a closure
// that is `Sync` and outlives every helper's use of it (the caller waits).
unsafe impl Sync for Pool {}

fn pool() -> &'static Pool {
    static POOL: OnceLock<&'static Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let helpers = candle_core::utils::get_num_threads().saturating_sub(1);
        let pool: &'static Pool = Box::leak(Box::new(Pool {
            state: AtomicU64::new(0),
            job: UnsafeCell::new(Job {
                work: &|_| {},
                items: 0,
                chunk: 1,
                cursor: AtomicUsize::new(0),
            }),
            calling: Mutex::new(()),
            sleepers: Mutex::new(0),
            wake: Condvar::new(),
            helper_panicked: AtomicBool::new(false),
            helpers,
        }));
        for n in 0..helpers {
            let spawned = std::thread::Builder::new()
                .name(format!("frontdesk-kernel-{n}"))
                .spawn(move || pool.help());
            if spawned.is_err() {
                // Fewer helpers only means less parallelism.
                break;
            }
        }
        pool
    })
}

/// Runs `work` over `0..items` in ranges of about `items / (8 × threads)`,
/// on this thread and on the helpers that are free. Returns when every item
/// is done.
pub fn for_each(items: usize, work: impl Fn(Range<usize>) + Sync) {
    if items == 0 {
        return;
    }
    let pool = pool();
    let guard = match pool.calling.try_lock() {
        Ok(guard) => guard,
        Err(std::sync::TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
        Err(std::sync::TryLockError::WouldBlock) => return work(0..items),
    };
    if pool.helpers == 0 || items == 1 {
        return work(0..items);
    }
    let chunk = items.div_ceil((pool.helpers + 1) * 8).max(1);
    let work: &(dyn Fn(Range<usize>) + Sync + '_) = &work;
    // SAFETY: only the lifetime is erased; `Close` below waits, even when the
    // work panics, until no helper holds the pointer.
    let work: *const Work =
        unsafe { std::mem::transmute::<&(dyn Fn(Range<usize>) + Sync + '_), &'static Work>(work) };
    let generation = ((pool.state.load(Ordering::Acquire) >> 32) + 1) & 0xFFFF_FFFF;
    // SAFETY: the previous job is closed and no helper has joined it.
    unsafe {
        *pool.job.get() = Job {
            work,
            items,
            chunk,
            cursor: AtomicUsize::new(0),
        };
    }
    pool.state.store(generation << 32 | OPEN, Ordering::Release);
    if *pool.sleepers.lock().unwrap_or_else(|e| e.into_inner()) > 0 {
        pool.wake.notify_all();
    }
    let close = Close(pool);
    // SAFETY: the job stays in place until it is closed.
    unsafe { &*pool.job.get() }.run();
    drop(close);
    drop(guard);
    if pool.helper_panicked.swap(false, Ordering::AcqRel) {
        panic!("a kernel helper thread panicked");
    }
}

/// Closes the running job when dropped: no helper joins after that, and the
/// drop returns once those that joined have left.
struct Close(&'static Pool);

impl Drop for Close {
    fn drop(&mut self) {
        let state = &self.0.state;
        let mut joined = state.fetch_and(!OPEN, Ordering::AcqRel) & JOINED;
        let started = Instant::now();
        let mut spins = 0u32;
        while joined > 0 {
            spins = spins.wrapping_add(1);
            // Reading the clock costs more than a spin: look at it now and then.
            if !spins.is_multiple_of(64) || started.elapsed() < SPIN {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
            joined = state.load(Ordering::Acquire) & JOINED;
        }
    }
}

impl Job {
    fn run(&self) {
        loop {
            let start = self.cursor.fetch_add(self.chunk, Ordering::Relaxed);
            if start >= self.items {
                return;
            }
            // SAFETY: see `for_each`: the closure outlives the job.
            let work = unsafe { &*self.work };
            work(start..self.items.min(start + self.chunk));
        }
    }
}

impl Pool {
    fn help(&self) {
        let mut seen = self.state.load(Ordering::Acquire) >> 32;
        loop {
            // Wait for a job of a newer generation than the last one seen.
            let mut since = Instant::now();
            let mut spins = 0u32;
            let state = loop {
                let state = self.state.load(Ordering::Acquire);
                if state >> 32 != seen && state & OPEN != 0 {
                    break state;
                }
                spins = spins.wrapping_add(1);
                if !spins.is_multiple_of(64) || since.elapsed() < SPIN {
                    std::hint::spin_loop();
                    continue;
                }
                let mut sleepers = self.sleepers.lock().unwrap_or_else(|e| e.into_inner());
                *sleepers += 1;
                let state = self.state.load(Ordering::Acquire);
                if !(state >> 32 != seen && state & OPEN != 0) {
                    sleepers = self.wake.wait(sleepers).unwrap_or_else(|e| e.into_inner());
                }
                *sleepers -= 1;
                since = Instant::now();
            };
            seen = state >> 32;
            if !self.try_join(seen) {
                continue;
            }
            // SAFETY: joined to the open job, which stays in place until we leave.
            let job = unsafe { &*self.job.get() };
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.run())).is_err() {
                self.helper_panicked.store(true, Ordering::Release);
            }
            self.state.fetch_sub(1, Ordering::AcqRel);
        }
    }

    fn try_join(&self, generation: u64) -> bool {
        let mut state = self.state.load(Ordering::Acquire);
        loop {
            if state >> 32 != generation || state & OPEN == 0 {
                return false;
            }
            match self.state.compare_exchange_weak(
                state,
                state + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(now) => state = now,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_item_runs_exactly_once_whatever_the_job_size() {
        for items in [1usize, 2, 7, 64, 1000] {
            let counts: Vec<AtomicUsize> = (0..items).map(|_| AtomicUsize::new(0)).collect();
            for _ in 0..50 {
                for_each(items, |range| {
                    for i in range {
                        counts[i].fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
            assert!(
                counts.iter().all(|c| c.load(Ordering::Relaxed) == 50),
                "{items} items"
            );
        }
    }

    #[test]
    fn concurrent_callers_each_get_all_their_items() {
        let threads: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(|| {
                    let total = AtomicUsize::new(0);
                    for _ in 0..200 {
                        for_each(97, |range| {
                            total.fetch_add(range.len(), Ordering::Relaxed);
                        });
                    }
                    total.load(Ordering::Relaxed)
                })
            })
            .collect();
        for thread in threads {
            assert_eq!(thread.join().unwrap(), 97 * 200);
        }
    }
}
