"""TorchXRayVision DenseNet-121 state dict -> Keras ``.weights.h5`` (SPEC 03).

Keras layers in :mod:`kerassev.models.xrv_densenet` are named after the PyTorch module paths, so
conversion is a name mapping plus layout changes: conv OIHW -> HWIO, Linear (out, in) -> (in, out),
BatchNorm (weight, bias, running_mean, running_var) -> (gamma, beta, moving_mean, moving_variance).
``num_batches_tracked`` is ignored; ``op_threshs`` (a buffer in recent TorchXRayVision) is kept as an
attribute of the output file and never applied (the paper uses pre-sigmoid outputs).

PyTorch is imported lazily: only conversion needs it.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

_BN_SUFFIXES = ("weight", "bias", "running_mean", "running_var")
_IGNORED_SUFFIXES = ("num_batches_tracked",)
_OP_THRESHS_KEY = "op_threshs"
# Old torchvision checkpoints spell "norm1" as "norm.1" (torchvision's densenet loader fixes the same).
_LEGACY_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$"
)


class ConversionError(ValueError):
    """A checkpoint that cannot be converted; the message names the file or keys at fault."""


def _import_torch():
    try:
        import torch
    except ImportError as err:
        raise ImportError(
            "converting a TorchXRayVision checkpoint needs PyTorch: `pip install torch` "
            "(CPU build is enough)"
        ) from err
    return torch


def load_torch_state_dict(path: str | Path, *, allow_pickle: bool = False) -> dict[str, Any]:
    """Read a PyTorch checkpoint as a state dict (``{key: tensor}``).

    Accepts a saved ``state_dict()`` (also wrapped as ``{"state_dict": ...}``), loaded with
    ``weights_only=True``. TorchXRayVision's released ``.pt`` files are pickled modules; loading
    those runs arbitrary pickle code, so it needs ``allow_pickle=True`` (trusted files only) and an
    importable ``torchxrayvision``.
    """
    torch = _import_torch()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if not allow_pickle:
            raise ConversionError(
                f"{path} is not a plain state dict (it looks like a pickled module, as in "
                "TorchXRayVision's released .pt files). If you trust the file, rerun with "
                "--allow-pickle (allow_pickle=True; needs `pip install torchxrayvision`), or save "
                "`torch.save(model.state_dict(), 'xrv_all_state_dict.pt')` where torchxrayvision "
                f"is installed and convert that. ({str(err).splitlines()[0]})"
            ) from err
        try:
            obj = torch.load(path, map_location="cpu", weights_only=False)
        except (ModuleNotFoundError, AttributeError) as err2:
            raise ConversionError(
                f"{path} is a pickled module whose classes cannot be imported ({err2}); "
                "`pip install torchxrayvision` to load it, or save its model.state_dict() "
                "and convert that"
            ) from err2
    except Exception as err:
        raise ConversionError(f"{path} is not a readable PyTorch checkpoint: {err}") from err
    return _as_state_dict(obj, path)


def _as_state_dict(obj: Any, path: Path) -> dict[str, Any]:
    torch = _import_torch()
    if isinstance(obj, torch.nn.Module):
        # Old pickled XRV modules lack this attribute (pytorch/pytorch#42242), as XRV itself patches.
        for mod in obj.modules():
            if not hasattr(mod, "_non_persistent_buffers_set"):
                mod._non_persistent_buffers_set = set()
        state = dict(obj.state_dict())
        thr = getattr(obj, _OP_THRESHS_KEY, None)
        if thr is not None and _OP_THRESHS_KEY not in state:
            state[_OP_THRESHS_KEY] = torch.as_tensor(np.asarray(thr, dtype=np.float32))
        return state
    if isinstance(obj, Mapping):
        for wrapper in ("state_dict", "model_state_dict", "model"):
            inner = obj.get(wrapper)
            if isinstance(inner, Mapping | torch.nn.Module):
                return _as_state_dict(inner, path)
        return dict(obj)
    raise ConversionError(f"{path} holds a {type(obj).__name__}, not a state dict or module")


def _to_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _normalise_key(key: str) -> str:
    while key.startswith("module."):  # DataParallel / DistributedDataParallel
        key = key[len("module.") :]
    m = _LEGACY_KEY.match(key)
    if m:
        key = m.group(1) + m.group(2)  # "norm.1.weight" -> "norm1.weight"
    return key


def _expected_layers(model) -> dict[str, str]:
    """Keras layer name -> kind ("conv" | "bn" | "dense") for layers that hold weights."""
    from keras import layers

    kinds = {}
    for layer in model.layers:
        if isinstance(layer, layers.Conv2D):
            kinds[layer.name] = "conv"
        elif isinstance(layer, layers.BatchNormalization):
            kinds[layer.name] = "bn"
        elif isinstance(layer, layers.Dense):
            kinds[layer.name] = "dense"
    return kinds


def _reference_model():
    from kerassev.models.xrv_densenet import build_xrv_densenet

    return build_xrv_densenet(weights=None)


def convert_state_dict(
    state_dict: Mapping[str, Any], *, model=None, strict_unexpected: bool = False
) -> dict[str, list[np.ndarray]]:
    """Map a TorchXRayVision DenseNet-121 state dict to ``{keras_layer_name: [arrays]}``.

    Strips ``module.`` prefixes, ignores ``num_batches_tracked`` and ``op_threshs``; raises
    :class:`ConversionError` naming every missing key or wrong shape. Unexpected keys are reported
    in a warning (or raise with ``strict_unexpected=True``). ``model`` (optional) is the Keras
    model to check shapes against; one is built when omitted.
    """
    model = model if model is not None else _reference_model()
    kinds = _expected_layers(model)
    state = {}
    for key, value in state_dict.items():
        state[_normalise_key(key)] = value

    out: dict[str, list[np.ndarray]] = {}
    missing: list[str] = []
    used: set[str] = set()
    for name, kind in kinds.items():
        if kind == "conv":
            keys = [f"{name}.weight"]
        elif kind == "dense":
            keys = [f"{name}.weight", f"{name}.bias"]
        else:
            keys = [f"{name}.{s}" for s in _BN_SUFFIXES]
        absent = [k for k in keys if k not in state]
        if absent:
            missing.extend(absent)
            continue
        used.update(keys)
        arrays = [_to_numpy(state[k]).astype(np.float32) for k in keys]
        if kind == "conv":
            arrays = [np.transpose(arrays[0], (2, 3, 1, 0))]  # OIHW -> HWIO
        elif kind == "dense":
            arrays = [arrays[0].T, arrays[1]]  # (out, in) -> (in, out)
        out[name] = [np.ascontiguousarray(a) for a in arrays]
    if missing:
        raise ConversionError(
            f"state dict is missing {len(missing)} key(s) of TorchXRayVision DenseNet-121: "
            + ", ".join(missing[:20])
            + (" ..." if len(missing) > 20 else "")
        )

    bad_shapes = []
    for name, arrays in out.items():
        expected = [tuple(w.shape) for w in model.get_layer(name).weights]
        got = [a.shape for a in arrays]
        if expected != got:
            bad_shapes.append(f"{name}: checkpoint {got} vs model {expected}")
    if bad_shapes:
        raise ConversionError(
            "shape mismatch (not a 1-channel, 18-output DenseNet-121?): "
            + "; ".join(bad_shapes[:10])
        )

    ignored = {k for k in state if k.endswith(_IGNORED_SUFFIXES) or k == _OP_THRESHS_KEY}
    unexpected = sorted(set(state) - used - ignored)
    if unexpected:
        msg = f"{len(unexpected)} unexpected key(s) ignored: " + ", ".join(unexpected[:20])
        if strict_unexpected:
            raise ConversionError(msg)
        import warnings

        warnings.warn(msg, stacklevel=2)
    return out


def op_threshs_from_state_dict(state_dict: Mapping[str, Any]) -> np.ndarray | None:
    """TorchXRayVision's per-output operating thresholds, if the checkpoint carries them."""
    for key, value in state_dict.items():
        if _normalise_key(key) == _OP_THRESHS_KEY and value is not None:
            return _to_numpy(value).astype(np.float32).reshape(-1)
    return None


