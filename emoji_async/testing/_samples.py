"""Sample portraits the project draws itself, for demos and tests: no image leaves the machine.

``SAMPLE_PORTRAITS`` names a dozen distinct, deterministic, clearly drawn
head-and-shoulders faces (skin tones, hair, eyes, mouths, backgrounds, some
glasses and beards), and ``sample_portrait(name)`` gives one as PNG bytes,
640x640, drawn with numpy and encoded with PyAV (``emoji-async[video]``) on
first use, then cached. A running simulator serves them like a public image
host at ``GET {origin}/samples/{name}.png`` (``SimulatorServer.sample_url``).
"""

from __future__ import annotations

import functools

from ._optional import has_av, has_numpy

__all__ = ["SAMPLES_PATH", "SAMPLE_PORTRAITS", "sample_portrait", "samples_available"]

#: The names of the sample portraits, in a stable order.
SAMPLE_PORTRAITS: tuple[str, ...] = (
    "ada",
    "grace",
    "alan",
    "edsger",
    "barbara",
    "donald",
    "margaret",
    "linus",
    "frances",
    "ken",
    "radia",
    "dennis",
)
#: Where a simulator serves them, outside the API prefix like an image host.
SAMPLES_PATH = "/samples"


def samples_available() -> bool:
    """Whether sample portraits can be drawn here (numpy and PyAV importable)."""
    return has_numpy() and has_av()


@functools.cache
def sample_portrait(name: str) -> bytes:
    """The sample portrait ``name`` (one of ``SAMPLE_PORTRAITS``) as PNG bytes, 640x640.

    Raises ``ValueError`` for an unknown name and ``ImportError`` when numpy or
    PyAV is missing.
    """
    if name not in SAMPLE_PORTRAITS:
        raise ValueError(f"unknown sample portrait {name!r}; expected one of {SAMPLE_PORTRAITS}")
    if not samples_available():
        raise ImportError("sample portraits need numpy and PyAV: pip install 'emoji-async[video]'")
    import av

    from ._portraits import LOOKS, SIZE, draw

    codec = av.CodecContext.create("png", "w")
    if not isinstance(codec, av.VideoCodecContext):  # pragma: no cover - a codec mix-up
        raise TypeError("png did not open a video codec")
    codec.width = codec.height = SIZE
    codec.pix_fmt = "rgb24"
    frame = av.VideoFrame.from_ndarray(draw(LOOKS[name]), format="rgb24")
    packets = [*codec.encode(frame), *codec.encode(None)]
    return b"".join(bytes(packet) for packet in packets)
