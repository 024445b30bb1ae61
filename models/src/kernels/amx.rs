//! bf16 matrix products on Intel's AMX tiles, for the frozen backbone's projections
//! (`--precision bf16`): `a · b` with both operands rounded to bf16 and every sum kept in f32.
//!
//! Why AMX and not AVX512-BF16: on the Xeon this was written on, `vdpbf16ps` retires 63 GFLOP/s
//! on one core where f32 FMAs retire 145 (measured side by side), so a bf16 dot-product kernel
//! would be slower than the f32 GEMM; one `tdpbf16ps` multiplies a 16 × 32 by a 32 × 16 tile
//! (317 GFLOP/s on one core from L1, the same run). Elsewhere (no AMX, or the OS refuses the tile
//! state) `available()` is false and the caller keeps burn's bf16 product.
//!
//! Layouts: the left operand as rows of bf16 (`BfRows`, rounded in every product), the right one
//! as 16-column panels of bf16 pairs along the reduction (`Packed`: the VNNI layout the tile
//! instruction reads; a frozen weight is packed once per direction, `packed_once`). Rows, the
//! reduction and the columns are padded with zeros to 32.

use std::arch::asm;
use std::collections::VecDeque;
use std::mem::MaybeUninit;
use std::sync::{Arc, Mutex, OnceLock};

use rayon::prelude::*;

/// Rows, columns and reduction steps are whole tiles of this many.
const BLOCK: usize = 32;

/// Whether this CPU has AMX-BF16 and the OS lets this process use the tile registers, checked
/// once (Linux grants the tile state per process through `arch_prctl`). `PTV2_NO_AMX=1` turns it
/// off, to measure or test the fallback on an AMX machine.
pub fn available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        std::env::var_os("PTV2_NO_AMX").is_none()
            && std::arch::is_x86_feature_detected!("avx512bf16")
            && has_amx_bf16()
            && request_tile_state()
    })
}

fn has_amx_bf16() -> bool {
    // CPUID leaf 7: EDX bit 22 AMX-BF16, bit 24 AMX-TILE.
    let leaf = std::arch::x86_64::__cpuid_count(7, 0);
    leaf.edx & (1 << 22) != 0 && leaf.edx & (1 << 24) != 0
}

