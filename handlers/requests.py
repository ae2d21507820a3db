"""Slack payloads parsed into small typed requests. Everything here is untrusted input:
ids are looked up again, amounts re-validated, and a malformed payload is refused."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from bot.payments import AMOUNT_FIELD, METHOD_FIELD, Submission


class BadPayload(ValueError):
    pass


class _Request(BaseModel):
    model_config = ConfigDict(frozen=True, str_max_length=4000)


class CommandRequest(_Request):
    team_id: str
    user_id: str
    text: str = ""
    response_url: str | None = None
    trigger_id: str | None = None

    @classmethod
    def parse(cls, body: dict[str, Any]) -> CommandRequest:
        return _parse(cls, body)


class ActionRequest(_Request):
    team_id: str
    user_id: str
    trigger_id: str | None = None
    action_id: str
    value: str | None = None
    response_url: str | None = None
    view_id: str | None = None
    private_metadata: str = ""

    @classmethod
    def parse(cls, body: dict[str, Any]) -> ActionRequest:
        action = (body.get("actions") or [{}])[0]
        view = body.get("view") or {}
        return _parse(cls, {
            "team_id": (body.get("team") or {}).get("id") or (body.get("user") or {}).get("team_id"),
            "user_id": (body.get("user") or {}).get("id"),
            "trigger_id": body.get("trigger_id"),
            "action_id": action.get("action_id"),
            "value": action.get("value"),
            "response_url": body.get("response_url"),
            "view_id": view.get("id"),
            "private_metadata": view.get("private_metadata") or "",
        })


class SubmitRequest(_Request):
    team_id: str
    user_id: str
    view_id: str
    view_hash: str
    private_metadata: str
    amount_text: str | None = None
    method_id: str | None = None

    @classmethod
    def parse(cls, body: dict[str, Any]) -> SubmitRequest:
        view = body.get("view") or {}
        values = (view.get("state") or {}).get("values") or {}
        amount = (values.get(AMOUNT_FIELD) or {}).get(AMOUNT_FIELD) or {}
        method = (values.get(METHOD_FIELD) or {}).get(METHOD_FIELD) or {}
        return _parse(cls, {
            "team_id": (body.get("team") or {}).get("id") or (body.get("user") or {}).get("team_id"),
            "user_id": (body.get("user") or {}).get("id"),
            "view_id": view.get("id"),
            "view_hash": view.get("hash") or "",
            "private_metadata": view.get("private_metadata") or "",
            "amount_text": amount.get("value"),
            "method_id": (method.get("selected_option") or {}).get("value"),
        })

    def submission(self) -> Submission:
        return Submission(team_id=self.team_id, user_id=self.user_id, session_id=self.private_metadata,
                          view_id=self.view_id, view_hash=self.view_hash, amount_text=self.amount_text,
                          method_id=self.method_id)


def _parse(cls: type[_Request], data: dict[str, Any]) -> Any:
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        fields = ", ".join(str(err["loc"][0]) for err in exc.errors() if err["loc"])
        raise BadPayload(f"malformed Slack payload ({fields})") from None
