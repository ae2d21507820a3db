"""Block Kit validation with Slack's documented limits.

Slack rejects a whole message/view when any part of it breaks a limit
(`invalid_blocks` for messages, `invalid_arguments` for views), answering with
`response_metadata.messages` such as
``[ERROR] must be at most 3000 characters [json-pointer:/blocks/0/text/text]``.
Every problem returned here has that shape so the Web API stand-in can pass
them through verbatim.

Limits come from docs.slack.dev (Block Kit blocks, block elements, composition
objects, modal views). Two rules worth knowing:

* `action_id` must be unique within its *block* (Slack accepts the same
  action_id in two different blocks, e.g. one "Pay" button per invoice row);
* `block_id` must be unique within the whole message/view.

slack_sdk's Block Kit models are run as a second opinion: whatever they flag
that the explicit checks below missed is reported too.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block

Surface = Literal["message", "modal", "home"]

MAX_BLOCKS: dict[str, int] = {"message": 50, "modal": 100, "home": 100}
MAX_MESSAGE_TEXT = 40_000
MAX_ID = 255  # block_id, action_id, callback_id, external_id

# --- where each element type may appear --------------------------------------

_SELECTS = {"static_select", "external_select", "users_select", "conversations_select", "channels_select"}
_MULTI_SELECTS = {f"multi_{s}" for s in _SELECTS}
SECTION_ACCESSORIES = (
    {"button", "checkboxes", "datepicker", "image", "overflow", "radio_buttons", "timepicker", "workflow_button"}
    | _SELECTS
    | _MULTI_SELECTS
)
ACTIONS_ELEMENTS = (
    {
        "button", "checkboxes", "datepicker", "datetimepicker", "overflow", "radio_buttons", "timepicker",
        "workflow_button",
    }
    | _SELECTS
    | _MULTI_SELECTS
)
INPUT_ELEMENTS = (
    {
        "checkboxes", "datepicker", "datetimepicker", "email_text_input", "file_input", "number_input",
        "plain_text_input", "radio_buttons", "rich_text_input", "timepicker", "url_text_input",
    }
    | _SELECTS
    | _MULTI_SELECTS
)
KNOWN_ELEMENTS = SECTION_ACCESSORIES | ACTIONS_ELEMENTS | INPUT_ELEMENTS

_COMMON_BLOCKS = {"section", "divider", "image", "actions", "context", "header", "input", "rich_text", "video"}
ALLOWED_BLOCKS: dict[str, set[str]] = {
    "message": _COMMON_BLOCKS | {"file", "markdown", "table", "context_actions"},
    "modal": set(_COMMON_BLOCKS),
    "home": set(_COMMON_BLOCKS),
}

# Properties Slack accepts per type; anything else is "invalid additional property".
_BLOCK_KEYS: dict[str, set[str]] = {
    "section": {"type", "block_id", "text", "fields", "accessory", "expand"},
    "divider": {"type", "block_id"},
    "header": {"type", "block_id", "text"},
    "image": {"type", "block_id", "image_url", "slack_file", "alt_text", "title"},
    "context": {"type", "block_id", "elements"},
    "actions": {"type", "block_id", "elements"},
    "input": {"type", "block_id", "label", "element", "dispatch_action", "hint", "optional"},
}
_INPUT_COMMON = {"type", "action_id", "initial_value", "dispatch_action_config", "focus_on_load", "placeholder"}
_ELEMENT_KEYS: dict[str, set[str]] = {
    "button": {"type", "text", "action_id", "url", "value", "style", "confirm", "accessibility_label"},
    "static_select": {
        "type", "action_id", "options", "option_groups", "initial_option", "confirm", "focus_on_load", "placeholder",
    },
    "multi_static_select": {
        "type", "action_id", "options", "option_groups", "initial_options", "confirm", "max_selected_items",
        "focus_on_load", "placeholder",
    },
    "radio_buttons": {"type", "action_id", "options", "initial_option", "confirm", "focus_on_load"},
    "checkboxes": {"type", "action_id", "options", "initial_options", "confirm", "focus_on_load"},
    "overflow": {"type", "action_id", "options", "confirm"},
    "plain_text_input": _INPUT_COMMON | {"multiline", "min_length", "max_length"},
    "number_input": _INPUT_COMMON | {"is_decimal_allowed", "min_value", "max_value"},
    "email_text_input": set(_INPUT_COMMON),
    "url_text_input": set(_INPUT_COMMON),
    "datepicker": {"type", "action_id", "initial_date", "confirm", "focus_on_load", "placeholder"},
    "timepicker": {"type", "action_id", "initial_time", "confirm", "focus_on_load", "placeholder", "timezone"},
    "image": {"type", "image_url", "slack_file", "alt_text"},
}
_TEXT_KEYS = {"plain_text": {"type", "text", "emoji"}, "mrkdwn": {"type", "text", "verbatim"}}
_OPTION_KEYS = {"text", "value", "description", "url"}


def _fmt(message: str, pointer: str) -> str:
    return f"[ERROR] {message} [json-pointer:{pointer}]"


class _Checker:
    """Accumulates every problem instead of stopping at the first one (unlike slack_sdk)."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.block_ids: set[str] = set()

    def add(self, pointer: str, message: str) -> None:
        self.problems.append(_fmt(message, pointer))

    # --- primitives ---------------------------------------------------------

    def max_len(self, value: Any, limit: int, pointer: str, *, min_len: int = 0) -> None:
        if value is None:
            return
        if not isinstance(value, str):
            self.add(pointer, "must be a string")
            return
        if len(value) > limit:
            self.add(pointer, f"must be at most {limit} characters (got {len(value)})")
        elif len(value) < min_len:
            self.add(pointer, f"must be at least {min_len} characters")

    def keys(self, obj: Mapping[str, Any], allowed: set[str], pointer: str) -> None:
        for key in obj:
            if key not in allowed:
                self.add(f"{pointer}/{key}", f"invalid additional property: {key}")

    def items(self, value: Any, pointer: str, *, min_items: int, max_items: int) -> list[Any]:
        if not isinstance(value, list):
            self.add(pointer, "must be an array")
            return []
        if len(value) < min_items:
            self.add(pointer, f"must have at least {min_items} items")
        if len(value) > max_items:
            self.add(pointer, f"must have at most {max_items} items (got {len(value)})")
        return value

    def text_obj(
        self,
        obj: Any,
        pointer: str,
        *,
        limit: int,
        plain_only: bool = False,
        required: bool = True,
    ) -> None:
        if obj is None:
            if required:
                self.add(pointer, "is required")
            return
        if not isinstance(obj, dict):
            self.add(pointer, "must be a text object")
            return
        kind = obj.get("type")
        if kind not in _TEXT_KEYS:
            self.add(f"{pointer}/type", "must be one of plain_text, mrkdwn")
            return
        if plain_only and kind != "plain_text":
            self.add(f"{pointer}/type", "must be plain_text")
        self.keys(obj, _TEXT_KEYS[kind], pointer)
        self.max_len(obj.get("text"), limit, f"{pointer}/text", min_len=1)
        if "text" not in obj:
            self.add(f"{pointer}/text", "is required")

    def option(self, opt: Any, pointer: str, *, plain_only: bool, allow_url: bool) -> None:
        if not isinstance(opt, dict):
            self.add(pointer, "must be an option object")
            return
        self.keys(opt, _OPTION_KEYS if allow_url else _OPTION_KEYS - {"url"}, pointer)
        self.text_obj(opt.get("text"), f"{pointer}/text", limit=75, plain_only=plain_only)
        if "value" not in opt:
            self.add(f"{pointer}/value", "is required")
        self.max_len(opt.get("value"), 150, f"{pointer}/value", min_len=1)
        self.text_obj(opt.get("description"), f"{pointer}/description", limit=75, plain_only=True, required=False)
        self.max_len(opt.get("url"), 3000, f"{pointer}/url")

    def confirm(self, obj: Any, pointer: str) -> None:
        if obj is None:
            return
        if not isinstance(obj, dict):
            self.add(pointer, "must be a confirmation dialog object")
            return
        self.keys(obj, {"title", "text", "confirm", "deny", "style"}, pointer)
        self.text_obj(obj.get("title"), f"{pointer}/title", limit=100, plain_only=True)
        self.text_obj(obj.get("text"), f"{pointer}/text", limit=300)
        self.text_obj(obj.get("confirm"), f"{pointer}/confirm", limit=30, plain_only=True)
        self.text_obj(obj.get("deny"), f"{pointer}/deny", limit=30, plain_only=True)

    def placeholder(self, el: Mapping[str, Any], pointer: str) -> None:
        self.text_obj(el.get("placeholder"), f"{pointer}/placeholder", limit=150, plain_only=True, required=False)

    # --- elements -----------------------------------------------------------

    def element(self, el: Any, pointer: str, allowed: set[str], action_ids: set[str]) -> None:
        if not isinstance(el, dict):
            self.add(pointer, "must be an object")
            return
        kind = el.get("type")
        if kind not in KNOWN_ELEMENTS:
            self.add(f"{pointer}/type", f"unknown element type: {kind!r}")
            return
        if kind not in allowed:
            self.add(f"{pointer}/type", f"element type {kind} is not allowed here")
            return
        if kind in _ELEMENT_KEYS:
            self.keys(el, _ELEMENT_KEYS[kind], pointer)
        action_id = el.get("action_id")
        if action_id is not None:
            self.max_len(action_id, MAX_ID, f"{pointer}/action_id", min_len=1)
            if action_id in action_ids:
                self.add(f"{pointer}/action_id", f"action_id {action_id!r} is not unique within its block")
            action_ids.add(action_id)
        self.confirm(el.get("confirm"), f"{pointer}/confirm")

        if kind == "button":
            self.text_obj(el.get("text"), f"{pointer}/text", limit=75, plain_only=True)
            self.max_len(el.get("value"), 2000, f"{pointer}/value")
            self.max_len(el.get("url"), 3000, f"{pointer}/url")
            self.max_len(el.get("accessibility_label"), 75, f"{pointer}/accessibility_label")
            if "style" in el and el["style"] not in ("primary", "danger"):
                self.add(f"{pointer}/style", "must be one of primary, danger")
        elif kind in ("static_select", "multi_static_select"):
            self.placeholder(el, pointer)
            self._static_options(el, pointer)
        elif kind in ("radio_buttons", "checkboxes"):
            opts = self.items(el.get("options"), f"{pointer}/options", min_items=1, max_items=10)
            for i, opt in enumerate(opts):
                self.option(opt, f"{pointer}/options/{i}", plain_only=False, allow_url=False)
            self._initial_options(el, opts, pointer)
        elif kind == "overflow":
            opts = self.items(el.get("options"), f"{pointer}/options", min_items=1, max_items=5)
            for i, opt in enumerate(opts):
                self.option(opt, f"{pointer}/options/{i}", plain_only=True, allow_url=True)
        elif kind == "plain_text_input":
            self.placeholder(el, pointer)
            self._plain_text_input(el, pointer)
        elif kind == "number_input":
            self.placeholder(el, pointer)
            self._number_input(el, pointer)
        elif kind in ("email_text_input", "url_text_input"):
            self.placeholder(el, pointer)
            self.max_len(el.get("initial_value"), 3000, f"{pointer}/initial_value")
        elif kind == "datepicker":
            self.placeholder(el, pointer)
            if "initial_date" in el and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(el["initial_date"])):
                self.add(f"{pointer}/initial_date", "must be formatted YYYY-MM-DD")
        elif kind == "timepicker":
            self.placeholder(el, pointer)
            if "initial_time" in el and not re.fullmatch(r"\d{2}:\d{2}", str(el["initial_time"])):
                self.add(f"{pointer}/initial_time", "must be formatted HH:mm")
        elif kind == "image":
            if "alt_text" not in el:
                self.add(f"{pointer}/alt_text", "is required")
            self.max_len(el.get("alt_text"), 2000, f"{pointer}/alt_text")
            self.max_len(el.get("image_url"), 3000, f"{pointer}/image_url")
        elif kind in _SELECTS | _MULTI_SELECTS:
            self.placeholder(el, pointer)

    def _static_options(self, el: Mapping[str, Any], pointer: str) -> None:
        has_opts, has_groups = "options" in el, "option_groups" in el
        if has_opts == has_groups:
            self.add(pointer, "exactly one of options or option_groups is required")
        all_opts: list[Any] = []
        if has_opts:
            opts = self.items(el["options"], f"{pointer}/options", min_items=1, max_items=100)
            for i, opt in enumerate(opts):
                self.option(opt, f"{pointer}/options/{i}", plain_only=True, allow_url=False)
            all_opts += opts
        if has_groups:
            groups = self.items(el["option_groups"], f"{pointer}/option_groups", min_items=1, max_items=100)
            for g, group in enumerate(groups):
                gp = f"{pointer}/option_groups/{g}"
                if not isinstance(group, dict):
                    self.add(gp, "must be an option group object")
                    continue
                self.keys(group, {"label", "options"}, gp)
                self.text_obj(group.get("label"), f"{gp}/label", limit=75, plain_only=True)
                opts = self.items(group.get("options"), f"{gp}/options", min_items=1, max_items=100)
                for i, opt in enumerate(opts):
                    self.option(opt, f"{gp}/options/{i}", plain_only=True, allow_url=False)
                all_opts += opts
        self._initial_options(el, all_opts, pointer)

    def _initial_options(self, el: Mapping[str, Any], options: list[Any], pointer: str) -> None:
        # Slack requires initial_option(s) to match one of the options exactly.
        if "initial_option" in el and el["initial_option"] not in options:
            self.add(f"{pointer}/initial_option", "must exactly match one of the options")
        for i, opt in enumerate(el.get("initial_options") or []):
            if opt not in options:
                self.add(f"{pointer}/initial_options/{i}", "must exactly match one of the options")

    def _plain_text_input(self, el: Mapping[str, Any], pointer: str) -> None:
        min_length, max_length = el.get("min_length"), el.get("max_length")
        if min_length is not None and not (isinstance(min_length, int) and 0 <= min_length <= 3000):
            self.add(f"{pointer}/min_length", "must be an integer between 0 and 3000")
        if max_length is not None and not (isinstance(max_length, int) and 1 <= max_length <= 3000):
            self.add(f"{pointer}/max_length", "must be an integer between 1 and 3000")
        if isinstance(min_length, int) and isinstance(max_length, int) and min_length > max_length:
            self.add(f"{pointer}/min_length", "must not exceed max_length")
        limit = max_length if isinstance(max_length, int) and 1 <= max_length <= 3000 else 3000
        self.max_len(el.get("initial_value"), limit, f"{pointer}/initial_value")

    def _number_input(self, el: Mapping[str, Any], pointer: str) -> None:
        if "is_decimal_allowed" not in el:
            self.add(f"{pointer}/is_decimal_allowed", "is required")
        decimal = bool(el.get("is_decimal_allowed"))
        pattern = r"-?\d+(\.\d+)?" if decimal else r"-?\d+"
        bounds: dict[str, float] = {}
        for key in ("initial_value", "min_value", "max_value"):
            raw = el.get(key)
            if raw is None:
                continue
            if not isinstance(raw, str) or not re.fullmatch(pattern, raw):
                kind = "a decimal" if decimal else "an integer"
                self.add(f"{pointer}/{key}", f"must be a string holding {kind} number")
            else:
                bounds[key] = float(raw)
        if "min_value" in bounds and "max_value" in bounds and bounds["min_value"] > bounds["max_value"]:
            self.add(f"{pointer}/min_value", "must not exceed max_value")
        if "initial_value" in bounds:
            if bounds["initial_value"] < bounds.get("min_value", float("-inf")):
                self.add(f"{pointer}/initial_value", "must be >= min_value")
            if bounds["initial_value"] > bounds.get("max_value", float("inf")):
                self.add(f"{pointer}/initial_value", "must be <= max_value")

    # --- blocks -------------------------------------------------------------

    def block(self, block: Any, pointer: str, surface: Surface) -> None:
        if not isinstance(block, dict):
            self.add(pointer, "must be a block object")
            return
        kind = block.get("type")
        if kind not in set().union(*ALLOWED_BLOCKS.values()):
            self.add(f"{pointer}/type", f"unknown block type: {kind!r}")
            return
        if kind not in ALLOWED_BLOCKS[surface]:
            self.add(f"{pointer}/type", f"block type {kind} is not allowed in a {surface}")
            return
        if kind in _BLOCK_KEYS:
            self.keys(block, _BLOCK_KEYS[kind], pointer)
        block_id = block.get("block_id")
        if block_id is not None:
            self.max_len(block_id, MAX_ID, f"{pointer}/block_id", min_len=1)
            if block_id in self.block_ids:
                self.add(f"{pointer}/block_id", f"block_id {block_id!r} is not unique")
            self.block_ids.add(block_id)

        action_ids: set[str] = set()
        if kind == "section":
            if "text" not in block and "fields" not in block:
                self.add(pointer, "one of text or fields is required")
            self.text_obj(block.get("text"), f"{pointer}/text", limit=3000, required=False)
            if "fields" in block:
                fields = self.items(block["fields"], f"{pointer}/fields", min_items=1, max_items=10)
                for i, field in enumerate(fields):
                    self.text_obj(field, f"{pointer}/fields/{i}", limit=2000)
            if "accessory" in block:
                self.element(block["accessory"], f"{pointer}/accessory", SECTION_ACCESSORIES, action_ids)
        elif kind == "header":
            self.text_obj(block.get("text"), f"{pointer}/text", limit=150, plain_only=True)
        elif kind == "image":
            if "alt_text" not in block:
                self.add(f"{pointer}/alt_text", "is required")
            self.max_len(block.get("alt_text"), 2000, f"{pointer}/alt_text")
            self.max_len(block.get("image_url"), 3000, f"{pointer}/image_url")
            self.text_obj(block.get("title"), f"{pointer}/title", limit=2000, plain_only=True, required=False)
        elif kind == "context":
            elements = self.items(block.get("elements"), f"{pointer}/elements", min_items=1, max_items=10)
            for i, el in enumerate(elements):
                ep = f"{pointer}/elements/{i}"
                if isinstance(el, dict) and el.get("type") in _TEXT_KEYS:
                    self.text_obj(el, ep, limit=3000)
                else:
                    self.element(el, ep, {"image"}, action_ids)
        elif kind == "actions":
            elements = self.items(block.get("elements"), f"{pointer}/elements", min_items=1, max_items=25)
            for i, el in enumerate(elements):
                self.element(el, f"{pointer}/elements/{i}", ACTIONS_ELEMENTS, action_ids)
        elif kind == "input":
            self.text_obj(block.get("label"), f"{pointer}/label", limit=2000, plain_only=True)
            self.text_obj(block.get("hint"), f"{pointer}/hint", limit=2000, plain_only=True, required=False)
            allowed = INPUT_ELEMENTS if surface != "message" else INPUT_ELEMENTS - {"file_input"}
            if "element" not in block:
                self.add(f"{pointer}/element", "is required")
            else:
                self.element(block["element"], f"{pointer}/element", allowed, action_ids)
        elif kind == "markdown":
            self.max_len(block.get("text"), 12_000, f"{pointer}/text", min_len=1)


