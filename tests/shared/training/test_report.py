from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

from shared.training.report import write_html_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def fake_result() -> dict[str, Any]:
    def scores(base: float, fit: float) -> dict[str, float]:
        return {
            "precision@10": base,
            "recall@10": base * 2,
            "ndcg@10": base * 1.5,
            "map@10": base / 2,
            "hit_rate@10": base * 4,
            "coverage@10": 0.25,
            "fit_seconds": fit,
        }

    return {
        "dataset": "ml-100k <test>",
        "protocol": "temporal leave-last-5",
        "k": 10,
        "n_users": 943,
        "models": {"popularity": scores(0.1012, 0.01), "ease": scores(0.2345, 1.5)},
        "candidate_recall@200": 0.6789,
        "ranker_auc": 0.8123,
        "notes": ["lists are not scalars"],
    }


def curves() -> dict[str, list[float]]:
    return {
        "popularity": [0.05 + 0.001 * k for k in range(50)],
        "ease": [0.1 + 0.002 * k for k in range(50)],
    }


def test_report_is_self_contained_with_values_and_charts(tmp_path: Path) -> None:
    path = tmp_path / "out" / "report.html"
    write_html_report(fake_result(), curves(), path)

    assert path.exists()
    doc = path.read_text(encoding="utf-8")
    # header, escaped
    assert "ml-100k &lt;test&gt;" in doc and "<test>" not in doc
    assert "temporal leave-last-5" in doc and "943" in doc
    # metrics table: every column, both models, formatted values
    for col in ("precision@10", "recall@10", "ndcg@10", "map@10", "hit_rate@10", "coverage@10"):
        assert f"<th>{col}</th>" in doc
    assert "<th>fit_seconds</th>" in doc
    for value in ("0.1012", "0.2345", "0.4690", "0.2500", "1.5000"):
        assert value in doc
    # extra top-level scalars get their own table; non-scalars are left out
    assert "candidate_recall@200" in doc and "0.6789" in doc
    assert "ranker_auc" in doc and "0.8123" in doc
    assert "lists are not scalars" not in doc

    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', doc)
    assert len(images) >= 2
    for data in images:
        assert base64.b64decode(data, validate=True).startswith(PNG_SIGNATURE)

    assert "http://" not in doc and "https://" not in doc
    assert "<script" not in doc.lower()


def test_report_without_curves_or_timings(tmp_path: Path) -> None:
    result = fake_result()
    for scores in result["models"].values():
        del scores["fit_seconds"]
    path = tmp_path / "report.html"
    write_html_report(result, {}, path)
    doc = path.read_text(encoding="utf-8")
    assert "fit_seconds" not in doc
    assert len(re.findall("data:image/png;base64,", doc)) == 1  # the metric bars only
