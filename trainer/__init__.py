"""trainer: spiking networks with learned synaptic delays (DCLS, DEEP R + RigL) in PyTorch.

    import trainer
    result = trainer.train({"dataset": "synthetic", "method": "dcls"}, out="runs/a")
    trainer.evaluate("runs/a", "test")

``trainer.train`` and ``trainer.evaluate`` are the functions (imported here, so they shadow
the submodules of the same names; use ``trainer.train`` module objects via sys.modules if ever
needed).
"""
from .evaluate import evaluate
from .train import RunResult, train

__all__ = ["train", "evaluate", "RunResult"]
