"""The dashboard in a real browser against a real `tollgate serve --demo`."""

import os
import re
import uuid

import pytest
from selenium.common.exceptions import NoAlertPresentException, StaleElementReferenceException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select

from conftest import ADMIN_TOKEN, XSS, goto, login, page_ready, save_page, severe_entries, tid, wait

PAGES = ["overview", "logs", "tool-logs", "keys", "teams", "customers", "providers", "mcp", "cluster"]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def row_by_id(driver, table: str, obj_id: str):
    return wait(driver).until(EC.presence_of_element_located(
        (By.CSS_SELECTOR, f'{tid(table)} tr[data-id="{obj_id}"]')), f"row {obj_id} in {table}")


def row_by_name(driver, table: str, name: str):
    def find(d):
        for r in d.find_elements(By.CSS_SELECTOR, f'{tid(table)} {tid("object-row")}'):
            try:
                if r.find_element(By.CSS_SELECTOR, tid("object-name")).text == name:
                    return r
            except StaleElementReferenceException:
                return None
        return None
    return wait(driver).until(find, f"a row named {name!r} in {table}")


def storage(driver):
    return driver.execute_script(
        "var o = {local: {}, session: {}};"
        "for (var i = 0; i < localStorage.length; i++) { var k = localStorage.key(i); o.local[k] = localStorage.getItem(k); }"
        "for (var j = 0; j < sessionStorage.length; j++) { var s = sessionStorage.key(j); o.session[s] = sessionStorage.getItem(s); }"
        "return o;")


def fetch_status(driver, method: str, path: str, body=None, csrf: str | None = None):
    """Status of a fetch made by the page itself (with its cookie)."""
    return driver.execute_async_script(
        "var done = arguments[arguments.length - 1];"
        "var h = {'content-type': 'application/json'};"
        "if (arguments[3]) h['X-CSRF-Token'] = arguments[3];"
        "fetch(arguments[1], {method: arguments[0], credentials: 'same-origin', headers: h,"
        "  body: arguments[2] === null ? undefined : JSON.stringify(arguments[2])})"
        ".then(function (r) { done(r.status); }, function (e) { done('error ' + e); });",
        method, path, body, csrf)


# ---------- log in ----------


def test_login_wrong_then_right_token_and_cookie_is_httponly(driver, node):
    driver.get(node.url + "/")
    field = wait(driver).until(EC.visibility_of_element_located((By.CSS_SELECTOR, tid("login-token"))))
    assert driver.find_element(By.CSS_SELECTOR, tid("login-error")).text == ""
    assert not driver.find_element(By.ID, "topbar").is_displayed()

    field.send_keys("not-the-admin-token\n")
    error = wait(driver).until(lambda d: d.find_element(By.CSS_SELECTOR, tid("login-error")).text)
    assert "wrong" in error.lower()
    assert field.get_attribute("aria-invalid") == "true"
    assert not driver.find_elements(By.CSS_SELECTOR, '[data-testid="page-overview"]')

    field.clear()
    field.send_keys(ADMIN_TOKEN + Keys.ENTER)
    page_ready(driver, "overview")
    status, st = node.admin("GET", "/api/status")
    assert status == 200
    assert re.fullmatch(r"[0-9a-f]{16}", st["node"])
    assert driver.find_element(By.CSS_SELECTOR, tid("node-id")).text == st["node"]
    assert driver.find_element(By.CSS_SELECTOR, tid("logout")).is_displayed()

    cookies = driver.get_cookies()
    assert cookies, "the server set no session cookie"
    for c in cookies:
        assert c["httpOnly"] is True, c
        assert c.get("sameSite") == "Strict", c
    page_cookie = driver.execute_script("return document.cookie")
    for c in cookies:
        assert c["value"] not in page_cookie
        assert c["name"] not in page_cookie

    st = storage(driver)
    assert st["session"] == {}
    assert set(st["local"]) <= {"tollgate-theme"}, st
    for v in list(st["local"].values()) + list(st["session"].values()):
        assert ADMIN_TOKEN not in v
    assert ADMIN_TOKEN not in driver.page_source
    assert ADMIN_TOKEN not in page_cookie

    # The session survives a reload (the cookie, not the page, holds it).
    driver.refresh()
    page_ready(driver, "overview")
    assert not driver.find_element(By.CSS_SELECTOR, tid("login")).is_displayed()


# ---------- keys: create, secret once, traffic, overview, logs ----------


