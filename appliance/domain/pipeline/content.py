"""L7: the pre-flight content scan: prohibited patterns, blocked link domains, link count, spam score.

`ContentRules` is the operator's config (a msgspec Struct, unknown keys refused); `ContentScanner`
compiles it once at load time, so `scan` only runs precompiled regexes: one combined regex for the
prohibited patterns where they combine safely, one for URLs and one for spam phrases. A pattern that
does not compile, or that nests quantifiers like `(a+)+` (the usual shape of catastrophic
backtracking; rewrite it with an atomic group `(?>a+)+` or a possessive `a++`), raises `InvalidInput`
naming it, so a bad rule stops the config from loading instead of stalling the gateway.

Rules run on the subject, body and html of the message, in this order, and the first hit refuses:

- `prohibited_pattern`: an operator regex matches (case-insensitive; `(?-i:...)` opts out).
- `blocked_domain`: a link's host is, or is a subdomain of, a blocked domain: the operator's list
  plus, unless `default_shorteners = false`, `DEFAULT_SHORTENERS`. Bare hosts ("bit.ly/x") count too.
- `too_many_urls`: more links than `max_urls`. A link is a `scheme://` URL, a `www.` host, or a bare
  host followed by a path; a bare "example.com" in prose is checked against the blocked list only.
- `spam_score`: the score below reaches `spam_score_threshold` (0 turns the rule off).

Spam score, deterministic and cheap: +2.0 when at least 12 letters (of the first 8,192 characters)
are 70% or more upper case; +1.0 per run of two or more "!" (at most 3.0); +1.0 for a run of currency
signs ("$$$"); +1.5 per distinct spam phrase (`SPAM_PHRASES` plus the operator's `spam_phrases`).
"""

from __future__ import annotations

import re
import string
from typing import Any, Final

import msgspec

from appliance.domain.message import Message
from appliance.domain.pipeline.rejection import Rejection
from appliance.errors import InvalidInput

DEFAULT_SHORTENERS: Final = (
    "bit.ly", "bitly.com", "tinyurl.com", "t.co", "goo.gl", "ow.ly", "is.gd", "v.gd", "buff.ly", "cutt.ly",
    "rebrand.ly", "shorturl.at", "tiny.cc", "rb.gy", "t.ly", "s.id", "bl.ink", "shorte.st", "adf.ly",
)  # fmt: skip
"""Public URL shorteners: a link through one hides where it leads, the classic phishing disguise."""

SPAM_PHRASES: Final = (
    "act now", "100% free", "risk free", "risk-free", "click here", "you have won", "you've won",
    "claim your prize", "claim now", "cash prize", "limited time offer", "free money", "no credit check",
    "double your money", "earn extra cash", "lowest price", "once in a lifetime", "100% guaranteed",
)  # fmt: skip

MAX_PATTERN: Final = 512
_CAPS_WINDOW: Final = 8192
_URL: Final = re.compile(
    r"""(?:\b[a-z][a-z0-9+.\-]*://(?:[^\s/?\#@]*@)?(?P<h1>[^\s/?\#:<>"'()\[\]{}@\\]+)
         | (?<![\w@.\-])(?P<h2>(?:[\w\-]+\.)+(?:[^\W\d_]{2,63}|xn--[\w\-]+))(?![\w\-@]))
       (?P<rest>[:/?\#][^\s<>"']*)?""",
    re.IGNORECASE | re.VERBOSE,
)
_NESTED_QUANTIFIER: Final = re.compile(
    r"\((?!\?>)(?:[^()\\]|\\.)*?(?:[+*]|\{\d+,\d*\})(?:[^()\\]|\\.)*\)(?:[+*]|\{\d+,)"
)  # a group holding an unbounded quantifier, itself repeated: (a+)+, (\w*\s?)*
_EXCLAIM: Final = re.compile(r"!{2,}")
_CURRENCY_SIGNS: Final = "$€£¥"
_CURRENCY_RUN: Final = re.compile(f"[{_CURRENCY_SIGNS}]{{2,}}")
_TAG: Final = re.compile(r"<[^>]*>")
_ASCII_LETTERS: Final = string.ascii_letters.encode("ascii")
_ASCII_UPPER: Final = string.ascii_uppercase.encode("ascii")


