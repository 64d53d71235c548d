"""Help articles cut into passages: the unit research retrieves and the drafter quotes.

An article answers several questions (the usual steps, then "if you have no backup codes
left", then what support will never ask for); the passage is the part that answers one of
them. A passage is a paragraph, kept whole with the list it introduces, so that steps are
never separated from the sentence that says what they are for."""

import re
from dataclasses import dataclass

_LIST_ITEM = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s+")
# A short paragraph is folded into the next one; alone it would match nothing by itself.
MIN_PASSAGE_CHARS = 80


@dataclass(frozen=True)
class Passage:
    article_id: int
    slug: str
    title: str
    # 0 is the article's opening paragraph; passage ids are "<slug>#<section>".
    section: int
    text: str

    @property
    def ref(self) -> str:
        return passage_ref(self.slug, self.section)

    @property
    def is_steps(self) -> bool:
        return any(_LIST_ITEM.match(line) for line in self.text.splitlines())


def passage_ref(slug: str, section: int) -> str:
    return f"{slug}#{section}"


def split_ref(ref: str) -> tuple[str, int | None]:
    """``"reset-your-password#2"`` -> ("reset-your-password", 2); a bare slug has no section."""
    slug, _, section = ref.partition("#")
    return slug, int(section) if section.isdigit() else None


def split_body(body: str) -> list[str]:
    """The article's passages in order: paragraphs, each list kept with the line before it
    (the one that ends with a colon, or any paragraph the list follows)."""
    blocks = [b.strip() for b in re.split(r"\n\s*\n", body.replace("\r\n", "\n")) if b.strip()]
    passages: list[str] = []
    for block in blocks:
        first_line = block.splitlines()[0]
        starts_list = bool(_LIST_ITEM.match(first_line))
        if passages and (starts_list or len(passages[-1]) < MIN_PASSAGE_CHARS):
            joiner = "\n" if starts_list else "\n\n"
            passages[-1] = f"{passages[-1]}{joiner}{block}"
        else:
            passages.append(block)
    return passages


def article_passages(*, article_id: int, slug: str, title: str, body: str) -> list[Passage]:
    return [
        Passage(article_id=article_id, slug=slug, title=title, section=i, text=text)
        for i, text in enumerate(split_body(body))
    ]
