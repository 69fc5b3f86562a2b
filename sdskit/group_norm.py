"""Group normalisation for the fast path: torch's function, in kernels that keep a large GPU busy
at batch one, in either memory layout.

torch's CUDA kernel gives each (sample, group) pair one block of threads for its sums. The VAE
encoder normalises one 512 x 512 picture in 32 groups: 32 blocks, each summing a million
numbers, on a GPU of 132 multiprocessors. In the fast path's profile its statistics took
5.2 ms of the encoder's 23 (22 calls; sdskit.fast's MEASURED), and it works on channels-first
tensors only, so a channels_last model pays two layout copies a call. Here every sum is split
over many blocks, and the rest is elementwise, in the input's own layout. For x (N, C, P
positions), groups g of C/G channels, M = P C/G values a group:

    forward    per n and c, shifted by the channel's first value k_c (so that the variance is not
               the small difference of two large sums when the mean is far from zero):
                 S1 = sum_p (x - k_c),  S2 = sum_p (x - k_c)^2            (fp32)
               mean_c = k_c + S1 / P,  M2_c = S2 - S1^2 / P; per group (the parallel-variance
               combination): mean_g = the mean of mean_c, M2_g = sum_c M2_c + P sum_c (mean_c - mean_g)^2,
               r_g = 1 / sqrt(M2_g / M + eps)
                 y = x A + K,  A = r_g w_c,  K = b_c - mean_g A
    backward   per n and c: T1 = sum_p dy,  T2 = sum_p dy (x - mean_g)
               with xhat = (x - mean_g) r_g and dxhat = dy w_c, the derivation torch's kernel
               follows gives dx = r_g (dxhat - G1 - xhat G2), G1 = mean_g(dxhat) = sum_c w_c T1 / M,
               G2 = mean_g(dxhat xhat) = r_g sum_c w_c T2 / M; that is
                 dx = dy A + x B + K',  B = -r_g^2 G2,  K' = -r_g G1 + r_g^2 G2 mean_g
               dw_c = sum_n r_g T2,  db_c = sum_n T1

So a call is three kernels each way: the per-channel sums (each block sums a tile of positions
and channels), the per-group coefficients (one block per sample and group), and the elementwise
"u A + v B + K". On a CUDA GPU with Triton they are the Triton kernels below; elsewhere (a CPU, no
Triton) torch's operations compute the same formulas. Sums and coefficients are fp32 for an fp16
input, as in torch's kernel; outputs keep the input's dtype and layout. tests/test_group_norm.py
compares both paths (Triton's through its CPU interpreter) with torch.nn.functional.group_norm,
values and gradients, in both layouts.
"""

import os

import torch

try:  # Triton ships with torch's CUDA builds; a CPU build has none, and needs none
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - depends on the install
    triton = None

# Triton's interpreter runs its kernels on the CPU (slowly): the tests use it to check them here
INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"


def group_norm(x, groups, weight=None, bias=None, eps=1e-5):
    """torch.nn.functional.group_norm(x, groups, weight, bias, eps), for x (N, C, *spatial)."""
    if x.dim() < 3 or x.shape[1] % groups:
        raise ValueError(f"group_norm: an input of shape {tuple(x.shape)} does not split into "
                         f"{groups} groups of channels over positions")
    for name, tensor in (("weight", weight), ("bias", bias)):
        if tensor is not None and tuple(tensor.shape) != (x.shape[1],):
            raise ValueError(f"group_norm: {name} has shape {tuple(tensor.shape)}; the input has "
                             f"{x.shape[1]} channels, so it needs shape ({x.shape[1]},)")
    return _GroupNorm.apply(x, groups, weight, bias, eps)


def use_triton(x):
    """Whether x's kernels are Triton's (a CUDA tensor, Triton installed) or torch's."""
    return triton is not None and (x.is_cuda or INTERPRET)


# --- Putting it into a model while its kernels are recorded ---

