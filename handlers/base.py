"""What a handler is: a payload schema plus a function from (payload, work dir) to artifacts.

Handlers never touch the database or the network. The runner downloads the input into
the work directory, probes and gates it, calls the handler, then verifies and uploads
the artifacts it returns. Outputs a handler declares as live (`Handler.live_outputs`) the
runner uploads while the handler's ffmpeg still runs, each as soon as ffmpeg has finished it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import structlog
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import PydanticCustomError

from handlers.errors import InvalidPayload
from utils.ffmpeg import MediaError, MediaLimits, ProbeResult
from utils.ffmpeg_commands import Tonemap, WebVideoOptions, input_args
from utils.ffmpeg_supervisor import run_ffmpeg
from utils.ffmpeg_watchdog import RunLimits
from utils.media_plan import CPU, Accel
from utils.verify import Expect

# The worker's logger: structlog's global configuration (and its job fields) applies to it.
log = structlog.get_logger("media_worker")


class Payload(BaseModel):
    """Base for payload schemas: unknown keys are an error, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_crf_floor(value: int) -> int:
    if value < 1:
        why = ("0 means lossless, which x264's High profile (the web MP4's profile) cannot encode" if value == 0
               else "a CRF is never negative")
        raise PydanticCustomError("crf_floor", "{why}; use 1 or more (1 is the best quality, about 18-28 is usual)",
                                  {"why": why})
    return value


# The floor is checked by the validator, not by ge=1, so that the message can say why 0 is refused.
Crf = Annotated[int, Field(le=51, json_schema_extra={"minimum": 1}), AfterValidator(_check_crf_floor)]
"""An x264 CRF for an H.264 High output: 1 (best) to 51; 0 (lossless) needs a profile web players lack."""


class InputRef(Payload):
    """An object in Storage: payload.input."""

    bucket: str = Field(default="media-uploads", min_length=1, max_length=100)
    path: str = Field(min_length=1, max_length=1024)


class InputPayload(Payload):
    """A payload with one input object."""

    input: InputRef
    delete_input_on_success: bool = Field(
        default=False, description="remove the input object once the outputs are stored")


@dataclass(frozen=True)
class MediaSettings:
    """The ffmpeg side of the configuration, as handlers see it."""

    ffmpeg_path: str
    ffprobe_path: str
    web_video: WebVideoOptions
    limits: MediaLimits
    timeout_seconds: float
    stall_seconds: float
    accel: Accel = CPU

    def run_limits(self, duration: float) -> RunLimits:
        """FFMPEG_TIMEOUT_SECONDS, or 10x the input's duration (at least 5 min) when it is 0."""
        timeout = self.timeout_seconds or max(300.0, duration * 10)
        return RunLimits(timeout_seconds=timeout, stall_seconds=self.stall_seconds)


@dataclass(frozen=True)
class JobContext:
    """Everything a handler of an input file may use."""

    input_path: Path
    probe: ProbeResult
    work_dir: Path
    media: MediaSettings
    report_progress: Callable[[float], None]
    should_stop: Callable[[], bool]

    @property
    def input_args(self) -> list[str]:
        """`-f <probed demuxer> -protocol_whitelist file -i file:<input>`: put these in a hand-built
        ffmpeg command instead of naming the input yourself, so the hostile-input rules hold."""
        return input_args(self.input_path, self.probe.demuxer)

    @property
    def tonemap(self) -> Tonemap | None:
        """For an HDR input (PQ or HLG), how to tone-map its video outputs to SDR BT.709; else None."""
        video = self.probe.video
        if video is None or video.hdr is None:
            return None
        # HDR is BT.2020 in practice; fill only what the file left unknown (HLG on BT.709 primaries exists).
        unknown = (None, "unknown", "unspecified")
        assume = {"color_primaries": "bt2020"} if video.color_primaries in unknown else {}
        if video.color_space in unknown:
            assume["colorspace"] = "bt2020nc"
        return Tonemap(assume)

    def tonemap_metadata(self) -> dict[str, Any]:
        """{"tonemapped_from": "PQ"|"HLG"} for a job whose video outputs were tone-mapped, else {}."""
        video = self.probe.video
        return {"tonemapped_from": video.hdr} if video is not None and video.hdr is not None else {}

    def run_ffmpeg(self, build: Callable[[Accel], list[str]], share: tuple[float, float] = (0.0, 1.0)) -> RunOutcome:
        """Run build(accel) on the worker's best path; if a hardware run fails, run it again on the CPU.

        `share` is the slice of the job's progress this run covers, for handlers that run ffmpeg twice.
        """
        accel = self.media.accel
        log.info("ffmpeg_path", path=accel.name)
        try:
            return RunOutcome(self._supervise(build(accel), share), accel)
        except MediaError as exc:
            if accel.is_cpu:
                raise
            # Only this job moves to the CPU: one bad run must not demote the whole worker.
            log.warning("ffmpeg_hardware_failed", path=accel.name, error=str(exc), stderr=exc.stderr_tail)
        return RunOutcome(self._supervise(build(CPU), share), CPU, fell_back_from=accel.name)

    def _supervise(self, argv: list[str], share: tuple[float, float]) -> str:
        start, end = share
        return run_ffmpeg(argv, duration=self.probe.duration, limits=self.media.run_limits(self.probe.duration),
                          on_progress=lambda f: self.report_progress(start + (end - start) * f),
                          should_stop=self.should_stop)


