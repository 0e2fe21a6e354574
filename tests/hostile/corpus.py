"""Hostile and odd files, built by the tests: every one is either refused with a message or analysed.

Each case is (file name, bytes, expectation): a substring of the refusal message, or ANALYSED.
"""

import io
import struct
import zlib
from collections.abc import Callable

from PIL import Image, PngImagePlugin

from tests.factories import image_bytes

ANALYSED = "analysed"
NOT_AN_IMAGE = "not an image we can read"
CORRUPT = "corrupt or truncated"
OVER_LIMIT = "100 MP"
# libwebp decodes some noise behind a valid VP8 frame header (VP8 has no checksum): refused or analysed.
EITHER = "refused or analysed"


def _png_chunk(kind: bytes, payload: bytes, crc: int | None = None) -> bytes:
    crc = zlib.crc32(kind + payload) if crc is None else crc
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def _png(width: int, height: int, rows: bytes, *, extra: bytes = b"", idat_crc: int | None = None) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + extra
        + _png_chunk(b"IDAT", zlib.compress(rows), crc=idat_crc)
        + _png_chunk(b"IEND", b"")
    )


def _gray_rows(width: int, height: int) -> bytes:
    return b"".join(b"\0" + bytes((x * 7 + y * 3) % 256 for x in range(width * 3)) for y in range(height))


