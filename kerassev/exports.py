"""Model exports: native ``.keras``, TensorFlow SavedModel (``model.export``) and TFLite.

Each export is reloaded by :func:`check_exports`, which compares its predictions with the
in-memory model's, so a broken export is caught where it is made rather than by a user.

Every export carries an :class:`ExportMetadata` (input size, channels, resize mode,
preprocessing, class names or target name, kerassev version, where it came from), so
``kerassev predict`` needs no configuration: inside the ``.keras`` archive as ``kerassev.json``,
in the SavedModel as ``assets.extra/kerassev.json`` (TensorFlow's place for files the loader
ignores), and beside all of them as ``<name>.kerassev.json``.
"""

from __future__ import annotations

import dataclasses
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

METADATA_FILE = "kerassev.json"


TASKS = ("classification", "regression", "segmentation")
INPUT_KINDS = ("image", "video")


@dataclass(frozen=True)
class ExportMetadata:
    """What a user of an exported model needs to feed it and read its output; one schema for
    every export of the suite (papers 01-05 and the ct-lesions segmenter).

    Image input (``input_kind="image"``): ``(B, S, S, C)`` float32, ``S = input_size``: grey
    image in ``[0, 1]`` -> aspect-preserving ``resize_mode`` resize to ``S``
    (:func:`kerassev.transforms.geometry.resize_keep_aspect`; ``"letterbox"``, the segmenter's:
    longer side to ``S``, zero pad bottom/right) -> 1 -> 3 channels when ``channels == 3`` ->
    ``preprocessing`` (:mod:`kerassev.transforms.preprocess`).

    Video input (``input_kind="video"``): clips ``(B, T, S, S, C)`` float32, ``T =
    frames_per_clip`` (the TSM encoder's ``keras.Input((T, S, S, C))``, :mod:`kerassev.models.tsm`).
    Frames are decoded to grey (luma) in ``[0, 1]`` and resized like images by ``resize_mode``
    (``"crop"``: shorter side to ``S``, centre crop; :func:`kerassev.io.video.read_clip`), then
    channels and ``preprocessing`` as for images. ``frame_sampling`` is how training chose the
    ``T`` frames (:func:`kerassev.io.video.sample_indices`): ``"uniform"``, the centres of ``T``
    equal segments of the whole video (one clip a video), or ``"sliding"`` windows of ``T``
    consecutive frames (predictions averaged over a video's clips).

    Output: ``class_names`` (softmax probabilities, classification; for segmentation the
    classes of the ``labels`` output, background first) or ``target_name`` / ``target_names``
    (regression: one name for a single output, or one per output unit). ``target_range``: a
    regression target's range (e.g. ``(0.0, 3.0)`` for a 0-3 severity score), predictions are
    also reported rounded and clipped to it. ``output_names``: the keys of a model with dict
    outputs (the segmenter: boxes, scores, labels, masks; paper 05's affinity model also
    ``class_probs``, named by ``image_class_names``). ``score_threshold`` /
    ``mask_threshold``: a segmenter's detection and mask cut-offs.
    """

    task: str  # "classification" | "regression" | "segmentation"
    input_size: int
    channels: int = 3
    preprocessing: str = "imagenet"
    resize_mode: str = "crop"
    class_names: tuple[str, ...] | None = None
    target_name: str | None = None
    target_names: tuple[str, ...] | None = None
    source: str = ""
    kerassev_version: str = ""
    input_kind: str = "image"  # "image" | "video"
    frames_per_clip: int | None = None  # T
    frame_sampling: str | None = None  # "uniform" (T frames spread over the video) | "sliding"
    target_range: tuple[float, float] | None = None  # predictions also rounded/clipped to it
    output_names: tuple[str, ...] | None = None
    image_class_names: tuple[str, ...] | None = None  # a segmenter's class_probs output
    score_threshold: float | None = None
    mask_threshold: float | None = None

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")
        if self.task in ("classification", "segmentation") and not self.class_names:
            raise ValueError(f"a {self.task} export needs class_names")
        if self.input_kind not in INPUT_KINDS:
            raise ValueError(f"input_kind must be one of {INPUT_KINDS}, got {self.input_kind!r}")
        if self.input_kind == "video":
            from kerassev.io.video import SAMPLING_MODES

            if not self.frames_per_clip or self.frames_per_clip < 1:
                raise ValueError("a video export needs frames_per_clip >= 1")
            if self.frame_sampling not in SAMPLING_MODES:
                raise ValueError(
                    f"a video export needs frame_sampling in {SAMPLING_MODES}, "
                    f"got {self.frame_sampling!r}"
                )
            if self.resize_mode != "crop":
                raise ValueError("video frames are resized by 'crop' (kerassev.io.video)")
        if self.target_range is not None:
            lo, hi = self.target_range
            if not lo < hi:
                raise ValueError(f"target_range needs low < high, got {self.target_range}")
        if not self.kerassev_version:
            from kerassev import __version__

            object.__setattr__(self, "kerassev_version", __version__)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str, *, where: str = "") -> ExportMetadata:
        """Parse ``text``; exports written before a field existed get its default."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"{where}: export metadata is not JSON ({err})") from err
        if not isinstance(data, dict):
            raise ValueError(f"{where}: export metadata is not a JSON object")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"{where}: unknown export metadata fields {unknown}")
        for key in (
            "class_names",
            "target_names",
            "target_range",
            "output_names",
            "image_class_names",
        ):
            if data.get(key) is not None:
                data[key] = tuple(data[key])
        try:
            return cls(**data)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{where}: bad export metadata ({err})") from err


def write_metadata(paths: ExportPaths, metadata: ExportMetadata) -> Path:
    """Put ``metadata`` into the ``.keras`` archive, the SavedModel and a sidecar file."""
    text = metadata.to_json()
    with zipfile.ZipFile(paths.keras_file, "a") as archive:
        archive.writestr(METADATA_FILE, text)
    extra = paths.saved_model / "assets.extra"
    extra.mkdir(exist_ok=True)
    (extra / METADATA_FILE).write_text(text)
    sidecar = paths.keras_file.with_name(paths.keras_file.stem + "." + METADATA_FILE)
    sidecar.write_text(text)
    return sidecar


def read_metadata(model_path: str | Path) -> ExportMetadata:
    """The metadata of an export: a ``.keras`` file, a SavedModel folder or any file with a
    ``<stem>.kerassev.json`` beside it. Raises ``ValueError`` naming the path when it has none."""
    path = Path(model_path)
    if path.is_dir():
        candidates = [path / "assets.extra" / METADATA_FILE]
    else:
        candidates = [path.with_name(path.stem + "." + METADATA_FILE)]
        # a .tflite file moved without its sidecar still has its SavedModel sibling's copy
        candidates.append(
            path.with_name(path.stem + "_savedmodel") / "assets.extra" / METADATA_FILE
        )
        if path.suffix == ".keras" and zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                if METADATA_FILE in archive.namelist():
                    return ExportMetadata.from_json(
                        archive.read(METADATA_FILE).decode(), where=str(path)
                    )
    for c in candidates:
        if c.is_file():
            return ExportMetadata.from_json(c.read_text(), where=str(c))
    raise ValueError(
        f"{path}: no kerassev export metadata (looked for {METADATA_FILE} inside it and "
        f"{candidates[0].name} beside it); export it with kerassev.exports.export_model(..., metadata=...)"
    )


@dataclass(frozen=True)
class ExportPaths:
    keras_file: Path
    saved_model: Path
    tflite_file: Path | None


def float32_model(model: keras.Model) -> keras.Model:
    """``model`` with every layer computing in float32, same weights (``model`` itself when it
    already does). A model trained under ``mixed_bfloat16`` / ``mixed_float16`` keeps float32
    variables, so only the layers' dtype policies change: exports then run on any hardware and
    convert to TFLite, which has no bf16 kernels.

    Rebuilt from its Keras config under a float32 global policy with each layer's serialised
    policy set to float32 (a subclassed model's sub-layers take the global one), then the
    weights copied, as ``recipes/ct_lesions/export.py`` does for the segmenter.
    """
    if not _has_mixed_policy(model):
        return model
    return float32_copy(model)


def float32_copy(model: keras.Model) -> keras.Model:
    """An uncompiled float32 copy of ``model`` with its weights (see :func:`float32_model`)."""
    from kerassev.precision import precision_scope

    config = _float32_policies(keras.saving.serialize_keras_object(model))
    with precision_scope("float32"):
        copy = keras.saving.deserialize_keras_object(config)
    copy.set_weights(model.get_weights())
    return copy


def _has_mixed_policy(model: keras.Model) -> bool:
    layers = [model, *model._flatten_layers(include_self=False)]
    return any(layer.dtype_policy.name != "float32" for layer in layers)


def _float32_policies(node):
    """Every ``DTypePolicy`` in a Keras config tree set to float32."""
    if isinstance(node, dict):
        if node.get("class_name") == "DTypePolicy" and isinstance(node.get("config"), dict):
            return {**node, "config": {**node["config"], "name": "float32"}}
        return {k: _float32_policies(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_float32_policies(v) for v in node]
    return node


def _refuse_existing(*paths: Path) -> None:
    for path in paths:
        if path.exists():
            raise FileExistsError(f"{path} already exists; refusing to overwrite an export")


def export_model(
    model: keras.Model,
    out_dir: str | Path,
    *,
    name: str = "model",
    tflite: bool = True,
    metadata: ExportMetadata | None = None,
) -> ExportPaths:
    """Write ``name.keras``, ``name_savedmodel/`` and ``name.tflite`` into ``out_dir``, with
    ``metadata`` inside and beside them (see :func:`write_metadata`). Exports are float32
    whatever policy the model trained under (:func:`float32_model`)."""
    model = float32_model(model)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    keras_file = out_dir / f"{name}.keras"
    saved_model = out_dir / f"{name}_savedmodel"
    tflite_file = out_dir / f"{name}.tflite" if tflite else None
    _refuse_existing(*(p for p in (keras_file, saved_model, tflite_file) if p is not None))

    model.save(keras_file)
    model.export(str(saved_model), format="tf_saved_model", verbose=False)
    if tflite_file is not None:
        converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
        tflite_file.write_bytes(converter.convert())
    paths = ExportPaths(keras_file, saved_model, tflite_file)
    if metadata is not None:
        write_metadata(paths, metadata)
    return paths


def predict_saved_model(path: str | Path, images: np.ndarray) -> np.ndarray:
    """Predictions of an exported SavedModel through its ``serve`` endpoint."""
    reloaded = tf.saved_model.load(str(path))
    return np.asarray(reloaded.serve(tf.constant(images, tf.float32)))


def tflite_predictor(path: str | Path):
    """``fn(batch) -> predictions`` of a TFLite file, one image (or clip) at a time (its batch
    dimension is fixed), through LiteRT's interpreter (``ai-edge-litert``; ``tf.lite.Interpreter``
    is deprecated). Raises ``ValueError`` for a file LiteRT cannot read."""
    from ai_edge_litert.interpreter import Interpreter

    from kerassev.quiet import native_stderr_silenced

    # LiteRT prints "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." from native code;
    # Python errors still propagate.
    with native_stderr_silenced():
        interpreter = Interpreter(model_path=str(path))
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]
    shape = [None]

    def predict(images) -> np.ndarray:
        images = np.asarray(images, np.float32)
        if shape[0] != images.shape[1:]:
            with native_stderr_silenced():
                interpreter.resize_tensor_input(inp["index"], (1, *images.shape[1:]))
                interpreter.allocate_tensors()
            shape[0] = images.shape[1:]
        preds = []
        for image in images:
            interpreter.set_tensor(inp["index"], image[None])
            interpreter.invoke()
            preds.append(interpreter.get_tensor(out["index"])[0])
        return np.stack(preds)

    return predict


def predict_tflite(path: str | Path, images: np.ndarray) -> np.ndarray:
    """Predictions of a TFLite file (see :func:`tflite_predictor`)."""
    return tflite_predictor(path)(images)


def check_exports(
    model: keras.Model, paths: ExportPaths, images: np.ndarray, *, atol: float = 1e-4
) -> dict[str, float]:
    """Reload every export and return the max abs difference to ``model``'s predictions (in
    float32, as exported: see :func:`float32_model`).

    Raises AssertionError naming the export whose predictions differ by more than ``atol``.
    """
    reference = np.asarray(float32_model(model).predict(images, verbose=0))
    got = {
        "keras": np.asarray(keras.models.load_model(paths.keras_file).predict(images, verbose=0)),
        "saved_model": predict_saved_model(paths.saved_model, images),
    }
    if paths.tflite_file is not None:
        got["tflite"] = predict_tflite(paths.tflite_file, images)
    diffs = {
        k: float(np.max(np.abs(v.reshape(reference.shape) - reference))) for k, v in got.items()
    }
    bad = {k: d for k, d in diffs.items() if not d <= atol}
    if bad:
        raise AssertionError(f"exports differ from the model beyond {atol}: {bad}")
    return diffs
