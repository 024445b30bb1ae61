//! Fused self-attention for burn's flex backend: `dropout(softmax(scale·q·kᵀ + mask)) · v` with
//! the heads merged, one (batch, head) at a time through gemm on blocks that stay in cache.
//!
//! Why: as burn ops (scores matmul, mask add, softmax, dropout, matmul, then a copy to merge the
//! heads) each step writes a batch × heads × seq × keys tensor; at 128 tokens that is 12.6 MB per
//! op per layer, written and read again, and under autodiff the probabilities were kept twice (the
//! softmax's output and the dropped-out copy the matmul keeps). Here inference makes no such
//! tensor at all, and training keeps q, k, v and each query row's log-sum-exp: the backward pass
//! makes the probabilities again from them (one small gemm a head), and the dropped-out copy from
//! the dropout seed (the mask stream is `mask::keep_mask`'s, so a seed gives the same mask as
//! the unfused ops). DeBERTa's relative scores and other backends keep burn's ops
//! (`encoder/attention.rs` chooses).

use burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::{Flex, FlexTensor};
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Autodiff, Backend, DType, Dispatch};
use burn::tensor::Tensor;
use rayon::prelude::*;

use crate::kernels::mask::{splitmix, threshold_and_scale};
use crate::kernels::{dispatch, f32_tensor, isa, loops, Isa};

/// `dropout(softmax(scale·q·kᵀ + mask)) · v`, heads merged: q `[B, H, S, D]`, k and v
/// `[B, H, T, D]` (strided views are read in place), `mask` additive and broadcast to
/// `[B, H, S, T]` → `[B, S, H·D]`. `dropout` is `(seed, keep)`; `None` when off. Flex only.
pub fn attention(
    query: Tensor<4>,
    key: Tensor<4>,
    value: Tensor<4>,
    mask: Tensor<4>,
    scale: f64,
    dropout: Option<(u64, f64)>,
) -> Tensor<3> {
    let (seed, keep) = dropout.unwrap_or((0, 1.0));
    Tensor::from_dispatch(<Dispatch as FusedAttention>::fused_attention(
        query.into_dispatch(),
        key.into_dispatch(),
        value.into_dispatch(),
        mask.into_dispatch(),
        scale,
        seed,
        keep,
    ))
}

