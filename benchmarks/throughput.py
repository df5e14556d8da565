"""The throughput benchmark: Umbra's PPO against stable-baselines3's, in one process.

``python -m benchmarks.run --suite throughput`` reads ``suites/throughput.toml`` and, per seed,
trains

- the reference: stable-baselines3 PPO with RL-Zoo's hyperparameters on Gymnasium ``CartPole-v1``
  (8 ``DummyVecEnv`` copies, CPU; :mod:`benchmarks.reference`), and
- Umbra: ``agent_config("ppo", "umbra/CartPole-v0")`` (the tuned preset) on the batched
  environment,

each until the mean return of the last 20 finished episodes reaches the threshold (475). For each
it reports steps per second over the whole training and the steps and wall-clock seconds to the
threshold; then the ratios ``umbra sps / sb3 sps`` and ``sb3 time / umbra time`` of the medians
across seeds (a run that never reached the threshold counts as infinitely slow). An optional
``[full]`` run trains Umbra without a stop at a large batch (the GPU number: thousands of copies).

Everything lands in ``<root>/throughput/<timestamp>/`` (Umbra's TensorBoard logs,
``throughput.json``, ``report.md``); the latest ``throughput.json`` and ``report.md`` are also
copied to ``<root>/throughput/``. This is a benchmark, not a test: no assertion, only numbers.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import os
import platform
import shutil
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from agents.ppo import train
from agents.presets import agent_config
from benchmarks import check_cost
from benchmarks.reference import (
    RL_ZOO_CARTPOLE,
    RL_ZOO_CARTPOLE_NOVEL,
    WINDOW,
    train_sb3_ppo,
)
from benchmarks.runner import env_dirname
from benchmarks.suites import ThroughputSuite
from envs.core import resolve_device


def run_throughput(
    suite: ThroughputSuite,
    root: str | Path = "runs",
    *,
    device: str | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the comparison described by ``suite``; write and return its summary.

    Args:
        suite: The settings (``load_suite("throughput")``).
        root: The log root; results go to ``<root>/<suite.name>/<timestamp>/``.
        device: Umbra's device (``auto``, ``cpu``, ``cuda``); ``None`` keeps the preset's.
            The reference runs where ``[sb3] device`` says (the CPU, as RL-Zoo does).
        log: Where progress lines go.

    Returns:
        The content of ``throughput.json``.
    """
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(root) / suite.name / stamp
    out.mkdir(parents=True, exist_ok=False)
    umbra_env, agent = suite.umbra["env"], suite.umbra["agent"]
    overrides = dict(suite.umbra["config"])
    if device is not None:
        overrides["device"] = device
    resolved = resolve_device(agent_config(agent, umbra_env, **overrides).device)

    sb3_runs, umbra_runs = [], []
    umbra_config: dict[str, Any] = {}
    for seed in suite.seeds:
        log(f"[seed {seed}] stable-baselines3 PPO on {suite.sb3.get('env', 'CartPole-v1')} ...")
        sb3_runs.append(train_sb3_ppo(suite.sb3, seed=seed, threshold=suite.threshold))
        log("  " + _line(sb3_runs[-1]))
        config = agent_config(agent, umbra_env, **overrides, seed=seed,
                              stop_at_return=suite.threshold)
        umbra_config = config.to_dict()
        log(f"[seed {seed}] Umbra {agent} on {umbra_env} ({resolved}) ...")
        logdir = out / "umbra" / env_dirname(umbra_env) / agent / f"seed{seed}"
        metrics = train(config, logdir=logdir).metrics
        umbra_runs.append({"library": "umbra", "env_id": umbra_env, "seed": seed, **metrics})
        log("  " + _line(umbra_runs[-1]))

    full = None
    if suite.full:
        prefix = "cuda_" if resolved.type == "cuda" else ""
        config = agent_config(agent, umbra_env, **overrides, seed=suite.seeds[0])
        config = dataclasses.replace(
            config,
            num_envs=suite.full.get(prefix + "num_envs", config.num_envs),
            total_steps=suite.full.get(prefix + "steps", config.total_steps),
        )
        log(f"[full] Umbra {agent} on {umbra_env} ({resolved}), {config.num_envs} copies, "
            f"{config.total_steps:,} steps, no early stop ...")
        logdir = out / "full" / env_dirname(umbra_env) / agent / f"seed{config.seed}"
        metrics = train(config, logdir=logdir).metrics
        full = {"library": "umbra", "env_id": umbra_env, "seed": config.seed,
                "num_envs": config.num_envs, **metrics}
        log("  " + _line(full))

    checks = None
    if suite.checks:
        checks = run_checks(suite.checks, umbra_env, agent, overrides, resolved, log)

    memory = None
    if suite.memory:
        memory = run_memory(suite.memory, suite.seeds, suite.threshold, out, device, log)

    sb3, umbra = _medians(sb3_runs), _medians(umbra_runs)
    summary: dict[str, Any] = {
        "suite": suite.name,
        "source": suite.source,
        "written": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "threshold": suite.threshold,
        "window": WINDOW,
        "machine": _machine(resolved),
        "ratios": {
            "sps": _ratio(umbra["sps"], sb3["sps"]),
            "time_to_threshold": _ratio(sb3["threshold_time_s"], umbra["threshold_time_s"]),
            "steps_to_threshold": _ratio(sb3["threshold_steps"], umbra["threshold_steps"]),
        },
        "sb3": {"settings": {**RL_ZOO_CARTPOLE, **suite.sb3}, "median": sb3, "runs": sb3_runs},
        "umbra": {"device": str(resolved), "config": umbra_config, "median": umbra,
                  "runs": umbra_runs},
        "umbra_full": full,
        "checks": checks,
        "memory": memory,
    }
    summary = _json_safe(summary)
    (out / "throughput.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    (out / "report.md").write_text(markdown(summary), encoding="utf-8")
    for name in ("throughput.json", "report.md"):
        shutil.copyfile(out / name, out.parent / name)
    return summary


# ---------------------------------------------------------------------------------- checks
def run_checks(
    settings: dict[str, Any],
    env_id: str,
    agent: str,
    overrides: dict[str, Any],
    device: torch.device,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """What the default input checks cost PPO: sps with them and with them bypassed.

    Alternates ``repeats`` trainings of each (no logdir, no early stop) after one warm-up and
    compares the medians (:func:`benchmarks.check_cost.compare`).

    Returns:
        ``{"num_envs", "steps", "repeats", "checked_sps", "bypassed_sps", "cost"}``, where
        ``cost = 1 - checked / bypassed``.
    """
    num_envs = settings.get("num_envs", 1_024)
    steps = settings.get("steps", 262_144)
    repeats = settings.get("repeats", 3)
    config = agent_config(agent, env_id, **{**overrides, "num_envs": num_envs,
                                            "total_steps": steps, "device": str(device)})
    log(f"[checks] Umbra {agent} on {env_id} ({device}), {num_envs} copies, {steps:,} steps, "
        f"{repeats} runs with the default input checks and {repeats} with them bypassed ...")
    checked, bypassed = check_cost.compare(lambda: train(config).metrics["sps"], repeats)
    result = {"num_envs": num_envs, "steps": steps, "repeats": repeats,
              "checked_sps": checked, "bypassed_sps": bypassed, "cost": 1 - checked / bypassed}
    log(f"  checked {checked:,.0f} steps/s, bypassed {bypassed:,.0f} steps/s: "
        f"cost {result['cost']:.1%}")
    return result


# ---------------------------------------------------------------------------------- memory
def run_memory(
    settings: dict[str, Any],
    seeds: tuple[int, ...],
    threshold: float,
    out: Path,
    device: str | None,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Memory agents: sb3-contrib RecurrentPPO (RL-Zoo's CartPoleNoVel settings) against Umbra's
    memory agents on ``umbra/MaskedCartPole-v0``, then transformer vs linear attention as the
    window grows.

    Returns:
        ``{"sb3": {median, runs}, "umbra": {agent: {median, runs}}, "ratios": {agent: {sps,
        time_to_threshold}}, "windows": [...]}``; time ratios are None when RecurrentPPO did not
        reach the threshold within its ``max_steps``.
    """
    env_id = settings.get("env", "umbra/MaskedCartPole-v0")
    overrides = dict(settings.get("config", {}))
    if device is not None:
        overrides["device"] = device
    sb3_settings = {**RL_ZOO_CARTPOLE_NOVEL, **settings.get("sb3", {})}
    sb3_runs = []
    for seed in seeds:
        log(f"[memory, seed {seed}] sb3-contrib RecurrentPPO on CartPole without velocities ...")
        sb3_runs.append(train_sb3_ppo(sb3_settings, seed=seed, threshold=threshold))
        log("  " + _line(sb3_runs[-1]))
    sb3 = _medians(sb3_runs)
    umbra: dict[str, Any] = {}
    ratios: dict[str, Any] = {}
    for agent in settings["agents"]:
        runs = []
        for seed in seeds:
            config = agent_config(agent, env_id, **overrides, seed=seed, stop_at_return=threshold)
            log(f"[memory, seed {seed}] Umbra {agent} on {env_id} ...")
            logdir = out / "memory" / env_dirname(env_id) / agent / f"seed{seed}"
            metrics = train(config, logdir=logdir).metrics
            runs.append({"library": "umbra", "agent": agent, "env_id": env_id, "seed": seed,
                         **metrics})
            log("  " + _line(runs[-1]))
        umbra[agent] = {"median": _medians(runs), "runs": runs}
        ratios[agent] = {
            "sps": _ratio(umbra[agent]["median"]["sps"], sb3["sps"]),
            "time_to_threshold": _ratio(sb3["threshold_time_s"],
                                        umbra[agent]["median"]["threshold_time_s"]),
        }
    windows = [
        _window_run(agent, window, env_id, overrides, settings.get("window_steps", 16_384), log)
        for window in settings.get("windows", [])
        for agent in ("transformer", "linear")
    ]
    return {"env_id": env_id, "sb3": {"settings": sb3_settings, "median": sb3, "runs": sb3_runs},
            "umbra": umbra, "ratios": ratios, "windows": windows}


def _window_run(agent: str, window: int, env_id: str, overrides: dict[str, Any], steps: int,
                log: Callable[[str], None]) -> dict[str, Any]:
    """Steps/s and memory of one short training of ``agent`` with attention ``window``.

    ``linear`` has no window (its state is constant in size); it is run once per window anyway,
    so the rows line up. Memory: the bytes of one copy's core state, the peak growth of the
    process's resident memory during the run (:class:`RSSPeak`) and on CUDA the peak allocated
    memory of the run.
    """
    from agents.memory import make_core

    core_kwargs = {"window": window} if agent == "transformer" else {}
    config = agent_config(agent, env_id, **{**overrides, "total_steps": steps})
    config = dataclasses.replace(config, core_kwargs={**config.core_kwargs, **core_kwargs},
                                 stop_at_return=None)
    resolved = resolve_device(config.device)
    if resolved.type == "cuda":
        torch.cuda.reset_peak_memory_stats(resolved)
    with RSSPeak() as rss:
        metrics = train(config).metrics
    core = make_core(config.core, config.hidden_size, config.hidden_size, **config.core_kwargs)
    state_bytes = sum(t.numel() * t.element_size() for t in core.initial_state(1))
    row = {"agent": agent, "window": window, "sps": metrics["sps"],
           "state_bytes_per_copy": state_bytes,
           "cuda_peak_bytes": torch.cuda.max_memory_allocated(resolved)
           if resolved.type == "cuda" else None,
           "rss_peak_growth_bytes": rss.growth}
    growth = "-" if rss.growth is None else f"{rss.growth / 2**20:,.0f} MiB"
    log(f"[window {window}] {agent}: {row['sps']:,.0f} steps/s, state {state_bytes:,} B/copy, "
        f"peak RSS growth {growth}")
    return row


class RSSPeak:
    """The peak growth of this process's resident memory (RSS) inside a ``with`` block.

    A thread samples ``/proc/self/statm`` every ``interval`` seconds; ``growth`` is the largest
    RSS seen minus the RSS at entry (bytes; None where ``/proc`` is missing, e.g. macOS). Torch's
    CPU allocator statistics and ``tracemalloc`` do not see tensor memory, and
    ``ru_maxrss`` cannot be reset between runs, hence the sampling. Memory the allocator kept
    from earlier runs is reused before the RSS grows, so the growth is a lower bound of what a
    run needs beyond what the process already held.
    """

    def __init__(self, interval: float = 0.002):
        self.interval = interval
        self.growth: int | None = None
        self._page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

    def _rss(self) -> int | None:
        try:
            with open("/proc/self/statm", encoding="ascii") as file:
                return int(file.read().split()[1]) * self._page
        except (OSError, ValueError, IndexError):
            return None

    def __enter__(self) -> RSSPeak:
        import threading

        self._start = self._rss()
        self._peak = self._start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        if self._start is not None:
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            rss = self._rss()
            if rss is not None and rss > self._peak:
                self._peak = rss

    def __exit__(self, *exc: object) -> None:
        if self._start is None:
            return
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, self._rss() or 0)
        self.growth = self._peak - self._start


def _memory_markdown(memory: dict[str, Any]) -> list[str]:
    def num(value: float | None, fmt: str = ",.0f", unit: str = "") -> str:
        return "not reached" if value is None else f"{value:{fmt}}{unit}"

    sb3 = memory["sb3"]["median"]
    cap = memory["sb3"]["settings"].get("max_steps")
    lines = [
        "## Memory agents",
        "",
        f"sb3-contrib RecurrentPPO (RL-Zoo CartPoleNoVel settings, stopped after {cap:,} steps "
        f"if it has not reached the threshold) on CartPole without velocities, against Umbra's "
        f"memory agents on {memory['env_id']}. Medians over seeds.",
        "",
        "| agent | steps/s | steps to threshold | time to threshold | reached | steps/s ratio | "
        "time ratio |",
        "|---|---|---|---|---|---|---|",
        f"| RecurrentPPO | {num(sb3['sps'])} | {num(sb3['threshold_steps'])} | "
        f"{num(sb3['threshold_time_s'], '.1f', ' s')} | {sb3['reached']} | | |",
    ]
    for agent, result in memory["umbra"].items():
        m, r = result["median"], memory["ratios"][agent]
        lines.append(
            f"| {agent} | {num(m['sps'])} | {num(m['threshold_steps'])} | "
            f"{num(m['threshold_time_s'], '.1f', ' s')} | {m['reached']} | "
            f"{num(r['sps'], '.0f', 'x')} | {num(r['time_to_threshold'], '.0f', 'x')} |"
        )
    if memory["windows"]:
        lines += ["", "Peak memory: on CUDA `torch.cuda.max_memory_allocated`; on every device the "
                  "peak growth of the process's resident memory during the run (RSS sampled "
                  "every 2 ms from /proc/self/statm: a lower bound, as memory freed by earlier "
                  "runs is reused first).", "",
                  "| agent | window | steps/s | state bytes per copy | CUDA peak bytes | "
                  "peak RSS growth |", "|---|---|---|---|---|---|"]
        for row in memory["windows"]:
            peak, rss = row["cuda_peak_bytes"], row.get("rss_peak_growth_bytes")
            lines.append(f"| {row['agent']} | {row['window']} | {row['sps']:,.0f} | "
                         f"{row['state_bytes_per_copy']:,} | "
                         f"{'-' if peak is None else f'{peak:,}'} | "
                         f"{'-' if rss is None else f'{rss / 2**20:,.1f} MiB'} |")
    return lines + [""]


# ---------------------------------------------------------------------------------- summary
def _medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median sps, and median steps and time to the threshold (never reached counts as inf)."""

    def reached(key: str) -> float:
        return statistics.median(
            r[key] if r.get("threshold_reached") else math.inf for r in runs
        )

    return {
        "sps": statistics.median(r["sps"] for r in runs),
        "threshold_steps": reached("threshold_steps"),
        "threshold_time_s": reached("threshold_time_s"),
        "reached": f"{sum(bool(r.get('threshold_reached')) for r in runs)}/{len(runs)}",
    }


def _ratio(a: float, b: float) -> float | None:
    if not (math.isfinite(a) and math.isfinite(b)) or b == 0:
        return None
    return a / b


def _machine(device: torch.device) -> dict[str, Any]:
    import stable_baselines3

    return {
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "stable_baselines3": stable_baselines3.__version__,
        "umbra_device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
    }


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _line(run: dict[str, Any]) -> str:
    text = f"{run['steps']:,} steps, {run['sps']:,.0f} steps/s, {run['wall_time_s']:.1f} s"
    if "threshold_reached" in run:
        if run["threshold_reached"]:
            text += (f"; return reached after {run['threshold_steps']:,} steps in "
                     f"{run['threshold_time_s']:.1f} s")
        else:
            text += "; return threshold NOT reached"
    return text


def markdown(summary: dict[str, Any]) -> str:
    """``report.md`` of the throughput benchmark (also printed at the end of a run)."""

    def num(value: float | None, fmt: str = ",.0f", unit: str = "") -> str:
        return "not reached" if value is None else f"{value:{fmt}}{unit}"

    sb3, umbra, ratios = summary["sb3"]["median"], summary["umbra"]["median"], summary["ratios"]
    m = summary["machine"]
    lines = [
        "# Throughput: Umbra PPO vs stable-baselines3 PPO",
        "",
        f"Written {summary['written']}. Medians over seeds; time and steps until the mean return "
        f"of the last {summary['window']} finished episodes reaches {summary['threshold']:g}.",
        f"Machine: {m['platform']}, {m['cpu_count']} CPUs ({m['torch_threads']} torch threads), "
        f"torch {m['torch']}, stable-baselines3 {m['stable_baselines3']}; Umbra on "
        f"{m['umbra_device']}" + (f" ({m['gpu']})" if m["gpu"] else "") + ".",
        "",
        "| | steps/s | steps to threshold | time to threshold | reached |",
        "|---|---|---|---|---|",
        f"| stable-baselines3 ({summary['sb3']['settings']['env']}) | {num(sb3['sps'])} | "
        f"{num(sb3['threshold_steps'])} | {num(sb3['threshold_time_s'], '.1f', ' s')} | "
        f"{sb3['reached']} |",
        f"| Umbra ({summary['umbra']['config'].get('env_id')}) | {num(umbra['sps'])} | "
        f"{num(umbra['threshold_steps'])} | {num(umbra['threshold_time_s'], '.1f', ' s')} | "
        f"{umbra['reached']} |",
        f"| **ratio** | **{num(ratios['sps'], '.1f', 'x')}** (Umbra/SB3) | "
        f"{num(ratios['steps_to_threshold'], '.2f', 'x')} (SB3/Umbra) | "
        f"**{num(ratios['time_to_threshold'], '.1f', 'x')}** (SB3/Umbra) | |",
        "",
    ]
    full = summary.get("umbra_full")
    if full:
        lines += [
            f"Full-training speed: Umbra with {full['num_envs']:,} copies, {full['steps']:,} "
            f"steps, no early stop: **{full['sps']:,.0f} steps/s** "
            f"({full['wall_time_s']:.1f} s, final return {num(full['final_return'], '.1f')}).",
            "",
        ]
    checks = summary.get("checks")
    if checks:
        lines += [
            f"Default input checks (actions every step, NaN/inf once per rollout): Umbra with "
            f"{checks['num_envs']:,} copies runs at {checks['checked_sps']:,.0f} steps/s with "
            f"them and {checks['bypassed_sps']:,.0f} with them bypassed (medians of "
            f"{checks['repeats']} alternating runs of {checks['steps']:,} steps): cost "
            f"**{checks['cost']:.1%}**.",
            "",
        ]
    if summary.get("memory"):
        lines += _memory_markdown(summary["memory"])
    c = summary["umbra"]["config"]
    lines += [
        "## Per seed",
        "",
        "| library | seed | steps | steps/s | wall time | steps to threshold | time to threshold |",
        "|---|---|---|---|---|---|---|",
    ]
    for run in summary["sb3"]["runs"] + summary["umbra"]["runs"]:
        lines.append(
            f"| {run['library']} | {run['seed']} | {run['steps']:,} | {run['sps']:,.0f} | "
            f"{run['wall_time_s']:.1f} s | {num(run.get('threshold_steps'))} | "
            f"{num(run.get('threshold_time_s'), '.1f', ' s')} |"
        )
    lines += [
        "",
        f"Umbra config: num_envs {c.get('num_envs')}, num_steps {c.get('num_steps')}, "
        f"minibatches {c.get('num_minibatches')}, epochs {c.get('update_epochs')}, "
        f"learning_rate {c.get('learning_rate')}, device {summary['umbra']['device']} "
        "(full config in throughput.json).",
        "",
    ]
    return "\n".join(lines)
