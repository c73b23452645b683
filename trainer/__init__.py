"""trainer: spiking networks with learned synaptic delays (DCLS, DEEP R + RigL) in PyTorch.

    import trainer
    result = trainer.train({"dataset": "synthetic", "method": "dcls"}, out="runs/a")
    trainer.evaluate("runs/a", "test")

Imports are lazy so that ``import trainer.data`` stays light.
"""


def train(config=None, **kwargs):
    """See trainer.train.train."""
    from .train import train as _train
    return _train(config, **kwargs)


def evaluate(run_dir, split="test", **kwargs):
    """See trainer.evaluate.evaluate."""
    from .evaluate import evaluate as _evaluate
    return _evaluate(run_dir, split, **kwargs)


def __getattr__(name):
    if name == "RunResult":
        from .train import RunResult
        return RunResult
    raise AttributeError(name)
