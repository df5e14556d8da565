"""TensorBoard views of a suite: HPARAMS rows per trial and a custom-scalars layout per suite.

``tensorboard --logdir runs/<suite>`` already overlays every trial in the SCALARS tab (one run per
``<env>/<agent>/seed<k>`` folder). This module adds:

- :func:`write_hparams`: in a finished trial's own folder, the hparams session (agent, env,
  seed and the scalar fields of its config) and the metrics ``hparams/final_return``,
  ``hparams/sps`` and ``hparams/score`` (graph-learning trials: ``hparams/score`` and
  ``hparams/test_{accuracy,nll,ece,brier}``), so the HPARAMS tab shows one row per trial and
  compares agents by their final metrics (its table, parallel coordinates and scatter views);
- :func:`write_layout`: at the suite's root, a CUSTOM SCALARS layout with one chart per tag
  (episode return, episode length, steps/s, learning rate, losses) in which every trial of every
  agent is a line.

No experiment summary is written: TensorBoard builds the HPARAMS columns from the union of the
trials' hparams, so agents with different config fields (Umbra, stable-baselines3) share a table.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

#: Metrics of each HPARAMS row: result.json key -> scalar tag (every trial has them).
METRICS = {"final_return": "hparams/final_return", "sps": "hparams/sps", "score": "hparams/score"}
#: Further metrics of graph-learning trials (test set), written when the result has them.
LEARNING_METRICS = {"accuracy": "hparams/test_accuracy", "nll": "hparams/test_nll",
                    "ece": "hparams/test_ece", "brier": "hparams/test_brier"}
#: Config fields left out of the HPARAMS columns: where a trial ran, not what it computed.
_SKIPPED_FIELDS = ("device", "checkpoint_every", "env_id", "seed")
#: The custom-scalars layout: category -> chart title -> tags (regular expressions).
LAYOUT: dict[str, dict[str, list[str]]] = {
    "compare agents": {
        "episode return": [r"charts/episode_return"],
        "episode length": [r"charts/episode_length"],
        "steps per second": [r"charts/sps"],
        "learning rate": [r"charts/learning_rate"],
    },
    "compare losses": {
        "policy loss": [r"losses/policy_loss"],
        "value loss": [r"losses/value_loss"],
        "entropy": [r"losses/entropy"],
        "approximate KL": [r"losses/approx_kl"],
    },
    "compare graph learning": {
        "validation accuracy": [r"graph/val_accuracy"],
        "training loss": [r"graph/train_loss"],
        "test NLL": [r"eval/test_nll"],
        "test ECE": [r"eval/test_ece"],
    },
    "compare uncertainty": {
        "value std, visited states": [r"uncertainty/value_std"],
        "value std, states never seen": [r"uncertainty/value_std_unvisited"],
    },
}


def hparams_of(result: dict[str, Any]) -> dict[str, bool | int | float | str]:
    """The HPARAMS columns of a finished trial: ``agent``, ``env``, ``seed``, then every scalar
    field of its config (lists and tables as JSON text; ``None`` as ``"none"``)."""
    columns: dict[str, bool | int | float | str] = {
        "agent": str(result["agent"]), "env": str(result["env_id"]), "seed": int(result["seed"]),
    }
    for key, value in (result.get("config") or {}).items():
        if key in _SKIPPED_FIELDS:
            continue
        if value is None:
            value = "none"
        elif not isinstance(value, (bool, int, float, str)):
            value = json.dumps(value, sort_keys=True, default=str)
        columns[key] = value
    return columns


def write_hparams(logdir: str | Path, result: dict[str, Any]) -> None:
    """Record a finished trial in ``logdir`` for TensorBoard's HPARAMS tab.

    Args:
        logdir: The trial's folder (its TensorBoard run).
        result: The content of its ``result.json``.
    """
    from torch.utils.tensorboard import SummaryWriter
    from torch.utils.tensorboard.summary import hparams

    metrics = {tag: float(result[key]) for key, tag in {**METRICS, **LEARNING_METRICS}.items()
               if result.get(key) is not None}
    _experiment, session_start, session_end = hparams(hparams_of(result), metrics)
    step = int(result.get("steps") or 0)
    with SummaryWriter(str(logdir)) as writer:
        writer.file_writer.add_summary(session_start)
        writer.file_writer.add_summary(session_end)
        for tag, value in metrics.items():
            writer.add_scalar(tag, value, step)


def write_layout(suite_dir: str | Path) -> bool:
    """Write the custom-scalars :data:`LAYOUT` at the suite's root, once.

    Returns:
        ``True`` if written now, ``False`` if the root already held events (a layout written by
        an earlier run of the suite).
    """
    from torch.utils.tensorboard import SummaryWriter

    suite_dir = Path(suite_dir)
    if any(suite_dir.glob("events.out.tfevents.*")):
        return False
    layout = {category: {title: ["Multiline", tags] for title, tags in charts.items()}
              for category, charts in LAYOUT.items()}
    with SummaryWriter(str(suite_dir)) as writer:
        writer.add_custom_scalars(layout)
    return True
