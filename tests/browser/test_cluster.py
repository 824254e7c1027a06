"""The cluster page of a real 3-node cluster on loopback."""

import os

from selenium.webdriver.common.by import By

from conftest import goto, login, page_ready, save_page, tid, wait


def test_cluster_page_lists_three_alive_members(driver, cluster, artifacts):
    nodes, view = cluster
    first = nodes[0]
    login(driver, first)
    driver.get(first.url + "/#/cluster")
    page_ready(driver, "cluster")

    def members(d):
        return d.execute_script(
            "return [...document.querySelectorAll('[data-testid=\"cluster-member\"]')]"
            ".map(r => ({node: r.dataset.node, state: r.dataset.state, self: r.dataset.self,"
            " shown: r.querySelector('[data-testid=\"member-state\"]').textContent}));")

    rows = wait(driver, 30).until(
        lambda d: (m := members(d)) and len(m) == 3 and all(r["state"] == "alive" for r in m) and m,
        "three alive members on the cluster page")
    ids = {r["node"] for r in rows}
    assert ids == {view["node"], *(m["node"] for m in view["members"])}
    assert [r["self"] for r in rows].count("true") == 1
    assert next(r for r in rows if r["self"] == "true")["node"] == view["node"]
    assert all(r["shown"] == "alive" for r in rows)
    assert driver.find_element(By.CSS_SELECTOR, tid("cluster-alive")).text == "3"
    assert driver.find_element(By.CSS_SELECTOR, tid("cluster-down")).text == "0"
    assert driver.find_element(By.CSS_SELECTOR, tid("node-id")).text == view["node"]
    save_page(driver, os.path.join(artifacts, "cluster-3-nodes.png"))
    # Every member's own id, as each node reports it.
    for n in nodes:
        status, v = n.admin("GET", "/api/cluster")
        assert status == 200 and v["node"] in ids


def test_a_node_without_providers_says_what_to_do(driver, cluster, artifacts):
    """These nodes run `serve` without a provider: the banner warns on every
    page, and the empty pages say how to go on."""
    nodes, _ = cluster
    n = nodes[1]
    status, st = n.admin("GET", "/api/status")
    assert status == 200 and st["providers"] == 0 and st["warnings"], st
    login(driver, n)
    for page in ("overview", "keys", "providers"):
        goto(driver, n, page)
        banner = wait(driver).until(lambda d: d.find_element(By.CSS_SELECTOR, tid("warnings")).is_displayed()
                                    and d.find_elements(By.CSS_SELECTOR, tid("warning")))
        assert [w.text for w in banner] == st["warnings"], page
    save_page(driver, os.path.join(artifacts, "providers-none.png"))
    empty = driver.find_element(By.CSS_SELECTOR, tid("empty-state")).text
    assert "No provider is configured" in empty and "tollgate serve --demo" in empty
    goto(driver, n, "keys")
    save_page(driver, os.path.join(artifacts, "keys-none.png"))
    empty = driver.find_element(By.CSS_SELECTOR, tid("empty-state"))
    assert "Create a key" in empty.text
    empty.find_element(By.CSS_SELECTOR, tid("empty-create")).click()
    wait(driver).until(lambda d: d.find_element(By.CSS_SELECTOR, tid("object-form")).is_displayed())
