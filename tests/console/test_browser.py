"""The console in real Chromium (Debian's package, driven by Playwright), against the real app
served by uvicorn with a simulated fleet replaying the heat-event drop."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from derms.core.der import DerKind
from derms.fleet import KIND_CODES
from derms.store.schema import ders
from tests.console.conftest import DROP_COUNT, HostedSandbox

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SHOTS = Path(__file__).resolve().parents[2] / "screenshots" / "console"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not os.access(CHROMIUM, os.X_OK),
        reason=f"{CHROMIUM} is missing: run scripts/peers/chromium.sh (apt-get install chromium)",
    ),
]


@pytest.fixture(scope="module")
def browser() -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def login(browser, sandbox: HostedSandbox, user: str):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(sandbox.box.url + "/console/")
    assert page.url.endswith("/console/login")
    page.fill("#token", sandbox.box.tokens[user])
    page.click("#login-submit")
    page.wait_for_url(re.compile(r"/console/$"))
    return context, page


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


@pytest.mark.timeout(600)  # the first test also starts the sandbox
def test_login_and_watch_a_feeder_update_live(browser, sandbox: HostedSandbox) -> None:
    context, page = login(browser, sandbox, "operator")
    assert page.locator("#who").inner_text() == "operator (operator)"
    row = page.locator('#feeders tr[data-feeder="F1"]')
    first_p = row.locator(".p").inner_text()
    first_at = page.locator("#sim-clock").inner_text()
    # The stream pushes once a second; the simulator steps once a wall second at speed 60.
    page.wait_for_function(
        "([p, at]) => document.querySelector('#feeders tr[data-feeder=\"F1\"] .p').textContent !== p"
        " && document.querySelector('#sim-clock').textContent !== at",
        arg=[first_p, first_at],
        timeout=6000,
    )
    shown = float(row.locator(".online").inner_text())

    def online_on_f1() -> int:
        fleet = sandbox.box.runtime.fleet
        members = fleet.registered & fleet.enabled & (fleet.feeder == fleet.feeder_ids.index("F1"))
        return int((fleet.online & members).sum())

    truth = sandbox.run(online_on_f1)
    assert abs(shown - truth) <= 5  # the page is at most one stream period behind the state
    assert page.locator("#controls").count() == 1
    shot(page, "overview")

    # A change (a site opted out) reaches the open page within 2 s.
    def site_on_f1() -> tuple[str, int]:
        fleet = sandbox.box.runtime.fleet
        with sandbox.box.runtime.engine.connect() as conn:
            rows = conn.execute(select(ders.c.site_id, ders.c.idx)).all()
        f1 = fleet.feeder_ids.index("F1")
        site = next(site for site, idx in rows if fleet.feeder[idx] == f1)
        return site, sum(1 for s, _ in rows if s == site)

    site_id, n_site = sandbox.run(site_on_f1)
    ders_before = int(row.locator(".ders").inner_text())
    changed = page.request.post(
        sandbox.box.url + "/console/api/opt-out", data={"site_id": site_id, "opt_out": True}
    )
    assert changed.ok
    page.wait_for_function(
        "n => document.querySelector('#feeders tr[data-feeder=\"F1\"] .ders').textContent === String(n)",
        arg=ders_before - n_site,
        timeout=2000,
    )
    page.request.post(sandbox.box.url + "/console/api/opt-out", data={"site_id": site_id, "opt_out": False})
    page.goto(sandbox.box.url + "/console/feeders/F1")
    page.wait_for_selector("#schematic line.br.ok, #schematic line.br.warm, #schematic line.br.hot")
    assert page.locator("#schematic circle.cluster").count() > 0
    assert page.locator("#plot-voltage polyline").count() == 1
    shot(page, "feeder")
    context.close()


def test_viewer_gets_no_controls(browser, sandbox: HostedSandbox) -> None:
    context, page = login(browser, sandbox, "viewer")
    assert page.locator("#who").inner_text() == "viewer (viewer)"
    page.wait_for_selector('#feeders tr[data-feeder="F0"]')
    assert page.locator("#controls").count() == 0
    assert page.locator("form.dispatch").count() == 0
    assert page.locator("button.ack").count() == 0
    refused = page.request.post(
        sandbox.box.url + "/console/api/override",
        data={"der_id": "sim-der-000001", "control": {"kind": "active_power_limit", "pct": 50}},
    )
    assert refused.status == 403
    page.goto(sandbox.box.url + "/console/drill")
    assert page.locator("button.cover").count() == 0
    shot(page, "viewer")
    context.close()


@pytest.mark.timeout(600)
def test_heat_event_drill_names_the_right_feeders_and_backups(browser, sandbox: HostedSandbox) -> None:
    context, page = login(browser, sandbox, "operator")
    page.goto(sandbox.box.url + "/console/drill")
    # The scenario drops DROP_COUNT devices 40 simulated minutes after the start.
    page.wait_for_selector("#drill-feeders", timeout=90_000)
    page.wait_for_function(
        f"() => document.querySelector('#drill-summary b').textContent === '{DROP_COUNT}'", timeout=15_000
    )

    def truth() -> tuple[dict[str, int], set[str], dict[str, str]]:
        fleet, sim = sandbox.box.runtime.fleet, sandbox.box.adapter.fleet
        dropped = [d for d in sim.der_ids if not sim.is_online(d)]
        per_feeder: dict[str, int] = {}
        for d in dropped:
            fid = fleet.feeder_ids[fleet.feeder[fleet.index[d]]]
            per_feeder[fid] = per_feeder.get(fid, 0) + 1
        feeder_of = {d: fleet.feeder_ids[fleet.feeder[i]] for d, i in fleet.index.items()}
        return per_feeder, set(dropped), feeder_of

    per_feeder, dropped, feeder_of = sandbox.run(truth)
    rows = page.locator("#drill-feeders tbody tr")
    named = {rows.nth(k).get_attribute("data-feeder"): rows.nth(k) for k in range(rows.count())}
    assert set(named) == set(per_feeder)
    lost = [float(rows.nth(k).locator(".lost").inner_text().replace(",", "")) for k in range(rows.count())]
    assert lost == sorted(lost, reverse=True) and lost[0] > 0  # ranked by lost flexibility
    for fid, row in named.items():
        assert int(row.locator("td").nth(2).inner_text()) == per_feeder[fid]
        backups = [li.get_attribute("data-der") for li in row.locator("ol.backups li").all()]
        assert backups, f"no backups listed on {fid}"
        for der_id in backups:
            assert der_id not in dropped
            assert feeder_of[der_id] == fid
        online = sandbox.run(lambda b=backups: [sandbox.box.adapter.fleet.is_online(d) for d in b])
        assert all(online)
    shot(page, "drill")
    # Cover the top feeder's shortfall with its backups; the drill then shows what was done.
    page.locator("button.cover").first.click()
    page.wait_for_selector("#flash.ok")
    page.wait_for_function(
        "() => document.querySelectorAll('#drill-actions tbody tr').length > 0", timeout=15_000
    )
    shot(page, "drill-after-cover")
    context.close()


def test_override_lands_in_the_audit_log(browser, sandbox: HostedSandbox) -> None:
    context, page = login(browser, sandbox, "operator")

    def battery() -> str:
        fleet = sandbox.box.runtime.fleet
        up, _ = fleet.flexibility()
        rows = np.flatnonzero(
            fleet.dispatchable()[: len(up)] & (fleet.kind[: len(up)] == KIND_CODES[DerKind.HOME_BATTERY])
        )
        return fleet.der_ids[rows[0]]

    der_id = sandbox.run(battery)
    page.fill("#override-form input[name=der_id]", der_id)
    page.fill("#override-form input[name=control]", '{"kind": "active_power_limit", "pct": 40}')
    page.fill("#override-form input[name=reason]", "browser test override")
    page.click("#override-form button[type=submit]")
    page.wait_for_selector("#flash.ok")
    command_id = page.locator("#flash").inner_text().rsplit(" ", 1)[-1]
    page.goto(sandbox.box.url + "/console/reports")
    entry = page.locator('#audit tr[data-action="console.override"]', has_text=der_id)
    assert entry.count() == 1
    assert command_id in entry.inner_text()
    assert "browser test override" in entry.inner_text()
    csv = page.request.get(sandbox.box.url + "/console/reports/audit.csv")
    assert csv.ok and command_id in csv.text()
    pdf = page.request.get(sandbox.box.url + "/console/reports/audit.pdf")
    assert pdf.ok and pdf.body().startswith(b"%PDF")
    shot(page, "reports")
    page.goto(sandbox.box.url + "/console/plots")
    assert page.locator("#plot-flex polyline").count() == 3
    shot(page, "plots")
    context.close()
