"""What an uploaded file really is, decided from its bytes; what Parley keeps of it.

The name only says which kind the user meant: an image is recognised by its signature and
decoded and re-encoded by Pillow (a file that is not what it claims, or that Pillow cannot
decode, never reaches a provider or a browser); a PDF is read by pypdf; anything else must
be text (UTF-8, no NUL bytes). Pure functions: no database, no storage.
"""

from __future__ import annotations

import dataclasses
import io
import os
import unicodedata
import warnings

from PIL import Image, ImageOps, UnidentifiedImageError

from chat import limits
from chat.limits import Invalid

IMAGE_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif"}
_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)
PDF = "application/pdf"
# Text documents by extension: what the file is called decides only how it is labelled.
TEXT_TYPES = {
    ".txt": "text/plain", ".md": "text/markdown", ".markdown": "text/markdown", ".csv": "text/csv",
    ".tsv": "text/tab-separated-values", ".json": "application/json", ".jsonl": "application/jsonl",
    ".xml": "application/xml", ".yaml": "application/yaml", ".yml": "application/yaml", ".html": "text/html",
}
IMAGE_EXTENSIONS = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp",
                    ".gif": "image/gif"}
# Formats we cannot read as text: named so, a binary file gets a precise refusal.
_BINARY_NAMES = {".docx", ".xlsx", ".pptx", ".doc", ".xls", ".zip", ".exe", ".heic", ".tif", ".tiff", ".bmp"}
_QUALITY = {"JPEG": 90, "WEBP": 90}


@dataclasses.dataclass(frozen=True)
class Inspected:
    """What is kept: ``data`` (re-encoded for images) and, for documents, the model's text."""

    kind: str  # "image" or "document"
    name: str
    media_type: str
    data: bytes
    text: str = ""
    width: int | None = None
    height: int | None = None
    pages: int | None = None


def safe_name(raw: str) -> str:
    """A file name fit to show and to put in a header: no path, no control characters."""
    name = os.path.basename(raw.replace("\\", "/")).strip()
    name = "".join(c for c in unicodedata.normalize("NFC", name) if unicodedata.category(c)[0] != "C")
    stem, ext = os.path.splitext(name)
    return (stem[: 200 - len(ext[:20])] + ext[:20]) or "file"


def sniff(data: bytes) -> str | None:
    """The media type a file's first bytes prove, for the types Parley takes; else None."""
    for signature, media_type in _SIGNATURES:
        if data.startswith(signature):
            return media_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data.startswith(b"%PDF-"):
        return PDF
    return None


def inspect(raw_name: str, data: bytes) -> Inspected:
    """Decide what the file is and make what is kept; Invalid says why not, in plain words."""
    name = safe_name(raw_name)
    if not data:
        raise Invalid(f"{name} is empty.")
    ext = os.path.splitext(name)[1].lower()
    found = sniff(data)
    if found is not None and found.startswith("image/"):
        if ext in TEXT_TYPES or ext == ".pdf":
            raise Invalid(f"{name} is named like a document but its content is an image ({found}).")
        return _image(name, data)
    if found == PDF:
        if ext in IMAGE_EXTENSIONS or (ext in TEXT_TYPES):
            raise Invalid(f"{name} is named like {_what(ext)} but its content is a PDF.")
        return _pdf(name, data)
    if ext in IMAGE_EXTENSIONS:
        raise Invalid(f"{name} is not a {IMAGE_EXTENSIONS[ext].split('/')[1].upper()} image: its content is "
                      "not any image Parley takes (PNG, JPEG, WebP, GIF).")
    if ext == ".pdf":
        raise Invalid(f"{name} is not a PDF: it does not start like one.")
    return _text(name, data, ext)


def _what(ext: str) -> str:
    return "an image" if ext in IMAGE_EXTENSIONS else "a text document"


