"""Retrieval of the help-article passages that answer a ticket, and of resolved tickets like it.

Four signals, each from a maintained library rather than hand-written scoring:
- BM25 over stemmed words of each passage (bm25s with the Snowball stemmer), the passage
  carrying its article's title and tags;
- cosine similarity over character n-grams (scikit-learn) of each passage and of the whole
  article, which survives the typos and word forms a stemmer misses ("pasword", "recieve");
- the answer model (agents.answer_model): which article answered tickets written like this
  one, learned from the shipped training split, and the chance that none does;
- precedent: the resolved tickets most like this one (BM25 over their text) vote for the
  articles that answered them, so that the desk's own history counts too.

They are fused per article with weights chosen by cross-validation on the training split
only; the article's best-matching passage is what the drafter quotes. The same in-memory
index serves PostgreSQL and SQLite, so the figures measured on one hold on the other; it is
rebuilt when the articles or the resolved history change."""

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import bm25s
import numpy as np
import Stemmer
from django.db.models import Count, Max
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer

from orchestration.agents.answer_model import AnswerModel, shipped_model
from orchestration.agents.instructions import normalise
from orchestration.agents.passages import Passage, article_passages
from orchestration.models import KnowledgeArticle, Ticket

# Words every support ticket has, which say nothing about what it is about.
STOPWORDS = sorted(
    ENGLISH_STOP_WORDS
    | frozenset(
        "hi hello hey dear regards thanks thank please team support tallybook get got im ive "
        "dont cant wont help need know like want just".split()
    )
)
# How much each signal weighs in an article's score, each signal scaled so that the query's
# best article has 1. Chosen by 5-fold cross-validation on the training split only (the
# answer model retrained without each fold): recall@1 72%, recall@3 93%, MRR 0.81 there.
# The precedents' vote adds nothing the answer model does not on the shipped history, so it
# weighs nothing in the ranking; it stays a signal for the decider (how often similar
# tickets needed a person).
WEIGHTS = {
    "passage_bm25": 0.5,
    "passage_characters": 1.0,
    "article_characters": 0.5,
    "answer_model": 1.0,
    "precedent": 0.0,
}
# An article's other passages are quoted too (up to this many in all) when they match at
# least this share as well as its best: the part that answers is often not the one that
# matches best by words ("no backup codes left" under "lost your phone").
NEXT_PASSAGE_SHARE = 0.45
PASSAGES_PER_ARTICLE = 4
# Resolved tickets that vote, and how many passages are kept per query.
PRECEDENTS = 5
MAX_PASSAGES = 8

_stemmer = Stemmer.Stemmer("english")

# Lines of a forwarded or quoted mail that say who wrote it, not what they asked.
_MAIL_HEADER = re.compile(
    r"(?im)^[ \t]*(?:from|sent|to|cc|bcc|date|subject|von|an|gesendet|betreff|datum|de|à|"
    r"envoyé|objet|para|enviado|asunto|fecha|da|inviato|oggetto|od|wysłano|temat)[ \t]*:.*$"
)
_MAIL_BANNER = re.compile(
    r"(?im)^[ \t]*-{2,}[^\n]*(?:message|nachricht|mensaje|messaggio|wiadomość)[^\n]*-*[ \t]*$"
    r"|^[ \t]*(?:begin forwarded message:|on .{3,120} wrote:|am .{3,120} schrieb.{0,80}:)[ \t]*$"
)
# A legal disclaimer or a signature after "--" says nothing about the question.
_DISCLAIMER = re.compile(
    r"(?is)(?:^|\n)[^\n]*\b(?:confidential|vertraulich|confidentiel|privileged)\b[^\n]*"
    r"\b(?:intended|recipient|empfänger|destinataire)\b.*?(?=\n\s*\n|\Z)"
)
_SIGNATURE = re.compile(r"(?ms)^--[ \t]*$.*?(?=^\s*>|\Z)")


