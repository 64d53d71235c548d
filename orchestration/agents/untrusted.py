"""Text a customer wrote, made safe to put in a reply or a prompt.

Nothing a customer writes is trusted: their name may be markup ("<b>Mallory"), a template
("{{7*7}}") or a script. A reply greets only a name made of letters; anything else gets the
neutral greeting. Templates escape everything anyway; this is about what the customer reads."""

import re
import unicodedata

from django.utils.html import strip_tags

_NAME_PART = re.compile(r"^[^\W\d_](?:[^\W\d_]|['’.-](?=[^\W\d_]))*\.?$")
MAX_NAME_CHARS = 40
NEUTRAL = "there"


def greeting_name(name: str) -> str:
    """The first name to greet a customer by: the first word of their name, once markup is
    removed, if it is letters only (with inner apostrophes, hyphens or dots); else "there"."""
    visible = strip_tags(unicodedata.normalize("NFKC", name or ""))
    # Direction overrides and other invisible format characters could reorder what is shown.
    visible = "".join(c for c in visible if unicodedata.category(c) != "Cf")
    words = visible.split()
    if not words:
        return NEUTRAL
    first = words[0].strip(",;:")
    if len(first) > MAX_NAME_CHARS or not _NAME_PART.match(first):
        return NEUTRAL
    if first.endswith(".") and len(words) > 1:  # "Dr. Smith": the title alone greets no one
        rest = greeting_name(" ".join(words[1:2]))
        return NEUTRAL if rest == NEUTRAL else f"{first} {rest}"
    return first[0].upper() + first[1:]
