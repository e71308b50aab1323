"""Templates, sender profiles and resending a campaign's failures, through AppTest from app.py.

- Templates page: a template saved with its live segment and encoding preview, edited,
  deleted; a sender profile refused for a bad sender id, then saved.
- Send and New campaign start from them: the text, the sender and the country filled; a
  confirmed send marks the template used.
- Campaigns: "Resend the N failed and undelivered" → Confirm, the second click makes one new
  campaign of exactly those recipients; a second tab's Confirm learns it was resent already;
  a member without CAMPAIGNS is not offered it, and one whose role went is refused (audited).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from console import runtime as _runtime
from kedacore.api.types import SendResult, SentMessage
from kedacore.campaign.progress import holder
from kedacore.ledger import Ledger, PlannedBatch, StatusUpdate
from kedacore.ledger.audit import AuditFilter
from kedacore.ledger.team import APPROVAL_THRESHOLD
from kedacore.settings import load_settings
from tests.console.test_app import shown, start
from tests.console.test_app_team import BOSS, signed_in

TEMPLATES = "pages/templates.py"
CAMPAIGNS = "pages/campaigns.py"
FATES = {
    "+12062000001": "DELIVERED",
    "+12062000002": "FAILED",
    "+12062000003": "UNDELIVERED",
    "+12062000004": "FAILED",
}


def book() -> Ledger:
    return _runtime.runtime(load_settings(None, os.environ)).ledger  # the page's own


def texts(elements) -> str:
    return "\n".join(shown(str(e.value)) for e in elements)


# -- templates and profiles ------------------------------------------------------------------


def test_a_send_for_later_marks_the_sends_template_used_not_the_campaigns(
    data_dir: Path,
) -> None:
    ledger = book()
    for_send = ledger.create_template("Doors", "Doors open at nine", by="someone@example.com")
    for_campaign = ledger.create_template("Promo", "Hi {name}", by="someone@example.com")
    at = start()
    at.switch_page(CAMPAIGNS).run()
    at.selectbox(key="campaigns_start_template").set_value(for_campaign).run()
    at.switch_page("pages/send.py").run()
    at.selectbox(key="send_start_template").set_value(for_send).run()
    at.text_area(key="send_numbers").input("+12062000001").run()
    at.radio(key="send_when").set_value("At a time").run()
    at.button(key="send_submit").click().run()
    at.button(key="send_later_confirm").click().run()
    assert not at.exception, at.exception
    assert [c.status for c in book().campaigns()] == ["scheduled"]
    assert book().template(for_send).last_used_at is not None
    assert book().template(for_campaign).last_used_at is None


def test_a_template_is_written_with_its_preview_edited_and_deleted(data_dir: Path) -> None:
    at = start(TEMPLATES)
    assert "No template yet" in texts(at.info)
    at.text_input(key="templates_name").input("Welcome").run()
    at.text_area(key="templates_body").input("Hi {name}, ça va? Code {code}").run()
    preview = texts(at.caption).replace("**", "")
    assert "1 segment(s) · encoding UCS-2" in preview, preview
    assert "“ç” U+00E7" in preview and "Variables: {name}, {code}" in preview
    at.button(key="templates_save").click().run()
    assert not at.exception, at.exception
    assert "Template “Welcome” saved." in texts(at.success)
    table = next(d.value for d in at.dataframe if "Variables" in d.value.columns)
    row = table.to_dict("records")[0]
    assert (row["Name"], row["Owner"], row["Last used"]) == ("Welcome", "local operator", "never")
    assert (row["Segments"], row["Encoding"], row["Variables"]) == (1, "UCS-2", "name, code")
    (saved,) = book().templates()
    assert at.selectbox(key="templates_pick").value == saved.id  # kept picked: edit it
    at.text_area(key="templates_body").input("Hi {name}").run()
    at.button(key="templates_save").click().run()
    assert book().template(saved.id).body == "Hi {name}"
    at.button(key="templates_delete").click().run()
    assert not at.exception, at.exception
    assert book().templates() == []
    audited = [e.action for e in book().audit_entries(AuditFilter(actions=["template_create",
               "template_edit", "template_delete"]))]  # fmt: skip
    assert audited == ["template_delete", "template_edit", "template_create"]


def test_a_sender_profile_with_a_bad_sender_id_is_refused_then_saved(data_dir: Path) -> None:
    at = start(TEMPLATES)
    at.text_input(key="profiles_name").input("Shop US")
    at.text_input(key="profiles_sender").input("Shop Now")
    at.text_input(key="profiles_country").input("us").run()
    at.button(key="profiles_save").click().run()
    assert "Not saved:" in texts(at.error) and "sender id" in texts(at.error)
    assert book().sender_profiles() == []
    at.text_input(key="profiles_sender").input("ShopNow").run()
    at.button(key="profiles_save").click().run()
    (profile,) = book().sender_profiles()
    assert (profile.sender, profile.default_country) == ("ShopNow", "US")


def test_send_starts_from_a_template_and_a_profile_and_marks_it_used(data_dir: Path) -> None:
    ledger = book()
    tid = ledger.create_template("Promo", "Sale: 20% off today", by="someone@example.com")
    pid = ledger.save_sender_profile("UK", sender="ShopUK", default_country="GB", by="x@y.io")
    at = start()
    at.selectbox(key="send_start_template").set_value(tid).run()
    at.selectbox(key="send_sender_profile").set_value(pid).run()
    assert not at.exception, at.exception
    assert at.text_area(key="send_content").value == "Sale: 20% off today"
    assert at.text_input(key="send_sender").value == "ShopUK"
    assert at.selectbox(key="send_country").value == "GB"
    at.selectbox(key="send_country").set_value("US")
    at.text_area(key="send_numbers").input("+12062000001").run()
    at.button(key="send_submit").click().run()
    at.button(key="send_confirm").click().run()
    assert not at.exception, at.exception
    assert book().template(tid).last_used_at is not None
    # New campaign offers the same pickers.
    at.switch_page(CAMPAIGNS).run()
    at.selectbox(key="campaigns_start_template").set_value(tid).run()
    assert at.text_area(key="campaigns_template").value == "Sale: 20% off today"


# -- resend ----------------------------------------------------------------------------------


def finished_campaign(ledger: Ledger) -> int:
    """A campaign of four recipients, sent: one DELIVERED, two FAILED, one UNDELIVERED."""
    cid = ledger.create_campaign("Spring", template="Hi {name}", created_by="local operator")
    ledger.set_campaign_options(cid, {"track_click": False, "callback": False})
    ledger.plan_campaign(
        cid, [PlannedBatch("US", f"Hi {n[-1]}", (n,), 50_000) for n in FATES], returned=False
    )
    at = datetime.now(UTC) - timedelta(minutes=5)
    for i, number in enumerate(FATES):
        result = SendResult(
            f"t{cid}-{i}", "ok", Decimal("0.05"), "USD", 1, (SentMessage(f"m{cid}-{i}", number),)
        )
        ledger.record_send(result, country="US", sender=None, content=f"Hi {number[-1]}",
                           campaign_id=cid)  # fmt: skip
    ledger.apply_statuses(
        [StatusUpdate(f"m{cid}-{i}", f, occurred_at=at) for i, f in enumerate(FATES.values())]
    )
    ledger.set_campaign_status(cid, "done")
    return cid


def wait(campaign_id: int) -> None:
    run = holder(book().url, campaign_id)[1]
    if run is not None:
        run.wait(30)
        assert not run.running


def test_resend_in_two_clicks_sends_exactly_the_failures_once(data_dir: Path) -> None:
    cid = finished_campaign(book())
    at = start(CAMPAIGNS)  # both tabs are drawn: the list's campaign is the newest
    offer = at.button(key="campaigns_resend")
    assert offer.label == "Resend the 3 failed and undelivered"
    offer.click().run()
    box = texts(at.markdown).replace("**", "")
    assert "Resend to 3 recipients (2 FAILED, 1 UNDELIVERED)" in box, box
    assert "Spring — resend" in box and "0.15 USD" in box
    at.button(key="campaigns_resend_confirm").click().run()
    assert not at.exception, at.exception
    (new,) = [c for c in book().campaigns() if c.id != cid]
    wait(new.id)
    assert (new.name, new.recipients) == ("Spring — resend", 3)
    assert book().resend_of(cid) == new.id
    batches = book().campaign_batches(new.id)
    assert sorted((b.recipients[0], b.content) for b in batches) == [
        ("+12062000002", "Hi 2"),
        ("+12062000003", "Hi 3"),
        ("+12062000004", "Hi 4"),
    ]
    (entry,) = book().audit_entries(AuditFilter(actions=["campaign_resend"]))
    assert entry.after["recipients"] == 3
    assert "was started" in texts(at.success)
    assert at.selectbox(key="campaigns_pick").value == new.id  # the resend, opened


def test_a_second_tabs_confirm_learns_it_was_resent_already(data_dir: Path) -> None:
    cid = finished_campaign(book())
    first, second = start(CAMPAIGNS), start(CAMPAIGNS)
    for at in (first, second):
        assert not at.exception, at.exception
        offered = [b.key for b in at.button]
        assert "campaigns_resend" in offered, (offered, texts(at.markdown), texts(at.error))
        at.button(key="campaigns_resend").click().run()
    first.button(key="campaigns_resend_confirm").click().run()
    second.button(key="campaigns_resend_confirm").click().run()
    assert not second.exception, second.exception
    resends = [c for c in book().campaigns() if c.id != cid]
    assert len(resends) == 1
    wait(resends[0].id)
    assert "Already resent as" in texts(second.warning)
    assert len(book().audit_entries(AuditFilter(actions=["campaign_resend"]))) == 1
    second.selectbox(key="campaigns_pick").set_value(cid).run()
    assert "were resent as" in texts(second.caption)
    assert not any(b.key == "campaigns_resend" for b in second.button)


def test_resend_is_refused_without_the_campaigns_permission(data_dir: Path) -> None:
    ledger = book()
    ledger.add_member("fin@example.com", ["finance"], by=BOSS)
    ledger.add_member("mkt@example.com", ["marketing"], by=BOSS)
    cid = finished_campaign(ledger)
    fin = signed_in("fin@example.com").run()
    fin.switch_page(CAMPAIGNS).run()
    assert not fin.exception, fin.exception
    assert not any(b.key == "campaigns_resend" for b in fin.button)  # approvers: not offered
    mkt = signed_in("mkt@example.com", iat=8).run()
    mkt.switch_page(CAMPAIGNS).run()
    mkt.button(key="campaigns_resend").click().run()
    # Marketing goes meanwhile (finance still opens Campaigns, to approve): Confirm is refused.
    ledger.set_member_roles("mkt@example.com", ["finance"], by=BOSS)
    mkt.button(key="campaigns_resend_confirm").click().run()
    assert not mkt.exception, mkt.exception
    assert ledger.resend_of(cid) is None and len(ledger.campaigns()) == 1
    assert "Not allowed" in texts(mkt.error)
    refused = ledger.audit_entries(AuditFilter(actors=["mkt@example.com"], outcomes=["refused"]))
    assert [(e.target, e.detail) for e in refused] == [
        (f"campaign {cid}", "resend campaigns (needs campaigns)")
    ]


def test_a_resend_over_the_approval_threshold_waits_for_approval(data_dir: Path) -> None:
    ledger = book()
    ledger.add_member("mkt@example.com", ["marketing"], by=BOSS)
    ledger.set_team_setting(APPROVAL_THRESHOLD, "0.10", by=BOSS)
    cid = finished_campaign(ledger)
    mkt = signed_in("mkt@example.com").run()
    mkt.switch_page(CAMPAIGNS).run()
    mkt.button(key="campaigns_resend").click().run()
    assert "It waits for approval" in texts(mkt.info).replace("**", "")
    mkt.button(key="campaigns_resend_confirm").click().run()
    assert not mkt.exception, mkt.exception
    new = ledger.resend_of(cid)
    assert ledger.campaign(new).status == "awaiting"  # nothing sent until approved
    assert ledger.campaign_batches(new, states=["sent"]) == []
    assert "waits for approval" in texts(mkt.success)