class ContentRules(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The operator's content policy (L7)."""

    prohibited_patterns: list[str] = []
    """Python regexes, matched case-insensitively anywhere in subject, body and html."""
    blocked_domains: list[str] = []
    """Link hosts to refuse, subdomains included ("evil.example" also blocks "a.evil.example")."""
    default_shorteners: bool = True
    """Also block `DEFAULT_SHORTENERS`; false to allow public URL shorteners."""
    max_urls: int = 10
    """Most links one message may carry; 0 forbids links."""
    spam_score_threshold: float = 5.0
    """Refuse at this spam score or above; 0 turns the spam rule off."""
    spam_phrases: list[str] = []
    """Phrases added to `SPAM_PHRASES`, matched case-insensitively as whole words."""


class ContentScanner:
    """`ContentRules` compiled once; `scan(message)` is safe to call per request."""

    def __init__(self, rules: ContentRules) -> None:
        if rules.max_urls < 0 or rules.spam_score_threshold < 0:
            raise InvalidInput("content", "max_urls and spam_score_threshold must be >= 0")
        self.rules = rules
        self._patterns = tuple(_compile(i, p) for i, p in enumerate(rules.prohibited_patterns))
        self._combined = _combine(self._patterns)
        domains = [*rules.blocked_domains, *(DEFAULT_SHORTENERS if rules.default_shorteners else ())]
        self._blocked = frozenset(form for i, d in enumerate(domains) for form in _domain_forms(i, d))
        phrases = sorted({" ".join(p.lower().split()) for p in (*SPAM_PHRASES, *rules.spam_phrases)} - {""})
        # Matched on lower-cased text whose whitespace runs are single spaces: no IGNORECASE, no \s+.
        self._phrase_list = tuple(phrases)
        alternatives = "|".join(map(re.escape, sorted(phrases, key=len, reverse=True)))
        self._phrases = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)") if phrases else None

    def scan(self, message: Message) -> Rejection | None:
        """None when the content passes every rule, else a 400 naming the rule and what matched."""
        parts = [
            (f, t)
            for f, t in (("subject", message.subject), ("body", message.body), ("html", message.html))
            if t
        ]
        for field, text in parts:
            hit = self._prohibited(text)
            if hit is not None:
                return _refuse("prohibited_pattern", hit, field=field)
        urls = 0
        for field, text in parts:
            for token in text.split():  # a link never spans whitespace; most words have no dot
                if "." not in token:
                    continue
                for link in _URL.finditer(token):
                    host = (link["h1"] or link["h2"]).lower().rstrip(".")
                    blocked = self._blocked_domain(host)
                    if blocked is not None:
                        return _refuse("blocked_domain", host, field=field, domain=blocked)
                    if link["h1"] or host.startswith("www.") or (link["rest"] or "").startswith("/"):
                        urls += 1
                        if urls > self.rules.max_urls:
                            return _refuse(
                                "too_many_urls", link[0][:200], field=field, max_urls=self.rules.max_urls
                            )
        if self.rules.spam_score_threshold > 0:
            score, signals = self.spam_score(message)
            if score >= self.rules.spam_score_threshold:
                return _refuse(
                    "spam_score", ", ".join(signals), score=score, threshold=self.rules.spam_score_threshold
                )
        return None

    def spam_score(self, message: Message) -> tuple[float, list[str]]:
        """The heuristic score of the module docstring, with the signals that made it up."""
        if message.subject or message.html:
            html = _TAG.sub(" ", message.html) if message.html else ""
            text = " ".join(t for t in (message.subject, message.body, html) if t)
        else:  # a text message: the body alone
            text = message.body or ""
        score, signals = 0.0, list[str]()
        letters, upper = _letter_counts(text[:_CAPS_WINDOW])
        if letters >= 12 and upper >= 0.7 * letters:
            score += 2.0
            signals.append("all_caps")
        exclaims = len(_EXCLAIM.findall(text)) if "!!" in text else 0
        if exclaims:
            score += min(3.0, float(exclaims))
            signals.append(f"exclamations x{exclaims}")
        if any(sign in text for sign in _CURRENCY_SIGNS) and _CURRENCY_RUN.search(text):
            score += 1.0
            signals.append("currency_run")
        lowered = " ".join(text.lower().split())
        if self._phrases is not None and any(p in lowered for p in self._phrase_list):  # C-speed prefilter
            found = sorted(set(self._phrases.findall(lowered)))
            score += 1.5 * len(found)
            signals += [f"phrase {p!r}" for p in found]
        return score, signals

    def _prohibited(self, text: str) -> str | None:
        if self._combined is not None and self._combined.search(text) is None:
            others = [p for p in self._patterns if p.groups]
        else:
            others = list(self._patterns)
        for pattern in others:
            found = pattern.search(text)
            if found is not None:
                return found[0][:200]
        return None

    def _blocked_domain(self, host: str) -> str | None:
        """The blocked domain `host` is or lies under; an IDN host is also tried in its xn-- form."""
        found = self._blocked_suffix(host)
        if found is None and not host.isascii():
            try:
                found = self._blocked_suffix(host.encode("idna").decode("ascii"))
            except UnicodeError:
                return None
        return found

    def _blocked_suffix(self, host: str) -> str | None:
        while True:
            if host in self._blocked:
                return host
            dot = host.find(".")
            if dot < 0:
                return None
            host = host[dot + 1 :]


