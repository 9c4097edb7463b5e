"""Camera-loop soak: 5,000 frames of a 640x480 video through catdog-edge camera's loop; fps and RSS growth.

Goal: >= 100 fps on 2 cores and RSS growth < 5 MiB over the run. The video is built from the val
photos in a temporary folder (each photo held for a few frames, like a scene in front of a camera).

    .venv/bin/python benchmarks/camera_soak.py [--data ../shared/datasets/catdog/val] [--frames 5000]
Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import threading
from pathlib import Path

from catdog.edge import Classifier
from catdog.edge.camera import SourceConfig, WatchConfig, WatchSummary, import_cv2, open_stream, watch
from catdog.edge.inputs import expand_inputs
from _paths import DATA

FRAME_HW = (480, 640)


def rss_mib() -> float:
    """Resident set size of this process, MiB (Linux /proc)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def build_video(photos: tuple[Path, ...], path: Path, frames: int, hold: int = 5, fps: float = 30.0) -> Path:
    """A 640x480 mp4 of `frames` frames: the photos in turn, each held for `hold` frames."""
    cv2 = import_cv2()
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (FRAME_HW[1], FRAME_HW[0]))
    if not writer.isOpened():
        raise SystemExit("OpenCV cannot write mp4v here")
    try:
        bgr = None
        for i in range(frames):
            if i % hold == 0:
                bgr = cv2.resize(cv2.imread(str(photos[(i // hold) % len(photos)])), (FRAME_HW[1], FRAME_HW[0]))
            writer.write(bgr)
    finally:
        writer.release()
    return path


def soak(classifier: Classifier, source: SourceConfig, config: WatchConfig) -> tuple[WatchSummary, float, float, float]:
    """Warm up on 300 frames the same way (so thread arenas and buffers exist), then run the whole source;
    returns (summary, rss before, rss after, peak rss)."""
    warm = SourceConfig(source.spec, realtime=source.realtime, max_frames=300)
    watch(classifier, open_stream(warm), config, lambda event: None)
    before = rss_mib()
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.2):
            peak[0] = max(peak[0], rss_mib())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        summary = watch(classifier, open_stream(source), config, lambda event: None)
    finally:
        done.set()
        sampler.join()
    return summary, before, rss_mib(), max(peak[0], rss_mib())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA / "val")
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--frames", type=int, default=5000)
    parser.add_argument("--live-fps", type=float, default=150.0, help="frame rate of the video, the pace of the --realtime row")
    args = parser.parse_args()
    photos = expand_inputs([args.data], recursive=True).photos[:400]
    cores = os.cpu_count() or 1

    with tempfile.TemporaryDirectory(prefix="catdog-soak-") as tmp:
        # recorded at --live-fps, so that --realtime plays it at that pace
        video = build_video(photos, Path(tmp) / "soak.mp4", args.frames, fps=args.live_fps)
        rows = []
        for name, threads, source, config in (
            ("file, frame by frame, every frame", None, SourceConfig(str(video)), WatchConfig()),
            ("file, frame by frame, 1 interpreter thread", 1, SourceConfig(str(video)), WatchConfig()),
            ("file, frame by frame, --every 3", None, SourceConfig(str(video)), WatchConfig(every=3)),
            (f"live-like: --realtime, video at {args.live_fps:g} fps", None,
             SourceConfig(str(video), realtime=True), WatchConfig()),
        ):
            classifier = Classifier.load(args.model, threads=threads)
            summary, before, after, peak = soak(classifier, source, config)
            rows.append((name, summary, before, after, peak))

    print(f"{platform.machine()}, {cores} cores, Python {platform.python_version()}, "
          f"{classifier.runtime.name} {classifier.runtime.version}, OpenCV {import_cv2().__version__}, "
          f"{args.frames} frames of {FRAME_HW[1]}x{FRAME_HW[0]}\n")
    print("| run | frames | classified | dropped | skipped | fps | latency p50 / p95 ms | RSS start MiB | RSS growth MiB | RSS peak MiB |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, s, before, after, peak in rows:
        lat = s.latency_ms
        print(f"| {name} | {s.frames} | {s.classified} | {s.dropped} | {s.skipped} | {s.fps:.1f} | "
              f"{lat['p50']:.1f} / {lat['p95']:.1f} | {before:.1f} | {after - before:+.2f} | {peak:.1f} |")
    worst = min(s.fps for name, s, *_ in rows if not name.startswith("live"))
    growth = max(after - before for _, _, before, after, _ in rows)
    print(f"\ngoal >= 100 fps (file rows): {'met' if worst >= 100 else 'NOT met'} (slowest {worst:.1f}); "
          f"RSS growth < 5 MiB: {'met' if growth < 5 else 'NOT met'} (largest {growth:+.2f} MiB)")


if __name__ == "__main__":
    main()
