"""A benchmark's results from its runs: summary rows (accuracy with a bootstrap CI, lift over
no signal with a paired test, regret against the oracle, what answers cost), and
``results.json``, ``results.csv``, ``results.md`` and the figures."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

import persuasion_gym
from persuasion_agents.statistics import bootstrap_ci, paired_p_value


def summarize(runs: list[dict[str, Any]], seed: int = 0) -> list[dict[str, Any]]:
    """Per run: accuracy with a 95% bootstrap CI, lift over no signal (points and %) with a
    paired test, regret against the oracle where the rewards are exact (a table)."""
    rows = []
    for run in runs:
        group = [r for r in runs if r["env"] == run["env"] and r["receiver"] == run["receiver"]]
        rewards = np.asarray(run["rewards"])
        accuracy = float(rewards.mean())
        low, high = bootstrap_ci(rewards, seed=seed)
        row: dict[str, Any] = {
            "env": run["env"], "receiver": run["receiver"], "policy": run["policy"], "n_items": len(rewards),
            "accuracy": accuracy, "ci_low": low, "ci_high": high,
            "receiver_calls": run["receiver_calls"], "tokens": run["tokens"], "cost_usd": run["cost_usd"],
            "reasoning_tokens": run.get("reasoning_tokens", 0), "truncated": run.get("truncated", 0),
        }
        if "trained_on" in run:
            row["trained_on"] = json.dumps(run["trained_on"], sort_keys=True)
        if "advisor_calls" in run:  # the policy's own model (a prompted Advisor, GEPA's reflection)
            row.update({k: run[k] for k in ("advisor_calls", "advisor_tokens", "advisor_cost_usd")})
        baseline = next((r for r in group if r["policy"] == "none"), None)
        if baseline is not None:
            base = np.asarray(baseline["rewards"])
            row["lift_points"] = 100 * (accuracy - base.mean())
            row["lift_percent"] = 100 * (accuracy - base.mean()) / base.mean() if base.mean() > 0 else None
            row["p_vs_none"] = paired_p_value(rewards, base)
        if run.get("oracle_value") is not None:  # exact on a table
            row["regret"] = run["oracle_value"] - accuracy
        rows.append(row)
    return rows


COLUMNS = ["env", "receiver", "policy", "n_items", "accuracy", "ci_low", "ci_high", "lift_points", "lift_percent",
           "p_vs_none", "regret", "truncated", "receiver_calls", "tokens", "reasoning_tokens", "cost_usd", "trained_on",
           "advisor_calls", "advisor_tokens", "advisor_cost_usd"]


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| env | receiver | policy | accuracy [95% CI] | lift (points, absolute) | lift (%, relative) | p vs none "
             "| regret | cut off | calls | tokens | cost ($) |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        thinking = f" ({r['reasoning_tokens']} reasoning)" if r.get("reasoning_tokens") else ""
        lines.append(
            f"| {r['env']} | {r['receiver']} | {r['policy']} | "
            f"{r['accuracy']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}] | "
            f"{_fmt(r.get('lift_points'))} | {_fmt(r.get('lift_percent'))} | {_fmt(r.get('p_vs_none'))} | "
            f"{_fmt(r.get('regret'))} | {_fmt(r.get('truncated'))} | {r['receiver_calls']} | {r['tokens']}{thinking} | "
            f"{r['cost_usd']:.4f} |")
    for r in rows:
        if r.get("trained_on"):
            lines.append(f"\n{r['policy']} on {r['receiver']}: trained against {r['trained_on']}")
        if r.get("advisor_calls") is not None:
            lines.append(f"\n{r['policy']} on {r['receiver']}: its own model made {r['advisor_calls']} calls, "
                         f"{r['advisor_tokens']} tokens, ${r['advisor_cost_usd']:.4f} (not in the columns above)")
    return "\n".join(lines) + "\n"


def write_results(rows: list[dict[str, Any]], runs: list[dict[str, Any]], out: Path) -> None:
    provenance = {f"{r['env']}|{r['receiver']}": r["provenance"] for r in runs}
    (out / "results.json").write_text(json.dumps(
        {"package_version": persuasion_gym.__version__, "rows": rows, "provenance": provenance}, indent=2))
    with open(out / "results.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[*COLUMNS, "provenance"])
        writer.writeheader()
        for row in rows:
            writer.writerow({**{c: row.get(c) for c in COLUMNS},
                             "provenance": json.dumps(provenance[f"{row['env']}|{row['receiver']}"])})
    (out / "results.md").write_text(markdown(rows))
    plot(rows, runs, out)


def plot(rows: list[dict[str, Any]], runs: list[dict[str, Any]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = sorted({(r["env"], r["receiver"]) for r in rows})
    width = max(6, 1.1 * len(rows) / len(groups)) * len(groups)
    fig, axes = plt.subplots(1, len(groups), figsize=(width, 4), squeeze=False)
    for ax, (env, receiver) in zip(axes[0], groups, strict=True):
        group = [r for r in rows if (r["env"], r["receiver"]) == (env, receiver)]
        acc = np.array([r["accuracy"] for r in group])
        err = np.array([[r["accuracy"] - r["ci_low"] for r in group], [r["ci_high"] - r["accuracy"] for r in group]])
        ax.bar(range(len(group)), acc, yerr=err, capsize=4, color="#4c72b0")
        ax.set_xticks(range(len(group)), [r["policy"] for r in group], rotation=30, ha="right")
        ax.set_ylabel("accuracy (95% bootstrap CI)")
        ax.set_title(f"{env}\n{receiver[:60]}", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "accuracy.png", dpi=120)
    plt.close(fig)
    curves = [r for r in runs if r.get("curve")]
    if curves:
        fig, ax = plt.subplots(figsize=(7, 4))
        for run in curves:
            steps, values = zip(*run["curve"], strict=True)
            ax.plot(steps, values, label=f"{run['policy']} ({run['receiver'][:30]})")
        ax.set_xlabel("training episodes")
        ax.set_ylabel("mean reward (moving window)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "learning_curves.png", dpi=120)
        plt.close(fig)