@dataclass(frozen=True)
class RunOutcome:
    """How an ffmpeg run went: its stderr tail and the path that produced the outputs."""

    stderr: str
    accel: Accel
    fell_back_from: str | None = None

    def metadata(self) -> dict[str, Any]:
        """The `ffmpeg_path` entry for a job's result metadata."""
        if self.fell_back_from:
            return {"ffmpeg_path": self.accel.name, "ffmpeg_path_fallback_from": self.fell_back_from}
        return {"ffmpeg_path": self.accel.name}


@dataclass(frozen=True)
class TaskContext:
    """What a handler whose payload has no `input` gets: a work directory and the controls."""

    make_work_dir: Callable[[], Path]
    media: MediaSettings
    report_progress: Callable[[float], None]
    should_stop: Callable[[], bool]

    @property
    def work_dir(self) -> Path:
        """The job's private directory, created when first asked for."""
        return self.make_work_dir()


@dataclass(frozen=True)
class Artifact:
    """One output file. `name` is its object name under {owner}/{job_id}/."""

    kind: str
    name: str
    path: Path
    content_type: str
    meta: dict[str, Any] = field(default_factory=dict)
    expect: Expect | None = None  # checked with ffprobe before upload
    listed: bool = True  # False: stored, but named only in the manifest, not in result.outputs (HLS segments)


@dataclass(frozen=True)
class Manifest:
    """A JSON file the runner writes at `path` and uploads as `name` once every artifact is stored: each
    artifact under the manifest's folder, named relative to it, with its size and sha256."""

    kind: str
    name: str
    path: Path


@dataclass(frozen=True)
class LiveOutput:
    """Files ffmpeg finishes one by one during a run, which the runner stores while the run goes on: those whose
    path relative to the work directory matches the glob `pattern` (e.g. "hls/*/seg_*.ts"), each stored under
    that relative path. ffmpeg must give a file its name only once it is complete and never write it again (the
    HLS muxer's temp_file flag, image2's atomic_writing), and the handler must list it among its artifacts under
    the same name; one it does not list, or one changed after it was stored, is not (or is again) uploaded."""

    pattern: str
    content_type: str


@dataclass(frozen=True)
class LivePlaylists:
    """HLS playlists the runner publishes while ffmpeg runs, so playback starts before the job ends: ffmpeg keeps
    the master (`master`, relative to the work directory) and the EVENT playlists it names current, and the runner
    stores snapshots naming only segments already stored (live outputs), with a short cache-control, then records
    when the master was stored. The handler lists the final playlists as artifacts; they replace the snapshots."""

    master: str
    content_type: str


@dataclass(frozen=True)
class HandlerResult:
    artifacts: list[Artifact]
    metadata: dict[str, Any] = field(default_factory=dict)
    manifest: Manifest | None = None


@dataclass(frozen=True)
class Handler:
    """A job type: its name, payload schema and the function that runs it."""

    name: str
    payload_model: type[Payload]
    run: Callable[[Any, Any], HandlerResult]
    description: str = ""
    # The content types its artifacts may have: `doctor` checks them against the outputs bucket's
    # allowed_mime_types, which Storage enforces exactly, so a missing one shows before ffmpeg runs.
    output_types: tuple[str, ...] = ()
    live_outputs: tuple[LiveOutput, ...] = ()  # uploaded while ffmpeg runs; the other artifacts once it has exited
    live_playlists: Callable[[Any], LivePlaylists | None] | None = None  # for a payload: what to publish while it runs

    @property
    def needs_input(self) -> bool:
        """True when the payload names an input object (a JobContext is passed), else a TaskContext."""
        return issubclass(self.payload_model, InputPayload)

    def parse_payload(self, raw: Any) -> Payload:
        """Validate a job's payload; raise InvalidPayload naming every bad field."""
        if not isinstance(raw, dict):
            raise InvalidPayload(f"payload must be a JSON object, got {type(raw).__name__}")
        try:
            return self.payload_model.model_validate(raw)
        except ValidationError as exc:
            raise InvalidPayload(f"invalid payload for {self.name}: {describe_validation_error(exc)}") from exc


def describe_validation_error(exc: ValidationError) -> str:
    """'payload.crf: must be <= 51; payload.foo: unknown key' from pydantic's errors."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in ("payload", *err["loc"]))
        message = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        parts.append(f"{where}: {message}")
    return "; ".join(parts)
