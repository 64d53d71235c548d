"""Full-text retrieval over knowledge-base articles and resolved tickets.

On PostgreSQL this is the database's own text search (ts_rank_cd over weighted vectors); on
SQLite, which has no equivalent built in, the same question is answered by a TF-IDF index
held in memory and rebuilt when the corpus changes. Both return scores in [0, 1]."""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import reduce
from operator import or_

from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVector
from django.db import connection
from django.db.models import Count, Max, Value
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer
from sklearn.metrics.pairwise import linear_kernel

from orchestration.models import KnowledgeArticle, Ticket

# A ticket is long; the terms that carry its meaning are the rarer ones. Common English words
# are dropped before the query is built so that "I have a question" matches nothing.
_STOPWORDS = ENGLISH_STOP_WORDS | frozenset(
    # Words every support ticket has, which say nothing about what it is about.
    "hi hello hey dear regards thanks thank please team support tallybook get got im ive "
    "dont cant wont help need know like want just".split()
)
_WORD = re.compile(r"[a-z0-9][a-z0-9'-]{2,}")
MAX_TERMS = 24


@dataclass(frozen=True)
class Hit:
    kind: str  # "article" or "ticket"
    id: int
    ref: str  # article slug, or ticket external id
    title: str
    summary: str
    score: float


def query_terms(text: str) -> list[str]:
    seen: dict[str, None] = {}
    for word in _WORD.findall(text.lower()):
        word = word.strip("'-")
        if len(word) >= 3 and word not in _STOPWORDS:
            seen.setdefault(word, None)
    return list(seen)[:MAX_TERMS]


def search_articles(text: str, limit: int = 3) -> list[Hit]:
    if connection.vendor == "postgresql":
        return _pg_articles(text, limit)
    return _memory_index("article").search(text, limit)


def search_resolved_tickets(text: str, limit: int = 3, exclude_id: int | None = None) -> list[Hit]:
    if connection.vendor == "postgresql":
        return _pg_tickets(text, limit, exclude_id)
    return [h for h in _memory_index("ticket").search(text, limit + 1) if h.id != exclude_id][
        :limit
    ]


def _pg_query(text: str) -> SearchQuery | None:
    terms = query_terms(text)
    if not terms:
        return None
    return reduce(or_, (SearchQuery(term, config="english") for term in terms))


def _pg_articles(text: str, limit: int) -> list[Hit]:
    query = _pg_query(text)
    if query is None:
        return []
    vector = (
        SearchVector("title", weight="A", config="english")
        + SearchVector("summary", weight="B", config="english")
        + SearchVector("body", weight="C", config="english")
    )
    # Normalisation 32 maps the rank into [0, 1): rank / (rank + 1).
    rows = (
        KnowledgeArticle.objects.annotate(
            score=SearchRank(vector, query, cover_density=True, normalization=Value(32))
        )
        .filter(score__gt=0)
        .order_by("-score", "id")
        .values("id", "slug", "title", "summary", "score")[:limit]
    )
    return [
        Hit("article", r["id"], r["slug"], r["title"], r["summary"], round(r["score"], 4))
        for r in rows
    ]


def _pg_tickets(text: str, limit: int, exclude_id: int | None) -> list[Hit]:
    query = _pg_query(text)
    if query is None:
        return []
    vector = SearchVector("subject", weight="A", config="english") + SearchVector(
        "body", "resolution", weight="C", config="english"
    )
    rows = (
        Ticket.objects.filter(status=Ticket.Status.RESOLVED)
        .exclude(resolution="")
        .exclude(pk=exclude_id)
        .annotate(score=SearchRank(vector, query, cover_density=True, normalization=Value(32)))
        .filter(score__gt=0)
        .order_by("-score", "id")
        .values("id", "external_id", "subject", "resolution", "score")[:limit]
    )
    return [
        Hit(
            "ticket",
            r["id"],
            r["external_id"] or f"#{r['id']}",
            r["subject"],
            r["resolution"],
            round(r["score"], 4),
        )
        for r in rows
    ]


class _TfidfIndex:
    def __init__(self, kind: str, signature: tuple[object, ...], rows: Sequence[dict]) -> None:
        self.kind = kind
        self.signature = signature
        self.rows = list(rows)
        self.vectorizer = TfidfVectorizer(
            stop_words=sorted(_STOPWORDS), sublinear_tf=True, ngram_range=(1, 2)
        )
        documents = [r["document"] for r in self.rows] or [""]
        self.matrix = self.vectorizer.fit_transform(documents) if self.rows else None

    def search(self, text: str, limit: int) -> list[Hit]:
        if self.matrix is None:
            return []
        scores = linear_kernel(self.vectorizer.transform([text]), self.matrix)[0]
        ranked = sorted(range(len(self.rows)), key=lambda i: (-scores[i], self.rows[i]["id"]))
        return [
            Hit(
                self.kind,
                self.rows[i]["id"],
                self.rows[i]["ref"],
                self.rows[i]["title"],
                self.rows[i]["summary"],
                round(float(scores[i]), 4),
            )
            for i in ranked[:limit]
            if scores[i] > 0
        ]


_indexes: dict[str, _TfidfIndex] = {}


def _memory_index(kind: str) -> _TfidfIndex:
    if kind == "article":
        queryset = KnowledgeArticle.objects.all()
        signature = tuple(queryset.aggregate(n=Count("id"), last=Max("updated_at")).values())
    else:
        queryset = Ticket.objects.filter(status=Ticket.Status.RESOLVED).exclude(resolution="")
        signature = tuple(queryset.aggregate(n=Count("id"), last=Max("id")).values())
    index = _indexes.get(kind)
    if index is not None and index.signature == signature:
        return index
    if kind == "article":
        rows = [
            {
                "id": a.id,
                "ref": a.slug,
                "title": a.title,
                "summary": a.summary,
                # Title twice: it is the strongest signal of what an article is about.
                "document": f"{a.title}\n{a.title}\n{a.summary}\n{a.body}\n{' '.join(a.tags)}",
            }
            for a in queryset
        ]
    else:
        rows = [
            {
                "id": t["id"],
                "ref": t["external_id"] or f"#{t['id']}",
                "title": t["subject"],
                "summary": t["resolution"],
                "document": f"{t['subject']}\n{t['body']}\n{t['resolution']}",
            }
            for t in queryset.values("id", "external_id", "subject", "body", "resolution")
        ]
    index = _TfidfIndex(kind, signature, rows)
    _indexes[kind] = index
    return index
