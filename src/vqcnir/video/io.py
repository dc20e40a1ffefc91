"""Video files in and out with PyAV (FFmpeg's libraries, carried by its wheels).

* **Reading** decodes the first video stream to 8-bit RGB in presentation order, each frame with
  its own timestamp (variable frame rates stay as they are). Pixels are handed out as stored:
  the rotation a phone records is display metadata, read from the first frame and written
  back on the output, so players turn the restored video exactly as they turned the original.
* **Writing** happens in segments (``encode_video``), each a complete file written atomically,
  which is what lets a killed job resume; ``join_segments`` then copies their packets and every
  audio stream of the source, untouched, into the output (atomically too). Encoders run without
  B-frames, so decoding and presentation order agree and segments join with rising timestamps.
* Every problem a user's file can cause (no video stream, corrupt or truncated data, a codec
  this FFmpeg cannot decode) raises ``VQCNIRError`` with one line naming the file.
"""

from __future__ import annotations

import heapq
import io
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from ..errors import VQCNIRError
from ..imagefiles import atomic_path, resolve_max_megapixels
from . import require_av

# --video-codec NAME -> (FFmpeg encoder, pixel format, Matroska-only). FFV1 on packed RGB (bgr0) is
# lossless for 8-bit RGB frames; H.264/H.265 use 4:2:0, which every player reads.
CODECS = {
    "h264": ("libx264", "yuv420p", False),
    "h265": ("libx265", "yuv420p", False),
    "ffv1": ("ffv1", "bgr0", True),
}
# Containers a restored video keeps its extension in; anything else (or a stream such a container
# cannot hold) goes to Matroska, which holds nearly every codec.
_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}
# Frames larger than this are refused from the header, before anything is decoded (a 4K frame is
# 8.3 MP; the same limit as the default for photos elsewhere in the project).


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    width: int
    height: int
    frames: int | None          # as the container says, or estimated from its duration (None: unknown)
    time_base: Fraction
    rate: Fraction | None       # average frame rate
    rotation: int               # counter-clockwise degrees to turn the stored pixels for display
    audio_codecs: tuple[str, ...]


@dataclass(frozen=True)
class Frame:
    index: int
    pts: int                    # in VideoInfo.time_base
    rgb: np.ndarray             # H x W x 3 uint8, as stored (not rotated)


@dataclass(frozen=True)
class EncodeSettings:
    codec: str = "h264"
    crf: int = 18

    def validate(self) -> "EncodeSettings":
        if self.codec not in CODECS:
            raise VQCNIRError(f"--video-codec {self.codec}: choose one of {', '.join(CODECS)}")
        if not 0 <= self.crf <= 51:
            raise VQCNIRError(f"--video-crf {self.crf}: use 0 (best) to 51 (smallest)")
        av = require_av()
        encoder = CODECS[self.codec][0]
        try:
            av.codec.Codec(encoder, "w")
        except Exception:  # UnknownCodecError, or a build without that encoder
            raise VQCNIRError(f"--video-codec {self.codec}: this FFmpeg build has no {encoder} encoder") from None
        return self


def _one_line(error: BaseException) -> str:
    text = getattr(error, "strerror", None) or str(error)
    return text.strip().splitlines()[0] if text.strip() else type(error).__name__


def _open(path: Path):
    av = require_av()
    try:
        return av.open(str(path), metadata_errors="ignore")
    except FileNotFoundError:
        raise VQCNIRError(f"{path}: no such file") from None
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as error:
        raise VQCNIRError(f"{path}: cannot open the video ({_one_line(error)}); corrupt or truncated?") from None


def _video_stream(container, path: Path):
    if not container.streams.video:
        raise VQCNIRError(f"{path}: no video stream in the file")
    stream = container.streams.video[0]
    if stream.codec_context is None or not stream.codec_context.is_decoder:
        raise VQCNIRError(f"{path}: the video codec is not supported by this FFmpeg build")
    stream.thread_type = "AUTO"
    return stream


