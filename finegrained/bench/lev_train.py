"""LevAttention in training (``finegrained bench lev-train``; extra ``torch``, which brings scikit-learn).

A small-scale version of the paper's vision-transformer experiment: scikit-learn's digits (1797 images of 8 x 8
pixels, 10 classes) with every pixel a patch, so a sequence of 64 patch tokens plus a class token (65 keys). A tiny
ViT (pre-norm blocks of :class:`~finegrained.attention.lev_torch.LevMultiheadAttention` and an MLP, learned position
embeddings) is trained with full softmax attention, then with LevAttention keeping ``k`` keys per head

* from scratch (``mode = "scratch"``), and
* fine-tuned from the trained full model (``mode = "finetune"``),

and the test accuracies are reported with their ratio to the full model's. ``tiny`` mode trains on a few hundred
images for a few epochs (seconds, for the tests); ``full`` mode on the whole training split (a few minutes on a
CPU). The split is stratified, 75 / 25, fixed by the seed; torch's RNG is seeded too.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from instances.errors import ParameterError

from ..resources import check_memory
from .timing import Progress, best_of

MODES = {
    # images used for training, epochs full / scratch / finetune, embedding, depth, heads
    "tiny": {"train": 256, "epochs": 2, "scratch_epochs": 2, "finetune_epochs": 1, "dim": 16, "depth": 1, "heads": 2},
    "full": {"train": None, "epochs": 12, "scratch_epochs": 12, "finetune_epochs": 3, "dim": 32, "depth": 2,
             "heads": 4},
}


@dataclass
class LevTrainResult:
    """``full_accuracy`` and one ``lev`` entry ``{k, mode, accuracy, ratio, seconds}`` per run."""

    mode: str
    full_accuracy: float
    full_seconds: float
    lev: list[dict] = field(default_factory=list)
    tokens: int = 65
    train_size: int = 0
    test_size: int = 0
    config: dict = field(default_factory=dict)
    benchmark: str = "lev-train"

    def to_dict(self) -> dict:
        return asdict(self)


def _model(torch, cfg: dict, keep):
    from torch import nn

    from ..attention.lev_torch import LevMultiheadAttention

    dim, depth, heads = cfg["dim"], cfg["depth"], cfg["heads"]

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.n1, self.n2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
            self.attn = LevMultiheadAttention(dim, heads, keep)
            self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

        def forward(self, x):
            x = x + self.attn(self.n1(x))
            return x + self.mlp(self.n2(x))

    class ViT(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Linear(1, dim)  # one pixel per patch
            self.cls = nn.Parameter(torch.zeros(1, 1, dim))
            self.pos = nn.Parameter(torch.randn(1, 65, dim))  # order-one: pixel tokens differ mainly by position
            self.blocks = nn.ModuleList(Block() for _ in range(depth))
            self.norm = nn.LayerNorm(dim)
            self.head = nn.Linear(dim, 10)

        def set_keep(self, k):
            for b in self.blocks:
                b.attn.keep = k

        def forward(self, img):
            x = self.embed(img.reshape(img.shape[0], 64, 1))
            x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
            for b in self.blocks:
                x = b(x)
            return self.head(self.norm(x[:, 0]))

    return ViT()


def _train(torch, model, X, y, epochs: int, lr: float, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-2)
    steps = max(1, epochs * ((len(X) + 63) // 64))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(X), generator=g)
        for a in range(0, len(X), 64):
            idx = perm[a : a + 64]
            loss = torch.nn.functional.cross_entropy(model(X[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()


def _accuracy(torch, model, X, y) -> float:
    model.eval()
    with torch.no_grad():
        return float((model(X).argmax(-1) == y).float().mean())


def run(*, mode: str = "full", ks: tuple[int, ...] = (8, 16, 32), seed: int = 0, repeat: int = 1,
        max_memory: int | None = None, progress: Progress | None = None) -> LevTrainResult:
    """Train the full model and the LevAttention models (see the module docstring).

    Training is deterministic for a seed on the CPU, so ``repeat`` only makes each reported time the best of
    ``repeat`` identical trainings (the accuracy is that of the last one).
    """
    if mode not in MODES:
        raise ParameterError(f"mode must be one of {sorted(MODES)}, got {mode!r}")
    if not ks or any(int(k) < 1 or int(k) > 65 for k in ks):
        raise ParameterError(f"every k must lie in 1..65 (65 keys), got {list(ks)}")
    if int(repeat) < 1:
        raise ParameterError(f"repeat must be >= 1, got {repeat}")
    cfg = MODES[mode]
    # Peak memory: the activations of one batch of 64 (65 tokens, about 12 tensors of width 2 * dim per block,
    # kept for backward, plus 65 x 65 attention per head) and the data set; a generous estimate.
    dim, depth, heads = cfg["dim"], cfg["depth"], cfg["heads"]
    check_memory(4 * 64 * 65 * depth * (24 * dim + 4 * 65 * heads) + 8 * 1797 * 64 * 4 + 2**26, max_memory,
                 "bench lev-train")
    try:
        import torch
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError as exc:
        raise ParameterError("bench lev-train needs the torch extra: pip install 'finegrained[torch]'") from exc
    digits = load_digits()
    Xtr, Xte, ytr, yte = train_test_split(digits.images / 16.0, digits.target, test_size=0.25,
                                          stratify=digits.target, random_state=seed)
    if cfg["train"] is not None:
        Xtr, ytr = Xtr[: cfg["train"]], ytr[: cfg["train"]]
    Xtr, Xte = (torch.tensor(a, dtype=torch.float32) for a in (Xtr, Xte))
    ytr, yte = (torch.tensor(a, dtype=torch.long) for a in (ytr, yte))
    total = 1 + 2 * len(ks)
    done = 0
    torch.manual_seed(seed)

    def train_full():
        torch.manual_seed(seed)
        model = _model(torch, cfg, None)
        _train(torch, model, Xtr, ytr, cfg["epochs"], 3e-3, seed)
        return model

    full_seconds, full = best_of(train_full, repeat=repeat)
    full_acc = _accuracy(torch, full, Xte, yte)
    state = {k: v.clone() for k, v in full.state_dict().items()}
    done += 1
    if progress is not None:
        progress(done, total)
    res = LevTrainResult(mode, full_acc, full_seconds, train_size=len(Xtr), test_size=len(Xte), config=dict(cfg))
    for k in ks:
        for how in ("scratch", "finetune"):

            def train(k=int(k), how=how):
                torch.manual_seed(seed + 1)
                model = _model(torch, cfg, k)
                if how == "finetune":
                    model.load_state_dict(state)
                    model.set_keep(k)
                    _train(torch, model, Xtr, ytr, cfg["finetune_epochs"], 1e-3, seed + 2)
                else:
                    _train(torch, model, Xtr, ytr, cfg["scratch_epochs"], 3e-3, seed + 2)
                return model

            seconds, model = best_of(train, repeat=repeat)
            acc = _accuracy(torch, model, Xte, yte)
            res.lev.append({"k": int(k), "mode": how, "accuracy": acc,
                            "ratio": acc / full_acc if full_acc > 0 else None,
                            "seconds": seconds})
            done += 1
            if progress is not None:
                progress(done, total)
    return res


__all__ = ["MODES", "LevTrainResult", "run"]
