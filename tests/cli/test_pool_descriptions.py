"""Each work pool the stack creates says in the Prefect UI what it is for (gpu: why it is Not Ready, the fix)."""

from __future__ import annotations

import json
import urllib.request


def test_the_pools_get_their_descriptions(prefect_harness):
    from prefect.settings import PREFECT_API_URL

    from ferflow.stack import POOL_DESCRIPTIONS, WORK_POOLS, describe_pools

    api = PREFECT_API_URL.value().rstrip("/")
    for pool in WORK_POOLS:
        req = urllib.request.Request(f"{api}/work_pools/", data=json.dumps({"name": pool, "type": "process"}).encode(),
                                     headers={"Content-Type": "application/json"})  # fmt: skip
        try:
            urllib.request.urlopen(req, timeout=30).close()
        except urllib.error.HTTPError as e:  # already there from another test
            assert e.code == 409
    describe_pools(api)
    describe_pools(api)  # idempotent
    for pool in WORK_POOLS:
        with urllib.request.urlopen(f"{api}/work_pools/{pool}", timeout=30) as resp:
            assert json.loads(resp.read())["description"] == POOL_DESCRIPTIONS[pool]
    assert "prefect worker start --pool gpu" in POOL_DESCRIPTIONS["gpu"] and "Not Ready" in POOL_DESCRIPTIONS["gpu"]