def convert_checkpoint(
    checkpoint: str | Path | Mapping[str, Any],
    out_path: str | Path,
    *,
    overwrite: bool = False,
    allow_pickle: bool = False,
) -> Path:
    """Convert a checkpoint file (or an in-memory state dict) to a Keras ``.weights.h5``.

    The result loads with ``build_xrv_densenet(weights=out_path)``. Refuses to overwrite an
    existing file unless ``overwrite=True``.
    """
    import h5py

    from kerassev.models.xrv_densenet import OP_THRESHS_ATTR

    out_path = Path(out_path)
    if not out_path.name.endswith(".weights.h5"):
        raise ConversionError(f"output must end in .weights.h5: {out_path}")
    if out_path.exists() and not overwrite:
        raise FileExistsError(f"{out_path} exists; pass overwrite=True (--overwrite) to replace it")
    if isinstance(checkpoint, Mapping):
        state = dict(checkpoint)
    else:
        state = load_torch_state_dict(checkpoint, allow_pickle=allow_pickle)

    model = _reference_model()
    weights = convert_state_dict(state, model=model)
    for name, arrays in weights.items():
        model.get_layer(name).set_weights(arrays)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name[: -len(".weights.h5")] + ".tmp.weights.h5")
    model.save_weights(tmp)
    thr = op_threshs_from_state_dict(state)
    if thr is not None:
        with h5py.File(tmp, "a") as f:
            f.attrs[OP_THRESHS_ATTR] = thr
    tmp.replace(out_path)
    return out_path