def test_create_team_and_key_then_see_its_traffic(driver, node):
    login(driver, node)
    team_name = unique("team")
    key_name = unique("key")

    # A team, created in the page and submitted with Enter.
    goto(driver, node, "teams")
    driver.find_element(By.CSS_SELECTOR, tid("new-object")).click()
    form = wait(driver).until(EC.visibility_of_element_located((By.CSS_SELECTOR, tid("object-form"))))
    form.find_element(By.CSS_SELECTOR, tid("field-name")).send_keys(team_name + Keys.ENTER)
    wait(driver).until(EC.invisibility_of_element_located((By.CSS_SELECTOR, tid("object-form"))))
    page_ready(driver, "teams")
    row_by_name(driver, "teams-table", team_name)

    # A key in that team, with a budget; an invalid budget first shows its error beside the form.
    goto(driver, node, "keys")
    driver.find_element(By.CSS_SELECTOR, tid("new-object")).click()
    form = wait(driver).until(EC.visibility_of_element_located((By.CSS_SELECTOR, tid("object-form"))))
    form.find_element(By.CSS_SELECTOR, tid("field-name")).send_keys(key_name)
    team_select = Select(form.find_element(By.CSS_SELECTOR, tid("field-team_id")))
    team_select.select_by_visible_text(next(o.text for o in team_select.options if o.text.startswith(team_name)))
    form.find_element(By.CSS_SELECTOR, tid("budget-add")).click()
    limit = form.find_element(By.CSS_SELECTOR, tid("budget-limit"))
    limit.send_keys("ten dollars")
    form.find_element(By.CSS_SELECTOR, tid("form-submit")).click()
    err = wait(driver).until(lambda d: d.find_element(By.CSS_SELECTOR, f'{tid("object-form")} {tid("form-error")}').text)
    assert "ten dollars" in err and "USD" in err, err
    # Beside the budgets too, the offending field marked.
    assert "ten dollars" in driver.find_element(By.CSS_SELECTOR, tid("error-budgets")).text
    assert limit.get_attribute("aria-invalid") == "true"
    assert not driver.find_elements(By.CSS_SELECTOR, tid("secret-dialog"))
    limit.clear()
    limit.send_keys("10")
    Select(form.find_element(By.CSS_SELECTOR, tid("budget-period"))).select_by_value("1d")
    form.find_element(By.CSS_SELECTOR, tid("form-submit")).click()

    # The secret, once.
    dialog = wait(driver).until(EC.visibility_of_element_located((By.CSS_SELECTOR, tid("secret-dialog"))))
    secret = dialog.find_element(By.CSS_SELECTOR, tid("secret-value")).text
    assert re.fullmatch(r"sk-tg-[A-Za-z0-9_\-]{40}", secret), secret
    dialog.find_element(By.CSS_SELECTOR, tid("secret-copy")).click()
    wait(driver).until(lambda d: d.find_element(By.CSS_SELECTOR, tid("secret-copy-status")).text)
    dialog.find_element(By.CSS_SELECTOR, tid("secret-close")).click()
    wait(driver).until(lambda d: not d.find_elements(By.CSS_SELECTOR, tid("secret-dialog")))
    page_ready(driver, "keys")
    row = row_by_name(driver, "keys-table", key_name)
    key_id = row.get_attribute("data-id")
    assert row.find_element(By.CSS_SELECTOR, tid("key-prefix")).text == secret[:10] + "…"
    assert team_name in row.text
    assert secret not in driver.page_source
    assert wait(driver).until(lambda d: row_by_id(d, "keys-table", key_id).find_elements(By.CSS_SELECTOR, tid("budget-usage")))
    driver.refresh()
    page_ready(driver, "keys")
    assert secret not in driver.page_source
    assert key_name in driver.find_element(By.CSS_SELECTOR, tid("keys-table")).text

    # Traffic with the secret.
    for i in range(3):
        status, body = node.chat(secret, content=f"hello {i}")
        assert status == 200, body

    # Counted in the overview (cluster-wide totals, charts, top keys).
    goto(driver, node, "overview", "range=15m")
    assert driver.find_element(By.CSS_SELECTOR, tid("range-15m")).get_attribute("aria-pressed") == "true"

    def counted(d):
        d.find_element(By.CSS_SELECTOR, tid("overview-refresh")).click()
        try:
            tops = d.find_element(By.CSS_SELECTOR, tid("top-keys")).text
            total = int(d.find_element(By.CSS_SELECTOR, tid("total-requests")).text.replace(",", "").replace("\u202f", ""))
        except Exception:  # replaced while reading, or not a number yet
            return False
        return key_name in tops and total >= 3
    wait(driver, 30).until(counted, "the key's requests in the overview")
    assert driver.find_elements(By.CSS_SELECTOR, f'{tid("chart-requests")} path.line')
    assert driver.find_elements(By.CSS_SELECTOR, f'{tid("chart-tokens")} rect.chart-bar')
    top_row = next(r for r in driver.find_elements(By.CSS_SELECTOR, f'{tid("top-keys")} {tid("top-row")}') if key_name in r.text)
    assert re.search(r"\b3\b", top_row.text), top_row.text

    # Listed in the logs, filtered by the key, two per page: "Older" brings the third.
    goto(driver, node, "logs", f"virtual_key={key_id}&limit=2")
    rows = wait(driver).until(lambda d: d.find_elements(By.CSS_SELECTOR, tid("log-row")))
    assert len(rows) == 2
    driver.find_element(By.CSS_SELECTOR, tid("logs-older")).click()
    wait(driver).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, tid("log-row"))) == 3)
    for r in driver.find_elements(By.CSS_SELECTOR, tid("log-row")):
        assert r.get_attribute("data-status") == "200"
        assert key_name in r.text
        assert "demo/mock-1" in r.text
    assert driver.find_element(By.CSS_SELECTOR, tid("logs-end")).is_displayed()

    # The filter form: a status class with no match, applied with Enter in a text field.
    Select(driver.find_element(By.CSS_SELECTOR, tid("filter-status"))).select_by_value("5xx")
    driver.find_element(By.CSS_SELECTOR, tid("filter-model")).send_keys("demo/mock-1" + Keys.ENTER)
    wait(driver).until(lambda d: "status=5xx" in d.current_url and d.find_elements(By.CSS_SELECTOR, f'[data-testid="page-logs"][data-state="ready"] {tid("empty-state")}'))
    assert not driver.find_elements(By.CSS_SELECTOR, tid("log-row"))

    # One request's detail.
    goto(driver, node, "logs", f"virtual_key={key_id}")
    wait(driver).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, tid("log-row"))) == 3)
    driver.find_element(By.CSS_SELECTOR, f'{tid("log-row")} {tid("log-open")}').click()
    detail = wait(driver).until(EC.visibility_of_element_located((By.CSS_SELECTOR, tid("log-detail"))))
    text = lambda k: detail.find_element(By.CSS_SELECTOR, tid(f"detail-{k}")).text
    assert text("id").startswith("req_") or text("id")
    assert key_name in text("virtual_key") and key_id in text("virtual_key")
    assert team_name in text("team")
    assert text("status") == "200"
    assert text("requested_model") == "demo/mock-1"
    assert text("provider") == "demo"
    assert text("attempts") == "1"
    assert text("target_index").startswith("0")
    assert text("endpoint") == "chat"
    for k in ("latency", "upstream", "overhead", "prompt_tokens", "completion_tokens", "total_tokens", "cost", "cache", "node"):
        assert text(k) not in ("", "—"), k
    assert int(text("total_tokens").replace(",", "")) > 0
    # Escape closes the dialog (keyboard).
    detail.send_keys(Keys.ESCAPE)
    wait(driver).until(lambda d: not d.find_elements(By.CSS_SELECTOR, tid("log-detail")))


