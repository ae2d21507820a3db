"""HTML stand-ins for Stripe-hosted pages: Checkout "save your card" and the 3DS challenge.

Plain server-rendered HTML (a few lines of inline JS only to fill in test numbers);
every value is escaped.  These pages are the only place a card number is typed.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

ZERO_DECIMAL = frozenset(
    [
        "bif",
        "clp",
        "djf",
        "gnf",
        "jpy",
        "kmf",
        "krw",
        "mga",
        "pyg",
        "rwf",
        "ugx",
        "vnd",
        "vuv",
        "xaf",
        "xof",
        "xpf",
    ]
)
THREE_DECIMAL = frozenset(["bhd", "jod", "kwd", "omr", "tnd"])

TEST_CARDS: tuple[tuple[str, str], ...] = (
    ("4242 4242 4242 4242", "Visa — succeeds"),
    ("5555 5555 5555 4444", "Mastercard — succeeds"),
    ("4000 0025 0000 3155", "Visa — payments need 3-D Secure"),
    ("4000 0000 0000 0341", "Visa — saves, then declines when charged"),
    ("4000 0000 0000 0002", "Visa — declined (cannot be saved)"),
)

_STYLE = """
*{box-sizing:border-box}
body{margin:0;font-family:-apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
color:#1a1f36;background:#fff;font-size:14px}
.wrap{display:flex;min-height:100vh}
.side{flex:1;background:#f6f9fc;padding:64px 48px;border-right:1px solid #e3e8ee}
.main{flex:1;padding:64px 48px;max-width:520px}
.merchant{font-weight:600;font-size:16px;display:flex;align-items:center;gap:10px}
.logo{width:28px;height:28px;border-radius:50%;background:#635bff;color:#fff;display:inline-flex;
align-items:center;justify-content:center;font-size:13px}
.test{background:#ffde92;color:#a04b00;border-radius:4px;padding:1px 6px;font-size:11px;font-weight:700;
text-transform:uppercase;margin-left:6px}
h1{font-size:26px;font-weight:600;margin:28px 0 8px}
p.sub{color:#697386;margin:0 0 24px}
label{display:block;color:#3c4257;font-weight:500;margin:18px 0 6px}
.field{border:1px solid #e0e0e0;border-radius:6px;box-shadow:0 1px 1px rgba(0,0,0,.03)}
input{width:100%;border:0;padding:11px 12px;font-size:15px;outline:none;background:transparent}
.row{display:flex;border-top:1px solid #e0e0e0}
.row input+input{border-left:1px solid #e0e0e0}
button{width:100%;margin-top:26px;padding:13px;border:0;border-radius:6px;background:#635bff;color:#fff;
font-size:16px;font-weight:600;cursor:pointer}
button.secondary{background:#fff;color:#df1b41;border:1px solid #df1b41;margin-top:12px}
.error,.ok{border-radius:6px;padding:10px 12px;margin:16px 0}
.error{background:#fff0f0;color:#df1b41;border:1px solid #f5c2c7}
.ok{background:#ecfdf3;color:#0e6245;border:1px solid #b7ebc6}
.hint{margin-top:32px;border:1px dashed #c1c9d2;border-radius:6px;padding:12px 14px;color:#4f566b}
.hint ul{margin:6px 0 0;padding-left:18px}
.hint code{cursor:pointer;color:#635bff}
.legal{color:#8792a2;font-size:12px;margin-top:18px}
a{color:#635bff}
.amount{font-size:32px;font-weight:600;margin:10px 0}
"""


def format_amount(amount: int, currency: str) -> str:
    currency = currency.lower()
    exponent = 0 if currency in ZERO_DECIMAL else 3 if currency in THREE_DECIMAL else 2
    return f"{amount / 10**exponent:,.{exponent}f} {currency.upper()}"


def _page(title: str, side: str, main: str) -> str:
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<div class='wrap'><div class='side'>{side}</div><div class='main'>{main}</div></div>"
        "</body></html>"
    )


def _merchant(name: str) -> str:
    initial = escape(name[:1].upper() or "S")
    return (
        f"<div class='merchant'><span class='logo'>{initial}</span>{escape(name)}"
        "<span class='test'>Test mode</span></div>"
    )


def checkout_page(
    session: Any,
    *,
    merchant: str,
    customer_label: str | None,
    error: str | None = None,
    values: Mapping[str, str] | None = None,
) -> str:
    """The "Save your card" form for an open `mode=setup` Checkout Session."""
    values = values or {}
    side = (
        _merchant(merchant)
        + "<h1>Save your card</h1><p class='sub'>Set up future payments"
        + (f" for <b>{escape(customer_label)}</b>" if customer_label else "")
        + ". You won't be charged now.</p>"
    )
    hints = "".join(
        f"<li><code data-number='{escape(number)}'>{escape(number)}</code> — {escape(text)}</li>"
        for number, text in TEST_CARDS
    )
    cancel = (
        f"<p class='legal'><a href='{escape(session.cancel_url)}'>← Cancel and go back</a></p>"
        if session.cancel_url
        else ""
    )
    main = (
        "<h2 style='font-size:18px;margin:0'>Card details</h2>"
        + (f"<div class='error' role='alert'>{escape(error)}</div>" if error else "")
        + f"<form method='post' action='/checkout/{escape(session.id)}' autocomplete='off'>"
        "<label for='number'>Card information</label><div class='field'>"
        f"<input id='number' name='number' inputmode='numeric' placeholder='1234 1234 1234 1234' "
        f"value='{escape(values.get('number', ''))}' required>"
        "<div class='row'>"
        f"<input id='exp' name='exp' placeholder='MM / YY' value='{escape(values.get('exp', ''))}' required>"
        "<input id='cvc' name='cvc' inputmode='numeric' placeholder='CVC'>"
        "</div></div>"
        "<label for='name'>Cardholder name</label><div class='field'>"
        "<input id='name' name='name' placeholder='Full name on card' "
        f"value='{escape(values.get('name', ''))}'>"
        "</div>"
        "<button type='submit'>Save card</button></form>"
        "<p class='legal'>By saving your card, you allow the merchant to charge it for future payments "
        "in accordance with their terms.</p>"
        + cancel
        + "<div class='hint'><b>Sandbox test cards</b> (any future expiry such as 12 / 34, any CVC):"
        f"<ul>{hints}</ul></div>"
        "<script>document.querySelectorAll('code[data-number]').forEach(function(c){"
        "c.addEventListener('click',function(){document.getElementById('number').value=c.dataset.number;"
        "var e=document.getElementById('exp');if(!e.value){e.value='12 / 34';}"
        "document.getElementById('cvc').value='123';});});</script>"
    )
    return _page("Save your card", side, main)


def message_page(
    title: str,
    message: str,
    *,
    merchant: str = "Stripe sandbox",
    link: str | None = None,
    link_text: str = "Continue",
    ok: bool = True,
) -> str:
    css = "ok" if ok else "error"
    main = f"<h1>{escape(title)}</h1><div class='{css}'>{escape(message)}</div>"
    if link:
        main += f"<p><a href='{escape(link)}'>{escape(link_text)}</a></p>"
    return _page(title, _merchant(merchant), main)


def authenticate_page(intent: Any, *, merchant: str, return_url: str | None, error: str | None = None) -> str:
    """Stripe's 3-D Secure test challenge: complete or fail the authentication."""
    side = (
        _merchant(merchant)
        + "<h1>Confirm your payment</h1>"
        + f"<div class='amount'>{escape(format_amount(intent.amount, intent.currency))}</div>"
        + f"<p class='sub'>Payment {escape(intent.id)}</p>"
    )
    hidden = f"<input type='hidden' name='return_url' value='{escape(return_url)}'>" if return_url else ""
    main = (
        "<h2 style='font-size:18px;margin:0'>3D Secure 2 test page</h2>"
        "<p class='sub' style='margin-top:8px'>Your bank asks you to confirm this payment. "
        "In the sandbox, choose the outcome of the authentication.</p>"
        + (f"<div class='error' role='alert'>{escape(error)}</div>" if error else "")
        + f"<form method='post' action='/authenticate/{escape(intent.id)}'>{hidden}"
        "<button type='submit' name='action' value='complete'>Complete authentication</button>"
        "<button type='submit' name='action' value='fail' class='secondary'>Fail authentication</button>"
        "</form>"
    )
    return _page("Confirm your payment", side, main)