def query_text(subject: str, body: str) -> str:
    """What a ticket is searched by: its text as a person reads it (markup, invisible and
    lookalike characters, quote markers gone: agents.instructions.normalise), without the
    headers, banners, signatures and disclaimers of forwarded mail; the subject twice, as
    it usually names the question."""
    text = normalise(body).text
    for pattern in (_MAIL_HEADER, _MAIL_BANNER, _DISCLAIMER, _SIGNATURE):
        text = pattern.sub("\n", text)
    return f"{subject}\n{subject}\n{text}"


def _tokens(texts: Sequence[str]) -> list[list[str]]:
    tokenized = bm25s.tokenize(
        list(texts), stopwords=STOPWORDS, stemmer=_stemmer, return_ids=False, show_progress=False
    )
    return [list(t) for t in tokenized]


def query_terms(text: str) -> list[str]:
    """The stemmed terms a query is searched by, in order, each once (shown on the run page)."""
    return list(dict.fromkeys(_tokens([text])[0]))[:40]


class _LexicalIndex:
    """BM25 and character n-gram cosine over one list of documents."""

    def __init__(self, documents: Sequence[str]) -> None:
        self.size = len(documents)
        self.bm25 = bm25s.BM25()
        self.bm25.index(_tokens(documents), show_progress=False)
        self.characters = TfidfVectorizer(
            analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, lowercase=True
        )
        self.char_matrix = self.characters.fit_transform(documents)

    def bm25_scores(self, terms: Sequence[str]) -> np.ndarray:
        """BM25 of every document for a query's stemmed terms (``_tokens``)."""
        if not terms:
            return np.zeros(self.size)
        return np.asarray(self.bm25.get_scores(terms), dtype=float)

    def character_scores(self, text: str) -> np.ndarray:
        query = self.characters.transform([text])
        return np.asarray((self.char_matrix @ query.T).toarray()).ravel()


@dataclass(frozen=True)
class Precedent:
    id: int
    ref: str  # the ticket's external id, or "#<id>"
    subject: str
    resolution: str
    answer_slugs: tuple[str, ...]
    score: float  # relative to the most similar one: 1.0 for it


@dataclass(frozen=True)
class PassageHit:
    passage: Passage
    score: float  # fused, 0 to 1


@dataclass(frozen=True)
class ArticleHit:
    id: int
    slug: str
    title: str
    summary: str
    category: str
    score: float  # fused, 0 to 1
    passage: Passage  # the article's passage that best matches the ticket
    lexical: float  # the best passage's BM25 score relative to the query's best
    precedent: float  # share of the precedents' vote
    # The passages the drafter quotes, best first: the best one, and the article's others
    # that match nearly as well ("lost my phone" and "no backup codes left" are two).
    passages: tuple[Passage, ...] = ()


@dataclass(frozen=True)
class Retrieval:
    articles: list[ArticleHit]
    passages: list[PassageHit]
    precedents: list[Precedent]
    # Evidence for the decider: the raw strength of the best lexical match (BM25 of the top
    # passage, character cosine of the top passage) and the weighted share of precedents no
    # article answered.
    signals: dict[str, float] = field(default_factory=dict)