def _image(name: str, data: bytes) -> Inspected:
    """Decode fully and re-encode in the same format: metadata goes, oversize images shrink."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                fmt = probe.format or ""
                if fmt not in IMAGE_TYPES:
                    raise Invalid(f"{name} is a {fmt or 'kind of'} image Parley does not take (PNG, JPEG, WebP, GIF).")
                if probe.width * probe.height > limits.IMAGE_MAX_PIXELS:
                    raise Invalid(f"{name} is {probe.width:,} × {probe.height:,} pixels; at most "
                                  f"{limits.IMAGE_MAX_PIXELS:,} pixels in all are taken.")
                probe.verify()  # structure and checksums; the object cannot be used after this
            with Image.open(io.BytesIO(data)) as img:
                img.load()
                out = _reencode(img, fmt)
    except Invalid:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombWarning,
            Image.DecompressionBombError, EOFError):
        raise Invalid(f"{name} could not be read as an image: the file is damaged or not what it claims.") from None
    with Image.open(io.BytesIO(out)) as kept:
        width, height = kept.size
    return Inspected("image", name, IMAGE_TYPES[fmt], out, width=width, height=height)


def _reencode(img: Image.Image, fmt: str) -> bytes:
    edge = limits.image_max_edge()
    animated = fmt == "GIF" and getattr(img, "n_frames", 1) > 1
    if not animated:
        img = ImageOps.exif_transpose(img)  # the pixels the user saw, then the EXIF block is dropped
        if edge and max(img.size) > edge:
            img = img.copy()
            img.thumbnail((edge, edge), Image.Resampling.LANCZOS)
        if fmt == "JPEG" and img.mode not in ("RGB", "L"):
            img = img.convert("RGB")
    out = io.BytesIO()
    options: dict[str, object] = {}
    if fmt in _QUALITY:
        options["quality"] = _QUALITY[fmt]
    if animated:
        options.update(save_all=True, loop=img.info.get("loop", 0), duration=img.info.get("duration", 100))
    img.save(out, format=fmt, **options)
    return out.getvalue()


def _pdf(name: str, data: bytes) -> Inspected:
    import pypdf
    from pypdf.errors import PdfReadError

    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise Invalid(f"{name} is protected by a password; remove it and attach the PDF again.")
        count = len(reader.pages)
        if count > limits.PDF_MAX_PAGES:
            raise Invalid(f"{name} has {count:,} pages; at most {limits.PDF_MAX_PAGES:,} are taken.")
        texts = []
        total = 0
        for page in reader.pages:
            text = page.extract_text() or ""
            total += len(text)
            if total > limits.DOCUMENT_MAX_CHARS:
                raise Invalid(f"{name} holds more than {limits.DOCUMENT_MAX_CHARS:,} characters of text.")
            texts.append(text.strip())
    except Invalid:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError,
            NotImplementedError, OSError):
        raise Invalid(f"{name} could not be read as a PDF: the file is damaged or not what it claims.") from None
    text = "\n\n".join(t for t in texts if t)
    return Inspected("document", name, PDF, data, text=_storable(text), pages=count)


def _text(name: str, data: bytes, ext: str) -> Inspected:
    if ext in _BINARY_NAMES:
        raise Invalid(f"{name}: {ext} files are not taken. Attach images (PNG, JPEG, WebP, GIF), PDFs or text files.")
    if b"\x00" in data[:65536] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise Invalid(f"{name} is not a text file and not an image or PDF Parley takes.")
    try:
        text = data.decode("utf-16") if data.startswith((b"\xff\xfe", b"\xfe\xff")) else data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Invalid(f"{name} is not UTF-8 text and not an image or PDF Parley takes.") from None
    if len(text) > limits.DOCUMENT_MAX_CHARS:
        raise Invalid(f"{name} holds {len(text):,} characters; at most {limits.DOCUMENT_MAX_CHARS:,} are taken.")
    if "\x00" in text:
        raise Invalid(f"{name} is not a text file and not an image or PDF Parley takes.")
    return Inspected("document", name, TEXT_TYPES.get(ext, "text/plain"), data, text=_storable(text))


def _storable(text: str) -> str:
    """Text any database can store: lone surrogates (from broken PDFs) become U+FFFD."""
    return text.encode("utf-8", "replace").decode("utf-8").replace("\x00", "")