/// The backend extension: flex computes, autodiff records one node whose backward pass calls
/// `fused_backward`.
#[backend_extension(Autodiff, Flex)]
pub trait FusedAttention: Backend {
    /// The whole attention, keeping nothing (inference, or nothing tracked).
    fn fused_attention(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        mask: FloatTensor<Self>,
        scale: f64,
        seed: u64,
        keep: f64,
    ) -> FloatTensor<Self>;
    /// The attention and each query row's log-sum-exp of its scores, `[B, H, S]`: from it the
    /// backward pass makes the probabilities again (one small gemm a head) instead of keeping
    /// them (`B·H·S·T` numbers a layer).
    fn fused_attention_lse(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        mask: FloatTensor<Self>,
        scale: f64,
        seed: u64,
        keep: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);
    /// The gradients of q, k and v from the inputs, the log-sum-exp and the merged context's
    /// gradient.
    #[allow(clippy::too_many_arguments)]
    fn fused_backward(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        mask: FloatTensor<Self>,
        lse: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        scale: f64,
        seed: u64,
        keep: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

impl FusedAttention for Flex {
    fn fused_attention(
        q: FlexTensor,
        k: FlexTensor,
        v: FlexTensor,
        mask: FlexTensor,
        scale: f64,
        seed: u64,
        keep: f64,
    ) -> FlexTensor {
        Self::fused_attention_lse(q, k, v, mask, scale, seed, keep).0
    }

    fn fused_attention_lse(
        q: FlexTensor,
        k: FlexTensor,
        v: FlexTensor,
        mask: FlexTensor,
        scale: f64,
        seed: u64,
        keep: f64,
    ) -> (FlexTensor, FlexTensor) {
        let (q, k, v) = (Heads::of(&q), Heads::of(&k), Heads::of(&v));
        let mask = MaskRows::of(&mask, &q, &k);
        let drop = AttentionDropout::new(seed, keep);
        let (batch, heads, s, t) = (q.batch, q.heads, q.rows, k.rows);
        let mut out = vec![0f32; batch * s * heads * v.cols];
        let mut lse = vec![0f32; batch * heads * s];
        let ctx = SendPtr(out.as_mut_ptr());
        lse.par_chunks_mut(s.max(1)).enumerate().for_each_init(
            || vec![0f32; 2 * s * t],
            |buf, (i, lse)| {
                let (b, h) = (i / heads, i % heads);
                let (scores, probs) = buf.split_at_mut(s * t);
                scores_of(&q, &k, &mask, scale as f32, b, h, scores);
                dispatch!(softmax_rows_lse(scores, probs, lse, t));
                apply_to(probs, scores, &v, &drop, b, h, ctx);
            },
        );
        (
            f32_tensor(out, [batch, s, heads * v.cols]),
            f32_tensor(lse, [batch, heads, s]),
        )
    }

    fn fused_backward(
        q: FlexTensor,
        k: FlexTensor,
        v: FlexTensor,
        mask: FlexTensor,
        lse: FlexTensor,
        grad: FlexTensor,
        scale: f64,
        seed: u64,
        keep: f64,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let (grad, lse) = (grad.to_contiguous(), lse.to_contiguous());
        let (q, k, v) = (Heads::of(&q), Heads::of(&k), Heads::of(&v));
        let (batch, heads, s, t, d, dv) = (q.batch, q.heads, q.rows, k.rows, q.cols, v.cols);
        let start = lse.layout().start_offset();
        let pass = BackwardPass {
            mask: MaskRows::of(&mask, &q, &k),
            lse: &lse.storage::<f32>()[start..start + batch * heads * s],
            grad: Heads::merged(&grad, heads),
            drop: AttentionDropout::new(seed, keep),
            scale: scale as f32,
            q,
            k,
            v,
        };
        let mut dq = vec![0f32; batch * heads * s * d];
        let mut dk = vec![0f32; batch * heads * t * d];
        let mut dvs = vec![0f32; batch * heads * t * dv];
        let out = [&mut dq, &mut dk, &mut dvs].map(|g| SendPtr(g.as_mut_ptr()));
        tasks(&pass.q).for_each_init(
            || vec![0f32; 3 * s * t],
            |buf, (b, h)| pass.head(b, h, buf, out),
        );
        (
            f32_tensor(dq, [batch, heads, s, d]),
            f32_tensor(dk, [batch, heads, t, d]),
            f32_tensor(dvs, [batch, heads, t, dv]),
        )
    }
}

impl<B: Backend + FusedAttention, C: CheckpointStrategy> FusedAttention for Autodiff<B, C> {
    fn fused_attention(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        mask: FloatTensor<Self>,
        scale: f64,
        seed: u64,
        keep: f64,
    ) -> FloatTensor<Self> {
        let (q, q_node) = q.into_parts();
        let (k, k_node) = k.into_parts();
        let (v, v_node) = v.into_parts();
        let (mask, _) = mask.into_parts();
        let prep = AttentionBackward.prepare::<C>([q_node, k_node, v_node]);
        match prep.compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let (out, lse) = B::fused_attention_lse(
                    q.clone(),
                    k.clone(),
                    v.clone(),
                    mask.clone(),
                    scale,
                    seed,
                    keep,
                );
                prep.finish((q, k, v, mask, lse, scale, seed, keep), out)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::fused_attention(q, k, v, mask, scale, seed, keep))
            }
        }
    }

    // The autodiff node calls the inner backend's versions of these two.
    fn fused_attention_lse(
        _: FloatTensor<Self>,
        _: FloatTensor<Self>,
        _: FloatTensor<Self>,
        _: FloatTensor<Self>,
        _: f64,
        _: u64,
        _: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        unreachable!("recorded by fused_attention")
    }
    fn fused_backward(
        _: FloatTensor<Self>,
        _: FloatTensor<Self>,
        _: FloatTensor<Self>,
        _: FloatTensor<Self>,
        _: FloatTensor<Self>,
        _: FloatTensor<Self>,
        _: f64,
        _: u64,
        _: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        unreachable!("recorded by fused_attention")
    }
}

