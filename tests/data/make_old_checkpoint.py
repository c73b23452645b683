"""How tests/data/old_checkpoint_dcls.pt was made (kept for the record; the test never runs it).

It was written by the trainer of commit 05e665f, before recurrence existed, and must not be
regenerated with later code (tests/test_old_checkpoint.py checks old files still load and
export byte-identically):

    git archive 05e665f | tar -x -C OLD_TREE
    PYTHONPATH=OLD_TREE OMP_NUM_THREADS=1 python tests/data/make_old_checkpoint.py RUN_DIR
    cp RUN_DIR/checkpoint.pt tests/data/old_checkpoint_dcls.pt
"""
import sys

from trainer.train import train

if __name__ == "__main__":
    cfg = dict(dataset="synthetic", method="dcls", sparsity=0.0, epochs=2, seed=3, batch_size=8,
               hidden=[8], kernel_size=5, n_mels=6, time_steps=30, tau=6.0, num_threads=1,
               data_options={"n_train": 400, "n_test": 20, "n_classes": 4})
    print(train(cfg, out=sys.argv[1], progress=False).metrics)