def _check_size(path: Path, width: int, height: int) -> None:
    # the photos' limit (--max-megapixels / $VQCNIR_MAX_MEGAPIXELS), frame by frame
    limit = resolve_max_megapixels()
    if width * height > limit * 1e6:
        raise VQCNIRError(f"{path}: frames of {width}x{height} are larger than {limit:g} megapixels; "
                          "refused before decoding (a tiny file can claim huge frames)")


def probe(path: str | Path) -> VideoInfo:
    """What ``read_frames`` will deliver, checked by decoding the first frame."""
    path = Path(path)
    with _open(path) as container:
        stream = _video_stream(container, path)
        _check_size(path, stream.codec_context.width, stream.codec_context.height)
        first = next(_decode(container, stream, path), None)
        if first is None:
            raise VQCNIRError(f"{path}: no frame could be decoded (corrupt or truncated?)")
        audio = tuple(s.codec_context.name if s.codec_context else "unknown" for s in container.streams.audio)
        return VideoInfo(path, first.width, first.height, stream.frames or _estimate_frames(container, stream),
                         stream.time_base, stream.average_rate, int(round(first.rotation or 0)) % 360, audio)


def _estimate_frames(container, stream) -> int | None:
    """Duration x average rate, for containers (Matroska, WebM) that do not count frames."""
    if stream.duration is not None:
        seconds = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        seconds = container.duration / 1e6
    else:
        return None
    return round(seconds * stream.average_rate) if stream.average_rate else None


def _decode(container, stream, path: Path):
    av = require_av()
    try:
        yield from container.decode(stream)
    except av.error.FFmpegError as error:
        raise VQCNIRError(f"{path}: cannot decode the video ({_one_line(error)}); corrupt or truncated?") from None


def read_frames(path: str | Path, start: int = 0) -> Iterator[Frame]:
    """Decoded frames from index ``start`` on (earlier ones are decoded and dropped: exact, and
    cheap next to restoring them). A frame without a timestamp gets one from the frame rate."""
    path = Path(path)
    with _open(path) as container:
        stream = _video_stream(container, path)
        step = _ticks_per_frame(stream)
        last = size = None
        for index, frame in enumerate(_decode(container, stream, path)):
            if size is None:
                _check_size(path, frame.width, frame.height)
                size = (frame.width, frame.height)
            elif (frame.width, frame.height) != size:
                raise VQCNIRError(f"{path}: the frame size changes at frame {index} "
                                  f"({size[0]}x{size[1]} -> {frame.width}x{frame.height}); not supported")
            pts = frame.pts if frame.pts is not None else (0 if last is None else last + step)
            last = pts
            if index >= start:
                yield Frame(index, pts, frame.to_ndarray(format="rgb24"))


def _ticks_per_frame(stream) -> int:
    rate = stream.average_rate or stream.guessed_rate or Fraction(30)
    return max(1, round(1 / (rate * stream.time_base)))


def output_suffix(info: VideoInfo, wanted: str, settings: EncodeSettings) -> str:
    """``wanted`` (the input's extension) when that container takes the video codec and every
    audio stream, else ``.mkv``."""
    if CODECS[settings.codec][2] or wanted.lower() not in _FORMATS:
        return ".mkv"
    av = require_av()
    with av.open(io.BytesIO(), "w", format=_FORMATS[wanted.lower()]) as probe_out:
        supported = probe_out.supported_codecs
    encoder_codec = av.codec.Codec(CODECS[settings.codec][0], "w").name
    if encoder_codec not in supported or any(name not in supported for name in info.audio_codecs):
        return ".mkv"
    return wanted.lower()


def container_format(suffix: str) -> str:
    return _FORMATS.get(suffix.lower(), "matroska")


def _container_options(fmt: str, time_base: Fraction) -> dict[str, str]:
    # MP4/MOV edit lists count in the movie timescale (1/1000 s by default), which would round a
    # first timestamp that is not a whole millisecond; use the stream's own clock instead.
    if fmt in ("mp4", "mov") and time_base.numerator == 1 and time_base.denominator < 2**31:
        return {"movie_timescale": str(time_base.denominator)}
    return {}


