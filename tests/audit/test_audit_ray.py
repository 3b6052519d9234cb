"""`--engine ray`: Ray Data map_batches on a local 2-CPU instance gives the local engine's output."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from guardrail.adapters.audit import AuditConfig, FieldSpec, iter_output, run_audit

from tests.audit.test_audit_readers import make_input
from tests.conftest import POLICIES

ray = pytest.importorskip("ray")

FAKE = POLICIES / "audit_fake.yaml"
# Ray Data's own DataContext warns about its own deprecated defaults when it is created.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray")


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def _rows(path):
    rows = [r for batch in iter_output(path) for r in batch]
    for r in rows:
        r.pop("language_confidence")  # identical in practice, but floats from two processes
    return rows


def test_ray_output_matches_local(tmp_path, local_ray):
    texts = ["a calm sentence here", "BLOCKME right now", "FLAGME perhaps", "", "more words"]
    rows = [{"id": f"k{i}", "text": texts[i % 5]} for i in range(45)]
    src = make_input(tmp_path, "jsonl", rows)
    common = {"input": src, "fields": FieldSpec(id_field="id"), "policy": FAKE, "batch_size": 8}
    local = run_audit(AuditConfig(out=tmp_path / "local.parquet", progress=False, **common))
    remote = run_audit(
        AuditConfig(out=tmp_path / "ray.parquet", engine="ray", ray_workers=1, **common)
    )
    assert remote.engine == "ray" and remote.rows == local.rows == 45
    assert remote.errors == local.errors == 9
    assert _rows(tmp_path / "ray.parquet") == _rows(tmp_path / "local.parquet")


def test_ray_refuses_workers_that_would_starve_the_readers(tmp_path, local_ray):
    from guardrail.errors import ConfigError

    src = make_input(tmp_path, "jsonl", [{"text": "x"}])
    config = AuditConfig(
        input=src, out=tmp_path / "o.jsonl", policy=FAKE, engine="ray", ray_workers=2
    )
    with pytest.raises(ConfigError, match="at most 1"):
        run_audit(config)
