"""catdog-edge camera: the command line of the camera loop (defined on catdog.edge.cli's app when it is run,
listed or suggested; other commands start without building its options)."""

import json
from enum import Enum
from pathlib import Path
from typing import Optional

import click

from .cli import (
    Exit, _fail, _load, app, format_option, model_option, runtime_option, threads_option,
    threshold_option, xnnpack_option, presence_option, presence_threshold_option,
)
from .errors import CatDogError
from .runtime import RuntimeName
from .safe_text import visible

# The camera package (OpenCV, numpy) is imported inside the command, so other commands start fast.


class EventFormat(str, Enum):
    """How camera events are printed."""

    text = "text"
    json = "json"


def _resolution_hw(value: Optional[str]) -> Optional[tuple[int, int]]:
    """"640x480" (width x height, as cameras are sold) -> (480, 640)."""
    if value is None:
        return None
    width, sep, height = value.lower().partition("x")
    if not sep or not width.isdigit() or not height.isdigit() or int(width) < 1 or int(height) < 1:
        raise click.BadParameter(f"{value!r}: use WIDTHxHEIGHT, e.g. 640x480", param_hint="--resolution")
    return int(height), int(width)


def _sink_warning(message: str) -> None:
    click.echo(f"warning: {visible(message)}", err=True)


def _start_sinks(config):
    """The running sinks of a SinkConfig, or None when it has none (exit 2 when a spool cannot be used)."""
    if not config.enabled:
        return None
    from .camera import open_sinks

    try:
        return open_sinks(config, _sink_warning)
    except CatDogError as exc:
        raise _fail(exc) from None


def _start_collector(config, classifier, source: str):
    """The running collector of a CollectConfig, or None without --collect (exit 2 when its inbox cannot be made)."""
    if config is None:
        return None
    from .camera.collect import Collector

    try:
        return Collector(config, classifier, source, _sink_warning)
    except CatDogError as exc:
        raise _fail(exc) from None


def _stop_collector(collector) -> None:
    """Write the frames still queued and say what was dropped or lost over the run."""
    if collector is not None:
        for line in collector.warnings(collector.close()):
            _sink_warning(line)


def _stop_sinks(sinks, summary=None) -> None:
    """Send the summary, deliver what is spooled within the flush time, and say what is kept for the next run."""
    if sinks is None:
        return
    if summary is not None:
        sinks.emit(summary)
    for report in sinks.close():
        if report.kept:
            _sink_warning(f"{report.label}: {report.kept} event(s) kept in {report.spool}, sent on the next run")


def _start_preview(config, classifier, source: str, save_dir: Optional[Path], collect=None, switch=None):
    """The running browser preview of a PreviewConfig, or None without --http (exit 2 when it cannot listen);
    with a CollectConfig, it also serves the review view of its folder; with a ModelSwitch, its reload action."""
    if config is None:
        return None
    from .camera.preview import Preview, describe
    from .camera.review import Review

    review = None
    if collect is not None:
        none_label = classifier.presence.label if classifier.presence is not None else "none"
        review = Review(collect.folder, classifier.contract.labels, none_label)
    try:
        preview = Preview(config, describe(classifier.contract, classifier.model_path, source, classifier.answers),
                          save_dir, review, switch)
    except CatDogError as exc:
        raise _fail(exc) from None
    if config.loopback:
        click.echo(f"preview: {preview.url} (this machine only)", err=True)
    else:
        where = "every interface" if config.every_interface else config.host
        click.echo(f"preview: {' or '.join(preview.addresses())} (listening on {where}; the token is needed: "
                   "open it once with ?token=TOKEN)", err=True)
    return preview


@app.command()
@click.option("--source", "-s", default="0",
              help="Device number or /dev/videoN, picamera, a video file, an rtsp:// or http(s):// stream, or a folder of photos.")
@model_option
@format_option(EventFormat, EventFormat.text, "text lines or json lines.")
@click.option("--every", type=click.IntRange(min=1), default=1, help="Classify every Nth frame.")
@click.option("--smooth", type=click.IntRange(min=1), default=5, help="Smooth decisions over the last K classified frames.")
@click.option("--min-confidence", type=click.FloatRange(0.0, 1.0), default=0.0,
              help="Report a label only when its smoothed probability is at least this.")