def encode_video(path: Path, frames: Iterable[tuple[int, np.ndarray]], info: VideoInfo,
                   settings: EncodeSettings, fmt: str) -> int:
    """Encode (pts, H x W x 3 uint8) frames into one complete file at ``path``, atomically.
    Returns the number of frames written."""
    av = require_av()
    encoder, pix_fmt, _ = CODECS[settings.codec]
    count = 0
    with atomic_path(path) as tmp:
        with av.open(str(tmp), "w", format=fmt, options=_container_options(fmt, info.time_base)) as out:
            stream = None
            for pts, rgb in frames:
                if stream is None:
                    stream = _add_video_stream(out, encoder, pix_fmt, rgb.shape[1], rgb.shape[0], info, settings)
                frame = av.VideoFrame.from_ndarray(_even(rgb, pix_fmt), format="rgb24")
                frame.pts, frame.time_base = pts, info.time_base
                out.mux(stream.encode(frame))
                count += 1
            if stream is not None:
                out.mux(stream.encode(None))
    return count


def _even(rgb: np.ndarray, pix_fmt: str) -> np.ndarray:
    """4:2:0 needs even sides: repeat the last row/column once where a side is odd."""
    if not pix_fmt.endswith("420p"):
        return rgb
    h, w = rgb.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return rgb
    return np.pad(rgb, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


def _add_video_stream(out, encoder: str, pix_fmt: str, width: int, height: int, info: VideoInfo,
                      settings: EncodeSettings):
    stream = out.add_stream(encoder, rate=info.rate or Fraction(30))
    even = pix_fmt.endswith("420p")
    stream.width, stream.height = width + (width % 2 if even else 0), height + (height % 2 if even else 0)
    stream.pix_fmt = pix_fmt
    stream.time_base = info.time_base
    stream.codec_context.time_base = info.time_base
    stream.codec_context.max_b_frames = 0  # decode order = presentation order: segments join cleanly
    if encoder in ("libx264", "libx265"):
        stream.codec_context.options = {"crf": str(settings.crf), "preset": "medium"}
    if info.rotation:
        stream.set_display_rotation(info.rotation)
    return stream


def join_segments(segments: list[Path], source: Path, target: Path, rotation: int = 0) -> int:
    """Copy the video packets of ``segments`` (in order) and every audio stream of ``source``,
    without re-encoding, into ``target``, atomically. Returns the number of video packets."""
    av = require_av()
    fmt = container_format(target.suffix)
    opened = [_open(p) for p in segments]
    try:
        template = opened[0].streams.video[0]
        count = 0
        with _open(source) as src, atomic_path(target) as tmp:
            with av.open(str(tmp), "w", format=fmt, options=_container_options(fmt, template.time_base)) as out:
                video = out.add_stream_from_template(template)
                video.time_base = template.time_base
                if rotation:
                    video.set_display_rotation(rotation)
                audio_out = {a.index: out.add_stream_from_template(a) for a in src.streams.audio}
                streams = [_packets(c, c.streams.video[0], video) for c in opened]
                if audio_out:
                    streams.append(_packets(src, list(src.streams.audio), audio_out))
                for _, packet in heapq.merge(*streams, key=lambda item: item[0]):
                    if packet.stream is video:
                        count += 1
                    out.mux(packet)
    finally:
        for c in opened:
            c.close()
    return count


def _packets(container, streams, target):
    """(time in seconds, packet re-assigned to its output stream) in file order; a flush packet
    (no data) is dropped."""
    streams = streams if isinstance(streams, list) else [streams]
    route = target if isinstance(target, dict) else {streams[0].index: target}
    for packet in container.demux(streams):
        if packet.size == 0 or packet.dts is None:
            continue
        time = float(packet.dts * packet.time_base)
        packet.stream = route[packet.stream.index]
        yield time, packet
