"""LEARNER pre-training losses (paper 02, Algorithm 1, eqs. 1-3; SPEC 02).

Per batch of clip embeddings ``u`` (B, D) and health scores ``hs`` (B,):

* ``d_ij = |hs_i - hs_j|``; for each i the batch is sorted by ``d_ij`` (i itself first). The
  nearest ``B/2`` are its positives and the farthest ``B/2`` its negatives (Algorithm 1). i is
  dropped from its own positives: its term is a constant (cos(u_i, u_i) = 1) and under wCL its
  weight ``1 / eps`` would swamp the rest. So each i has ``B/2 - 1`` positives, ``B/2`` negatives.
* eq. 1, :func:`mse_loss`: mean squared error of the MLP head's HS prediction (mean, not sum, so
  the scale does not depend on the batch size).
* eq. 3, bounded (the default; SPEC 02 resolves the garbled text): ``s_ij = (1 + cos) / 2``
  clipped to ``[eps, 1 - eps]``; a positive adds ``-log s_ij``, a negative ``-log(1 - s_ij)``.
* wCL: positive terms divided by ``d_ij + delta``, negative terms multiplied by ``d_ij + delta``;
  the weights of each kind are normalised to mean 1 in the batch, so CL and wCL weigh positives
  against negatives alike. ``delta = tie_floor * mean_{i != j} d_ij`` (at least ``eps``), see
  :func:`wcl_weights` for why not the paper's ``eps`` alone.
* l2Sim: ``s_ij = exp(-||u_i - u_j||^2)`` on L2-normalised embeddings instead of the cosine.
* ``form="literal"``: eq. 3 as printed, ``sum_neg log(sim (d + eps)) - sum_pos log(sim) / (d + eps)``
  with ``sim`` the cosine clipped to ``[eps, 1]`` (the printed log of a cosine is NaN for
  negative cosines; the clip keeps it finite, its gradient is zero below ``eps``).

Every term is averaged over the selected pairs.
"""

from __future__ import annotations

from keras import ops

SIMILARITIES = ("cos", "l2")
FORMS = ("bounded", "literal")


def mse_loss(y_true, y_pred):
    """Eq. 1 as a mean: ``mean((y - y_pred)^2)``."""
    y_true = ops.reshape(ops.cast(y_true, "float32"), (-1,))
    y_pred = ops.reshape(ops.cast(y_pred, "float32"), (-1,))
    return ops.mean(ops.square(y_true - y_pred))


def pair_distances(hs):
    """``d_ij = |hs_i - hs_j|``, (B, B)."""
    hs = ops.reshape(ops.cast(hs, "float32"), (-1,))
    return ops.abs(hs[:, None] - hs[None, :])


def select_pairs(hs):
    """Masks ``(positive, negative)``, each (B, B) float 0/1, as in Algorithm 1 (see module doc).

    Ties in ``d`` are broken by index (a stable sort), so the selection is deterministic.
    """
    d = pair_distances(hs)
    b = ops.shape(d)[0]
    eye = ops.eye(b, dtype="float32")
    # i itself sorts first even when another clip has the same score.
    ranks = ops.argsort(ops.argsort(ops.where(eye > 0, -1.0, d), axis=1), axis=1)
    half = b // 2
    positive = ops.cast((ranks >= 1) & (ranks < half), "float32")
    negative = ops.cast(ranks >= b - half, "float32")
    return positive, negative


def similarity(u, kind: str = "cos"):
    """(B, B) similarity: cosine, or ``exp(-||u_i - u_j||^2)`` of L2-normalised ``u`` (l2Sim)."""
    if kind not in SIMILARITIES:
        raise ValueError(f"similarity must be one of {SIMILARITIES}, got {kind!r}")
    u = ops.cast(u, "float32")
    u = u / ops.maximum(ops.norm(u, axis=1, keepdims=True), 1e-12)
    cos = ops.matmul(u, ops.transpose(u))
    if kind == "cos":
        return cos
    return ops.exp(-ops.maximum(2.0 - 2.0 * cos, 0.0))  # ||a - b||^2 = 2 - 2 cos for unit vectors


