"""The attachment endpoints. Every lookup goes through chat.access: anyone else's id is a 404.

Files are never served from a public URL: they come through here, to their owner, with
`X-Content-Type-Options: nosniff`, a type Parley decided from the bytes, and
`Content-Disposition: attachment` for everything that is not an image (images are shown
inline, and were re-encoded by Pillow, so they are only ever what they claim to be).
"""

from __future__ import annotations

import asyncio
import uuid

from channels.db import database_sync_to_async
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.views.decorators.http import require_GET, require_POST

from chat import limits
from chat.access import NotFound, access_attachment
from chat.attachments import files, writes
from chat.limits import Invalid
from chat.models import Kind

# Content-Length may exceed the file by the multipart envelope; beyond this it is refused unread.
_ENVELOPE_BYTES = 64 * 1024


def _error(message: str, status: int) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


@require_POST
@login_required
async def upload(request: HttpRequest) -> HttpResponse:
    """POST /api/attachments/ (multipart `file`, CSRF token): 201 {"attachment"}, or 4xx and nothing kept."""
    user = await request.auser()
    declared = int(request.headers.get("Content-Length") or 0)
    if declared > limits.attachment_bytes() + _ENVELOPE_BYTES:
        cap = limits.megabytes(limits.attachment_bytes())
        return _error(f"This upload is {limits.megabytes(declared)}; files may be at most {cap}.", 413)
    # Reading the form and decoding images is CPU work: off the event loop and off the one
    # thread that runs every database call.
    upload = await asyncio.to_thread(lambda: request.FILES.get("file"))
    if upload is None:
        return _error("Send the file as the `file` field of a multipart form.", 400)
    try:
        writes.check_size(upload.name or "file", upload.size)
        data = await asyncio.to_thread(upload.read, limits.attachment_bytes() + 1)
        kept = await asyncio.to_thread(writes.inspect, upload.name or "file", data)
        writes.check_size(upload.name or "file", len(data))
        await database_sync_to_async(writes.check_room)(user, len(kept.data))
        attachment = await asyncio.to_thread(writes.store, user, kept)
    except writes.TooLarge as exc:
        return _error(str(exc), 413)
    except Invalid as exc:
        return _error(str(exc), 400)
    return JsonResponse({"attachment": attachment.summary()}, status=201)


@require_GET
@login_required
def download(request: HttpRequest, attachment_id: uuid.UUID) -> HttpResponseBase:
    """GET /api/attachments/<id>/: the file, to its owner only."""
    attachment = access_attachment(request.user, attachment_id)
    image = attachment.kind == Kind.IMAGE
    response = FileResponse(
        files.open_file(attachment.file.name), content_type=attachment.media_type, as_attachment=not image,
        filename=attachment.name,
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, max-age=3600"
    # Even an image opened on its own must not run anything (an SVG never gets here, but say it).
    response["Content-Security-Policy"] = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox"
    return response


@require_GET
@login_required
def text(request: HttpRequest, attachment_id: uuid.UUID) -> HttpResponse:
    """GET /api/attachments/<id>/text/: a document's text, for models that run in the browser."""
    attachment = access_attachment(request.user, attachment_id)
    if attachment.kind != Kind.DOCUMENT:
        return _error("Only documents have text.", 400)
    return JsonResponse({"id": str(attachment.id), "name": attachment.name, "text": attachment.text})


@require_POST
@login_required
def remove(request: HttpRequest, attachment_id: uuid.UUID) -> HttpResponse:
    """POST /api/attachments/<id>/delete/: take an unsent file out of the composer."""
    try:
        writes.do_remove_unsent(request.user, access_attachment(request.user, attachment_id))  # type: ignore[arg-type]
    except NotFound as exc:
        return _error(str(exc), 404)
    except Invalid as exc:
        return _error(str(exc), 400)
    return JsonResponse({"deleted": str(attachment_id)})