# ---------- keyboard only ----------


def test_keyboard_only_create_a_key(driver, node):
    login(driver, node)
    actions = ActionChains(driver)

    def tab_to(target: str, limit: int = 40):
        for _ in range(limit):
            if driver.execute_script("return document.activeElement && document.activeElement.dataset.testid") == target:
                return driver.switch_to.active_element
            actions.send_keys(Keys.TAB).perform()
        pytest.fail(f"Tab never reached {target}")

    link = tab_to("nav-keys")
    # The focused control is visibly marked.
    assert driver.execute_script("return getComputedStyle(arguments[0]).outlineStyle", link) not in ("none", "")
    link.send_keys(Keys.ENTER)
    page_ready(driver, "keys")
    tab_to("new-object").send_keys(Keys.ENTER)
    wait(driver).until(lambda d: d.execute_script("return document.activeElement.dataset.testid") == "field-name")
    name = unique("keyboard")
    driver.switch_to.active_element.send_keys(name + Keys.ENTER)
    wait(driver).until(EC.visibility_of_element_located((By.CSS_SELECTOR, tid("secret-dialog"))))
    assert driver.execute_script("return document.activeElement.dataset.testid") == "secret-copy"
    driver.switch_to.active_element.send_keys(Keys.ESCAPE)
    wait(driver).until(lambda d: not d.find_elements(By.CSS_SELECTOR, tid("secret-dialog")))
    row_by_name(driver, "keys-table", name)