def _masked_mean(values, mask):
    return ops.sum(values * mask) / ops.maximum(ops.sum(mask), 1.0)


def _normalised(weights, mask):
    """``weights`` rescaled to mean 1 over ``mask``."""
    return weights / ops.maximum(_masked_mean(weights, mask), 1e-12)


#: wCL's floor on ``d_ij`` as a fraction of the batch's mean score gap (see :func:`wcl_weights`).
TIE_FLOOR = 0.5


def wcl_weights(d, positive, negative, *, tie_floor: float = TIE_FLOOR, eps: float = 1e-6):
    """wCL weights ``(w_pos, w_neg)``, (B, B) each, normalised to mean 1 over their masks.

    The paper's intent (§3.2, "we factor in the differences in the health scores ... to determine
    the weight of the corresponding term"; SPEC 02): the closer two positives' scores, the harder
    they are pulled together, the farther two negatives', the harder they are pushed apart. Its
    ``eps`` only keeps ``1 / d`` finite; it is not meant to weigh a tied pair (``d = 0``) 1e6
    times a pair one point apart, which with coarse integer scores (POCUS's 0-3) made wCL CL over
    exactly tied pairs and dropped every other positive. So ``d`` is floored by ``delta =
    tie_floor * mean_{i != j} d_ij``: a tie weighs at most ``(d + delta) / delta`` times a
    positive at gap ``d`` (``1 + 1 / tie_floor = 3`` at the mean gap), and the weights keep the
    scale invariance of the ranking (multiplying every score by ``c`` changes nothing).
    """
    b = ops.shape(d)[0]
    off = 1.0 - ops.eye(b, dtype="float32")
    delta = ops.maximum(tie_floor * _masked_mean(d, off), eps)
    return (
        _normalised(1.0 / (d + delta), positive),
        _normalised(d + delta, negative),
    )


def contrastive_loss(
    u,
    hs,
    *,
    weighted: bool = False,
    similarity_kind: str = "cos",
    form: str = "bounded",
    eps: float = 1e-6,
    tie_floor: float = TIE_FLOOR,
):
    """CL (``weighted=False``) or wCL (``True``) of embeddings ``u`` (B, D) given scores ``hs``."""
    if form not in FORMS:
        raise ValueError(f"form must be one of {FORMS}, got {form!r}")
    positive, negative = select_pairs(hs)
    d = pair_distances(hs)
    sim = similarity(u, similarity_kind)
    if form == "literal":
        if similarity_kind != "cos":
            raise ValueError("the literal eq. 3 is defined for the cosine similarity only")
        s = ops.clip(sim, eps, 1.0)
        neg_terms = ops.log(s * (d + eps))
        pos_terms = -ops.log(s) / (d + eps)
        return _masked_mean(neg_terms, negative) + _masked_mean(pos_terms, positive)
    s = (1.0 + sim) / 2.0 if similarity_kind == "cos" else sim
    s = ops.clip(s, eps, 1.0 - eps)
    pos_terms, neg_terms = -ops.log(s), -ops.log(1.0 - s)
    if weighted:
        w_pos, w_neg = wcl_weights(d, positive, negative, tie_floor=tie_floor, eps=eps)
        pos_terms, neg_terms = pos_terms * w_pos, neg_terms * w_neg
    return _masked_mean(pos_terms, positive) + _masked_mean(neg_terms, negative)


LOSS_NAMES = ("mse", "mse+cl", "mse+wcl", "mse+cl_literal")


def loss_spec(name: str) -> dict | None:
    """Contrastive keyword arguments of a named pre-training loss (None for MSE only)."""
    specs = {
        "mse": None,
        "mse+cl": {"weighted": False},
        "mse+wcl": {"weighted": True},
        "mse+cl_literal": {"form": "literal"},
    }
    if name not in specs:
        raise ValueError(f"unknown pre-training loss {name!r}; choose from {LOSS_NAMES}")
    return specs[name]


__all__ = [
    "FORMS",
    "LOSS_NAMES",
    "SIMILARITIES",
    "TIE_FLOOR",
    "contrastive_loss",
    "loss_spec",
    "mse_loss",
    "pair_distances",
    "select_pairs",
    "similarity",
    "wcl_weights",
]
