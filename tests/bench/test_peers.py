"""The benchmark code paths of issue 15 run and their JSON has the keys (small counts).

No figure is asserted: speed is what the benchmarks report, not what tests check.
Where iceoryx2 (the `bench` extra) or a built cryptofeed 3 environment (Python >= 3.13,
`python -m bench._cryptofeed3`) is absent, the test that needs it skips with the reason.
"""

from __future__ import annotations

import orjson
import pytest

from bench import _cryptofeed3, _iceoryx, ingest, ring

pytestmark = [pytest.mark.multiprocess, pytest.mark.slow, pytest.mark.timeout(600)]

TINY = {"one": 3_000, "batch": 20_000, "base": 2_000, "iceoryx2": 2_000, "seconds": 0.05}


def test_bench_ring_reports_every_wait_strategy_with_its_cpu_and_the_iceoryx2_figures_or_why_not():
    res = ring.run(TINY)
    orjson.dumps(res)  # what --json prints
    assert res["all_intact_in_order"] is True
    assert res["ring_one_per_call_blocking_records_per_s"] > 0
    waits = res["wait_strategies_10k"]
    assert set(waits) == set(ring.STRATEGIES)
    for fig in waits.values():
        assert {"p50_us", "p99_us", "p999_us", "max_us", "reader_cpu_pct", "meets_target"} <= set(fig)
        assert 0 < fig["reader_cpu_pct"]
    assert res["ring_latency_10k_reader_cpu_pct"] == waits["default"]["reader_cpu_pct"]
    assert isinstance(res["targets"]["p99_lt_50us_at_10k_reader_le_25pct_cpu"], list)
    why = _iceoryx.unavailable()
    if why is not None:
        assert res["iceoryx2"].startswith("unavailable: ")
        pytest.skip(f"iceoryx2 figures not checked: {why}")
    assert not res["iceoryx2"].startswith(("unavailable", "failed")), res["iceoryx2"]
    for key in ("iceoryx2_one_per_call_records_per_s", "iceoryx2_latency_10k_p50_us", "iceoryx2_latency_10k_p99_us",
                "iceoryx2_latency_10k_reader_cpu_pct", "ratio_one_per_call_blocking_vs_iceoryx2",
                "ratio_latency_10k_p50_vs_iceoryx2", "ratio_latency_10k_p99_vs_iceoryx2"):
        assert key in res, key
    assert "one_per_call_blocking_ge_5x_iceoryx2" in res["targets"]


def test_a_python_for_cryptofeed3_is_found_or_the_reason_is_plain():
    try:
        python = _cryptofeed3.find_python()
    except _cryptofeed3.Unavailable as e:
        assert "3.13" in str(e)
        pytest.skip(str(e))
    assert _cryptofeed3._version_of(python) >= (3, 13)


def test_bench_ingest_reports_cryptofeed3_beside_ours_or_why_not(shared_data, monkeypatch, capsys):
    monkeypatch.setenv("MELTICA_CF3_NO_BUILD", "1")  # a test installs nothing from the network
    assert ingest.main(["--json", "--repeat", "1", "--okx-passes", "1", "--data", str(shared_data)]) == 0
    res = orjson.loads(capsys.readouterr().out)
    assert res["binance_ours_msgs_per_s"] > 0 and res["okx_ours_msgs_per_s"] > 0
    cf3 = res["cryptofeed3"]
    if cf3.startswith("unavailable"):
        pytest.skip(f"cryptofeed 3 not run: {cf3}")
    assert cf3.startswith("3.0")
    assert tuple(int(x) for x in res["cryptofeed3_python"].split(".")[:2]) >= (3, 13)
    for key in ("cryptofeed3_binance_msgs_per_s", "cryptofeed3_okx_msgs_per_s",
                "binance_ratio_vs_cryptofeed3", "okx_ratio_vs_cryptofeed3", "meets_target_cryptofeed3"):
        assert key in res, key
    assert res["cryptofeed3_checks"]["okx"]["checksum_validation"] is True
    assert res["cryptofeed3_checks"]["binance"]["checks_binance_update_ids"] is True