@click.option("--heartbeat", type=float, default=None, help="Also print the current label every S seconds.")
@click.option("--save-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Save a JPEG snapshot on each label event in this folder.")
@click.option("--max-frames", type=click.IntRange(min=1), default=None, help="Stop after N frames.")
@click.option("--duration", type=float, default=None, help="Stop after S seconds.")
@click.option("--max-retries", type=click.IntRange(min=0), default=None,
              help="Live sources: reopen attempts in a row before exiting 1 (default: forever).")
@click.option("--fps", type=float, default=10.0, help="Frame rate of a photo folder (and of a video with none recorded).")
@click.option("--realtime", is_flag=True,
              help="Play files and folders at their frame rate, skipping frames like a live camera.")
@click.option("--resolution", default=None, help="Camera capture size WIDTHxHEIGHT, e.g. 640x480.")
@threshold_option
@presence_option
@presence_threshold_option
@runtime_option
@threads_option
@xnnpack_option
@click.option("--http", metavar="[HOST:]PORT", default=None,
              help="Serve a live browser preview here (127.0.0.1 unless HOST is given, e.g. 0.0.0.0:8080 for every "
                   "network, which needs --http-token).")
@click.option("--http-token", envvar="CATDOG_HTTP_TOKEN", show_envvar=True, default=None,
              help="Token the preview requires on every request (?token=, or Authorization: Bearer): 16-256 "
                   "characters; make one with python3 -c 'import secrets; print(secrets.token_urlsafe(16))'.")
@click.option("--preview-fps", type=float, default=10.0,
              help="Encode the preview stream at most this often (only while watched).")
@click.option("--webhook", metavar="URL", default=None,
              help="POST each event's JSON to this http(s) URL (spooled while it is down).")
@click.option("--mqtt", metavar="URL", default=None,
              help="Publish each event's JSON at QoS 1 to mqtt://host/topic (also mqtt://user:pass@host:port/topic).")
@click.option("--mqtt-discovery", metavar="NAME", default=None,
              help="With --mqtt: announce the Home Assistant sensor catdog_NAME.")