# ---------- deactivate, rotate, delete ----------


def test_deactivate_key_in_page_refuses_its_secret(driver, node):
    key = node.create("keys", name=unique("revoke-me"))
    status, _ = node.chat(key["secret"])
    assert status == 200
    login(driver, node)
    goto(driver, node, "keys")
    row = row_by_id(driver, "keys-table", key["id"])
    assert row.get_attribute("data-active") == "true"
    row.find_element(By.CSS_SELECTOR, tid("toggle-active")).click()
    wait(driver).until(lambda d: row_by_id(d, "keys-table", key["id"]).get_attribute("data-active") == "false")
    assert wait(driver).until(lambda d: "inactive" in row_by_id(d, "keys-table", key["id"]).text)
    status, body = node.chat(key["secret"])
    assert status in (401, 403), (status, body)
    status, k = node.admin("GET", f"/api/keys/{key['id']}")
    assert k["active"] is False


def test_rotate_shows_new_secret_once_and_old_one_is_refused(driver, node):
    key = node.create("keys", name=unique("rotate-me"))
    login(driver, node)
    goto(driver, node, "keys")
    row_by_id(driver, "keys-table", key["id"]).find_element(By.CSS_SELECTOR, tid("rotate")).click()
    wait(driver).until(EC.visibility_of_element_located((By.CSS_SELECTOR, tid("confirm-dialog"))))
    driver.find_element(By.CSS_SELECTOR, tid("confirm-ok")).click()
    dialog = wait(driver).until(EC.visibility_of_element_located((By.CSS_SELECTOR, tid("secret-dialog"))))
    new_secret = dialog.find_element(By.CSS_SELECTOR, tid("secret-value")).text
    assert new_secret.startswith("sk-tg-") and new_secret != key["secret"]
    dialog.find_element(By.CSS_SELECTOR, tid("secret-close")).click()
    wait(driver).until(lambda d: not d.find_elements(By.CSS_SELECTOR, tid("secret-dialog")))
    page_ready(driver, "keys")
    assert new_secret not in driver.page_source
    assert row_by_id(driver, "keys-table", key["id"]).find_element(By.CSS_SELECTOR, tid("key-prefix")).text == new_secret[:10] + "…"
    assert node.chat(key["secret"])[0] == 401
    assert node.chat(new_secret)[0] == 200


def test_delete_asks_first(driver, node):
    key = node.create("keys", name=unique("delete-me"))
    login(driver, node)
    goto(driver, node, "keys")
    row_by_id(driver, "keys-table", key["id"]).find_element(By.CSS_SELECTOR, tid("delete")).click()
    wait(driver).until(EC.visibility_of_element_located((By.CSS_SELECTOR, tid("confirm-dialog"))))
    driver.find_element(By.CSS_SELECTOR, tid("confirm-cancel")).click()
    wait(driver).until(lambda d: not d.find_elements(By.CSS_SELECTOR, tid("confirm-dialog")))
    assert node.admin("GET", f"/api/keys/{key['id']}")[0] == 200
    row_by_id(driver, "keys-table", key["id"]).find_element(By.CSS_SELECTOR, tid("delete")).click()
    wait(driver).until(EC.visibility_of_element_located((By.CSS_SELECTOR, tid("confirm-ok")))).click()
    wait(driver).until(lambda d: not d.find_elements(By.CSS_SELECTOR, f'{tid("keys-table")} tr[data-id="{key["id"]}"]')
                       and d.find_elements(By.CSS_SELECTOR, '[data-testid="page-keys"][data-state="ready"]'))
    assert node.admin("GET", f"/api/keys/{key['id']}")[0] == 404
    assert node.chat(key["secret"])[0] == 401


def test_edit_team_budget_shows_usage_bar_and_reset(driver, node):
    team = node.create("teams", name=unique("budget-team"))
    login(driver, node)
    goto(driver, node, "teams")
    row_by_id(driver, "teams-table", team["id"]).find_element(By.CSS_SELECTOR, tid("edit")).click()
    form = wait(driver).until(EC.visibility_of_element_located((By.CSS_SELECTOR, tid("object-form"))))
    form.find_element(By.CSS_SELECTOR, tid("budget-add")).click()
    form.find_element(By.CSS_SELECTOR, tid("budget-limit")).send_keys("25")
    form.find_element(By.CSS_SELECTOR, tid("rate-add")).click()
    form.find_element(By.CSS_SELECTOR, tid("rate-requests")).send_keys("600" + Keys.ENTER)
    wait(driver).until(lambda d: not d.find_elements(By.CSS_SELECTOR, tid("object-form")))
    usage = wait(driver).until(lambda d: row_by_id(d, "teams-table", team["id"]).find_elements(By.CSS_SELECTOR, tid("budget-usage")))
    assert "$25" in usage[0].text
    assert "resets in" in usage[0].text
    assert "600 req" in row_by_id(driver, "teams-table", team["id"]).text
    status, t = node.admin("GET", f"/api/teams/{team['id']}")
    assert t["budgets"][0]["period"] == "1M" and t["rate_limits"][0]["requests"] == 600


