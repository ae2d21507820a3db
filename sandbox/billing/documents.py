"""The invoice documents the contract links to (`pdf_url`, `url`), so links shown in
Slack open something real during the demo."""

from __future__ import annotations

import html
from typing import Any


def _pdf_text(text: str) -> str:
    # Standard Type1 fonts speak Latin-1; escape the string delimiters.
    safe = text.encode("latin-1", "replace").decode("latin-1")
    return safe.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def invoice_pdf(invoice: dict[str, Any], profile_name: str | None) -> bytes:
    """A one-page, spec-valid PDF (correct xref offsets) summarising the invoice."""
    lines = [
        f"Invoice {invoice['number']}",
        f"Billed to: {profile_name or invoice['billing_profile_id']}",
        f"Issued on: {invoice['issued_on']}    Due on: {invoice['due_on']}",
        f"Total: {invoice['total']} {invoice['currency']}",
        f"Amount due: {invoice['amount_due']} {invoice['currency']}",
        f"Status: {invoice['status']}",
        "Sandbox document - not a real invoice.",
    ]
    ops = ["BT", "/F1 20 Tf", "72 770 Td", f"({_pdf_text(lines[0])}) Tj", "/F1 12 Tf"]
    for line in lines[1:]:
        ops += ["0 -24 Td", f"({_pdf_text(line)}) Tj"]
    ops.append("ET")
    content = "\n".join(ops).encode("latin-1")

    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref_at = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref_at)
    return bytes(out)


def invoice_html(invoice: dict[str, Any], profile_name: str | None) -> str:
    e = {key: html.escape(str(value)) for key, value in invoice.items()}
    billed_to = html.escape(profile_name or invoice["billing_profile_id"])
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Invoice {e["number"]}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto}}
td{{padding:.25rem 1rem .25rem 0}}</style></head>
<body><h1>Invoice {e["number"]}</h1>
<table>
<tr><td>Billed to</td><td>{billed_to}</td></tr>
<tr><td>Status</td><td>{e["status"]}</td></tr>
<tr><td>Issued on</td><td>{e["issued_on"]}</td></tr>
<tr><td>Due on</td><td>{e["due_on"]}</td></tr>
<tr><td>Total</td><td>{e["total"]} {e["currency"]}</td></tr>
<tr><td>Amount due</td><td>{e["amount_due"]} {e["currency"]}</td></tr>
</table>
<p><a href="{e["pdf_url"]}">Download PDF</a></p>
<p><small>Billing sandbox &mdash; not a real invoice.</small></p>
</body></html>
"""