def _sdk_problem(block: dict[str, Any]) -> str | None:
    """Second opinion from slack_sdk's models (they stop at the first problem)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed = Block.parse(block)
            if parsed is not None:
                parsed.to_dict()  # to_dict() runs validate_json() recursively
    except (SlackObjectFormationError, TypeError, ValueError, AttributeError, KeyError) as exc:
        return str(exc) or type(exc).__name__
    return None


def _validate_blocks(checker: _Checker, blocks: Any, surface: Surface, pointer: str) -> None:
    if not isinstance(blocks, list):
        checker.add(pointer, "must be an array of blocks")
        return
    limit = MAX_BLOCKS[surface]
    if len(blocks) > limit:
        checker.add(pointer, f"must have at most {limit} blocks in a {surface} (got {len(blocks)})")
    for i, block in enumerate(blocks):
        before = len(checker.problems)
        checker.block(block, f"{pointer}/{i}", surface)
        if len(checker.problems) == before and isinstance(block, dict):
            sdk = _sdk_problem(block)
            if sdk:
                checker.add(f"{pointer}/{i}", sdk)


def validate_blocks(blocks: list[dict[str, Any]], surface: Surface, *, pointer: str = "/blocks") -> list[str]:
    """Problems with `blocks` on `surface` (empty list = Slack would accept them)."""
    checker = _Checker()
    _validate_blocks(checker, blocks, surface, pointer)
    return checker.problems


def validate_message(text: str | None, blocks: list[dict[str, Any]] | None) -> list[str]:
    """Problems with a message's text + blocks (chat.postMessage, chat.update, response_url)."""
    checker = _Checker()
    if text is not None:
        checker.max_len(text, MAX_MESSAGE_TEXT, "/text")
    if blocks is not None:
        _validate_blocks(checker, blocks, "message", "/blocks")
    return checker.problems