def _saved(img: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _photo(size: tuple[int, int] = (96, 64), mode: str = "RGB", seed: int = 0) -> Image.Image:
    return Image.open(io.BytesIO(image_bytes(size=size, seed=seed, fmt="PNG"))).convert(mode)


def _riff(chunks: bytes, size_delta: int = 0) -> bytes:
    body = b"WEBP" + chunks
    return b"RIFF" + struct.pack("<I", len(body) + size_delta) + body


def _riff_chunk(kind: bytes, data: bytes) -> bytes:
    return kind + struct.pack("<I", len(data)) + data + (b"\0" if len(data) % 2 else b"")


# A valid VP8 key-frame header for 64x64 (frame tag, start code, dimensions) followed by noise: libwebp
# decodes some such files to noise, so only the container's sizes can tell they were never encoded.
_VP8_HEADER_64 = bytes([0x50, 0x2D, 0x00, 0x9D, 0x01, 0x2A, 64, 0, 64, 0])


def _noise(count: int, seed: int) -> bytes:
    out, state = bytearray(), seed or 1
    for _ in range(count):
        state = (state * 1103515245 + 12345) & 0x7FFFFFFF
        out.append(state >> 16 & 0xFF)
    return bytes(out)


def _jpeg_sof_claiming(width: int, height: int) -> bytes:
    """A JPEG whose frame header claims these dimensions, with no scan data behind it."""
    data = bytearray(image_bytes(fmt="JPEG", size=(16, 16)))
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def _exif_orientation(value: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = value
    return _saved(_photo((80, 40)), "JPEG", exif=exif.tobytes())


def _png_text(key: str, text: str, compressed: bool = False) -> bytes:
    info = PngImagePlugin.PngInfo()
    (info.add_itxt if compressed else info.add_text)(key, text, **({"zip": True} if compressed else {}))
    return _saved(_photo(), "PNG", pnginfo=info)


def _ztxt_bomb() -> bytes:
    """A zTXt chunk that inflates to 64 MB: metadata readers must not inflate it whole."""
    payload = b"Comment\0\0" + zlib.compress(b"A" * (64 * 1024 * 1024), 9)
    rows = _gray_rows(32, 32)
    return _png(32, 32, rows, extra=_png_chunk(b"zTXt", payload))


def _animated(fmt: str) -> bytes:
    frames = [_photo(seed=s) for s in range(3)]
    return _saved(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)


def _truncated(data: bytes, keep: float) -> bytes:
    return data[: int(len(data) * keep)]


def _flipped_byte(data: bytes, at: int) -> bytes:
    flipped = bytearray(data)
    flipped[at] ^= 0xFF
    return bytes(flipped)


CASES: dict[str, Callable[[], tuple[str, bytes, str]]] = {
    # --- not images, or not ours ---------------------------------------------------------------------
    "empty": lambda: ("empty.jpg", b"", "empty"),
    "text named jpg": lambda: ("notes.jpg", b"just some text\n" * 40, NOT_AN_IMAGE),
    "html named png": lambda: ("page.png", b"<html><script>alert(1)</script></html>", NOT_AN_IMAGE),
    "svg with script": lambda: (
        "vector.png",
        b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><rect width="9" height="9"/></svg>',
        NOT_AN_IMAGE,
    ),
    "pdf": lambda: ("scan.jpg", b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n", NOT_AN_IMAGE),
    "zip": lambda: ("archive.jpg", b"PK\x03\x04" + b"\0" * 200, NOT_AN_IMAGE),
    "elf": lambda: ("program.webp", b"\x7fELF\x02\x01\x01" + b"\0" * 200, NOT_AN_IMAGE),
    "magic bytes only": lambda: ("stub.jpg", b"\xff\xd8\xff", NOT_AN_IMAGE),
    "png signature only": lambda: ("stub.png", b"\x89PNG\r\n\x1a\n", NOT_AN_IMAGE),
    "gif": lambda: ("anim.gif", image_bytes(fmt="GIF"), "GIF files are not accepted"),
    "bmp": lambda: ("old.bmp", image_bytes(fmt="BMP"), "BMP files are not accepted"),
    "tiff": lambda: ("scan.tif", image_bytes(fmt="TIFF"), "TIFF files are not accepted"),
    "ico": lambda: ("favicon.png", _saved(_photo((32, 32)), "ICO"), "ICO files are not accepted"),
    "gif named jpg (polyglot)": lambda: ("sneaky.jpg", image_bytes(fmt="GIF") + b"/*<script>*/", "GIF files"),
    # --- truncated and corrupt -------------------------------------------------------------------------
    "jpeg cut after the header": lambda: ("cut.jpg", image_bytes(fmt="JPEG")[:200], CORRUPT),
    "jpeg cut in half": lambda: ("half.jpg", _truncated(image_bytes(fmt="JPEG", size=(256, 256)), 0.5), CORRUPT),
    "png cut in half": lambda: ("half.png", _truncated(image_bytes(fmt="PNG", size=(128, 128)), 0.5), CORRUPT),
    "png with a wrong IDAT checksum": lambda: ("crc.png", _png(32, 32, _gray_rows(32, 32), idat_crc=0), CORRUPT),
    "png with a wrong IHDR checksum": lambda: (
        "ihdr.png",
        _flipped_byte(_png(32, 32, _gray_rows(32, 32)), 8 + 4 + 4 + 13),
        NOT_AN_IMAGE,
    ),
    "png with a corrupt zlib stream": lambda: (
        "zlib.png",
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 32, 32, 8, 2, 0, 0, 0))
        + _png_chunk(b"IDAT", b"\x78\x9c" + _noise(300, 7))
        + _png_chunk(b"IEND", b""),
        CORRUPT,
    ),
    "webp cut in half": lambda: ("half.webp", _truncated(image_bytes(fmt="WEBP", size=(128, 128)), 0.5), CORRUPT),
    "webp of random data behind a valid frame header": lambda: (
        "noise.webp",
        _riff(_riff_chunk(b"VP8 ", _VP8_HEADER_64 + _noise(3000, 11)), size_delta=-1000),
        CORRUPT,
    ),
    "webp of random data in a consistent container": lambda: (
        "noise2.webp",
        _riff(_riff_chunk(b"VP8 ", _VP8_HEADER_64 + _noise(3000, 13))),
        EITHER,
    ),
    "webp whose container overstates its size": lambda: (
        "long.webp",
        _riff(_riff_chunk(b"VP8 ", _VP8_HEADER_64 + _noise(3000, 11)), size_delta=64),
        CORRUPT,
    ),
    "webp with bytes after its container": lambda: ("tail.webp", image_bytes(fmt="WEBP") + b"\0" * 64, CORRUPT),
    "webp chunk running past the end": lambda: (
        "chunk.webp",
        _riff(b"VP8 " + struct.pack("<I", 5000) + _VP8_HEADER_64 + _noise(3000, 5)),
        CORRUPT,
    ),
    # --- bombs -------------------------------------------------------------------------------------------
    "png claiming 30000x30000": lambda: ("bomb.png", _png(30000, 30000, b"\0" * 64), OVER_LIMIT),
    "png claiming 12000x12000": lambda: ("bomb2.png", _png(12000, 12000, b"\0" * 64), OVER_LIMIT),
    "jpeg claiming 60000x60000": lambda: ("bomb.jpg", _jpeg_sof_claiming(60000, 60000), OVER_LIMIT),
    "jpeg claiming 12000x9000": lambda: ("bomb2.jpg", _jpeg_sof_claiming(12000, 9000), OVER_LIMIT),
    # Pillow refuses text chunks that inflate past 1 MB, so a metadata bomb never reaches the extractor.
    "png with a zTXt bomb": lambda: ("ztxt.png", _ztxt_bomb(), CORRUPT),
    # --- odd but valid -----------------------------------------------------------------------------------
    "1x1 jpeg": lambda: ("dot.jpg", _saved(_photo((1, 1)), "JPEG"), ANALYSED),
    "1x1 png": lambda: ("dot.png", _saved(_photo((1, 1)), "PNG"), ANALYSED),
    "very wide png": lambda: ("panorama.png", _saved(_photo((2000, 20)), "PNG"), ANALYSED),
    "a strip of 100000x1": lambda: ("strip.png", _png(100000, 1, b"\0" + b"\x80" * 300000), "times apart"),
    "very tall jpeg": lambda: ("tower.jpg", _saved(_photo((30, 3000)), "JPEG"), ANALYSED),
    "grayscale jpeg": lambda: ("gray.jpg", _saved(_photo(mode="L"), "JPEG"), ANALYSED),
    "cmyk jpeg": lambda: ("print.jpg", _saved(_photo(mode="CMYK"), "JPEG"), ANALYSED),
    "progressive jpeg": lambda: ("prog.jpg", _saved(_photo(), "JPEG", progressive=True), ANALYSED),
    "jpeg rotated by exif": lambda: ("rotated.jpg", _exif_orientation(6), ANALYSED),
    "jpeg with an invalid exif orientation": lambda: ("badexif.jpg", _exif_orientation(99), ANALYSED),
    "16-bit png": lambda: ("deep.png", _saved(_photo(mode="L").convert("I;16"), "PNG"), ANALYSED),
    "palette png with transparency": lambda: (
        "palette.png",
        _saved(_photo().convert("P", palette=Image.Palette.ADAPTIVE), "PNG", transparency=0),
        ANALYSED,
    ),
    "grayscale png with alpha": lambda: ("la.png", _saved(_photo(mode="LA"), "PNG"), ANALYSED),
    "rgba png": lambda: ("rgba.png", _saved(_photo(mode="RGBA"), "PNG"), ANALYSED),
    "1-bit png": lambda: ("bits.png", _saved(_photo(mode="1"), "PNG"), ANALYSED),
    "animated png": lambda: ("anim.png", _animated("PNG"), ANALYSED),
    "animated webp": lambda: ("anim.webp", _animated("WEBP"), ANALYSED),
    "lossless webp with alpha": lambda: ("alpha.webp", _saved(_photo(mode="RGBA"), "WEBP", lossless=True), ANALYSED),
    "jpeg with a zip appended (polyglot)": lambda: (
        "motion.jpg",
        image_bytes(fmt="JPEG", seed=3) + b"PK\x03\x04" + b"\0" * 100,
        ANALYSED,
    ),
    "jpeg with html in a comment (polyglot)": lambda: (
        "comment.jpg",
        _saved(_photo(seed=4), "JPEG", comment=b"<html><script>alert(document.cookie)</script>"),
        ANALYSED,
    ),
    "png with a generator's prompt": lambda: (
        "prompt.png",
        _png_text("parameters", "Steps: 20, Sampler: Euler"),
        ANALYSED,
    ),
    "png with huge compressed text": lambda: ("itxt.png", _png_text("Comment", "x" * 2_000_000, True), CORRUPT),
    "png with large compressed text": lambda: ("itxt2.png", _png_text("Comment", "x" * 500_000, True), ANALYSED),
    "png with data after IEND": lambda: ("after.png", image_bytes(fmt="PNG", seed=6) + b"<script>x</script>", ANALYSED),
    "name with a path": lambda: ("../../etc/passwd.jpg", image_bytes(seed=7), ANALYSED),
    "name with markup": lambda: ('<img src=x onerror="alert(1)">.jpg', image_bytes(seed=8), ANALYSED),
    "name with a right-to-left override": lambda: ("photo\u202egpj.exe", image_bytes(seed=9), ANALYSED),
    "name of 300 characters": lambda: ("n" * 296 + ".jpg", image_bytes(seed=10), ANALYSED),
}