/// `arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`: Linux's permission for the tile data.
fn request_tile_state() -> bool {
    const SYS_ARCH_PRCTL: i64 = 158;
    const ARCH_REQ_XCOMP_PERM: i64 = 0x1023;
    const XFEATURE_XTILEDATA: i64 = 18;
    let ret: i64;
    // SAFETY: a plain Linux system call; it reads no memory. rcx and r11 are clobbered by it.
    unsafe {
        asm!("syscall", inlateout("rax") SYS_ARCH_PRCTL => ret, in("rdi") ARCH_REQ_XCOMP_PERM,
             in("rsi") XFEATURE_XTILEDATA, lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    ret == 0
}

/// f32 → bf16, rounded to nearest even (NaN stays NaN).
pub fn to_bf16(x: f32) -> u16 {
    let bits = x.to_bits();
    if x.is_nan() {
        return 0x7fc0;
    }
    ((bits + 0x7fff + ((bits >> 16) & 1)) >> 16) as u16
}

fn round_up(n: usize) -> usize {
    n.div_ceil(BLOCK) * BLOCK
}

/// A left operand: `rows` rows of `width` bf16 (both padded to 32 with zeros).
pub struct BfRows {
    data: Vec<u16>,
    rows: usize,
    width: usize,
}

impl BfRows {
    /// `x` (`rows` × `width`, row-major f32) rounded to bf16.
    pub fn from_f32(x: &[f32], rows: usize, width: usize) -> Self {
        let (padded_rows, padded_width) = (round_up(rows), round_up(width));
        let mut data = vec![0u16; padded_rows * padded_width];
        data.par_chunks_mut(padded_width)
            .zip(x.par_chunks(width))
            .for_each(|(dst, src)| round_row(src, dst));
        Self {
            data,
            rows: padded_rows,
            width: padded_width,
        }
    }
}

/// `src` rounded to bf16 into `dst`'s first `src.len()` values: 16 at a time by
/// `vcvtneps2bf16` (AVX512-BF16, which every AMX CPU has), the tail one by one.
fn round_row(src: &[f32], dst: &mut [u16]) {
    let whole = src.len() / 16 * 16;
    // SAFETY: AMX-BF16 CPUs have AVX512-BF16 (`available()` is checked before any product);
    // each load and store stays inside `src[..whole]` and `dst[..whole]`.
    unsafe { round_whole_vectors(&src[..whole], &mut dst[..whole]) };
    for (d, &s) in dst[whole..].iter_mut().zip(&src[whole..]) {
        *d = to_bf16(s);
    }
}

#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn round_whole_vectors(src: &[f32], dst: &mut [u16]) {
    use std::arch::x86_64::{
        __m256bh, __m256i, _mm256_storeu_si256, _mm512_cvtneps_pbh, _mm512_loadu_ps,
    };
    for (s, d) in src.chunks_exact(16).zip(dst.chunks_exact_mut(16)) {
        let rounded = _mm512_cvtneps_pbh(_mm512_loadu_ps(s.as_ptr()));
        _mm256_storeu_si256(
            d.as_mut_ptr().cast(),
            std::mem::transmute::<__m256bh, __m256i>(rounded),
        );
    }
}

/// A right operand of `reduction` × `cols` (both padded to 32) as 16-column panels, each
/// `[reduction / 2][16][2]` bf16: element (r, c) at panel c / 16, pair r / 2, lane c % 16, r % 2.
pub struct Packed {
    data: Vec<u16>,
    reduction: usize,
    cols: usize,
}

impl Packed {
    /// The matrix whose element (r, c) is `at(r, c)` for r < `reduction`, c < `cols`.
    pub fn new(reduction: usize, cols: usize, at: impl Fn(usize, usize) -> u16 + Sync) -> Self {
        let (padded_reduction, padded_cols) = (round_up(reduction), round_up(cols));
        let panel = padded_reduction * 16;
        let mut data = vec![0u16; padded_cols * padded_reduction];
        data.par_chunks_mut(panel)
            .enumerate()
            .for_each(|(p, panel)| {
                fill_panel(panel, p * 16..(p * 16 + 16).min(cols), reduction, &at)
            });
        Self {
            data,
            reduction: padded_reduction,
            cols: padded_cols,
        }
    }
}

/// Out of line so that `perf` names it.
#[inline(never)]
fn fill_panel(
    panel: &mut [u16],
    cols: std::ops::Range<usize>,
    reduction: usize,
    at: &impl Fn(usize, usize) -> u16,
) {
    for c in cols {
        let lane = c % 16;
        for r in 0..reduction {
            panel[(r / 2 * 16 + lane) * 2 + r % 2] = at(r, c);
        }
    }
}

/// Which frozen weight, in which direction: its storage's address identifies it while the cache
/// entry keeps that storage alive (so no other tensor can get the address meanwhile).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct WeightId {
    pub address: usize,
    /// `[rows, cols]` of the stored weight.
    pub shape: [usize; 2],
    /// Packed as wᵀ (the input gradient's operand) rather than w.
    pub transposed: bool,
}

/// Packed bytes kept at most; beyond it the oldest entries go (RoBERTa-large's frozen
/// projections, both directions: 1.2 GB).
const PACKED_BYTES_KEPT: usize = 4 << 30;

/// The packed form of a frozen weight, made by `make` once and then reused: a weight is packed
/// when it is first multiplied, not in every product (packing was 3.8% of a PT2 bf16 train step
/// and 4.6% of an evaluation pass in `perf`). `keep_alive` gives the weight's storage handle, asked
/// for only when the weight is packed (a hit costs no clone).
pub fn packed_once(
    id: WeightId,
    keep_alive: impl FnOnce() -> Box<dyn Send + Sync>,
    make: impl FnOnce() -> Packed,
) -> Arc<Packed> {
    type Entry = (WeightId, Box<dyn Send + Sync>, Arc<Packed>);
    static CACHE: Mutex<VecDeque<Entry>> = Mutex::new(VecDeque::new());
    let mut cache = CACHE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((_, _, packed)) = cache.iter().find(|(kept, _, _)| *kept == id) {
        return packed.clone();
    }
    let packed = Arc::new(make());
    cache.push_back((id, keep_alive(), packed.clone()));
    let bytes = |cache: &VecDeque<Entry>| {
        cache
            .iter()
            .map(|(_, _, p)| p.data.len() * 2)
            .sum::<usize>()
    };
    while cache.len() > 1 && bytes(&cache) > PACKED_BYTES_KEPT {
        cache.pop_front();
    }
    packed
}

