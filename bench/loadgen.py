"""The load generator: its own process, it plays Slack's side of the Request URL.

It builds the same form bodies and interaction payloads Slack (and the stand-in, see
sandbox/slack/acting.py) sends, signs them with the signing secret (v0 HMAC-SHA256 over
`v0:timestamp:body`) and POSTs them straight to the app, open-loop at a fixed rate: request
i leaves at t0 + i/rate whether or not earlier ones were answered. Ack latency is timed
here, from just before the request is written to when the whole answer has been read.

trigger_ids and response_urls must be real ones the stand-in knows (the app calls
views.open with the trigger and posts the list to the response_url), so they are minted
at the stand-in (`POST /_standin/triggers`) in batches a few hundred ms ahead of use
(triggers live 3 s), outside the timed part. Each request goes over a fresh TCP
connection, so the kernel spreads them over the uvicorn workers.

    python -m bench.loadgen spec.json results.json

spec: {"url", "standin_url", "signing_secret", "kind": "command"|"click"|"submit", "rate",
       "items": [...], "timeout", "sequential_followup": false, ...}; see `run`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import resource
import secrets
import sys
import time
import urllib.parse
from typing import Any

import aiohttp

# What a long list's first page says while its totals are counted (blocks.invoices.COUNTING;
# not imported, to keep this process light: tests/unit/test_bench_report.py checks they agree).
COUNTING = "counting…"

USER_AGENT = "Slackbot 1.0 (+https://api.slack.com/robots)"
SLACK_PATIENCE_S = 3.0  # Slack shows an error when the ack takes longer
MINT_WINDOW_S = 0.25  # triggers are minted for this much of the schedule at a time ...
MINT_LEAD_S = 0.4  # ... this long before the window starts


def _ms_after(call: dict[str, Any] | None, sent_mono: float) -> float | None:
    return None if call is None else round((float(call["monotonic"]) - sent_mono) * 1000, 2)


def sign(secret: str, timestamp: str, body: str) -> str:
    base = f"v0:{timestamp}:{body}".encode()
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def command_body(spec: dict[str, Any], item: dict[str, Any], minted: dict[str, Any]) -> str:
    """A slash command, field for field as Slack posts it (application/x-www-form-urlencoded)."""
    return urllib.parse.urlencode({
        "token": spec["verification_token"], "team_id": spec["team_id"], "team_domain": spec["team_domain"],
        "channel_id": minted["channel_id"], "channel_name": minted["channel_name"], "user_id": item["user_id"],
        "user_name": item["user_name"], "command": item.get("command", "/invoices"), "text": item.get("text", ""),
        "api_app_id": spec["api_app_id"], "is_enterprise_install": "false", "response_url": minted["response_url"],
        "trigger_id": minted["trigger_id"],
    })


def _envelope(spec: dict[str, Any], kind: str, item: dict[str, Any], trigger_id: str) -> dict[str, Any]:
    return {
        "type": kind,
        "user": {"id": item["user_id"], "username": item["user_name"], "name": item["user_name"],
                 "team_id": spec["team_id"]},
        "api_app_id": spec["api_app_id"], "token": spec["verification_token"], "trigger_id": trigger_id,
        "team": {"id": spec["team_id"], "domain": spec["team_domain"]}, "enterprise": None,
        "is_enterprise_install": False,
    }


def click_body(spec: dict[str, Any], item: dict[str, Any], minted: dict[str, Any]) -> str:
    """Pay Now pressed in the (ephemeral) /invoices message: a block_actions payload."""
    index = item.get("index", 0)
    payload = _envelope(spec, "block_actions", item, minted["trigger_id"])
    payload["container"] = {"type": "message", "message_ts": item.get("message_ts", f"{time.time():.6f}"),
                            "channel_id": minted["channel_id"], "is_ephemeral": True}
    payload["channel"] = {"id": minted["channel_id"], "name": minted["channel_name"]}
    payload |= {
        "state": {"values": {}}, "response_url": minted["response_url"],
        "actions": [{
            "action_id": f"pay_now:{index}", "block_id": f"invoice:{index}",
            "text": {"type": "plain_text", "text": "Pay Now", "emoji": True},
            "value": json.dumps({"invoice": item["invoice_id"], "q": item.get("q", "")}, separators=(",", ":")),
            "style": "primary", "type": "button", "action_ts": f"{time.time():.6f}",
        }],
    }
    return urllib.parse.urlencode({"payload": json.dumps(payload)})


def submit_body(spec: dict[str, Any], item: dict[str, Any]) -> str:
    """The modal submitted: a view_submission payload around the view as the stand-in holds it."""
    trigger_id = f"{secrets.randbelow(10**6)}.{int(time.time())}.{secrets.token_hex(16)}"
    payload = _envelope(spec, "view_submission", item, trigger_id)
    payload |= {"view": item["view"], "response_urls": []}
    return urllib.parse.urlencode({"payload": json.dumps(payload)})


async def _sleep_until(at: float) -> None:
    delay = at - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    kind: str = spec["kind"]
    items: list[dict[str, Any]] = spec["items"]
    rate = float(spec["rate"])
    sequential = bool(spec.get("sequential_followup"))  # wait for each response_url post before the next
    needs_mint = kind in ("command", "click")
    origin = {"command": "command", "click": "block_actions"}.get(kind)
    secret = spec["signing_secret"]
    timeout = aiohttp.ClientTimeout(total=float(spec.get("timeout", 10.0)))
    minted: list[asyncio.Future[dict[str, Any]]] = [asyncio.get_running_loop().create_future() for _ in items]
    results: list[dict[str, Any]] = []

    # A fresh connection per request (force_close), as from Slack's many senders.
    app_http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True, limit=0), timeout=timeout)
    standin = aiohttp.ClientSession(base_url=spec["standin_url"], timeout=aiohttp.ClientTimeout(total=30))

    async def mint(indices: list[int]) -> None:
        try:
            async with standin.post("/_standin/triggers", json={"requests": [
                {"user_id": items[i]["user_id"], "response_url": origin} for i in indices]}) as resp:
                data = await resp.json()
                if resp.status != 200:
                    raise RuntimeError(f"stand-in refused to mint triggers: {data}")
            for i, one in zip(indices, data["triggers"], strict=True):
                minted[i].set_result(one)
        except Exception as exc:  # noqa: BLE001 - every waiting request learns about it
            for i in indices:
                if not minted[i].done():
                    minted[i].set_exception(exc)

    async def minter(t0: float) -> None:
        if not sequential:
            pending: list[asyncio.Task[None]] = []
            window = 0
            while window * MINT_WINDOW_S * rate < len(items):
                start = int(window * MINT_WINDOW_S * rate)
                end = min(len(items), int((window + 1) * MINT_WINDOW_S * rate))
                if end > start:
                    await _sleep_until(t0 + window * MINT_WINDOW_S - MINT_LEAD_S)
                    pending.append(asyncio.create_task(mint(list(range(start, end)))))
                window += 1
            await asyncio.gather(*pending)

    seen = {"seq": int(spec.get("since", 0))}

    async def followup(token: str, deadline: float) -> dict[str, Any] | None:
        """The stand-in's record of the app's next post to this response_url (its
        `monotonic` is when it arrived)."""
        while time.monotonic() < deadline:
            async with standin.get("/_standin/calls",
                                   params={"method": "response_url", "since": seen["seq"]}) as resp:
                calls = (await resp.json())["calls"]
            for call in sorted(calls, key=lambda c: int(c["seq"])):
                seen["seq"] = max(seen["seq"], int(call["seq"]))
                if call["params"].get("token") == token:
                    return call  # the calls after it are read again next time
            await asyncio.sleep(0.02)
        return None

    async def one(i: int, scheduled: float) -> dict[str, Any]:
        await _sleep_until(scheduled)
        item = items[i]
        record: dict[str, Any] = {"i": i, "user_id": item["user_id"]}
        try:
            if needs_mint:
                got = await minted[i]
                record["trigger_id"] = got["trigger_id"]
                record["response_url"] = got["response_url"]
                body = command_body(spec, item, got) if kind == "command" else click_body(spec, item, got)
            else:
                body = submit_body(spec, item)
        except Exception as exc:  # noqa: BLE001
            record |= {"status": None, "error": f"mint_failed: {exc}"}
            return record
        timestamp = str(int(time.time()))
        headers = {"Content-Type": "application/x-www-form-urlencoded", "User-Agent": USER_AGENT,
                   "X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": sign(secret, timestamp, body)}
        data = body.encode()
        record["lag_ms"] = round((time.monotonic() - scheduled) * 1000, 2)
        record["sent_wall"] = time.time()
        started = record["sent_mono"] = time.monotonic()
        try:
            async with app_http.post(spec["url"], data=data, headers=headers) as resp:
                text = await resp.text()
                elapsed = time.monotonic() - started
                record["status"] = resp.status
        except TimeoutError:
            record |= {"status": None, "error": "timeout", "latency_ms": round((time.monotonic() - started) * 1000, 2)}
            return record
        except aiohttp.ClientError as exc:
            record |= {"status": None, "error": f"connection: {type(exc).__name__}",
                       "latency_ms": round((time.monotonic() - started) * 1000, 2)}
            return record
        record["latency_ms"] = round(elapsed * 1000, 3)
        if resp.status != 200:
            record["error"] = f"http_{resp.status}"
            record["body"] = text[:300]
        elif elapsed > SLACK_PATIENCE_S:
            record["error"] = "slower_than_3s"
        if kind == "submit" and text.strip():
            try:
                answer = json.loads(text)
                record["response_action"] = answer.get("response_action")
                if answer.get("response_action") == "errors":
                    record["error"] = "field_errors"
                    record["body"] = text[:300]
            except ValueError:
                record["error"] = "unparsable_answer"
        return record

    try:
        t0 = time.monotonic() + MINT_LEAD_S + 0.1
        if sequential:
            for i in range(len(items)):
                await mint([i])
                record = await one(i, time.monotonic())
                token = (record.get("response_url") or "").rsplit("/", 1)[-1]
                if record.get("status") == 200 and token:
                    deadline = time.monotonic() + float(spec.get("followup_timeout", 60))
                    posted = await followup(token, deadline)
                    record["followup_ms"] = _ms_after(posted, record["sent_mono"])
                    # A long list's first page says its totals are being counted; the whole
                    # list then replaces it through the same response_url.
                    if posted is not None and COUNTING in json.dumps(posted["params"].get("blocks"),
                                                                     ensure_ascii=False):
                        posted = await followup(token, deadline)
                    record["settled_ms"] = _ms_after(posted, record["sent_mono"])
                results.append(record)
                await asyncio.sleep(float(spec.get("pause", 0.2)))
        else:
            minting = asyncio.create_task(minter(t0))
            tasks = [asyncio.create_task(one(i, t0 + i / rate)) for i in range(len(items))]
            results = list(await asyncio.gather(*tasks))
            await minting
    finally:
        await app_http.close()
        await standin.close()
    sent = [r["sent_mono"] for r in results if "sent_mono" in r]
    done = [r["sent_mono"] + r["latency_ms"] / 1000 for r in results if r.get("latency_ms") is not None]
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"kind": kind, "rate": rate, "results": results, "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
            "first_sent": min(sent, default=None), "last_sent": max(sent, default=None),
            "last_done": max(done, default=None)}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m bench.loadgen SPEC.json RESULTS.json", file=sys.stderr)
        return 2
    with open(args[0], encoding="utf-8") as f:
        spec = json.load(f)
    out = asyncio.run(run(spec))
    with open(args[1], "w", encoding="utf-8") as f:
        json.dump(out, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
