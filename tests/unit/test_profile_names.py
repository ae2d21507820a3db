"""How every command reads a billing profile's name (`/invoices notify`, `approvals`,
`approvers`, `reminders`): one function, `InvoiceService.profiles_named`."""

from __future__ import annotations

import pytest

from bot.billing import Access, BillingProfile
from bot.identity import Viewer
from bot.invoices import InvoiceService, ProfileNameProblem

PROFILES = {"bp_eu": "Acme GmbH", "bp_us": "Acme Inc", "bp_uk": "Northwind Ltd", "bp_uk2": "northwind ltd"}


class Profiles:
    async def get_billing_profile(self, profile_id: str) -> BillingProfile:
        return BillingProfile(id=profile_id, name=PROFILES[profile_id], currency="EUR")


def viewer(*ids: str) -> Viewer:
    return Viewer("T1", "U1", "u1@acme.example", Access(email="u1@acme.example", permissions=["invoice_viewer"],
                                                         billing_profile_ids=list(ids or PROFILES)))


async def named(text: str, *ids: str) -> list[str]:
    return await InvoiceService(Profiles()).profiles_named(viewer(*ids), text, listed_by="/invoices notify")  # type: ignore[arg-type]


async def test_no_name_is_all_an_id_or_a_whole_name_is_one_a_part_is_the_only_one_containing_it() -> None:
    assert await named("") == sorted(PROFILES)
    assert await named("BP_US") == ["bp_us"]
    assert await named("acme gmbh") == ["bp_eu"]
    assert await named("gmbh") == ["bp_eu"]
    assert await named("Acme", "bp_eu") == ["bp_eu"]  # only the person's own profiles count


async def test_a_name_that_fits_several_or_none_is_asked_back_never_guessed() -> None:
    with pytest.raises(ProfileNameProblem, match="matches several.*see `/invoices notify`"):
        await named("Acme")
    with pytest.raises(ProfileNameProblem, match="matches several"):
        await named("Northwind Ltd")  # two profiles with the same name (any case): not the first of them
    with pytest.raises(ProfileNameProblem, match="None of your billing profiles is called “Globex”"):
        await named("Globex")
    with pytest.raises(ProfileNameProblem, match="None"):
        await named("Northwind", "bp_eu")  # someone else's profile is not found, nor named