class Corpus:
    """The articles' passages and the resolved history, indexed. Built from rows, so that
    the same retrieval runs over the database (``corpus()``) or over a fold of the shipped
    data (learning.decider_training)."""

    def __init__(
        self,
        *,
        articles: Sequence[dict],
        history: Sequence[dict],
        answer_model: AnswerModel | None = None,
        signature: tuple[object, ...] = (),
    ) -> None:
        """``articles``: id, slug, title, summary, category, body, tags; ``history``: id,
        external_id, subject, body, resolution, answer_slugs."""
        self.signature = signature
        self.answer_model = answer_model
        self.articles = {a["id"]: a for a in articles}
        self.passages: list[Passage] = []
        documents = []
        for a in articles:
            for p in article_passages(
                article_id=a["id"], slug=a["slug"], title=a["title"], body=a["body"]
            ):
                self.passages.append(p)
                lead = f"{a['summary']}\n" if p.section == 0 else ""
                documents.append(f"{a['title']}\n{' '.join(a['tags'])}\n{lead}{p.text}")
        self.passage_index = _LexicalIndex(documents) if documents else None
        # Within an article, the passage that answers is told apart by its own words: every
        # passage document above carries the article's title and tags, which match alike.
        self.passage_text_index = (
            _LexicalIndex([p.text for p in self.passages]) if documents else None
        )
        self.article_order = [a["id"] for a in articles]
        # Title twice: it is the strongest sign of what a whole article is about.
        whole = [
            f"{a['title']}\n{a['title']}\n{' '.join(a['tags'])}\n{a['summary']}\n{a['body']}"
            for a in articles
        ]
        self.article_index = _LexicalIndex(whole) if articles else None
        self.history = list(history)
        self.ticket_index = (
            _LexicalIndex([f"{t['subject']}\n{t['body']}" for t in self.history])
            if self.history
            else None
        )

    def precedents(
        self, text: str, limit: int, exclude_id: int | None, terms: Sequence[str] | None = None
    ) -> list[Precedent]:
        """The resolved tickets most like ``text``; ``terms`` are its terms, if already
        found."""
        if self.ticket_index is None:
            return []
        scores = self.ticket_index.bm25_scores(_tokens([text])[0] if terms is None else terms)
        order = np.argsort(-scores, kind="stable")
        found: list[Precedent] = []
        best = 0.0
        for i in order:
            row = self.history[int(i)]
            if scores[i] <= 0:
                break
            if row["id"] == exclude_id:
                continue
            best = best or float(scores[i])
            found.append(
                Precedent(
                    id=row["id"],
                    ref=row["external_id"] or f"#{row['id']}",
                    subject=row["subject"],
                    resolution=row["resolution"],
                    answer_slugs=tuple(row["answer_slugs"] or ()),
                    score=round(float(scores[i]) / best, 4),
                )
            )
            if len(found) >= limit:
                break
        return found

    def retrieve(self, text: str, limit: int, exclude_id: int | None) -> Retrieval:
        terms = _tokens([text])[0]  # once: every BM25 index below reads the same terms
        precedents = self.precedents(text, PRECEDENTS, exclude_id, terms)
        if self.passage_index is None or self.article_index is None:
            return Retrieval([], [], precedents)
        if not terms:  # "hi thanks": no word that says what it is about
            return Retrieval([], [], precedents, {"bm25_top": 0.0, "unanswered": 1.0})
        bm25 = self.passage_index.bm25_scores(terms)
        chars = self.passage_index.character_scores(text)
        passage_fit = _scaled(bm25) + _scaled(chars)
        assert self.passage_text_index is not None
        own_words = _scaled(self.passage_text_index.bm25_scores(terms)) + _scaled(
            self.passage_text_index.character_scores(text)
        )
        # Per article: its passage that best matches by its own words, and each signal's
        # value for the article.
        within = own_words + 0.5 * passage_fit
        ranked_within: dict[int, list[int]] = {}
        for i in np.argsort(-within, kind="stable"):
            ranked_within.setdefault(self.passages[int(i)].article_id, []).append(int(i))
        best = {article: order[0] for article, order in ranked_within.items()}
        ids = self.article_order
        passage_bm25 = _scaled(np.array([bm25[best[a]] if a in best else 0.0 for a in ids]))
        passage_chars = _scaled(np.array([chars[best[a]] if a in best else 0.0 for a in ids]))
        article_chars = _scaled(self.article_index.character_scores(text))
        model = self.answer_model or shipped_model()
        guess = model.guess(text)
        slugs = [self.articles[a]["slug"] for a in ids]
        answer_model = _scaled(np.array([guess.articles.get(slug, 0.0) for slug in slugs]))
        votes = _votes(precedents)
        precedent = np.array([votes.get(slug, 0.0) for slug in slugs])
        signals_by_name = {
            "passage_bm25": passage_bm25,
            "passage_characters": passage_chars,
            "article_characters": article_chars,
            "answer_model": answer_model,
            "precedent": precedent,
        }
        fused = sum(WEIGHTS[name] * values for name, values in signals_by_name.items())
        fused = fused / sum(WEIGHTS.values())
        articles = []
        for j in np.argsort(-fused, kind="stable"):
            article_id = ids[int(j)]
            if fused[j] <= 0 or article_id not in best:
                continue
            a = self.articles[article_id]
            articles.append(
                ArticleHit(
                    id=article_id,
                    slug=a["slug"],
                    title=a["title"],
                    summary=a["summary"],
                    category=a["category"],
                    score=round(float(fused[j]), 4),
                    passage=self.passages[best[article_id]],
                    lexical=round(float(passage_bm25[j]), 4),
                    precedent=round(float(precedent[j]), 4),
                    passages=tuple(
                        self.passages[i]
                        for i in ranked_within[article_id][:PASSAGES_PER_ARTICLE]
                        if within[i] >= NEXT_PASSAGE_SHARE * within[best[article_id]]
                    ),
                )
            )
        order = np.argsort(-passage_fit, kind="stable")[:MAX_PASSAGES]
        passages = [
            PassageHit(self.passages[int(i)], round(float(passage_fit[i]) / 2, 4))
            for i in order
            if passage_fit[i] > 0
        ]
        ranked = sorted(fused, reverse=True)
        signals = {
            "bm25_top": round(float(bm25.max()), 4),
            "character_top": round(float(chars.max()), 4),
            "answer_model_top": round(max(guess.articles.values(), default=0.0), 4),
            "unanswered": round(guess.unanswered, 4),
            "precedents_unanswered": round(_unanswered_share(precedents), 4),
            "margin": round(float(ranked[0] - ranked[1]) if len(ranked) > 1 else 0.0, 4),
        }
        return Retrieval(articles[:limit], passages, precedents, signals)