#[derive(Debug)]
struct AttentionBackward;

impl<B: Backend + FusedAttention> Backward<B, 3> for AttentionBackward {
    /// q, k, v, the mask, the rows' log-sum-exp, the scale and the dropout's seed and keep.
    type State = (
        FloatTensor<B>,
        FloatTensor<B>,
        FloatTensor<B>,
        FloatTensor<B>,
        FloatTensor<B>,
        f64,
        u64,
        f64,
    );
    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        let (q, k, v, mask, lse, scale, seed, keep) = ops.state;
        let (dq, dk, dv) = B::fused_backward(q, k, v, mask, lse, grad, scale, seed, keep);
        for (node, grad) in ops.parents.into_iter().zip([dq, dk, dv]) {
            if let Some(node) = node {
                grads.register::<B>(node.id, grad);
            }
        }
    }
}

// ── the per-head steps ───────────────────────────────────────────────────────────────────────

/// `scores = scale·q·kᵀ + mask` for head (b, h).
fn scores_of(
    q: &Heads,
    k: &Heads,
    mask: &MaskRows,
    scale: f32,
    b: usize,
    h: usize,
    scores: &mut [f32],
) {
    let (s, t) = (q.rows, k.rows);
    let dst = Out::rows(scores.as_mut_ptr(), t);
    gemm_into(
        dst,
        [s, t, q.cols],
        q.matrix(b, h),
        k.matrix(b, h).t(),
        scale,
    );
    for (i, row) in scores.chunks_exact_mut(t).enumerate() {
        for (x, m) in row.iter_mut().zip(mask.row(b, h, i)) {
            *x += m;
        }
    }
}

/// What every head's backward step reads.
struct BackwardPass<'a> {
    q: Heads<'a>,
    k: Heads<'a>,
    v: Heads<'a>,
    /// The merged context's gradient, `[B, S, H·D]`.
    grad: Heads<'a>,
    mask: MaskRows,
    lse: &'a [f32],
    drop: AttentionDropout,
    scale: f32,
}

impl BackwardPass<'_> {
    /// Head (b, h)'s blocks of dQ, dK and dV (`out`, each `[B, H, N, D]`), through `buf`
    /// (three seq × keys blocks).
    fn head(&self, b: usize, h: usize, buf: &mut [f32], out: [SendPtr; 3]) {
        let (s, t, d, dv) = (self.q.rows, self.k.rows, self.q.cols, self.v.cols);
        let i = b * self.q.heads + h;
        let (y, rest) = buf.split_at_mut(s * t);
        let (a, c) = rest.split_at_mut(s * t);
        let g = self.grad.matrix(b, h);
        // P again from its scores and log-sum-exp.
        scores_of(&self.q, &self.k, &self.mask, self.scale, b, h, c);
        dispatch!(exp_rows(c, &self.lse[i * s..(i + 1) * s], y, t));
        // dV = dropout(P)ᵀ · dC
        self.drop.apply(y, a, i * s * t);
        let dv_block = Out::rows(out[2].at(i * t * dv), dv);
        gemm_into(dv_block, [t, dv, s], mat(a, t).t(), g, 1.0);
        // dP = dropout'(dC · vᵀ); dS = softmax'(P, dP)
        let dp = Out::rows(c.as_mut_ptr(), t);
        gemm_into(dp, [s, t, dv], g, self.v.matrix(b, h).t(), 1.0);
        self.drop.apply(c, a, i * s * t);
        dispatch!(softmax_backward_rows(y, a, c, t));
        // dQ = scale·dS · k; dK = scale·dSᵀ · q
        let ds = mat(c, t);
        let dq = Out::rows(out[0].at(i * s * d), d);
        gemm_into(dq, [s, d, t], ds, self.k.matrix(b, h), self.scale);
        let dk = Out::rows(out[1].at(i * t * d), d);
        gemm_into(dk, [t, d, s], ds.t(), self.q.matrix(b, h), self.scale);
    }
}

