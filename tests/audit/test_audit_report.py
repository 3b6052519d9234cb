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
    # Offline: one inline script (table sorting), no external scripts, stylesheets, fonts or
    # images.
    assert checker.tags.get("script") == 1 and "function" in html.split("<script>")[1]
    assert "link" not in checker.tags and "img" not in checker.tags
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


LANGS = ["en", "de", "fr", "es", "it", "pt", "nl", "pl", "sv", "fi", "cs", "tr"]


def _rich_report(tmp_path: Path, **options: object) -> tuple[str, object]:
    """12 languages (11 with 43 rows, one with 6), two sources (one with 6 rows), labels with
    misses and false alarms; the report with thresholds and --group-by source."""
    rows = []
    for i in range(480):
        lang = LANGS[i % 11] if i < 474 else "tr"  # "tr" gets the last 6 rows only
        kind = i % 6
        # unsafe rows: BLOCKME (caught), FLAGME (caught), plain (missed); safe: plain or FLAGME
        text = ["BLOCKME hurt", "FLAGME maybe", "quietly harmful", "a kind word", "FLAGME joke",
                "hello there"][kind]  # fmt: skip
        rows.append(
            {
                "id": f"r{i}",
                "text": f"{text} {i}",
                "y": kind in (0, 1, 2),
                "lang": lang,
                "source": "forum" if i < 474 else "tiny-source",
            }
        )
    src = make_input(tmp_path, "jsonl", rows)
    out = tmp_path / "res.parquet"
    fields = FieldSpec(id_field="id", label_field="y", language_field="lang")
    run_audit(AuditConfig(input=src, out=out, fields=fields, policy=FAKE, progress=False))
    policy = load_policy(FAKE)
    path = tmp_path / "report.html"
    stats = write_report(
        path,
        results=out,
        categories=list(policy.resolved_taxonomy.ids),
        meta={"input": str(src)},
        input_path=src,
        input_format=detect_format(src),
        fields=fields,
        policy=policy,
        **options,  # type: ignore[arg-type]
    )
    return path.read_text(encoding="utf-8"), stats


def _section(html: str, heading: str) -> str:
    start = html.index(heading)
    end = html.find("<h3>", start + len(heading))
    end2 = html.find("<h2>", start + len(heading))
    ends = [e for e in (end, end2) if e != -1]
    return html[start : min(ends) if ends else len(html)]


def test_misses_and_false_alarms_are_listed_with_their_details(tmp_path):
    html, stats = _rich_report(tmp_path)
    _parse(html)
    # 480 rows: 80 "quietly harmful" unsafe rows allowed, 80 "FLAGME joke" safe rows flagged
    assert stats.misses_total == 80 and stats.false_alarms_total == 80
    assert stats.confusion[("unsafe", "allow")] == 80
    misses = _section(html, "Misses: unsafe rows the policy allowed (80)")
    assert misses.count("quietly harmful") == 80 and "FLAGME" not in misses
    assert "<th>score</th><th>action</th><th>label</th><th>categories fired</th>" in misses
    alarms = _section(html, "False alarms: safe rows the policy flagged or blocked (80)")
    assert alarms.count("FLAGME joke") == 80 and "<td>hate</td>" in alarms
    assert 'class="sortable"' in misses and 'class="sortable"' in alarms


def test_rates_per_language_and_small_groups_marked(tmp_path):
    html, _ = _rich_report(tmp_path)
    rates = _section(html, "Flag and block rates by language")
    assert all(f"<td>{lang}</td>" in rates for lang in LANGS)
    # "tr" has 6 rows: greyed out and said to be too small; "en" (43 rows) is not
    tr_row = rates.split("<td>tr</td>")[1].split("</tr>")[0]
    assert "too small to trust (n &lt; 30)" in tr_row
    en_row = rates.split("<td>en</td>")[1].split("</tr>")[0]
    assert "too small" not in en_row
    labels = html[html.index("Against labels") :]
    tr_metrics = labels.split("<td>tr</td>")[1].split("</tr>")[0]
    assert "too small to trust" in tr_metrics
    assert '<tr class="small"><td>tr</td>' in labels


def test_pr_by_language_shows_every_language(tmp_path):
    html, _ = _rich_report(tmp_path)
    part = html[html.index("PR by language (12 languages)") :]
    for lang in LANGS:
        assert f"<h3>{lang} <span class='muted'>(n=" in part
    assert "PR curve tr" in part and "too small to trust" in part.split("PR curve tr")[0][-400:]


def test_thresholds_are_drawn_and_top_rows_have_action_label_language(tmp_path):
    html, _ = _rich_report(tmp_path)
    hist = html[html.index("Score distributions") : html.index("Top-scoring rows")]
    assert 'class="threshold"' in hist
    assert ">flag 0.50</text>" in hist and ">block 0.90</text>" in hist
    top = _section(html, "<h3>unsafe</h3>")
    assert "<th>action</th><th>label</th><th>language</th>" in top
    assert "<td>block</td><td>unsafe</td>" in top


def test_group_by_breaks_the_report_down(tmp_path):
    html, stats = _rich_report(tmp_path, group_by="source")
    assert set(stats.groups) == {"forum", "tiny-source"}
    part = html[html.index("By source (2 groups)") :]
    tiny = part.split("<td>tiny-source</td>")[1].split("</tr>")[0]
    assert "too small to trust" in tiny
    forum = part.split("<td>forum</td>")[1].split("</tr>")[0]
    assert "too small" not in forum


def test_group_by_a_missing_column_is_a_clear_error(tmp_path):
    import pytest

    from guardrail.errors import ConfigError

    with pytest.raises(ConfigError, match="--group-by 'nope': no such column.*source"):
        _rich_report(tmp_path, group_by="nope")
