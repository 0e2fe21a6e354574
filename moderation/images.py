"""Upload validation by content: the bytes are decoded, never trusted by name or declared type."""

import hashlib
import struct
import warnings
from dataclasses import dataclass
from io import BytesIO
from typing import IO

from PIL import Image, UnidentifiedImageError

from common.errors import Invalid

# How an accepted original is served back.
IMAGE_CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
ACCEPTED_FORMATS = {"JPEG": "jpg", "MPO": "jpg", "PNG": "png", "WEBP": "webp"}
# Wider panoramas exist, but a 1-pixel strip scaled to the detector's short side would need more memory than
# any worker has.
MAX_ASPECT_RATIO = 100


class UploadRefused(Invalid):
    """The file is not a photograph we accept; the message is shown to the contributor."""


@dataclass(frozen=True)
class ImageFacts:
    data: bytes
    sha256: str
    image_format: str
    extension: str
    width: int
    height: int


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def _riff_refusal(data: bytes) -> str | None:
    """A WebP's container must account for every byte: the RIFF size is the file's, each chunk fits in it.

    libwebp decodes whatever follows a valid frame header, so random bytes behind one, or a file cut short
    or padded, only show up here.
    """
    riff_size = struct.unpack_from("<I", data, 4)[0]
    if riff_size + 8 != len(data):
        return f"its container says {riff_size + 8} bytes, the file has {len(data)}"
    offset = 12
    while offset < len(data):
        if offset + 8 > len(data):
            return "a chunk header is cut short"
        size = struct.unpack_from("<I", data, offset + 4)[0]
        offset += 8 + size + (size & 1)
        if offset > len(data):
            return "a chunk runs past the end of the file"
    return None


def image_inspect(*, stream: IO[bytes], max_bytes: int, max_pixels: int) -> ImageFacts:
    # Read one byte past the limit so an oversized stream is detected without reading all of it.
    data = stream.read(max_bytes + 1)
    if not data:
        raise UploadRefused("The file is empty.")
    if len(data) > max_bytes:
        raise UploadRefused(f"The file is larger than the {_megabytes(max_bytes)} limit.")
    try:
        with warnings.catch_warnings():
            # Our own pixel limit below decides; Pillow's error still stops far larger bombs at open().
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(BytesIO(data)) as img:
                image_format = img.format or ""
                width, height = img.size
                if image_format not in ACCEPTED_FORMATS:
                    raise UploadRefused(f"{image_format or 'This'} files are not accepted: upload JPEG, PNG or WebP.")
                # The header is checked before decoding so a decompression bomb never allocates its pixels.
                if width * height > max_pixels:
                    raise UploadRefused(
                        f"The image is {width}x{height} pixels ({width * height / 1e6:.0f} MP); "
                        f"the limit is {max_pixels / 1e6:.0f} MP."
                    )
                if max(width, height) > MAX_ASPECT_RATIO * min(width, height):
                    raise UploadRefused(
                        f"The image is {width}x{height} pixels: sides more than {MAX_ASPECT_RATIO} times "
                        "apart are not accepted."
                    )
                # verify() walks the whole file and checks what decoding skips, such as every PNG chunk's CRC.
                img.verify()
            # A verified image cannot be decoded any more; the full decode needs a fresh one.
            with Image.open(BytesIO(data)) as img:
                img.load()
        refusal = _riff_refusal(data) if image_format == "WEBP" else None
    except UploadRefused:
        raise
    except UnidentifiedImageError as exc:
        raise UploadRefused("This is not an image we can read: upload JPEG, PNG or WebP.") from exc
    except Image.DecompressionBombError as exc:
        raise UploadRefused(f"The image has more pixels than the {max_pixels / 1e6:.0f} MP limit.") from exc
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:
        # The library's own words name internals (chunk types, offsets) that mean nothing to a photographer.
        raise UploadRefused("The image is corrupt or truncated: export it again and re-upload.") from exc
    if refusal:
        raise UploadRefused(f"The image is corrupt or truncated ({refusal}): export it again and re-upload.")
    return ImageFacts(
        data=data,
        sha256=hashlib.sha256(data).hexdigest(),
        image_format=image_format if image_format != "MPO" else "JPEG",
        extension=ACCEPTED_FORMATS[image_format],
        width=width,
        height=height,
    )