/// Head (b, h)'s context `dropout(probs) · v`, written into its columns of the merged output.
fn apply_to(
    probs: &[f32],
    buf: &mut [f32],
    v: &Heads,
    drop: &AttentionDropout,
    b: usize,
    h: usize,
    ctx: SendPtr,
) {
    let (s, t) = (probs.len() / v.rows, v.rows);
    let heads = v.heads;
    let p = if drop.active() {
        drop.apply(probs, buf, (b * heads + h) * s * t);
        &*buf
    } else {
        probs
    };
    let out = Out::rows(ctx.at((b * s * heads + h) * v.cols), heads * v.cols);
    gemm_into(out, [s, v.cols, t], mat(p, t), v.matrix(b, h), 1.0);
}

/// Every (batch, head) pair, in parallel.
fn tasks(q: &Heads) -> impl IndexedParallelIterator<Item = (usize, usize)> {
    let heads = q.heads;
    (0..q.batch * heads)
        .into_par_iter()
        .map(move |i| (i / heads, i % heads))
}

/// The attention dropout: `mask::keep_mask`'s stream over the `[B, H, S, T]` probabilities.
struct AttentionDropout {
    seed: u64,
    threshold: u64,
    scale: f32,
    keep: f64,
}

impl AttentionDropout {
    fn new(seed: u64, keep: f64) -> AttentionDropout {
        let (threshold, scale) = threshold_and_scale(keep);
        AttentionDropout {
            seed,
            threshold,
            scale,
            keep,
        }
    }

    fn active(&self) -> bool {
        self.keep < 1.0
    }

    /// `dst = src ⊙ mask`, where `src` starts at element `first` of the whole tensor.
    fn apply(&self, src: &[f32], dst: &mut [f32], first: usize) {
        if !self.active() {
            dst.copy_from_slice(src);
            return;
        }
        let (mut src, mut dst, mut first) = (src, &mut *dst, first);
        if first % 2 == 1 && !src.is_empty() {
            // The odd element is the high half of its pair's number.
            let half = splitmix(self.seed, (first / 2) as u64) >> 32;
            dst[0] = if half < self.threshold {
                src[0] * self.scale
            } else {
                0.0
            };
            (src, dst, first) = (&src[1..], &mut dst[1..], first + 1);
        }
        let pair = (first / 2) as u64;
        let (seed, threshold, scale) = (self.seed, self.threshold, self.scale);
        dispatch!(dropout(src, dst, seed, pair, threshold, scale))
    }
}

// ── flex tensor plumbing ─────────────────────────────────────────────────────────────────────

/// A `[B, H, N, D]` f32 tensor read as its (b, h) matrices, in place: any non-negative strides
/// (split heads are a transposed view, an expanded prefix has batch stride 0).
struct Heads<'a> {
    data: &'a [f32],
    offset: usize,
    strides: [usize; 4],
    batch: usize,
    heads: usize,
    rows: usize,
    cols: usize,
}