_MODAL_KEYS = {
    "type", "title", "blocks", "close", "submit", "private_metadata", "callback_id",
    "clear_on_close", "notify_on_close", "external_id", "submit_disabled",
}
_HOME_KEYS = {"type", "blocks", "private_metadata", "callback_id", "external_id"}


def validate_view(view: Any) -> list[str]:
    """Problems with a modal/home view object (views.open/push/update, response_action)."""
    checker = _Checker()
    p = "/view"
    if not isinstance(view, dict):
        checker.add(p, "must be a view object")
        return checker.problems
    kind = view.get("type")
    if kind not in ("modal", "home"):
        checker.add(f"{p}/type", "must be one of modal, home")
        return checker.problems
    # Echoing a payload's view back (id, hash, state, ...) is rejected by Slack.
    checker.keys(view, _MODAL_KEYS if kind == "modal" else _HOME_KEYS, p)
    if kind == "modal":
        checker.text_obj(view.get("title"), f"{p}/title", limit=24, plain_only=True)
        checker.text_obj(view.get("close"), f"{p}/close", limit=24, plain_only=True, required=False)
        checker.text_obj(view.get("submit"), f"{p}/submit", limit=24, plain_only=True, required=False)
        blocks = view.get("blocks")
        if isinstance(blocks, list) and "submit" not in view and any(_is_input(b) for b in blocks):
            checker.add(f"{p}/submit", "is required when the view contains input blocks")
    checker.max_len(view.get("private_metadata"), 3000, f"{p}/private_metadata")
    checker.max_len(view.get("callback_id"), MAX_ID, f"{p}/callback_id")
    checker.max_len(view.get("external_id"), MAX_ID, f"{p}/external_id")
    if "blocks" not in view:
        checker.add(f"{p}/blocks", "is required")
    else:
        _validate_blocks(checker, view["blocks"], kind, f"{p}/blocks")
    return checker.problems


def _is_input(block: Any) -> bool:
    return isinstance(block, dict) and block.get("type") == "input"


def iter_elements(blocks: Iterable[Any]) -> Iterable[tuple[dict[str, Any], dict[str, Any]]]:
    """Yield (block, element) for every interactive element in `blocks`."""
    for block in blocks:
        if not isinstance(block, dict):
            continue
        candidates: list[Any] = []
        if block.get("type") == "section" and "accessory" in block:
            candidates.append(block["accessory"])
        elif block.get("type") in ("actions", "context"):
            candidates.extend(block.get("elements") or [])
        elif block.get("type") == "input" and "element" in block:
            candidates.append(block["element"])
        for el in candidates:
            if isinstance(el, dict) and el.get("type") in KNOWN_ELEMENTS:
                yield block, el