@click.option("--spool", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where events wait for --webhook/--mqtt (default: $XDG_STATE_HOME/catdog/spool).")
@click.option("--collect", type=click.Path(file_okay=False, path_type=Path), default=None, metavar="DIR",
              help="Keep frames worth labelling in DIR/inbox/ (label events, uncertain answers, a sample); label them "
                   "in the --http preview's review view into DIR/<class>/.")
@click.option("--collect-max", type=click.IntRange(min=1), default=500,
              help="At most this many frames in the inbox; the oldest are dropped.")
def camera(
    source: str, model: Optional[Path], format: EventFormat, every: int, smooth: int, min_confidence: float,
    heartbeat: Optional[float], save_dir: Optional[Path], max_frames: Optional[int], duration: Optional[float],
    max_retries: Optional[int], fps: float, realtime: bool, resolution: Optional[str], threshold: Optional[float],
    presence: bool, presence_threshold: Optional[float], runtime: RuntimeName, threads: Optional[int], xnnpack: bool, http: Optional[str], http_token: Optional[str],
    preview_fps: float, webhook: Optional[str], mqtt: Optional[str], mqtt_discovery: Optional[str],
    spool: Optional[Path], collect: Optional[Path], collect_max: int,
) -> None:
    """Watch a camera, video or stream and report when the label changes. Ctrl-C or SIGTERM stops cleanly
    (exit 0); a live source that cannot be reopened within --max-retries exits 1."""
    import signal
    import threading

    from .camera import LabelEvent, SinkConfig, SourceConfig, WatchConfig, open_stream, watch

    try:
        source_config = SourceConfig(
            spec=source, fps=fps, realtime=realtime, size_hw=_resolution_hw(resolution), max_frames=max_frames,
            max_retries=max_retries,
        )
        watch_config = WatchConfig(
            every=every, smooth=smooth, min_confidence=min_confidence, heartbeat_s=heartbeat, duration_s=duration,
            save_dir=save_dir,
        )
        preview_config = None
        if http is not None:
            from .camera.preview_config import PreviewConfig, parse_address

            host, port = parse_address(http)
            preview_config = PreviewConfig(host=host, port=port, token=http_token or None, preview_fps=preview_fps)
        sink_config = SinkConfig(webhook=webhook, mqtt=mqtt, mqtt_discovery=mqtt_discovery, spool=spool)
        collect_config = None
        if collect is not None:
            from .camera.collect import CollectConfig

            collect_config = CollectConfig(folder=collect, max_frames=collect_max)
    except CatDogError as exc:
        raise _fail(exc) from None
    from .camera.loop import ModelNotice
    from .camera.swap import ModelOptions, ModelSwitch

    loading = dict(threshold=threshold, xnnpack=xnnpack, presence=presence, presence_threshold=presence_threshold)
    classifier = _load(model, runtime, threads, **loading)
    # SIGHUP and the preview's button read --model again with the same options (edge.camera.swap)
    switch = ModelSwitch(classifier, ModelOptions(path=model, runtime=runtime, threads=threads, **loading))
    collector = _start_collector(collect_config, classifier, source)
    preview = _start_preview(preview_config, classifier, source, save_dir, collect_config, switch)
    sinks = _start_sinks(sink_config)
    observers = [hook for hook in (preview and preview.live.observe, collector and collector.observe) if hook]

    def on_frame(frame, state) -> None:
        for hook in observers:
            hook(frame, state)

    def show(event) -> None:
        if preview is not None:
            preview.live.on_event(event)
        if sinks is not None and isinstance(event, LabelEvent):
            sinks.emit(event.to_dict())
        if isinstance(event, ModelNotice):
            if collector is not None:
                collector.use(event.classifier)
            click.echo(visible(event.message), err=True)
        elif not isinstance(event, LabelEvent):
            click.echo(f"warning: {visible(event.message)}", err=True)
        elif format is EventFormat.json:
            click.echo(json.dumps(event.to_dict(), ensure_ascii=True))
        else:
            what = "still" if event.event == "heartbeat" else "now"
            label = "-" if event.label is None else f"{event.label} {event.confidence:.2f}"
            saved = f"  -> {event.snapshot}" if event.snapshot else ""
            click.echo(visible(f"{event.t:9.2f} s  frame {event.frame:>7}  {what:<5} {label}{saved}"))

    stop = threading.Event()

    def request_stop(signum, _frame) -> None:
        stop.set()
        signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL)  # 2nd = force

    def request_reload(_signum, _frame) -> None:
        switch.request_reload()  # loaded on the switch's thread: the loop never waits for it

    handled = (signal.SIGINT, signal.SIGTERM)
    previous = {}
    switch.start()
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, request_stop) for sig in handled}
        if hasattr(signal, "SIGHUP"):  # not on Windows
            previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, request_reload)
    try:
        stream = open_stream(source_config)
        summary = watch(classifier, stream, watch_config, show, stop, on_frame=on_frame if observers else None,
                        switch=switch)
    except CatDogError as exc:
        _stop_sinks(sinks)
        raise _fail(exc) from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        previous = {}
        switch.close()
        if preview is not None:
            preview.close()
        _stop_collector(collector)
    if format is EventFormat.json:
        click.echo(json.dumps(summary.to_dict()))
    else:
        lat = summary.latency_ms
        latency = f"latency p50 {lat['p50']:.1f} ms, p95 {lat['p95']:.1f} ms" if lat.get("p50") is not None else "no latency"
        click.echo(
            f"summary: {summary.frames} frames, {summary.classified} classified, {summary.dropped} dropped, "
            f"{summary.skipped} skipped, {summary.events} events in {summary.seconds:.1f} s ({summary.fps:.1f} fps); "
            f"{latency}; stopped: {summary.stopped}"
        )
    _stop_sinks(sinks, summary.to_dict())
    if summary.error is not None:
        click.echo(f"error: {visible(summary.error)}", err=True)
        raise Exit(1)