impl<'a> Heads<'a> {
    fn of(t: &'a FlexTensor) -> Heads<'a> {
        assert_eq!(t.dtype(), DType::F32, "fused attention is f32");
        let layout = t.layout();
        assert!(layout.strides().iter().all(|&s| s >= 0), "negative strides");
        let [batch, heads, rows, cols] = dims4(t);
        let s = layout.strides();
        Heads {
            data: t.storage::<f32>(),
            offset: layout.start_offset(),
            strides: [s[0] as usize, s[1] as usize, s[2] as usize, s[3] as usize],
            batch,
            heads,
            rows,
            cols,
        }
    }

    /// A contiguous `[B, S, H·D]` tensor read as its heads' `[S, D]` column blocks.
    fn merged(t: &'a FlexTensor, heads: usize) -> Heads<'a> {
        assert!(
            t.layout().is_contiguous(),
            "merged heads are read contiguously"
        );
        let shape = t.layout().shape();
        let (batch, rows, width) = (shape[0], shape[1], shape[2]);
        Heads {
            data: t.storage::<f32>(),
            offset: t.layout().start_offset(),
            strides: [rows * width, width / heads, width, 1],
            batch,
            heads,
            rows,
            cols: width / heads,
        }
    }

    fn matrix(&self, b: usize, h: usize) -> Mat {
        let start = self.offset + b * self.strides[0] + h * self.strides[1];
        Mat {
            ptr: self.data[start..].as_ptr(),
            rs: self.strides[2] as isize,
            cs: self.strides[3] as isize,
        }
    }
}

/// The additive mask's row for (b, h, query i): its dims of size 1 broadcast.
struct MaskRows {
    data: Vec<f32>,
    strides: [usize; 3],
    keys: usize,
}

impl MaskRows {
    fn of(mask: &FlexTensor, q: &Heads, k: &Heads) -> MaskRows {
        let mask = mask.to_contiguous();
        let dims = dims4(&mask);
        let wanted = [q.batch, q.heads, q.rows, k.rows];
        let fits = (0..4).all(|i| dims[i] == wanted[i] || (i < 3 && dims[i] == 1));
        assert!(
            fits,
            "attention mask {dims:?} does not broadcast to {wanted:?}"
        );
        let stride = |i: usize| {
            let inner: usize = dims[i + 1..].iter().product();
            if dims[i] == 1 {
                0
            } else {
                inner
            }
        };
        MaskRows {
            data: mask.storage::<f32>()[..dims.iter().product::<usize>()].to_vec(),
            strides: [stride(0), stride(1), stride(2)],
            keys: k.rows,
        }
    }

    fn row(&self, b: usize, h: usize, i: usize) -> &[f32] {
        let start = b * self.strides[0] + h * self.strides[1] + i * self.strides[2];
        &self.data[start..start + self.keys]
    }
}

fn dims4(t: &FlexTensor) -> [usize; 4] {
    let shape = t.layout().shape();
    assert_eq!(
        shape.num_dims(),
        4,
        "attention takes [batch, heads, seq, dim] tensors"
    );
    [shape[0], shape[1], shape[2], shape[3]]
}

/// An output pointer the parallel tasks share; each writes its own disjoint block.
#[derive(Clone, Copy)]
struct SendPtr(*mut f32);
// SAFETY: tasks write disjoint elements (one (batch, head) block each) and the buffer outlives them.
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

impl SendPtr {
    fn at(self, offset: usize) -> *mut f32 {
        // SAFETY: offsets stay inside the buffer the pointer came from.
        unsafe { self.0.add(offset) }
    }
}

/// A matrix operand in place: first element, row stride, column stride (elements).
#[derive(Clone, Copy)]
struct Mat {
    ptr: *const f32,
    rs: isize,
    cs: isize,
}

impl Mat {
    fn t(self) -> Mat {
        Mat {
            ptr: self.ptr,
            rs: self.cs,
            cs: self.rs,
        }
    }
}

/// A row-major `rows × row` block.
fn mat(data: &[f32], row: usize) -> Mat {
    Mat {
        ptr: data.as_ptr(),
        rs: row as isize,
        cs: 1,
    }
}

/// A row-major output block in place: first element and row stride (elements).
#[derive(Clone, Copy)]
struct Out {
    ptr: *mut f32,
    rs: isize,
}

impl Out {
    fn rows(ptr: *mut f32, row_stride: usize) -> Out {
        Out {
            ptr,
            rs: row_stride as isize,
        }
    }
}

/// `dst = beta · lhs · rhs` for `[m, n, k]` (`m × k` times `k × n`); single-threaded: the
/// (batch, head) tasks are the parallelism.
fn gemm_into(dst: Out, [m, n, k]: [usize; 3], lhs: Mat, rhs: Mat, beta: f32) {
    // SAFETY: every operand addresses a live buffer that holds the whole m × k, k × n or m × n
    // block at its strides (the callers derive them from the tensors' layouts and shapes).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.ptr,
            1,
            dst.rs,
            false,
            lhs.ptr,
            lhs.cs,
            lhs.rs,
            rhs.ptr,
            rhs.cs,
            rhs.rs,
            0.0,
            beta,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, Distribution, Tensor};

    use crate::kernels::{seeded_dropout, softmax_last};

    const B: usize = 2;
    const H: usize = 3;
    const S: usize = 5;
    const T: usize = 7;
    const D: usize = 4;

    /// q from `[B, S, H·D]` as the encoder splits it (a strided view); k and v `[B, H, T, D]` as
    /// after a prefix joins; a mask with padded keys. S·T is odd, so heads start mid-pair in the
    /// dropout stream.
    fn inputs(device: &Device) -> (Tensor<3>, Tensor<3>, Tensor<3>, Tensor<4>) {
        let random = |dims: [usize; 3]| {
            let x = Tensor::<3>::random(dims, Distribution::Normal(0.0, 1.0), device);
            if device.is_autodiff() {
                x.require_grad()
            } else {
                x
            }
        };
        let q = random([B, S, H * D]);
        let k = random([B, T, H * D]);
        let v = random([B, T, H * D]);
        let mut mask = vec![0f32; B * T];
        mask[T - 1] = -10000.0;
        mask[T + 2] = -10000.0;
        let mask = Tensor::<1>::from_floats(mask.as_slice(), device).reshape([B, 1, 1, T]);
        (q, k, v, mask)
    }

    fn split(x: Tensor<3>) -> Tensor<4> {
        let [b, n, _] = x.dims();
        x.reshape([b, n, H, D]).swap_dims(1, 2)
    }

    fn composed(
        q: Tensor<4>,
        k: Tensor<4>,
        v: Tensor<4>,
        mask: Tensor<4>,
        dropout: Option<(u64, f64)>,
    ) -> Tensor<3> {
        let scores = q.matmul(k.swap_dims(2, 3)) * 0.5 + mask;
        let mut probs = softmax_last(scores);
        if let Some((seed, keep)) = dropout {
            probs = seeded_dropout(probs, seed, keep);
        }
        probs.matmul(v).swap_dims(1, 2).reshape([B, S, H * D])
    }

    /// The fused attention and burn's ops on the same split heads.
    fn fused_and_composed(
        (q, k, v, mask): (&Tensor<3>, &Tensor<3>, &Tensor<3>, &Tensor<4>),
        dropout: Option<(u64, f64)>,
    ) -> (Tensor<3>, Tensor<3>) {
        let heads = || (split(q.clone()), split(k.clone()), split(v.clone()));
        let (sq, sk, sv) = heads();
        let fused = super::attention(sq, sk, sv, mask.clone(), 0.5, dropout);
        let (sq, sk, sv) = heads();
        (fused, composed(sq, sk, sv, mask.clone(), dropout))
    }

    fn max_gap(a: Tensor<3>, b: Tensor<3>) -> f32 {
        (a - b).abs().max().into_scalar::<f32>()
    }

    #[test]
    fn forward_and_gradients_equal_burns_ops_with_dropout() {
        let device = Device::flex().autodiff();
        device.seed(3);
        let (q, k, v, mask) = inputs(&device);
        let weights = Tensor::<3>::random([B, S, H * D], Distribution::Normal(0.0, 1.0), &device);
        let dropout = Some((12345, 0.8));
        let gradients = |out: Tensor<3>| {
            let grads = (out * weights.clone()).sum().backward();
            [&q, &k, &v].map(|x| x.grad(&grads).expect("tracked"))
        };
        let (fused, reference) = fused_and_composed((&q, &k, &v, &mask), dropout);
        assert!(max_gap(fused.clone().inner(), reference.clone().inner()) < 1e-5);
        for (a, b) in gradients(fused).into_iter().zip(gradients(reference)) {
            let gap = max_gap(a.clone(), b);
            assert!(gap < 1e-5, "gradient gap {gap}");
            assert!(
                a.abs().max().into_scalar::<f32>() > 1e-2,
                "a zero gradient proves nothing"
            );
        }
    }

    #[test]
    fn inference_matches_and_masked_keys_get_no_weight() {
        let device = Device::flex();
        let (q, k, v, mask) = inputs(&device);
        let (fused, reference) = fused_and_composed((&q, &k, &v, &mask), None);
        assert!(max_gap(fused.clone(), reference) < 1e-5);
        // Changing a masked key's value leaves every output of its batch row unchanged.
        let moved = v.clone().slice_assign(
            [0..1, T - 1..T, 0..H * D],
            Tensor::ones([1, 1, H * D], &device) * 100.0,
        );
        let again = super::attention(split(q), split(k), split(moved), mask, 0.5, None);
        assert_eq!(max_gap(fused.narrow(0, 0, 1), again.narrow(0, 0, 1)), 0.0);
    }
}
