"""The record attribution keeps per served list: what it needs, at a fraction of the size."""

from __future__ import annotations

from shared.served import ServedItem, ServedList, ServedRecord, _within


def _served() -> ServedList:
    items = [
        ServedItem(product=f"P{n}", position=n, score=1.0 / n, reason=f"similar_to:Q{n}")
        for n in range(1, 11)
    ]
    items[6] = items[6].model_copy(update={"propensity": 0.02, "reason": "explore"})
    return ServedList(id="r1", user="u@example.com", ts=1.7e9, version=7, arm="exp/b",
                      degraded=None, items=items)  # fmt: skip


def test_the_record_keeps_order_and_draws_and_is_a_fraction_of_the_list() -> None:
    served = _served()
    record = ServedRecord.of(served)
    assert record.products == [f"P{n}" for n in range(1, 11)] and record.explored == [7]
    assert len(record.model_dump_json()) * 3 < len(served.model_dump_json())
    found = _within("r1", record, "P7", "request_id")
    assert (found.position, found.explored, found.version, found.arm) == (7, True, 7, "exp/b")
    assert _within("r1", record, "P3", "latest_list").position == 3
    missing = _within("r1", record, "P99", "latest_list")
    assert missing.position is None and not missing.explored


def test_records_written_before_as_full_lists_still_parse() -> None:
    served = _served()
    assert ServedRecord.parse(served.model_dump_json()) == ServedRecord.of(served)
    assert ServedRecord.parse(ServedRecord.of(served).model_dump_json().encode()) == (
        ServedRecord.of(served)
    )
