"""Apply the suite's exports: open any form (:mod:`.load`), predict on images (:mod:`.image`)
or videos (:mod:`.video`); ``kerassev predict`` and ``kerassev segment`` run these."""

from kerassev.inference.image import collect_files, predict_files, prediction_columns
from kerassev.inference.load import ExportError, LoadedExport, load_export
from kerassev.inference.video import predict_videos

__all__ = [
    "ExportError",
    "LoadedExport",
    "collect_files",
    "load_export",
    "predict_files",
    "predict_videos",
    "prediction_columns",
]
