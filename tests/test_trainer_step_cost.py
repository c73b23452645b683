"""A training step's shared cost (issue 27): the cheaper formulations give bit-identical
results to the ones they replace, and the CPU allocator setting stops the per-step page
faults."""
import subprocess
import sys
import textwrap

import pytest
import torch

from trainer.sparse_delay import _csr_matrix, csr_mm


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
    it, the freed block is reused (8 tensors, at most one of them placed anew)."""
    faults = {}
    for mode in ("default", "keep"):
        out = subprocess.run([sys.executable, "-c", FAULTS, mode], capture_output=True,
                             text=True, check=True)
        faults[mode] = int(out.stdout.split()[-1])
    assert faults["default"] > 8 * 9000, faults
    assert faults["keep"] < 9300, faults
