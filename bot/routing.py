"""Where payment notifications go: one channel per billing profile, chosen by its admins.

Without a route, the deployment's NOTIFY_CHANNEL is used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from bot.identity import AccessDenied, AccessProblem, Viewer
from bot.invoices import InvoiceService, ProfileNameProblem
from storage.audit import AuditLog
from storage.routes import RouteRepository

_CHANNEL = re.compile(r"^<#([CG][A-Z0-9_]+)(?:\|[^>]*)?>$|^([CG][A-Z0-9_]{2,})$")


class RouteProblem(Exception):
    """A notify command that cannot be carried out; the message is for the user."""


@dataclass(frozen=True, slots=True)
class ChannelInfo:
    exists: bool
    is_private: bool = False
    bot_is_member: bool = False


class ChannelDirectory(Protocol):
    async def channel(self, team_id: str, channel_id: str) -> ChannelInfo: ...


@dataclass(frozen=True, slots=True)
class RouteRow:
    profile_id: str
    profile_name: str
    channel: str
    is_default: bool


class NotificationRouter:
    def __init__(self, default_channel: str, routes: RouteRepository) -> None:
        self.default_channel = default_channel
        self._routes = routes

    async def channel_for(self, team_id: str, billing_profile_id: str) -> str:
        return await self._routes.channel_for(team_id, billing_profile_id) or self.default_channel


class RoutingService:
    def __init__(self, routes: RouteRepository, invoices: InvoiceService, channels: ChannelDirectory,
                 audit: AuditLog, default_channel: str) -> None:
        self._routes = routes
        self._invoices = invoices
        self._channels = channels
        self._audit = audit
        self._default = default_channel
        # callables (team_id, user_id): a person changed a route (their Home tab shows routes)
        self.on_changed: list = []

    async def show(self, viewer: Viewer, *, limit: int | None = None) -> list[RouteRow]:
        """Each profile's route (the first `limit` profiles by id, when given: the Home tab)."""
        ids = sorted(set(viewer.access.billing_profile_ids))[:limit]
        routes = await self._routes.for_profiles(viewer.team_id, ids)
        rows = []
        for pid in ids:
            profile = await self._invoices.profile(pid)
            rows.append(RouteRow(pid, profile.name, routes.get(pid, self._default), pid not in routes))
        return rows

    async def set(self, viewer: Viewer, channel_text: str, profile_text: str) -> tuple[str, list[RouteRow]]:
        """Route one profile (or all the admin's profiles) to a channel; returns the channel id."""
        if not viewer.access.is_profile_admin:
            await self._audit.record("set_notify_route", "denied", team_id=viewer.team_id, user_id=viewer.user_id,
                                     reason="not_billing_profile_admin")
            raise AccessDenied(AccessProblem.NOT_ADMIN)
        match = _CHANNEL.match(channel_text.strip())
        if not match:
            raise RouteProblem("Name the channel with `#` so Slack links it, e.g. `/invoices notify #billing`.")
        channel_id = match.group(1) or match.group(2)
        info = await self._channels.channel(viewer.team_id, channel_id)
        if not info.exists:
            raise RouteProblem("I can't see that channel. If it is private, invite me first "
                               "(`/invite @invoicebot` in the channel), then run this again.")
        if info.is_private and not info.bot_is_member:
            raise RouteProblem(f"<#{channel_id}> is private and I'm not in it, so I couldn't post there. "
                               "Invite me first (`/invite @invoicebot` in the channel), then run this again.")
        profile_ids = await self._profiles_named(viewer, profile_text)
        await self._routes.set(viewer.team_id, profile_ids, channel_id, viewer.user_id)
        await self._audit.record("set_notify_route", "ok", team_id=viewer.team_id, user_id=viewer.user_id,
                                 channel=channel_id, billing_profiles=profile_ids)
        for changed in self.on_changed:
            changed(viewer.team_id, viewer.user_id)
        return channel_id, [row for row in await self.show(viewer) if row.profile_id in profile_ids]

    async def _profiles_named(self, viewer: Viewer, text: str) -> list[str]:
        try:
            return await self._invoices.profiles_named(viewer, text, listed_by="/invoices notify")
        except ProfileNameProblem as exc:
            raise RouteProblem(str(exc)) from None