def install(module):
    """Every torch.nn.GroupNorm inside `module` computes with group_norm() until remove()."""
    for m in module.modules():
        if type(m) is torch.nn.GroupNorm:
            m.forward = _Forward(m)


def remove(module):
    """Undo install()."""
    for m in module.modules():
        if isinstance(m.__dict__.get("forward"), _Forward):
            del m.forward


class _Forward:
    def __init__(self, norm):
        self.norm = norm

    def __call__(self, x):
        n = self.norm
        return group_norm(x, n.num_groups, n.weight, n.bias, n.eps)


# --- The function ---

def _flat(x):
    """x (N, C, *S) as an (N, C, P) view (both layouts flatten so), else a contiguous copy."""
    try:
        return x.view(x.shape[0], x.shape[1], -1)
    except RuntimeError:
        return x.contiguous().view(x.shape[0], x.shape[1], -1)


def _same_layout(a, b):
    """Whether a and b step through memory alike (a size-1 dimension's stride means nothing)."""
    return all(sa == sb for sa, sb, size in zip(a.stride(), b.stride(), a.shape) if size > 1)


class _GroupNorm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, groups, weight, bias, eps):
        view = _flat(x)
        ops = _TRITON if use_triton(x) else _TORCH
        mean, rstd, a, k = ops.forward_coefficients(view, groups, weight, bias, eps)
        y = ops.affine(view, a, k).view(x.shape)
        ctx.save_for_backward(x, weight, mean, rstd)
        ctx.groups = groups
        ctx.bias_dtype = None if bias is None else bias.dtype
        return y

    @staticmethod
    def backward(ctx, dy):
        x, weight, mean, rstd = ctx.saved_tensors
        view, dview = _flat(x), _flat(dy)
        if not _same_layout(dview, view):  # the same layout as x, for the elementwise kernels
            dview = torch.empty_like(view).copy_(dview)
        ops = _TRITON if use_triton(x) else _TORCH
        a, b, k, dw_n, db_n = ops.backward_coefficients(dview, view, ctx.groups, weight, mean, rstd)
        dx = ops.affine(dview, a, k, view, b).view(x.shape) if ctx.needs_input_grad[0] else None
        dw = dw_n.sum(0).to(weight.dtype) if ctx.needs_input_grad[2] else None
        db = db_n.sum(0).to(ctx.bias_dtype) if ctx.needs_input_grad[3] else None
        return dx, None, dw, db, None


# --- torch's operations (a CPU; no Triton) ---

