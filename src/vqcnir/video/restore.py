"""Restore one video: decode, restore through the engine, stabilise over time, encode in resumable
segments, then join them with the source's audio.

Work in progress lives beside the output in a hidden folder ``.NAME.parts/``:

* ``job.json``: what is being made (source file, its size and date, model, every option). A
  restart with the same command finds it and resumes; with anything changed it starts over.
* ``NNNNNN.<ext>``: segment N, ``segment_frames`` frames, a complete video file written atomically.
* ``NNNNNN.state.npz``: written after segment N, the temporal state at its end; its presence
  says segments 0..N are finished (only the newest one is kept).

When every segment is there they are joined into the output (atomically) and the folder is
removed, so a killed job loses at most one segment of work.
"""

from __future__ import annotations

import itertools
import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from ..engine import RestoreOptions, restore_tensor
from ..errors import VQCNIRError
from ..imagefiles import atomic_path, to_uint, write_text
from .io import EncodeSettings, Frame, container_format, encode_video, join_segments, output_suffix, probe, read_frames
from .temporal import Stabilizer, TemporalSettings

JOB_FORMAT = 1


@dataclass
class VideoOptions:
    encode: EncodeSettings = field(default_factory=EncodeSettings)
    temporal: TemporalSettings | None = field(default_factory=TemporalSettings)  # None: frame by frame
    side_by_side: bool = False      # write night | restored
    segment_frames: int = 64        # frames per resumable segment
    batch: int = 1                  # frames per forward pass (a GPU restores several at once)

    def validate(self) -> "VideoOptions":
        self.encode.validate()
        if self.segment_frames < 1 or self.batch < 1:
            raise VQCNIRError("--video-segment and --video-batch must be at least 1")
        return self


@dataclass
class VideoResult:
    path: Path
    frames: int          # frames in the output
    restored: int        # frames restored by this run (fewer than ``frames`` after a resume)
    skipped: bool = False


def restore_video(model: torch.nn.Module, src: Path, planned: Path, engine: RestoreOptions,
                  options: VideoOptions, *, overwrite: bool = False, model_id: str = "",
                  progress: Callable[[int, int | None], None] | None = None) -> VideoResult:
    """Restore ``src`` into ``planned`` (its suffix may change, see ``output_path``).

    ``progress(frames_done, total_or_None)`` is called once before the first frame (with the
    frames already done by an earlier run) and after every frame."""
    info = probe(src)
    target = planned.with_suffix(output_suffix(info, planned.suffix, options.encode))
    if target.resolve() == src.resolve():
        raise VQCNIRError(f"{src}: output would overwrite the input; choose another -o folder")
    if target.exists() and not overwrite:
        return VideoResult(target, info.frames or 0, 0, skipped=True)
    parts = target.parent / f".{target.name}.parts"
    job = _job_record(src, info, engine, options, model_id, target.suffix)
    first_segment, state = _resume_point(parts, job)
    start = first_segment * options.segment_frames
    stabilizer = Stabilizer(options.temporal) if options.temporal is not None else None
    if stabilizer is not None:
        stabilizer.load_state(state)
    if progress is not None:
        progress(start, info.frames)

    fmt = container_format(target.suffix)
    frames = read_frames(src, start)
    restored = 0
    segment = first_segment
    while True:
        first = next(frames, None)
        if first is None:
            break
        chunk = itertools.chain([first], itertools.islice(frames, options.segment_frames - 1))
        path = parts / f"{segment:06d}{target.suffix}"
        out_frames = _restored_frames(model, chunk, engine, options, stabilizer)

        def counted(items=out_frames):
            nonlocal restored
            for item in items:
                yield item
                restored += 1
                if progress is not None:
                    progress(start + restored, info.frames)

        encode_video(path, counted(), info, options.encode, fmt)
        _save_state(parts, segment, stabilizer)
        segment += 1

    segments = sorted(parts.glob(f"[0-9][0-9][0-9][0-9][0-9][0-9]{target.suffix}"))
    if len(segments) != segment or not segments:
        raise VQCNIRError(f"{src}: the resumable work in {parts} is incomplete; delete that folder and run again")
    total = join_segments(segments, src, target, info.rotation)
    shutil.rmtree(parts)
    return VideoResult(target, total, restored)


def _restored_frames(model, chunk: Iterator[Frame], engine: RestoreOptions, options: VideoOptions,
                     stabilizer: Stabilizer | None) -> Iterator[tuple[int, np.ndarray]]:
    """(pts, output uint8 frame) for each frame of ``chunk``, restored ``options.batch`` at a time
    (only one batch of frames is decoded ahead)."""
    while batch := list(itertools.islice(chunk, options.batch)):
        night = np.stack([f.rgb for f in batch]).astype(np.float32) / 255.0
        x = torch.from_numpy(night).permute(0, 3, 1, 2)
        try:
            y = restore_tensor(model, x, engine).clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()
        except torch.OutOfMemoryError:
            raise VQCNIRError("out of memory; pass a smaller --tile, --memory-budget or --video-batch") from None
        for frame, night_rgb, rgb in zip(batch, night, y):
            if stabilizer is not None:
                rgb = stabilizer(night_rgb, rgb)
            out = to_uint(rgb, 8)
            if options.side_by_side:
                out = np.concatenate([frame.rgb, out], axis=1)
            yield frame.pts, out


def _job_record(src: Path, info, engine: RestoreOptions, options: VideoOptions, model_id: str,
                suffix: str) -> dict:
    stat = src.stat()
    record = {"format": JOB_FORMAT, "source": str(src.resolve()), "size": stat.st_size,
              "mtime_ns": stat.st_mtime_ns, "model": model_id, "engine": asdict(engine),
              "video": asdict(options), "suffix": suffix}
    return json.loads(json.dumps(record))  # as it reads back from disk


def _resume_point(parts: Path, job: dict) -> tuple[int, dict]:
    """(first segment to make, temporal state to start from); starts the folder over when it
    belongs to another job."""
    job_file = parts / "job.json"
    try:
        same = json.loads(job_file.read_text()) == job
    except (OSError, ValueError):
        same = False
    if not same:
        if parts.exists():
            shutil.rmtree(parts)
        parts.mkdir(parents=True)
        write_text(job_file, json.dumps(job, indent=1))
        return 0, {}
    states = sorted(parts.glob("[0-9][0-9][0-9][0-9][0-9][0-9].state.npz"))
    if not states:
        return 0, {}
    last = int(states[-1].name[:6])
    with np.load(states[-1]) as data:
        return last + 1, {k: data[k] for k in data.files}


def _save_state(parts: Path, segment: int, stabilizer: Stabilizer | None) -> None:
    state = stabilizer.state() if stabilizer is not None else {}
    path = parts / f"{segment:06d}.state.npz"
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **state)
    if segment:
        (parts / f"{segment - 1:06d}.state.npz").unlink(missing_ok=True)