# ---------- tool logs ----------


def test_tool_logs_filters_and_detail(driver, node):
    key = node.create("keys", name=unique("tools"))
    marker = unique("marker")
    assert node.mcp_call(key["secret"], "demo-echo", {"text": marker})["content"][0]["text"] == marker
    assert node.mcp_call(key["secret"], "demo-add", {"a": 2, "b": 3})["content"][0]["text"] == "5"
    failed = node.mcp_call(key["secret"], "demo-add", {"a": "two"})
    assert failed.get("isError") is True, failed
    login(driver, node)
    goto(driver, node, "tool-logs", f"virtual_key={key['id']}")
    wait(driver).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, tid("tool-log-row"))) == 3)

    # Errors only, with the checkbox and Enter in the tool field.
    driver.find_element(By.CSS_SELECTOR, tid("filter-errors")).click()
    driver.find_element(By.CSS_SELECTOR, tid("filter-tool")).send_keys("demo-add" + Keys.ENTER)
    wait(driver).until(lambda d: "is_error=true" in d.current_url and len(d.find_elements(By.CSS_SELECTOR, tid("tool-log-row"))) == 1)
    page_ready(driver, "tool-logs")
    row = driver.find_element(By.CSS_SELECTOR, tid("tool-log-row"))
    assert "error" in row.text and "demo-add" in row.text
    row.find_element(By.CSS_SELECTOR, tid("tool-log-open")).click()
    detail = wait(driver).until(EC.visibility_of_element_located((By.CSS_SELECTOR, tid("tool-log-detail"))))
    assert '"two"' in detail.find_element(By.CSS_SELECTOR, tid("tool-args")).text
    assert detail.find_element(By.CSS_SELECTOR, tid("tool-result")).text
    assert detail.find_element(By.CSS_SELECTOR, tid("tool-detail-server")).text == "demo"
    detail.send_keys(Keys.ESCAPE)
    wait(driver).until(lambda d: not d.find_elements(By.CSS_SELECTOR, tid("tool-log-detail")))

    # By server and tool: the successful echo, its arguments as sent.
    goto(driver, node, "tool-logs", f"virtual_key={key['id']}&server=demo&tool=demo-echo")
    assert Select(driver.find_element(By.CSS_SELECTOR, tid("filter-server"))).first_selected_option.text == "demo"
    rows = wait(driver).until(lambda d: d.find_elements(By.CSS_SELECTOR, tid("tool-log-row")))
    assert len(rows) == 1 and "ok" in rows[0].text
    rows[0].find_element(By.CSS_SELECTOR, tid("tool-log-open")).click()
    detail = wait(driver).until(EC.visibility_of_element_located((By.CSS_SELECTOR, tid("tool-log-detail"))))
    assert marker in detail.find_element(By.CSS_SELECTOR, tid("tool-args")).text
    assert marker in detail.find_element(By.CSS_SELECTOR, tid("tool-result")).text


# ---------- XSS ----------


