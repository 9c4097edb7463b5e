"""edge.camera.streams: the newest-frame reader drops what the consumer did not take (and never hands a
frame out twice), and a live stream is reopened with backoff, then given up with the reason."""

from __future__ import annotations

import numpy as np
import pytest

from catdog.edge.camera.frames import SourceConfig
from catdog.edge.camera.streams import LatestFrameStream, open_stream
from catdog.edge.errors import SourceError
from tests.edge.camera.helpers import PATIENCE_S, GatedSource, MjpegServer, require_opencv, solid, wait_for


def test_realtime_reader_keeps_only_the_newest_frame():
    # The test decides which frames exist before the consumer looks: 1, then 4 more, then the last 5.
    source = GatedSource([np.full((8, 8, 3), i, dtype=np.uint8) for i in range(10)], fps=100)
    stream = open_stream(SourceConfig("gated", realtime=True), source)
    taken = []
    try:
        assert isinstance(stream, LatestFrameStream)
        for allow, published in ((1, 1), (4, 5), (5, 10)):
            source.allow(allow)
            assert wait_for(lambda: stream.frames == published), f"{stream.frames} frames, expected {published}"
            frame = stream.get(timeout=PATIENCE_S)
            taken.append((frame.index, int(frame.rgb[0, 0, 0]), frame.t))
            if published < 10:
                assert stream.get(timeout=0.05) is None, "a frame was handed out twice"
        assert stream.get(timeout=PATIENCE_S) is None and stream.ended
    finally:
        stream.close()
    assert stream.frames == 10
    # the newest frame each time, the ones in between dropped; media time paced at the source's 100 fps
    assert taken == [(0, 0, 0.0), (4, 4, 0.04), (9, 9, 0.09)]


def test_stream_reconnects_with_backoff_then_gives_up():
    require_opencv()
    # Each connection gets 10 frames (the reader reconnects after each); the server goes down after 25.
    server = MjpegServer(solid((200, 100, 50), 3), fps=50, limit=10, down_after=25).start()
    config = SourceConfig(server.url, max_retries=2, backoff_s=0.05, backoff_max_s=0.1, timeout_s=3)
    stream = open_stream(config)
    frames = []
    try:
        with pytest.raises(SourceError, match="cannot open it.*giving up after 2 reopen attempt"):
            for _ in range(100):  # the reader gives up; get() then raises its error
                frame = stream.get(timeout=PATIENCE_S)
                if frame is not None:
                    frames.append(frame)
        warnings = stream.drain_warnings()
    finally:
        stream.close()
        server.stop()
    dropped, refused = f"{server.url}: stopped delivering frames", f"{server.url}: cannot open it"
    assert warnings == [
        f"{dropped}; reopening in 0.1 s (attempt 1/2)",  # after 10 frames: reopened, and the count starts again
        f"{dropped}; reopening in 0.1 s (attempt 1/2)",  # after 20
        f"{dropped}; reopening in 0.1 s (attempt 1/2)",  # after 25: the server is down
        f"{refused}; check that it is plugged in / reachable; reopening in 0.1 s (attempt 2/2)",
    ]
    assert stream.frames == 25 and frames[0].index == 0
    assert frames[0].rgb.reshape(-1, 3).mean(axis=0)[0] > 150  # RGB from the stream too