/// `a · b + bias` (the bias added to every row; None: zeros) as f32, `rows` × `cols` row-major:
/// `a`'s first `rows` rows, `b`'s first `cols` columns. `available()` must be true.
pub fn matmul(a: &BfRows, b: &Packed, bias: Option<&[f32]>, rows: usize, cols: usize) -> Vec<f32> {
    assert_eq!(
        a.width, b.reduction,
        "bf16 product: reduction {} vs {}",
        a.width, b.reduction
    );
    assert!(available(), "AMX product called where AMX is unavailable");
    // Each row's accumulators start as this vector, read by a tile load of stride 0.
    let mut start = vec![0f32; b.cols];
    if let Some(bias) = bias {
        start[..cols].copy_from_slice(&bias[..cols]);
    }
    let mut out = Vec::with_capacity(a.rows * b.cols);
    whole_tiles(a, b, &start, out.spare_capacity_mut());
    // SAFETY: `whole_tiles` stored every one of the a.rows × b.cols values.
    unsafe { out.set_len(a.rows * b.cols) };
    if b.cols != cols {
        for row in 0..rows {
            out.copy_within(row * b.cols..row * b.cols + cols, row * cols);
        }
    }
    out.truncate(rows * cols);
    out
}

/// The whole padded product into `out` (`a.rows` × `b.cols`, every value stored): 32-row blocks
/// in parallel.
fn whole_tiles(a: &BfRows, b: &Packed, start: &[f32], out: &mut [MaybeUninit<f32>]) {
    out.par_chunks_mut(BLOCK * b.cols)
        .enumerate()
        .for_each(|(block, c)| {
            let a_rows = &a.data[block * BLOCK * a.width..][..BLOCK * a.width];
            // SAFETY: AMX is available (asserted by the caller); the slices hold 32 rows.
            unsafe { row_block(a_rows, a.width, b, start, c) };
        });
}

/// The tile configuration: eight 16 × 64-byte tiles (C: 0–3, A: 4–5, B: 6–7).
#[repr(C, align(64))]
struct TileConfig {
    palette: u8,
    start_row: u8,
    reserved: [u8; 14],
    bytes_per_row: [u16; 16],
    rows: [u8; 16],
}

/// 32 rows of the product: every 32-column block of `b`, the whole reduction. The tile
/// configuration is the calling thread's own, so each call loads it and releases the tiles.
unsafe fn row_block(
    a: &[u16],
    width: usize,
    b: &Packed,
    start: &[f32],
    c: &mut [MaybeUninit<f32>],
) {
    let mut config = TileConfig {
        palette: 1,
        start_row: 0,
        reserved: [0; 14],
        bytes_per_row: [0; 16],
        rows: [0; 16],
    };
    config.bytes_per_row[..8].fill(64);
    config.rows[..8].fill(16);
    asm!("ldtilecfg [{}]", in(reg) &config, options(nostack, readonly));
    let panel = b.reduction * 16;
    for col in (0..b.cols).step_by(BLOCK) {
        let (b0, b1) = (
            &b.data[col / 16 * panel..],
            &b.data[(col / 16 + 1) * panel..],
        );
        let out = c.as_mut_ptr().add(col).cast::<f32>();
        let panels = [b0.as_ptr(), b1.as_ptr()];
        let row_start = start[col..].as_ptr();
        tile_block(
            a.as_ptr(),
            width,
            panels,
            b.reduction,
            row_start,
            out,
            b.cols,
        );
    }
    asm!("tilerelease", options(nostack, nomem));
}

