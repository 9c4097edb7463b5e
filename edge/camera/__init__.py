"""catdog-edge camera: frame sources (frames, sources, opencv, picamera, folder), streams, smoothing, the loop, and the
event sinks (sinks, spool, webhook, mqtt)."""

from .folder import DirectorySource
from .frames import Frame, FrameSource, SourceConfig
from .loop import Event, LabelEvent, Notice, WatchConfig, WatchSummary, save_snapshot, snapshot_name, watch
from .opencv import OpenCVSource, import_cv2
from .picamera import PicameraSource
from .sinks import SinkConfig, SinkReport, Sinks, open_sinks
from .smoothing import SmoothedLabel, Smoother, check_smoothing
from .sources import make_source
from .streams import FrameStream, LatestFrameStream, SequentialStream, open_stream

__all__ = [
    "DirectorySource",
    "Event",
    "Frame",
    "FrameSource",
    "FrameStream",
    "LabelEvent",
    "LatestFrameStream",
    "Notice",
    "OpenCVSource",
    "PicameraSource",
    "SequentialStream",
    "SinkConfig",
    "SinkReport",
    "Sinks",
    "SmoothedLabel",
    "Smoother",
    "SourceConfig",
    "WatchConfig",
    "WatchSummary",
    "check_smoothing",
    "import_cv2",
    "make_source",
    "open_sinks",
    "open_stream",
    "save_snapshot",
    "snapshot_name",
    "watch",
]
