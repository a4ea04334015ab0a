"""docs/benchmarks.md and its plot from the figures `bench/data_path.py` wrote (data_path.json).

    .venv/bin/python bench/data_path_report.py /tmp/dp/data_path.json            # → docs/benchmarks.md + PNG
    .venv/bin/python bench/data_path.py --docs docs/benchmarks.md                  # both in one command

The page holds the machine, the command, the date, one table per size, the ratios against their
goals, and a plot of wall time and peak RSS per stage against the input size.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

STAGES = ("seed", "import", "raw_interactions", "sync_target_partitions", "scored_examples", "anonymized_dataset",
          "training_file")
RSS_GOAL, INCREMENTAL_GOAL = 1.5, 1.2


def stages_of(report: dict) -> list[str]:
    """The stages every size has figures for (an older run has no sync_target_partitions row)."""
    return [s for s in STAGES if all(s in runs for runs in report["sizes"].values())]


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted(int(n) for n in report["sizes"])
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for stage in stages_of(report):
        runs = [report["sizes"][str(n)][stage] for n in sizes]
        left.plot(sizes, [r["seconds"] for r in runs], marker="o", label=stage)
        right.plot(sizes, [r["peak_rss_mib"] for r in runs], marker="o", label=stage)
    for ax, title, unit in ((left, "wall time per stage", "seconds"), (right, "peak RSS per stage", "MiB")):
        ax.set_xscale("log")
        ax.set_xlabel("interactions")
        ax.set_ylabel(unit)
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
    left.set_yscale("log")
    right.set_ylim(bottom=0)
    right.legend(fontsize=8, loc="upper left")
    fig.suptitle(f"Flywheel data path on {report['machine']['cpus']} cores ({report['date']})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markdown(report: dict, image: str) -> str:
    sizes = sorted(int(n) for n in report["sizes"])
    m = report["machine"]
    lines = [
        "# Benchmarks: the data path at scale",
        "",
        "Written by `bench/data_path_report.py` from the figures of one run of `bench/data_path.py`; "
        "regenerate both with the command below. Each stage runs in its own process under `/usr/bin/time -v` "
        "(peak RSS is that stage's own), over every target partition, on a SQLite store and Dagster instance.",
        "",
        f"- **Date:** {report['date']}",
        f"- **Command:** `.venv/bin/python {report['command']}`",
        f"- **Machine:** {m['cpus']} CPUs, {m['platform']}, Python {m['python']}; "
        f"load average at start {m['load_average_at_start']} (a shared machine: wall times carry its noise)",
        f"- **Anonymization processes:** {report['workers']}",
        "- **Data:** `flywheel seed` (the synthetic world of the five seed products, seed 7); the incremental "
        "run adds interactions of seed 8 (new ids).",
        *(f"- **Note:** {note}" for note in report.get("notes", [])),
        "",
        f"![wall time and peak RSS per stage against input size]({image})",
        "",
    ]
    stages = stages_of(report)
    for n in sizes:
        lines += [f"## {n:,} interactions", "", "| stage | items | wall s | items/s | CPU s | peak RSS MiB |",
                  "|---|---:|---:|---:|---:|---:|"]
        for stage in stages:
            r = report["sizes"][str(n)][stage]
            lines.append(f"| {stage} | {r['items']:,} | {r['seconds']:.1f} | {r['items_per_second']:,.1f} | "
                         f"{r['cpu_seconds']:.1f} | {r['peak_rss_mib']:.0f} |")
        lines.append("")
    new = report["incremental"]["seed"]["items"]
    if len(sizes) >= 2:
        mid, top = sizes[-2], sizes[-1]
        lines += [
            f"## Ratios against the goals ({top:,} vs {mid:,}; incremental: +{new:,} into the {top:,} store "
            f"vs the {new:,} alone)", "",
            f"| stage | peak RSS {mid:,} → {top:,} MiB | ratio (goal ≤ {RSS_GOAL}) | incremental s | alone s | "
            f"ratio (goal ≤ {INCREMENTAL_GOAL}) |", "|---|---|---:|---:|---:|---:|",
        ]
        for stage in stages:
            if stage not in report.get("incremental", {}) or stage not in report.get("alone", {}):
                continue
            a, b = report["sizes"][str(mid)][stage], report["sizes"][str(top)][stage]
            inc, alone = report["incremental"][stage], report["alone"][stage]
            rss, ratio = b["peak_rss_mib"] / a["peak_rss_mib"], inc["seconds"] / alone["seconds"]
            lines.append(
                f"| {stage} | {a['peak_rss_mib']:.0f} → {b['peak_rss_mib']:.0f} | {rss:.2f} {'✓' if rss <= RSS_GOAL else '✗'} | "
                f"{inc['seconds']:.1f} | {alone['seconds']:.1f} | {ratio:.2f} {'✓' if ratio <= INCREMENTAL_GOAL else '✗'} |"
            )
        lines.append("")
    return "\n".join(lines) + "\n"


def write(report: dict, docs: Path) -> tuple[Path, Path]:
    image = docs.with_name(docs.stem + "_data_path.png")
    docs.parent.mkdir(parents=True, exist_ok=True)
    plot(report, image)
    docs.write_text(markdown(report, image.name))
    return docs, image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("figures", type=Path, help="data_path.json from bench/data_path.py --out")
    parser.add_argument("--docs", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md")
    args = parser.parse_args()
    for path in write(json.loads(args.figures.read_text()), args.docs):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