/// C[32 × 32] (row stride `c_cols` f32) = start + A[32 × k] (row stride `a_width` bf16) · B,
/// B as two 16-column panels of k / 2 × 16 bf16 pairs; `start` (32 f32) is every row's start.
#[inline(never)]
unsafe fn tile_block(
    a: *const u16,
    a_width: usize,
    [b0, b1]: [*const u16; 2],
    k: usize,
    start: *const f32,
    c: *mut f32,
    c_cols: usize,
) {
    let (c_stride, a_stride) = (c_cols * 4, a_width * 2);
    asm!("tileloadd tmm0, [{s0} + {zero}*1]", "tileloadd tmm1, [{s1} + {zero}*1]",
         "tileloadd tmm2, [{s0} + {zero}*1]", "tileloadd tmm3, [{s1} + {zero}*1]",
         s0 = in(reg) start, s1 = in(reg) start.add(16), zero = in(reg) 0usize,
         options(nostack, readonly));
    for step in (0..k).step_by(BLOCK) {
        asm!("tileloadd tmm4, [{a0} + {sa}*1]", "tileloadd tmm5, [{a1} + {sa}*1]",
             "tileloadd tmm6, [{b0} + {sb}*1]", "tileloadd tmm7, [{b1} + {sb}*1]",
             "tdpbf16ps tmm0, tmm4, tmm6", "tdpbf16ps tmm1, tmm4, tmm7",
             "tdpbf16ps tmm2, tmm5, tmm6", "tdpbf16ps tmm3, tmm5, tmm7",
             a0 = in(reg) a.add(step), a1 = in(reg) a.add(step + 16 * a_width), sa = in(reg) a_stride,
             b0 = in(reg) b0.add(step * 16), b1 = in(reg) b1.add(step * 16), sb = in(reg) 64usize,
             options(nostack, readonly));
    }
    let (c1, c2, c3) = (c.add(16), c.add(16 * c_cols), c.add(16 * c_cols + 16));
    asm!("tilestored [{c0} + {s}*1], tmm0", "tilestored [{c1} + {s}*1], tmm1",
         "tilestored [{c2} + {s}*1], tmm2", "tilestored [{c3} + {s}*1], tmm3",
         c0 = in(reg) c, c1 = in(reg) c1, c2 = in(reg) c2, c3 = in(reg) c3, s = in(reg) c_stride,
         options(nostack));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_bf16(x: u16) -> f32 {
        f32::from_bits((x as u32) << 16)
    }

    #[test]
    fn rounding_to_bf16_is_to_nearest_even() {
        assert_eq!(to_bf16(1.0), 0x3f80);
        // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties go to the even mantissa (1.0).
        assert_eq!(to_bf16(1.0 + 1.0 / 256.0), 0x3f80);
        assert_eq!(to_bf16(1.0 + 3.0 / 256.0), 0x3f82);
        assert_eq!(to_bf16(-2.5), 0xc020);
        assert!(from_bf16(to_bf16(f32::NAN)).is_nan());
    }

    /// Shapes that are not whole tiles, against the same bf16 operands multiplied in f64.
    #[test]
    fn the_tile_product_equals_the_bf16_operands_product() {
        if !available() {
            eprintln!("skipped: no AMX-BF16 here (or PTV2_NO_AMX set)");
            return;
        }
        for (m, k, n) in [(37, 50, 70), (32, 64, 32), (1, 3, 5), (70, 384, 100)] {
            let x: Vec<f32> = (0..m * k)
                .map(|i| ((i * 7919 % 101) as f32 - 50.0) / 37.0)
                .collect();
            let w: Vec<f32> = (0..k * n)
                .map(|i| ((i * 104729 % 97) as f32 - 48.0) / 53.0)
                .collect();
            let bias: Vec<f32> = (0..n).map(|j| j as f32 / 10.0).collect();
            let packed = Packed::new(k, n, |r, c| to_bf16(w[r * n + c]));
            let out = matmul(&BfRows::from_f32(&x, m, k), &packed, Some(&bias), m, n);
            assert_eq!(out.len(), m * n);
            for i in 0..m {
                for j in 0..n {
                    let exact: f64 = (0..k)
                        .map(|r| {
                            from_bf16(to_bf16(x[i * k + r])) as f64
                                * from_bf16(to_bf16(w[r * n + j])) as f64
                        })
                        .sum::<f64>()
                        + bias[j] as f64;
                    let got = out[i * n + j] as f64;
                    assert!(
                        (got - exact).abs() <= 1e-4 * (1.0 + exact.abs()),
                        "{m}×{k}×{n} at ({i},{j}): {got} vs {exact}"
                    );
                }
            }
        }
    }
    /// GFLOP/s of the tile product on MiniLM's projection shapes at 16 × 128 tokens, both
    /// directions (`cargo test --release -p ptv2-models --lib amx -- --ignored --nocapture`). Prints;
    /// asserts nothing about speed (speed is `ptv2 bench`'s).
    #[test]
    #[ignore]
    fn tile_product_throughput() {
        if !available() {
            return;
        }
        for (m, k, n) in [(2048, 384, 384), (2048, 384, 1536), (2048, 1536, 384)] {
            let x = vec![0.5f32; m * k];
            let packed = Packed::new(k, n, |r, c| to_bf16(((r + c) % 7) as f32));
            let rows = BfRows::from_f32(&x, m, k);
            let zeros = vec![0f32; n];
            let mut out = Vec::with_capacity(m * n);
            whole_tiles(&rows, &packed, &zeros, out.spare_capacity_mut());
            let start = std::time::Instant::now();
            let reps = 50;
            for _ in 0..reps {
                whole_tiles(&rows, &packed, &zeros, out.spare_capacity_mut());
            }
            let seconds = start.elapsed().as_secs_f64() / reps as f64;
            let gflops = 2.0 * (m * k * n) as f64 / seconds / 1e9;
            eprintln!("{m}×{k}×{n}: {gflops:.0} GFLOP/s");
        }
    }
}
