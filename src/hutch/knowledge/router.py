"""Knowledge endpoints: an agent's documents (JSON text or uploaded files) and search over them."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from hutch.core.errors import (
    BadRequest,
    Forbidden,
    NotFound,
    PaymentRequired,
    Unauthorized,
    UnsupportedMediaType,
    error_responses,
)
from hutch.http.authz import Reader, Writer
from hutch.knowledge.dependencies import KnowledgeServiceDep
from hutch.knowledge.models import Document
from hutch.knowledge.parsing import ACCEPTED, kind_of
from hutch.knowledge.schemas import (
    DocumentList,
    DocumentOut,
    DocumentText,
    SearchHit,
    SearchRequest,
    SearchResults,
)

router = APIRouter(prefix="/api/v1", tags=["knowledge"])
TEXT_KINDS = {"text": "txt", "md": "md", "html": "html"}
ACCEPTED_LIST = ", ".join(sorted(ACCEPTED))


def _out(document: Document) -> DocumentOut:
    return DocumentOut.model_validate(document)


async def _read_body(request: Request) -> tuple[str, bytes, str]:
    """(title, bytes, kind) from a JSON body or a multipart upload, or the error saying what is wrong."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        form = await request.form()
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise BadRequest("Send the document as the multipart field 'file'.")
        kind = kind_of(upload.filename or "", upload.content_type)
        if kind is None:
            raise UnsupportedMediaType(
                f"Documents can be {ACCEPTED_LIST} files; '{upload.filename}' is not one."
            )
        title = form.get("title")
        name = title if isinstance(title, str) and title.strip() else (upload.filename or "Untitled")
        return name.strip()[:300], await upload.read(), kind
    if content_type.startswith("application/json"):
        try:
            body = DocumentText.model_validate_json(await request.body())
        except ValidationError as exc:
            raise RequestValidationError(
                [{**error, "loc": ("body", *error["loc"])} for error in exc.errors(include_input=False)]
            ) from None
        return body.title, body.content.encode(), TEXT_KINDS[body.format]
    raise UnsupportedMediaType(
        f"Send JSON {{title, content}} or a multipart 'file' ({ACCEPTED_LIST}); "
        f"got '{content_type or 'nothing'}'."
    )


@router.post(
    "/agents/{agent_id}/documents",
    status_code=status.HTTP_201_CREATED,
    response_model=DocumentOut,
    responses=error_responses(
        BadRequest, Unauthorized, PaymentRequired, Forbidden, NotFound, UnsupportedMediaType
    ),
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {"schema": DocumentText.model_json_schema()},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "file": {"type": "string", "format": "binary"},
                            "title": {"type": "string"},
                        },
                        "required": ["file"],
                    }
                },
            }
        }
    },
)
async def upload_document(
    agent_id: str, request: Request, principal: Writer, knowledge: KnowledgeServiceDep
) -> DocumentOut | JSONResponse:
    """Add a document: JSON `{title, content, format?}` or a multipart `file` (.txt .md .html .pdf).

    It is read, chunked and indexed in the background: `status` goes pending → processing (`chunks_done`
    of `chunks_total`) → ready, or failed with `error`. The same content uploaded again answers 200 with
    the existing document."""
    title, data, kind = await _read_body(request)
    document, created = await knowledge.upload(principal, agent_id, title, data, kind)
    if not created:
        return JSONResponse(_out(document).model_dump(mode="json"), status_code=status.HTTP_200_OK)
    return _out(document)


@router.get(
    "/agents/{agent_id}/documents",
    response_model=DocumentList,
    responses=error_responses(Unauthorized, Forbidden, NotFound),
)
async def list_documents(agent_id: str, principal: Reader, knowledge: KnowledgeServiceDep) -> DocumentList:
    """The agent's documents, newest first, with their status and chunk counts."""
    return DocumentList(items=[_out(d) for d in await knowledge.documents(principal, agent_id)])


@router.get(
    "/agents/{agent_id}/documents/{document_id}",
    response_model=DocumentOut,
    responses=error_responses(Unauthorized, Forbidden, NotFound),
)
async def get_document(
    agent_id: str, document_id: str, principal: Reader, knowledge: KnowledgeServiceDep
) -> DocumentOut:
    """One document: poll it to follow ingestion."""
    return _out(await knowledge.document(principal, agent_id, document_id))


@router.delete(
    "/agents/{agent_id}/documents/{document_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(Unauthorized, Forbidden, NotFound),
)
async def delete_document(
    agent_id: str, document_id: str, principal: Writer, knowledge: KnowledgeServiceDep
) -> Response:
    """Delete a document and its chunks."""
    await knowledge.delete(principal, agent_id, document_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/agents/{agent_id}/knowledge/search",
    response_model=SearchResults,
    responses=error_responses(Unauthorized, Forbidden, NotFound),
)
async def search(
    agent_id: str, body: SearchRequest, principal: Reader, knowledge: KnowledgeServiceDep
) -> SearchResults:
    """The passages of the agent's documents that best answer `query` (full-text and vector, fused)."""
    passages = await knowledge.search(principal, agent_id, body.query, body.top_k)
    return SearchResults(
        items=[
            SearchHit(
                document_id=p.document_id,
                chunk_id=p.chunk_id,
                title=p.title,
                heading=p.heading,
                text=p.text,
                score=p.score,
            )
            for p in passages
        ]
    )
