"""Sections to chunks of about ``max_tokens`` tokens, overlapping, each carrying its heading path.

Tokens are counted as words and punctuation runs, which tracks the model tokenizers closely enough for
sizing chunks and needs no tokenizer download. Chunks break at paragraph, then sentence, then word
boundaries; the last ``overlap`` tokens of a chunk start the next one of the same section.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from hutch.knowledge.parsing import Section

TOKEN = re.compile(r"\w+|[^\w\s]+")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
DEFAULT_MAX_TOKENS = 300
DEFAULT_OVERLAP = 40


def count_tokens(text: str) -> int:
    return len(TOKEN.findall(text))


@dataclass(frozen=True)
class ChunkDraft:
    position: int
    heading: str
    text: str
    token_count: int
    content_hash: str


def _pieces(text: str, max_tokens: int) -> list[str]:
    """Paragraphs, split further into sentences and then word runs until each fits."""
    pieces: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text):
        paragraph = paragraph.strip()
        if not paragraph:
            continue
        if count_tokens(paragraph) <= max_tokens:
            pieces.append(paragraph)
            continue
        for sentence in SENTENCE_END.split(paragraph):
            if count_tokens(sentence) <= max_tokens:
                pieces.append(sentence)
                continue
            words = sentence.split()
            step = max(1, max_tokens // 2)
            pieces.extend(" ".join(words[i : i + step]) for i in range(0, len(words), step))
    return pieces


def _tail(text: str, tokens: int) -> str:
    """About the last ``tokens`` tokens of ``text``, starting at a word."""
    words = text.split()
    kept: list[str] = []
    count = 0
    for word in reversed(words):
        count += count_tokens(word)
        if count > tokens:
            break
        kept.append(word)
    return " ".join(reversed(kept))


def chunk_sections(
    sections: list[Section], max_tokens: int = DEFAULT_MAX_TOKENS, overlap: int = DEFAULT_OVERLAP
) -> list[ChunkDraft]:
    drafts: list[ChunkDraft] = []
    for section in sections:
        heading = " > ".join(section.headings)
        budget = max(20, max_tokens - count_tokens(heading))
        current: list[str] = []
        size = 0
        for piece in _pieces(section.text, budget):
            tokens = count_tokens(piece)
            if current and size + tokens > budget:
                drafts.append(_draft(len(drafts), heading, "\n\n".join(current)))
                carried = _tail(current[-1], min(overlap, budget // 3)) if overlap else ""
                current, size = ([carried], count_tokens(carried)) if carried else ([], 0)
            current.append(piece)
            size += tokens
        if current:
            drafts.append(_draft(len(drafts), heading, "\n\n".join(current)))
    return drafts


def _draft(position: int, heading: str, body: str) -> ChunkDraft:
    body = body.strip()
    return ChunkDraft(
        position=position,
        heading=heading,
        text=body,
        token_count=count_tokens(heading) + count_tokens(body),
        content_hash=hashlib.sha256(f"{heading}\n{body}".encode()).hexdigest(),
    )
