"""Two-view augmentation inside the training step: :class:`ViewMaker`.

The same views the ``tf.data`` pipeline makes (:func:`kerassev.data.pipeline.build_dataset` with
a ``two_view_policy``): the policy's augmenter (:func:`kerassev.transforms.augment.make_augmenter`)
on the single grey channel, 1 -> 3 channels, the backbone's preprocessing. Run as batched ops
in the train step (``TwoViewSSL(..., augmenter=ViewMaker(...))``, or ``augment_on="model"`` in
:class:`~kerassev.data.pipeline.PipelineConfig`), on the step's device and thread pool: on a
small CPU the ``tf.data`` threads no longer compete with the step's, and a GPU makes the views
too. Its random state (Keras seed generators) is a model variable, so checkpoints carry it.

The augmentation computes in float32 (:data:`~kerassev.transforms.augment.AUGMENT_DTYPE`)
whatever the global policy; the finished view is cast to the policy's compute dtype (bf16 under
``mixed_bfloat16``), which is what the network's first layer would cast it to anyway.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from kerassev.transforms.augment import AUGMENT_DTYPE, make_augmenter
from kerassev.transforms.preprocess import get_preprocessor

__all__ = ["ViewMaker"]


@keras.saving.register_keras_serializable(package="kerassev")
class ViewMaker(keras.layers.Layer):
    """Raw ``[0, 1]`` grey batch ``(B, H, W)`` / ``(B, H, W, 1)`` -> one augmented,
    preprocessed view ``(B, S, S, channels)`` in the global compute dtype.

    Each call draws new random parameters (the base class calls it twice for two views).
    ``seed`` seeds the augmenter as the pipeline's ``PipelineConfig.seed`` does, so a pipeline and
    a view maker with the same seed make the same views of the same batches.
    """

    def __init__(
        self,
        policy: str,
        *,
        image_size: int,
        channels: int = 3,
        preprocessing: str = "imagenet",
        seed: int = 0,
        output_dtype: str | None = None,
        **kwargs,
    ):
        kwargs.setdefault("dtype", AUGMENT_DTYPE)
        super().__init__(**kwargs)
        self.policy = policy
        self.image_size = int(image_size)
        self.channels = int(channels)
        self.preprocessing = preprocessing
        self.seed = int(seed)
        # The policy in force when the model is built; None in a config means "ask again".
        self.output_dtype = output_dtype or keras.mixed_precision.global_policy().compute_dtype
        self.augment = make_augmenter(
            policy, image_size=self.image_size, seed=self.seed, channels=1
        )
        self._norm = get_preprocessor(preprocessing)
        # No weights of its own (the seed generators exist already): built now, so Keras does
        # not build the model by calling it on raw images (fit under a distribution strategy).
        self.built = True

    def call(self, images, training=True):
        x = tf.cast(images, AUGMENT_DTYPE)
        if x.shape.rank == 3:
            x = x[..., None]
        x = self.augment(x, training=training)
        if self.channels == 3:
            x = tf.image.grayscale_to_rgb(x)
        return tf.cast(self._norm(x), self.output_dtype)

    # Keras saves a layer's weights but not its seed generators' states (Layer.save_own_variables):
    # without these two a stage resumed from its backup would draw the first epoch's views again.
    def _seed_states(self):
        return [sg.state for layer in self._flatten_layers() for sg in layer._seed_generators]

    def save_own_variables(self, store):
        for i, state in enumerate(self._seed_states()):
            store[f"seed{i}"] = state

    def load_own_variables(self, store):
        if not len(store.keys()):  # a file saved before the states were
            return
        for i, state in enumerate(self._seed_states()):
            state.assign(store[f"seed{i}"])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.image_size, self.image_size, self.channels)

    def get_config(self):
        return {
            **super().get_config(),
            "policy": self.policy,
            "image_size": self.image_size,
            "channels": self.channels,
            "preprocessing": self.preprocessing,
            "seed": self.seed,
            "output_dtype": self.output_dtype,
        }
