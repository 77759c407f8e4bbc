"""The signed copy the participant downloads: one self-contained HTML page with the
document's text, its SHA-256, and every signature on it. Pure.

The text is escaped (markdown shown as written); an HTML document is shown in a
sandboxed `iframe srcdoc`, so nothing in it runs."""

from __future__ import annotations

from html import escape

from consent.domain.documents import DocumentBody
from consent.domain.records import Signature

_STYLE = (
    "body{font-family:sans-serif;max-width:46rem;margin:2rem auto;line-height:1.5}"
    ".text{white-space:pre-wrap}iframe{width:100%;min-height:20rem;border:1px solid #ccc}"
    "dt{font-weight:bold}code{word-break:break-all}"
)
# The page's own policy: no scripts, no fetches; the HTML document's frame runs nothing.
CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'; frame-src 'self'"


def _section(body: DocumentBody, title: str, text: str) -> str:
    if body.format == "html":
        content = f'<iframe sandbox="" srcdoc="{escape(text, quote=True)}"></iframe>'
    else:
        content = f'<div class="text">{escape(text)}</div>'
    return f"<section><h2>{escape(title)}</h2>{content}</section>"


def signed_copy(body: DocumentBody, signature: Signature, study_id: str) -> str:
    sections = "".join(_section(body, s.title, s.body) for s in body.sections)
    rows = [
        ("Participant", signature.participant_id),
        ("Study", study_id),
        ("Site", signature.site_id),
        ("Document version", str(signature.version)),
        ("Language", signature.language),
        ("Document SHA-256", signature.document_sha256),
        ("Consented to", ", ".join(signature.scopes)),
        ("Signed at (server time, UTC)", signature.signed_at.isoformat()),
        ("Meaning of the signature", signature.meaning),
    ]
    if signature.representative:
        rep = signature.representative
        rows.append((f"Signed also by ({rep.get('role', '')})", str(rep.get("name", ""))))
    if signature.countersigned_at is not None:
        rows += [
            ("Countersigned by", signature.countersigner_name or signature.countersigned_by or ""),
            ("Countersigned at (UTC)", signature.countersigned_at.isoformat()),
            ("Meaning of the countersignature", signature.countersign_meaning or ""),
        ]
    else:
        rows.append(("Countersignature", "pending"))
    details = "".join(f"<dt>{escape(k)}</dt><dd><code>{escape(v)}</code></dd>" for k, v in rows)
    return (
        '<!doctype html><html lang="'
        + escape(signature.language, quote=True)
        + '"><head><meta charset="utf-8"><title>'
        + escape(body.title)
        + f"</title><style>{_STYLE}</style></head><body><h1>{escape(body.title)}</h1>"
        + sections
        + f"<h2>Signatures</h2><dl>{details}</dl>"
        + f"<p>Signature id <code>{signature.signature_id}</code></p></body></html>"
    )