class _TORCH:
    @staticmethod
    def forward_coefficients(view, groups, weight, bias, eps):
        n, c, p = view.shape
        xf = view.float()
        shifted = xf - xf[:, :, :1]
        s1, s2 = shifted.sum(-1), (shifted * shifted).sum(-1)          # (N, C)
        mean_c = xf[:, :, 0] + s1 / p
        m2_c = (s2 - s1 * s1 / p).clamp(min=0)
        mean_cg = mean_c.view(n, groups, -1)
        mean = mean_cg.mean(-1)                                         # (N, G)
        m2 = m2_c.view(n, groups, -1).sum(-1) + p * ((mean_cg - mean[..., None]) ** 2).sum(-1)
        rstd = torch.rsqrt(m2 / (p * (c // groups)) + eps)
        w = view.new_ones(c, dtype=torch.float32) if weight is None else weight.float()
        b = view.new_zeros(c, dtype=torch.float32) if bias is None else bias.float()
        a = _per_channel(rstd, c) * w
        return mean, rstd, a, b - _per_channel(mean, c) * a

    @staticmethod
    def backward_coefficients(dview, view, groups, weight, mean, rstd):
        n, c, p = view.shape
        xf, dyf = view.float(), dview.float()
        m_c, r_c = _per_channel(mean, c), _per_channel(rstd, c)
        t1 = dyf.sum(-1)
        t2 = (dyf * (xf - m_c[..., None])).sum(-1)                      # (N, C)
        w = view.new_ones(c, dtype=torch.float32) if weight is None else weight.float()
        count = p * (c // groups)
        g1 = _per_channel((w * t1).view(n, groups, -1).sum(-1) / count, c)
        g2 = _per_channel(rstd * (w * t2).view(n, groups, -1).sum(-1) / count, c)
        return r_c * w, -(r_c * r_c) * g2, -r_c * g1 + (r_c * r_c) * g2 * m_c, r_c * t2, t1

    @staticmethod
    def affine(u, a, k, v=None, b=None):
        """u A + K (+ v B), per sample and channel A, K, B (N, C); in u's dtype and layout."""
        result = u.float() * a[..., None] + k[..., None]
        if v is not None:
            result += v.float() * b[..., None]
        return torch.empty_like(u).copy_(result)


def _per_channel(values, c):
    """(N, G) -> (N, C): each group's value for each of its channels."""
    return values.repeat_interleave(c // values.shape[1], dim=1)


# --- Triton's kernels (a CUDA GPU) ---

class _TRITON:
    @staticmethod
    def _blocks(view):
        """Tile sizes along (positions, channels): wide along whichever of the two is contiguous."""
        if view.stride(1) == 1:   # channels_last: channels side by side
            return 64, min(64, triton.next_power_of_2(view.shape[1]))
        return 512, 2             # channels first: positions side by side

    @staticmethod
    def _sums(u, v, mean, groups):
        """Partial per-channel sums of each block of positions: (N, blocks, C) twice."""
        n, c, p = u.shape
        block_p, block_c = _TRITON._blocks(u)
        # about a thousand blocks in all (a few per multiprocessor), each summing `steps` tiles
        along_p = max(1, 1024 // (n * triton.cdiv(c, block_c)))
        per_block = block_p * triton.cdiv(p, block_p * along_p)
        blocks_p = triton.cdiv(p, per_block)
        s1 = torch.empty(n, blocks_p, c, device=u.device, dtype=torch.float32)
        s2 = torch.empty_like(s1)
        _sums_kernel[(n, blocks_p, triton.cdiv(c, block_c))](
            u, u if v is None else v, s1 if mean is None else mean, s1, s2, c, p, *u.stride(),
            per_block, c // groups, BACKWARD=v is not None, BLOCK_P=block_p, BLOCK_C=block_c)
        return s1, s2, blocks_p

    @staticmethod
    def forward_coefficients(view, groups, weight, bias, eps):
        n, c, p = view.shape
        s1, s2, blocks_p = _TRITON._sums(view, None, None, groups)
        mean = torch.empty(n, groups, device=view.device, dtype=torch.float32)
        rstd = torch.empty_like(mean)
        a, k = (torch.empty(n, c, device=view.device, dtype=torch.float32) for _ in range(2))
        _forward_coefficients_kernel[(n, groups)](
            view, s1, s2, s1 if weight is None else weight, s1 if bias is None else bias,
            mean, rstd, a, k, c, p, groups, blocks_p, view.stride(0), view.stride(1), eps, c // groups,
            HAS_W=weight is not None, HAS_B=bias is not None,
            BLOCK_CG=triton.next_power_of_2(c // groups))
        return mean, rstd, a, k

    @staticmethod
    def backward_coefficients(dview, view, groups, weight, mean, rstd):
        n, c, p = view.shape
        t1, t2, blocks_p = _TRITON._sums(dview, view, mean, groups)
        a, b, k, dw_n, db_n = (torch.empty(n, c, device=view.device, dtype=torch.float32)
                               for _ in range(5))
        _backward_coefficients_kernel[(n, groups)](
            t1, t2, t1 if weight is None else weight, mean, rstd, a, b, k, dw_n, db_n,
            c, groups, blocks_p, p * (c // groups), c // groups, HAS_W=weight is not None,
            BLOCK_CG=triton.next_power_of_2(c // groups))
        return a, b, k, dw_n, db_n

    @staticmethod
    def affine(u, a, k, v=None, b=None):
        n, c, p = u.shape
        out = torch.empty_like(u)
        block_p, block_c = _TRITON._blocks(u)
        backward = v is not None
        _affine_kernel[(n, triton.cdiv(p, block_p), triton.cdiv(c, block_c))](
            u, v if backward else u, a, b if backward else a, k, out, c, p, *u.stride(),
            BACKWARD=backward, BLOCK_P=block_p, BLOCK_C=block_c)
        return out


if triton is not None:
    @triton.jit
    def _sums_kernel(u_ptr, v_ptr, mean_ptr, s1_ptr, s2_ptr, C, P, sn, sc, sp, per_block, cpg,
                     BACKWARD: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr):
        # forward: sum (x - k_c), sum (x - k_c)^2; backward: sum dy, sum dy (x - mean_g)
        n, pb, cb = tl.program_id(0), tl.program_id(1), tl.program_id(2)
        cs = cb * BLOCK_C + tl.arange(0, BLOCK_C)
        cmask = cs < C
        if BACKWARD:
            shift = tl.load(mean_ptr + n * (C // cpg) + cs // cpg, mask=cmask, other=0.0)
        else:
            shift = tl.load(u_ptr + n * sn + cs * sc, mask=cmask, other=0.0).to(tl.float32)
        acc1 = tl.zeros([BLOCK_P, BLOCK_C], dtype=tl.float32)
        acc2 = tl.zeros([BLOCK_P, BLOCK_C], dtype=tl.float32)
        for start in range(0, per_block, BLOCK_P):
            ps = pb * per_block + start + tl.arange(0, BLOCK_P)
            mask = (ps[:, None] < P) & cmask[None, :]
            offsets = n * sn + ps[:, None] * sp + cs[None, :] * sc
            u = tl.load(u_ptr + offsets, mask=mask, other=0.0).to(tl.float32)
            if BACKWARD:
                x = tl.load(v_ptr + offsets, mask=mask, other=0.0).to(tl.float32)
                acc1 += u
                acc2 += tl.where(mask, u * (x - shift[None, :]), 0.0)
            else:
                d = tl.where(mask, u - shift[None, :], 0.0)
                acc1 += d
                acc2 += d * d
        out = (n * tl.num_programs(1) + pb) * C + cs
        tl.store(s1_ptr + out, tl.sum(acc1, axis=0), mask=cmask)
        tl.store(s2_ptr + out, tl.sum(acc2, axis=0), mask=cmask)

    @triton.jit
    def _group_sums(s1_ptr, s2_ptr, n, g, C, blocks_p, cpg, BLOCK_CG: tl.constexpr):
        """Group g's channels of sample n, and their two sums added over the blocks along p."""
        j = tl.arange(0, BLOCK_CG)
        mask = j < cpg
        cs = g * cpg + j
        t1 = tl.zeros([BLOCK_CG], dtype=tl.float32)
        t2 = tl.zeros([BLOCK_CG], dtype=tl.float32)
        for i in range(blocks_p):
            t1 += tl.load(s1_ptr + (n * blocks_p + i) * C + cs, mask=mask, other=0.0)
            t2 += tl.load(s2_ptr + (n * blocks_p + i) * C + cs, mask=mask, other=0.0)
        return cs, mask, t1, t2

    @triton.jit
    def _forward_coefficients_kernel(x_ptr, s1_ptr, s2_ptr, w_ptr, b_ptr, mean_ptr, rstd_ptr,
                                     a_ptr, k_ptr, C, P, G, blocks_p, sn, sc, eps, cpg,
                                     HAS_W: tl.constexpr, HAS_B: tl.constexpr,
                                     BLOCK_CG: tl.constexpr):
        n, g = tl.program_id(0), tl.program_id(1)
        cs, mask, t1, t2 = _group_sums(s1_ptr, s2_ptr, n, g, C, blocks_p, cpg, BLOCK_CG)
        shift = tl.load(x_ptr + n * sn + cs * sc, mask=mask, other=0.0).to(tl.float32)
        mean_c = shift + t1 / P
        m2_c = tl.maximum(t2 - t1 * t1 / P, 0.0)
        mean = tl.sum(tl.where(mask, mean_c, 0.0), axis=0) / cpg
        d = tl.where(mask, mean_c - mean, 0.0)
        m2 = tl.sum(tl.where(mask, m2_c, 0.0), axis=0) + P * tl.sum(d * d, axis=0)
        rstd = 1.0 / tl.sqrt(m2 / (cpg * P) + eps)
        tl.store(mean_ptr + n * G + g, mean)
        tl.store(rstd_ptr + n * G + g, rstd)
        w = tl.full([BLOCK_CG], 1.0, dtype=tl.float32)
        b = tl.zeros([BLOCK_CG], dtype=tl.float32)
        if HAS_W:
            w = tl.load(w_ptr + cs, mask=mask, other=1.0).to(tl.float32)
        if HAS_B:
            b = tl.load(b_ptr + cs, mask=mask, other=0.0).to(tl.float32)
        a = rstd * w
        tl.store(a_ptr + n * C + cs, a, mask=mask)
        tl.store(k_ptr + n * C + cs, b - mean * a, mask=mask)

    @triton.jit
    def _backward_coefficients_kernel(t1_ptr, t2_ptr, w_ptr, mean_ptr, rstd_ptr, a_ptr, b_ptr,
                                      k_ptr, dw_ptr, db_ptr, C, G, blocks_p, count, cpg,
                                      HAS_W: tl.constexpr, BLOCK_CG: tl.constexpr):
        n, g = tl.program_id(0), tl.program_id(1)
        cs, mask, t1, t2 = _group_sums(t1_ptr, t2_ptr, n, g, C, blocks_p, cpg, BLOCK_CG)
        w = tl.where(mask, 1.0, 0.0)
        if HAS_W:
            w = tl.load(w_ptr + cs, mask=mask, other=0.0).to(tl.float32)
        mean = tl.load(mean_ptr + n * G + g)
        rstd = tl.load(rstd_ptr + n * G + g)
        g1 = tl.sum(w * t1, axis=0) / count
        g2 = rstd * tl.sum(w * t2, axis=0) / count
        zero = tl.zeros([BLOCK_CG], dtype=tl.float32)
        tl.store(a_ptr + n * C + cs, rstd * w, mask=mask)
        tl.store(b_ptr + n * C + cs, zero - rstd * rstd * g2, mask=mask)
        tl.store(k_ptr + n * C + cs, zero - rstd * g1 + rstd * rstd * g2 * mean, mask=mask)
        tl.store(dw_ptr + n * C + cs, rstd * t2, mask=mask)
        tl.store(db_ptr + n * C + cs, t1, mask=mask)

    @triton.jit
    def _affine_kernel(u_ptr, v_ptr, a_ptr, b_ptr, k_ptr, out_ptr, C, P, sn, sc, sp,
                       BACKWARD: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr):
        # forward: u A + K; backward: u A + v B + K
        n, pb, cb = tl.program_id(0), tl.program_id(1), tl.program_id(2)
        cs = cb * BLOCK_C + tl.arange(0, BLOCK_C)
        cmask = cs < C
        ps = pb * BLOCK_P + tl.arange(0, BLOCK_P)
        mask = (ps[:, None] < P) & cmask[None, :]
        offsets = n * sn + ps[:, None] * sp + cs[None, :] * sc
        a = tl.load(a_ptr + n * C + cs, mask=cmask, other=0.0)[None, :]
        k = tl.load(k_ptr + n * C + cs, mask=cmask, other=0.0)[None, :]
        u = tl.load(u_ptr + offsets, mask=mask, other=0.0).to(tl.float32)
        if BACKWARD:
            x = tl.load(v_ptr + offsets, mask=mask, other=0.0).to(tl.float32)
            b = tl.load(b_ptr + n * C + cs, mask=cmask, other=0.0)[None, :]
            result = u * a + x * b + k
        else:
            result = u * a + k
        tl.store(out_ptr + offsets, result.to(out_ptr.dtype.element_ty), mask=mask)
