"""Stable identities: canonical URLs, article ids and content hashes.

Canonical URL rules (chosen so two links to one page compare equal):
  * only http and https; anything else has no canonical form (None);
  * scheme and host lower-cased, default ports (80/443) and user info dropped;
  * the fragment is dropped when it is navigation or tracking ("#comments", "#top",
    "#xtor=RSS-1" ... see _NOISE_FRAGMENT) and kept otherwise: some sites give each
    post on a day page its own anchor ("/2017/06/25.html#a080631"), and dropping
    those would merge distinct posts into one article;
  * tracking parameters dropped (utm_*, fbclid, gclid, ... see _TRACKING), the others sorted;
  * a trailing slash on a non-root path is removed ("/a/b/" == "/a/b"): news sites
    serve both spellings of one article far more often than two pages differ by it.
The scheme is kept in the canonical URL (it is still a working link) but ignored
in article ids, so the http and https spellings of one article share an id.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_TRACKING = frozenset(
    {
        "fbclid", "gclid", "gclsrc", "dclid", "msclkid", "yclid", "twclid", "igshid", "mc_cid", "mc_eid",
        "ocid", "cmpid", "cmp", "icid", "ncid", "ref", "ref_src", "ref_url", "referrer", "smid", "smtyp",
        "_ga", "_gl", "_hsenc", "_hsmi", "mkt_tok", "spm", "sr_share", "at_medium", "at_campaign",
        "at_custom1", "at_custom2", "at_custom3", "at_custom4", "s_cid", "wt.mc_id", "xtor", "trk",
        "trkcampaign", "guccounter",
    }
)  # fmt: skip
_TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "hsa_", "oly_", "__twitter")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_NOISE_FRAGMENT = re.compile(
    r"(comments?|respond|reply|top|main|content|main-content|more(-\d+)?|disqus_thread|page|article|story"
    r"|share|video|gallery|ref|continue|start|read-?more|!?/?)"
    r"|(xtor|utm_\w+|at_\w+|ref|src|source|from|rss|cmp|ocid|mc_\w+)=.*",
    re.IGNORECASE,
)


def _is_tracking(key: str) -> bool:
    key = key.lower()
    return key in _TRACKING or key.startswith(_TRACKING_PREFIXES)


def canonical_url(url: str | None) -> str | None:
    """The canonical spelling of an http(s) URL, or None when there is none."""
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        host = (parts.hostname or "").rstrip(".")
        port = parts.port
    except ValueError:  # bad port, unbalanced IPv6 brackets
        return None
    if scheme not in _DEFAULT_PORTS or not host or any(c.isspace() for c in host):
        return None
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{port}"
    path = parts.path or "/"
    if len(path) > 1:
        path = path.rstrip("/") or "/"
    query = sorted((k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _is_tracking(k))
    fragment = "" if _NOISE_FRAGMENT.fullmatch(parts.fragment) else parts.fragment
    return urlunsplit((scheme, netloc, path, urlencode(query), fragment))


def _scheme_less(canonical: str) -> str:
    return canonical.split(":", 1)[1]


_PUNCT = re.compile(r"[\W_]+")


def _normalise(text: str) -> str:
    return _PUNCT.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def content_hash(title: str, text: str) -> str:
    """Hash of title and text that ignores case, whitespace and punctuation."""
    key = f"{_normalise(title or '')}\n{_normalise(text or '')}"
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def article_id(*, source: str, guid: str | None, canonical: str | None, title: str, text: str) -> str:
    """Stable article id, "a_" + 20 hex digits.

    Preference: the GUID (a GUID that is a URL is canonicalised, so one article
    listed by two feeds gets one id; an opaque GUID such as "12345" or "tag:..."
    only means something within its source, so it is scoped by source name),
    then the canonical URL, then the source and a hash of title and text.
    """
    guid = (guid or "").strip()
    if guid:
        guid_url = canonical_url(guid)
        key = f"url:{_scheme_less(guid_url)}" if guid_url else f"guid:{source}\x00{guid}"
    elif canonical:
        key = f"url:{_scheme_less(canonical)}"
    else:
        key = f"text:{source}\x00{content_hash(title, text)}"
    return "a_" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:20]