def test_names_that_look_like_html_stay_text(driver, node):
    customer = node.create("customers", name=XSS)
    team = node.create("teams", name=XSS, customer_id=customer["id"])
    key = node.create("keys", name=XSS, team_id=team["id"])
    status, _ = node.chat(key["secret"], model=XSS)
    assert status >= 400
    status, _ = node.chat(key["secret"])
    assert status == 200
    status, _ = node.admin("PUT", "/api/mcp/tool-groups/xss_group", {"tools": ["demo-*"], "description": XSS})
    assert status == 200
    result = node.mcp_call(key["secret"], "demo-echo", {"text": XSS})
    assert result["content"][0]["text"] == XSS
    login(driver, node)

    def no_markup():
        assert not driver.find_elements(By.CSS_SELECTOR, 'img[src="x"]')
        assert driver.execute_script("return document.querySelectorAll('img[src=\"x\"], [onerror]').length") == 0
        assert driver.execute_script("return window.__xss") == []
        with pytest.raises(NoAlertPresentException):
            driver.switch_to.alert.text  # noqa: B018

    for page in PAGES:
        goto(driver, node, page)
        no_markup()

    goto(driver, node, "keys")
    assert row_by_id(driver, "keys-table", key["id"]).find_element(By.CSS_SELECTOR, tid("object-name")).text == XSS
    assert XSS in row_by_id(driver, "keys-table", key["id"]).text  # its team's name
    goto(driver, node, "teams")
    assert row_by_id(driver, "teams-table", team["id"]).find_element(By.CSS_SELECTOR, tid("object-name")).text == XSS
    goto(driver, node, "customers")
    assert row_by_id(driver, "customers-table", customer["id"]).find_element(By.CSS_SELECTOR, tid("object-name")).text == XSS
    goto(driver, node, "mcp")
    assert XSS in driver.find_element(By.CSS_SELECTOR, tid("tool-groups-table")).text

    # The gateway refuses a model id with '<' before routing it (400); the
    # log keeps the model as asked, shown as text; the key's name is in both rows.
    goto(driver, node, "logs", f"virtual_key={key['id']}")
    rows = wait(driver).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, tid("log-row"))) == 2
                              and d.find_elements(By.CSS_SELECTOR, tid("log-row")))
    for r in rows:
        assert XSS in r.text
    refused = next(r for r in rows if int(r.get_attribute("data-status")) >= 400)
    assert refused.find_element(By.CSS_SELECTOR, tid("log-model")).text == XSS
    refused.find_element(By.CSS_SELECTOR, tid("log-open")).click()
    detail = wait(driver).until(EC.visibility_of_element_located((By.CSS_SELECTOR, tid("log-detail"))))
    assert "'<'" in detail.find_element(By.CSS_SELECTOR, tid("detail-error")).text
    assert XSS in detail.find_element(By.CSS_SELECTOR, tid("detail-virtual_key")).text
    no_markup()
    detail.send_keys(Keys.ESCAPE)
    wait(driver).until(lambda d: not d.find_elements(By.CSS_SELECTOR, tid("log-detail")))
    served = next(r for r in driver.find_elements(By.CSS_SELECTOR, tid("log-row")) if r.get_attribute("data-status") == "200")
    served.find_element(By.CSS_SELECTOR, tid("log-open")).click()
    detail = wait(driver).until(EC.visibility_of_element_located((By.CSS_SELECTOR, tid("log-detail"))))
    assert XSS in detail.find_element(By.CSS_SELECTOR, tid("detail-virtual_key")).text
    assert XSS in detail.find_element(By.CSS_SELECTOR, tid("detail-team")).text
    assert XSS in detail.find_element(By.CSS_SELECTOR, tid("detail-customer")).text
    no_markup()
    detail.send_keys(Keys.ESCAPE)
    wait(driver).until(lambda d: not d.find_elements(By.CSS_SELECTOR, tid("log-detail")))

    # Tool arguments and results, as text.
    goto(driver, node, "tool-logs", f"virtual_key={key['id']}")
    wait(driver).until(lambda d: d.find_elements(By.CSS_SELECTOR, tid("tool-log-row")))
    driver.find_element(By.CSS_SELECTOR, f'{tid("tool-log-row")} {tid("tool-log-open")}').click()
    detail = wait(driver).until(EC.visibility_of_element_located((By.CSS_SELECTOR, tid("tool-log-detail"))))
    assert XSS in detail.find_element(By.CSS_SELECTOR, tid("tool-args")).text
    assert XSS in detail.find_element(By.CSS_SELECTOR, tid("tool-result")).text
    assert XSS in detail.find_element(By.CSS_SELECTOR, tid("tool-detail-virtual_key")).text
    no_markup()
    detail.send_keys(Keys.ESCAPE)

    goto(driver, node, "overview", "range=15m")
    wait(driver, 30).until(lambda d: (d.find_element(By.CSS_SELECTOR, tid("overview-refresh")).click() or True)
                           and XSS in d.find_element(By.CSS_SELECTOR, tid("top-keys")).text)
    no_markup()
    # The edit form shows the name as a value, not markup.
    goto(driver, node, "keys")
    row_by_id(driver, "keys-table", key["id"]).find_element(By.CSS_SELECTOR, tid("edit")).click()
    form = wait(driver).until(EC.visibility_of_element_located((By.CSS_SELECTOR, tid("object-form"))))
    assert form.find_element(By.CSS_SELECTOR, tid("field-name")).get_attribute("value") == XSS
    no_markup()


# ---------- CSRF and logout ----------


