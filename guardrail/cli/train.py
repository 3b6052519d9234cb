"""``guardrail train``: rebuild the ``embedded`` classifier's head from labelled data."""

from __future__ import annotations

from pathlib import Path

import click

from guardrail.cli.core import fail
from guardrail.errors import GuardrailError


@click.command()
@click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("../shared/data"),
    show_default=True,
    help="Folder of labelled *.jsonl files (see its README).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder to write embedded_head.npz and embedded_head.json into.",
)
@click.option(
    "--cache",
    "cache_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".cache/embeddings"),
    show_default=True,
    help="Embedding cache (texts are embedded once, then read back).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def train(data_dir: Path, out_dir: Path, cache_dir: Path, seed: int, quiet: bool) -> None:
    """Train the embedded classifier's heads on the train split of --data.

    The main head (USE-m3 features), the outside head (multilingual-e5-small features, for
    languages USE-m3 lacks) and the injection head (a prompt's segments read against the whole
    text). The dev split is never used. With the defaults this rebuilds the shipped heads
    (guardrail/classifiers/embedded/data) number for number on a CPU like the one that trained
    them; elsewhere OpenBLAS rounds differently and the main and injection heads come out as
    another draw of the same recipe (see the model card). The embedding cache is written every
    few minutes, so an interrupted first run resumes where it stopped.
    """
    from dataclasses import replace

    from guardrail.classifiers.embedded._train import TrainConfig
    from guardrail.classifiers.embedded._train import train as run_training

    if not data_dir.is_dir():
        fail(f"data folder {data_dir} does not exist")
    try:
        head = run_training(
            data_dir,
            out_dir,
            config=replace(TrainConfig(), seed=seed),
            cache_dir=cache_dir,
            progress=not quiet,
        )
    except GuardrailError as e:
        fail(str(e))
        return
    rows = head.meta.get("train_rows", 0)
    click.echo(
        f"trained the main head ({len(head.heads)} outputs) on {rows} rows, the outside head, "
        f"the injection head and the nearest-neighbour memory; wrote {out_dir}"
    )
