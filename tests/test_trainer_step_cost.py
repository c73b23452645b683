"""A training step's shared cost (issue 27): the cheaper formulations give bit-identical
results to the ones they replace, and the CPU allocator setting stops the per-step page
faults."""
import subprocess
import sys
import textwrap

import pytest
import torch

from trainer.sparse_dcls import build_tap_plan, set_window_starts, sparse_dcls
from trainer.sparse_delay import _csr_matrix, _pad_steps, csr_mm


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("rows,cols,n,density", [(500, 120, 64, 0.02), (37, 300, 5, 0.3),
                                                 (20, 10, 1, 0.0)])
def test_csr_product_equals_torch_sparse_mm_bit_for_bit(dtype, rows, cols, n, density):
    g = torch.Generator().manual_seed(3)
    dense = torch.randn(rows, cols, generator=g, dtype=dtype)
    dense *= torch.rand(rows, cols, generator=g) < density
    dense[rows // 2] = 0                                     # an empty row
    A = dense.to_sparse_csr()
    A = _csr_matrix(A.crow_indices(), A.col_indices(), A.values(), A.shape)
    X = torch.randn(cols, n, generator=g, dtype=dtype)
    for _ in range(3):          # fresh results reuse freed memory: none of it may leak in
        junk = torch.full((rows, n), float("nan"), dtype=dtype)
        del junk
        out = csr_mm(A, X)
        assert out.shape == (rows, n) and out.is_contiguous()
        assert torch.equal(out, torch.sparse.mm(A, X))
    assert not torch.isnan(out).any()


FAULTS = textwrap.dedent("""
    import resource, sys, torch
    if sys.argv[1] == "keep":
        from trainer.cpu_memory import keep_freed_memory
        assert keep_freed_memory() and keep_freed_memory()
    def step():
        a = torch.empty(9 * 2 ** 20)     # 36 MB, above glibc's largest mmap threshold
        a.fill_(1.0)
    for _ in range(3):                   # the heap settles
        step()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(8):
        step()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc (Linux)")
def test_kept_memory_stops_the_page_faults_of_repeated_large_tensors():
    """Without the setting, every fresh 36 MB tensor faults in its 9,216 pages again; with
    it, the freed block is reused. Usually none of the 8 tensors is placed anew; in full test
    runs on a busy machine two, once three were (the kernel may take kept pages back), so the
    bound is half the faults without the setting."""
    faults = {}
    for mode in ("default", "keep"):
        out = subprocess.run([sys.executable, "-c", FAULTS, mode], capture_output=True,
                             text=True, check=True)
        faults[mode] = int(out.stdout.split()[-1])
    assert faults["default"] > 8 * 9000, faults
    assert faults["keep"] < faults["default"] / 2, faults


def _padded_product(x, taps, plan, gy):
    """The earlier sparse_dcls: every (synapse, tap, step) entry, the input padded with K-1
    zero steps in front and dL/dI with K-1 zero steps at the end. Returns (y, dL/dx, dL/dk)."""
    B, n_in, T = x.shape
    K, W, n_out, L = plan.K, plan.W, plan.n_out, plan.K - 1 + plan.T
    tap = (plan.a.unsqueeze(1) + torch.arange(W)).reshape(-1)
    f, b = plan.fwd, plan.bwd
    col_f = (f.col_neuron * L + tap)[f.slot] + f.step
    col_b = (b.col_neuron * L + (K - 1 - tap[b.q]))[b.slot] + b.step
    xp = _pad_steps(x.permute(1, 2, 0), K - 1, 0).view(n_in * L, B)
    A = _csr_matrix(f.crow, col_f, taps.reshape(-1)[f.slot], (n_out * T, n_in * L))
    y = torch.sparse.mm(A, xp)
    gI = gy.permute(1, 2, 0).contiguous()
    pattern = _csr_matrix(f.crow, col_f, gI.new_zeros(len(col_f)), A.shape)
    vals = torch.sparse.sampled_addmm(pattern, gI.view(n_out * T, B), xp.t(), beta=0.0).values()
    gk = torch.zeros_like(taps).view(-1).index_add_(0, f.slot, vals).view_as(taps)
    gp = _pad_steps(gI, 0, K - 1).view(n_out * L, B)
    At = _csr_matrix(b.crow, col_b, taps.reshape(-1)[b.q[b.slot]], (n_in * T, n_out * L))
    gx = torch.sparse.mm(At, gp)
    return (y.view(n_out, T, B).permute(2, 0, 1), gx.view(n_in, T, B).permute(2, 0, 1), gk)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("K,W,n_in,n_out,S,B,T", [
    (25, 5, 256, 10, 51, 64, 100),      # the readout at sparsity 0.98, late in training
    (25, 25, 40, 256, 205, 5, 100),     # the hidden layer early in training (every tap)
    (62, 40, 30, 17, 300, 1, 70),       # Loihi's largest kernel, batch 1
    (7, 4, 12, 9, 20, 3, 5),            # fewer steps than taps
])
def test_sparse_dcls_without_padding_equals_the_padded_product_bit_for_bit(
        dtype, K, W, n_in, n_out, S, B, T):
    """trainer.sparse_dcls leaves out the entries that meet zero padding for an input laid out
    (n_in, T, B), the LIF's spikes (no padded copy): currents and gradients to the input and the
    taps are the padded product's, bit for bit, on spikes and on real-valued input; the input
    is kept as is."""
    g = torch.Generator().manual_seed(K + S)
    nz = torch.randperm(n_in * n_out, generator=g)[:S].sort().values
    plan = build_tap_plan(nz // n_in, nz % n_in, W, n_in, n_out, K, T)
    set_window_starts(plan, torch.randint(0, K - W + 1, (S,), generator=g))
    taps = torch.randn(S, W, generator=g, dtype=dtype).requires_grad_()
    for x in ((torch.rand(B, n_in, T, generator=g) < 0.2).to(dtype),
              torch.randn(B, n_in, T, generator=g, dtype=dtype)):
        x = x.permute(1, 2, 0).contiguous().permute(2, 0, 1)    # laid out as the LIF's spikes
        x = x.requires_grad_()
        gy = torch.randn(B, n_out, T, generator=g, dtype=dtype)
        y = sparse_dcls(x, taps, plan)
        gx, gk = torch.autograd.grad(y, (x, taps), gy)
        ref_y, ref_gx, ref_gk = _padded_product(x.detach(), taps.detach(), plan, gy)
        assert torch.equal(y, ref_y) and torch.equal(gx, ref_gx) and torch.equal(gk, ref_gk)
        assert gk.abs().sum() > 0 and gx.abs().sum() > 0
    # the LIF's spikes come laid out (n_in, T, B): used in place, no padded copy kept
    x = torch.rand(n_in, T, B, generator=g, dtype=dtype).permute(2, 0, 1)
    saved = sparse_dcls(x, taps, plan).grad_fn.saved_tensors
    assert any(t.data_ptr() == x.data_ptr() and t.shape == (n_in, T, B) for t in saved)