def _scaled(values: np.ndarray) -> np.ndarray:
    """Scaled so that the best has 1 (all zeros stay zeros)."""
    top = float(values.max()) if values.size else 0.0
    return values / top if top > 0 else values


def _votes(precedents: Sequence[Precedent]) -> dict[str, float]:
    total = sum(p.score for p in precedents)
    votes: dict[str, float] = {}
    for p in precedents:
        for slug in p.answer_slugs:
            votes[slug] = votes.get(slug, 0.0) + p.score / total
    return votes


def _unanswered_share(precedents: Sequence[Precedent]) -> float:
    total = sum(p.score for p in precedents)
    return sum(p.score for p in precedents if not p.answer_slugs) / total if total else 0.0


_lock = threading.Lock()
_corpus: Corpus | None = None


def _signature() -> tuple[object, ...]:
    articles = KnowledgeArticle.objects.aggregate(n=Count("id"), last=Max("updated_at"))
    history = Ticket.objects.filter(status=Ticket.Status.RESOLVED).aggregate(
        n=Count("id"), last=Max("id")
    )
    return (*articles.values(), *history.values())


def corpus() -> Corpus:
    """The database's articles and resolved history, indexed once per change."""
    global _corpus
    signature = _signature()
    with _lock:
        if _corpus is None or _corpus.signature != signature:
            articles = KnowledgeArticle.objects.order_by("pk").values(
                "id", "slug", "title", "summary", "category", "body", "tags"
            )
            history = (
                Ticket.objects.filter(status=Ticket.Status.RESOLVED)
                .exclude(resolution="")
                .order_by("pk")
                .values("id", "external_id", "subject", "body", "resolution", "answer_slugs")
            )
            _corpus = Corpus(articles=list(articles), history=list(history), signature=signature)
        return _corpus


def retrieve(text: str, limit: int = 3, exclude_id: int | None = None) -> Retrieval:
    """The articles (with their best passage), passages and precedents for a ticket's text."""
    return corpus().retrieve(text, limit, exclude_id)


def search_articles(text: str, limit: int = 3) -> list[ArticleHit]:
    return retrieve(text, limit).articles


def search_resolved_tickets(
    text: str, limit: int = 3, exclude_id: int | None = None
) -> list[Precedent]:
    return corpus().precedents(text, limit, exclude_id)
