"""A quiet command line (and notebook): TensorFlow's start-up banners and Python-side noise silenced, so what
the CLI prints is its own progress and results.

:func:`quiet_tensorflow` runs before TensorFlow is first imported: it sets the logging
environment (C++ ``TF_CPP_MIN_LOG_LEVEL``), imports TensorFlow with the process's stderr
pointed at /dev/null (absl's "InitializeLog" notice and the oneDNN banner are printed by native
code while the library loads, before any log level applies) and lowers TensorFlow's Python
logger to errors. Real errors still surface: an import failure is raised after stderr is back.
"""

from __future__ import annotations

import contextlib
import os
import sys

_done = False


@contextlib.contextmanager
def native_stderr_silenced():
    """Point file descriptor 2 at /dev/null for the block (native libraries write there
    directly, bypassing ``sys.stderr``); restored afterwards, even on error."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def quiet_tensorflow() -> None:
    """Import TensorFlow quietly, once per process (see the module docstring)."""
    global _done
    if _done:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # C++ INFO and WARNING off
    if "tensorflow" not in sys.modules:
        with native_stderr_silenced():
            import tensorflow  # noqa: F401
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # e.g. tf.function retracing notices
    import absl.logging

    absl.logging.set_verbosity(absl.logging.ERROR)
    _done = True
