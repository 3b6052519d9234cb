"""The HTML report: parses, is self-contained, has its plots, tables and label metrics."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

from guardrail.adapters.audit import AuditConfig, FieldSpec, run_audit, write_report
from guardrail.adapters.audit.readers import detect_format

from guardrail import load_policy
from tests.audit.test_audit_readers import make_input
from tests.conftest import POLICIES

FAKE = POLICIES / "audit_fake.yaml"
VOID = {"meta", "br", "img", "input", "link", "hr", "rect", "line", "polyline"}


class Checker(HTMLParser):
    """Counts tags and checks that every non-void element is closed in order."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.tags: dict[str, int] = {}
        self.problems: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag, attrs):
        self.tags[tag] = self.tags.get(tag, 0) + 1
        self.attrs.extend(attrs)
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags[tag] = self.tags.get(tag, 0) + 1

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"unexpected </{tag}> (open: {self.stack[-3:]})")
        else:
            self.stack.pop()


def _audit(tmp_path: Path, *, labelled: bool) -> tuple[Path, Path]:
    rows = []
    for i in range(60):
        kind = i % 4
        text = ["a kind word", "BLOCKME hurt", "FLAGME maybe", "secret phrase xyz"][kind]
        rows.append({"id": f"x{i}", "text": f"{text} {i}", "y": kind in (1, 2) or i % 10 == 0})
    rows.append({"id": "empty", "text": "", "y": False})
    src = make_input(tmp_path, "jsonl", rows)
    out = tmp_path / "res.parquet"
    fields = FieldSpec(id_field="id", label_field="y" if labelled else None)
    run_audit(AuditConfig(input=src, out=out, fields=fields, policy=FAKE, progress=False))
    return src, out


def _report(tmp_path: Path, *, labelled: bool, include_text: bool = True) -> str:
    src, out = _audit(tmp_path, labelled=labelled)
    policy = load_policy(FAKE)
    path = tmp_path / "report.html"
    write_report(
        path,
        results=out,
        categories=list(policy.resolved_taxonomy.ids),
        meta={"policy": policy.name, "classifier": "fake", "rows_per_s": 123.4},
        input_path=src,
        input_format=detect_format(src),
        fields=FieldSpec(id_field="id", label_field="y" if labelled else None),
        include_text=include_text,
    )
    return path.read_text(encoding="utf-8")


def _parse(html: str) -> Checker:
    checker = Checker()
    checker.feed(html)
    checker.close()
    assert checker.problems == []
    assert checker.stack == []
    return checker


def test_report_parses_is_self_contained_and_has_plots(tmp_path):
    html = _report(tmp_path, labelled=False)
    checker = _parse(html)
    assert checker.tags["svg"] >= 4  # actions, categories, languages, unsafe histogram, ...
    assert checker.tags["rect"] > 10
    # Offline: no scripts, no external stylesheets, fonts or images.
    assert "script" not in checker.tags and "link" not in checker.tags and "img" not in checker.tags
    lowered = html.lower()
    assert "@import" not in lowered and "url(" not in lowered
    assert not [v for k, v in checker.attrs if k in ("src", "href")]
    for heading in ("By action", "Categories that fired", "By language", "Score distributions"):
        assert heading in html
    assert "BLOCKME hurt" in html  # top-scoring rows show (truncated) text
    assert "123.4" in html and "fake" in html  # run metadata
    assert "Against labels" not in html


def test_report_with_labels_has_metrics_confusion_and_pr_curves(tmp_path):
    html = _report(tmp_path, labelled=True)
    checker = _parse(html)
    assert "Against labels (60 labelled rows)" in html
    assert "Confusion" in html and "PR by language" in html
    assert checker.tags["polyline"] >= 2  # overall and per-language PR curves
    for metric in ("precision", "recall", "F1", "FPR"):
        assert f"<th>{metric}</th>" in html


def test_no_report_text_leaves_texts_out(tmp_path):
    html = _report(tmp_path, labelled=False, include_text=False)
    _parse(html)
    assert "BLOCKME" not in html and "kind word" not in html
    assert "Text omitted" in html