def _letter_counts(text: str) -> tuple[int, int]:
    """(letters, upper-case letters); ASCII text is counted with C-speed byte deletes."""
    if text.isascii():
        raw = text.encode("ascii")
        return len(raw) - len(raw.translate(None, _ASCII_LETTERS)), len(raw) - len(
            raw.translate(None, _ASCII_UPPER)
        )
    return sum(map(str.isalpha, text)), sum(map(str.isupper, text))


def _compile(index: int, pattern: str) -> re.Pattern[str]:
    field = f"prohibited_patterns[{index}]"
    if not pattern or len(pattern) > MAX_PATTERN:
        raise InvalidInput(field, f"a pattern has 1..{MAX_PATTERN} characters")
    if _NESTED_QUANTIFIER.search(pattern):
        raise InvalidInput(field, f"{pattern!r} nests quantifiers and can backtrack catastrophically")
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        raise InvalidInput(field, f"{pattern!r} is not a valid regex: {exc}") from None


def _combine(patterns: tuple[re.Pattern[str], ...]) -> re.Pattern[str] | None:
    """One regex for the patterns without capturing groups (their backreferences would shift)."""
    plain = [p.pattern for p in patterns if not p.groups]
    if not plain:
        return None
    try:
        return re.compile("|".join(f"(?:{p})" for p in plain), re.IGNORECASE)
    except re.error:  # e.g. a global inline flag such as (?s) not at the start
        return None


def _domain_forms(index: int, domain: str) -> list[str]:
    name = domain.strip().lower().removeprefix("*.").strip(".")
    if not name or any(c.isspace() or c in "/:@" for c in name):
        raise InvalidInput(f"blocked_domains[{index}]", f"{domain!r} is not a domain name")
    try:
        return [name, name.encode("idna").decode("ascii")]
    except UnicodeError:
        return [name]


def _refuse(rule: str, match: str, **extra: Any) -> Rejection:
    details: dict[str, Any] = {"rule": rule, "match": match, **extra}
    return Rejection(400, "content_rejected", f"The content was refused by the {rule} rule.", "L7", details)
