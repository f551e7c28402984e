"""Checks of the PyTorch reference itself: spec test vectors, and recurrent / KV decode == parallel form."""
import math
import torch
import torch.nn.functional as F

from fury_ref import Config, Model, phi, causal_conv2


def test_phi_and_conv():
    u = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    assert torch.allclose(phi(u), torch.tensor([1, 2 * math.sqrt(2), 3 * math.sqrt(2), 4, 6 * math.sqrt(2), 9], dtype=torch.float64))
    a, b = torch.randn(64, dtype=torch.float64), torch.randn(64, dtype=torch.float64)
    assert abs((phi(a) * phi(b)).sum() - (a @ b) ** 2) < 1e-9
    w = torch.tensor([[[0.5, 1]], [[-1, 0.25]], [[2, -0.5]]])
    c = causal_conv2(torch.tensor([[[1.0, 2, 3], [4, 5, 6], [7, 8, 9]]]), w, torch.tensor([0.1, 0.2, 0.3]))
    assert torch.allclose(c, torch.tensor([[[1.1, 0.7, -1.2], [4.6, -0.55, 3.3], [9.1, -2.8, 7.8]]]), atol=1e-6)


def test_decode_equals_parallel():
    torch.manual_seed(0)
    for arch in ("2mamba", "2mamba-e", "softmax"):
        cfg = Config(arch=arch, hidden=128, intermediate=256, heads=2, layers=2, vocab=300)
        m = Model(cfg).double()
        for mod in m.modules():  # larger weights than the 0.02 init, so attention is not uniform
            if hasattr(mod, "weight") and mod.weight is not None and mod.weight.dim() == 2 and not isinstance(mod, torch.nn.Embedding):
                torch.nn.init.normal_(mod.weight, std=0.15)
        ids = torch.randint(0, 300, (2, 130))
        with torch.no_grad():
            par = m(ids)
        rec = m.decode_logits(ids)
        err = ((rec - par).abs().max() / par.abs().max()).item()
        print(f"{arch}: decode vs parallel rel {err:.2e}")
        assert err < 1e-9, arch


if __name__ == "__main__":
    test_phi_and_conv()
    test_decode_equals_parallel()
    print("reference tests passed")