def test_writes_need_the_csrf_token_and_logout_ends_the_session(driver, node):
    login(driver, node)
    name = unique("csrf")
    assert fetch_status(driver, "POST", "/api/teams", {"name": name}) == 403
    assert fetch_status(driver, "POST", "/api/teams", {"name": name}, csrf="not-the-token") == 403
    teams = node.admin("GET", "/api/teams?limit=1000")[1]["data"]
    assert not any(t["name"] == name for t in teams)
    # Reads need no token; the token from the session makes the same write pass.
    assert fetch_status(driver, "GET", "/api/teams") == 200
    csrf = driver.execute_async_script(
        "var done = arguments[arguments.length - 1];"
        "fetch('/api/session', {credentials: 'same-origin'}).then(function (r) { return r.json(); }).then(function (j) { done(j.csrf); });")
    assert csrf
    assert fetch_status(driver, "POST", "/api/teams", {"name": name}, csrf=csrf) == 201

    driver.find_element(By.CSS_SELECTOR, tid("logout")).click()
    wait(driver).until(EC.visibility_of_element_located((By.CSS_SELECTOR, tid("login-token"))))
    assert not driver.find_element(By.ID, "topbar").is_displayed()
    assert fetch_status(driver, "GET", "/api/keys") == 401
    assert fetch_status(driver, "GET", "/api/session") == 401
    driver.refresh()
    wait(driver).until(EC.visibility_of_element_located((By.CSS_SELECTOR, tid("login-token"))))
    # The admin token still works for the API itself.
    assert node.admin("GET", "/api/keys")[0] == 200


# ---------- every page: no console error, no CSP violation ----------


def test_every_page_renders_without_console_errors_or_csp_violations(driver, node):
    login(driver, node)
    # Before signing in, GET /api/session answers 401: the browser logs that one.
    severe_entries(driver)
    for page in PAGES:
        driver.get(f"{node.url}/#/{page}")
        page_ready(driver, page)
        assert driver.execute_script("return window.__csp") == [], page
        assert not driver.find_elements(By.CSS_SELECTOR, tid("load-error")), page
        assert severe_entries(driver) == [], page
    # The dialogs too.
    goto(driver, node, "keys")
    driver.find_element(By.CSS_SELECTOR, tid("new-object")).click()
    form = wait(driver).until(EC.visibility_of_element_located((By.CSS_SELECTOR, tid("object-form"))))
    form.find_element(By.CSS_SELECTOR, tid("budget-add")).click()
    form.find_element(By.CSS_SELECTOR, tid("rate-add")).click()
    form.find_element(By.CSS_SELECTOR, tid("form-cancel")).click()
    goto(driver, node, "overview", "range=7d")
    goto(driver, node, "overview", "range=24h")
    goto(driver, node, "overview", "range=1h")
    assert driver.execute_script("return window.__csp") == []
    assert severe_entries(driver) == []


def test_empty_states_say_what_to_do(driver, node):
    login(driver, node)
    goto(driver, node, "logs", "model=no-such-model-" + uuid.uuid4().hex[:6])
    assert "No request matches" in driver.find_element(By.CSS_SELECTOR, tid("empty-state")).text
    goto(driver, node, "tool-logs", "tool=no-such-tool")
    assert driver.find_element(By.CSS_SELECTOR, tid("empty-state")).is_displayed()
    goto(driver, node, "cluster")
    alone = driver.find_element(By.CSS_SELECTOR, tid("cluster-alone")).text
    assert "TOLLGATE_CLUSTER_SECRET" in alone
    rows = driver.find_elements(By.CSS_SELECTOR, tid("cluster-member"))
    assert len(rows) == 1 and rows[0].get_attribute("data-self") == "true"
    goto(driver, node, "providers")
    assert "demo" in driver.find_element(By.CSS_SELECTOR, tid("providers-table")).text
    goto(driver, node, "mcp")
    row = wait(driver).until(lambda d: d.find_element(By.CSS_SELECTOR, f'{tid("mcp-server-row")}[data-name="demo"]'))
    assert row.find_element(By.CSS_SELECTOR, tid("code-mode-toggle"))


def test_code_mode_switch(driver, node):
    login(driver, node)
    goto(driver, node, "mcp")
    row = wait(driver).until(lambda d: d.find_element(By.CSS_SELECTOR, f'{tid("mcp-server-row")}[data-name="demo"]'))
    switch = row.find_element(By.CSS_SELECTOR, tid("code-mode-toggle"))
    before = switch.is_selected()
    switch.click()
    wait(driver).until(lambda d: node.admin("GET", "/api/mcp/servers/demo")[1]["code_mode"] == (not before))
    wait(driver).until(lambda d: switch.is_enabled())
    assert switch.is_selected() == (not before)
    switch.send_keys(Keys.SPACE)  # keyboard: back as it was
    wait(driver).until(lambda d: node.admin("GET", "/api/mcp/servers/demo")[1]["code_mode"] == before)


# ---------- screenshots (last: the node has data by now) ----------


def test_screenshots_of_every_page(browser, node, artifacts):
    # Some traffic, so the charts have something to show.
    key = node.create("keys", name=unique("screenshot"))
    for i in range(4):
        node.chat(key["secret"], content=f"screenshot {i}")
    node.chat(key["secret"], model="no-such/model")

    driver = browser()
    login(driver, node)
    driver.execute_script("localStorage.setItem('tollgate-theme', 'light')")
    for page in PAGES:
        driver.get(f"{node.url}/#/{page}")
        driver.refresh()
        page_ready(driver, page)
        assert driver.execute_script("return document.documentElement.dataset.theme") == "light"
        save_page(driver, os.path.join(artifacts, f"{page}.png"))

    # The toggle switches to dark and remembers it.
    goto(driver, node, "overview")
    driver.find_element(By.CSS_SELECTOR, tid("theme-toggle")).click()
    wait(driver).until(lambda d: d.execute_script("return document.documentElement.dataset.theme") == "dark")
    assert storage(driver)["local"].get("tollgate-theme") == "dark"
    bg = driver.execute_script("return getComputedStyle(document.body).backgroundColor")
    assert luminance(bg) < 0.2, bg
    page_ready(driver, "overview")
    save_page(driver, os.path.join(artifacts, "overview-dark.png"))
    for page in ("keys", "logs"):
        goto(driver, node, page)
        save_page(driver, os.path.join(artifacts, f"{page}-dark.png"))

    # With nothing saved, the page follows the system's preference.
    dark = browser(dark=True)
    login(dark, node)
    assert dark.execute_script("return document.documentElement.dataset.theme || ''") == ""
    assert luminance(dark.execute_script("return getComputedStyle(document.body).backgroundColor")) < 0.2
    save_page(dark, os.path.join(artifacts, "overview-system-dark.png"))

    # Narrower laptops: nothing spills out of the window sideways.
    for width in (1024, 800):
        narrow = browser(width=width)
        login(narrow, node)
        for page in ("overview", "logs", "keys", "providers"):
            goto(narrow, node, page)
            overflow = narrow.execute_script("return document.documentElement.scrollWidth - document.documentElement.clientWidth")
            assert overflow <= 0, (page, width, overflow)
            save_page(narrow, os.path.join(artifacts, f"{page}-{width}.png"))

    # The login form, signed out.
    signed_out = browser()
    signed_out.get(node.url + "/")
    wait(signed_out).until(EC.visibility_of_element_located((By.CSS_SELECTOR, tid("login-token"))))
    save_page(signed_out, os.path.join(artifacts, "login.png"))


def luminance(css_color: str) -> float:
    nums = [float(x) for x in re.findall(r"[\d.]+", css_color)[:3]]
    r, g, b = (v / 255 for v in nums)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b



# ---------- named admin tokens ----------


def test_a_viewer_token_logs_in_as_a_viewer_and_its_writes_are_refused_beside_the_form(driver, node):
    status, made = node.admin("POST", "/api/admin-tokens", {"name": "finance", "role": "viewer"})
    assert status == 201, made
    login(driver, node, made["secret"])
    assert driver.find_element(By.CSS_SELECTOR, tid("who")).text == "finance · viewer"
    goto(driver, node, "teams")
    driver.find_element(By.CSS_SELECTOR, tid("new-object")).click()
    form = wait(driver).until(EC.visibility_of_element_located((By.CSS_SELECTOR, tid("object-form"))))
    form.find_element(By.CSS_SELECTOR, tid("field-name")).send_keys(unique("team") + Keys.ENTER)
    err = wait(driver).until(lambda d: d.find_element(By.CSS_SELECTOR, f'{tid("object-form")} {tid("form-error")}').text)
    assert "viewer" in err and "only read" in err, err
    # Revoked, its session ends: the next call shows the login form again.
    status, _ = node.admin("DELETE", f"/api/admin-tokens/{made['id']}")
    assert status == 204
    driver.get(node.url + "/#/keys")
    wait(driver).until(EC.visibility_of_element_located((By.CSS_SELECTOR, tid("login-token"))))
