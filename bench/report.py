"""Turning a run's results into the printed table, the ratio lines, docs/benchmarks.md's tables
and docs/benchmarks.png."""
import json
import re
import runpy

from .paths import PROJECT
from .scenarios import SCENARIOS

LABELS = {name: spec.label for name, spec in SCENARIOS.items()}
# The performance issue's targets (issue 14, item 3): (scenario, least service/reference req/s).
RPS_TARGETS = (("list", 1.05), ("get", 0.95), ("toggle", 0.95), ("create", 0.95))
CPU_TARGET = 1.0  # the service's CPU per request at most the reference's, on every scenario
P99_TARGET, MEMORY_TARGET = 1.5, 1.3
HEAVY_TARGETS = (("heavy_first", "list"), ("heavy_stats", "stats"))  # heavy p50 within 1.5x a 100-task user's
HEAVY_TARGET = 1.5
SCALE_TARGET = 0.2


def gunicorn_settings():
    """The settings both HTTP targets run under (from gunicorn.conf.py)."""
    conf = runpy.run_path(str(PROJECT / "gunicorn.conf.py"))
    return {key: conf[key] for key in ("workers", "worker_class", "threads", "preload_app")
            if key in conf}


def _ratio(a, b):
    return round(a / b, 3) if b else None


def ratios(results):
    """The issue's targets, measured: each as (value, limit, ok)."""
    median = results["median"]
    out = {}

    def service_over_reference(scenario, key):
        return _ratio(median[scenario]["service"][key], median[scenario]["reference"][key])

    targets = dict(RPS_TARGETS)
    for scenario in [s for s, _ in RPS_TARGETS if s in median] + [s for s in median if s not in targets]:
        value = service_over_reference(scenario, "rps")
        least = targets.get(scenario)
        out[f"{scenario} req/s service/reference"] = ((value, f">= {least}", value >= least) if least
                                                      else (value, "(no target)", True))
    for scenario in median:
        value = service_over_reference(scenario, "cpu_us")
        out[f"{scenario} app CPU per request service/reference"] = (value, f"<= {CPU_TARGET}", value <= CPU_TARGET)
    worst = max(((service_over_reference(s, "p99_us"), s) for s in median), default=None)
    if worst:
        out[f"p99 service/reference, worst scenario ({worst[1]})"] = (worst[0], f"<= {P99_TARGET}",
                                                                      worst[0] <= P99_TARGET)
    memory = results.get("memory")
    if memory:
        value = _ratio(memory["service"]["peak_rss_mib"], memory["reference"]["peak_rss_mib"])
        out["peak RSS per worker service/reference"] = (value, f"<= {MEMORY_TARGET}", value <= MEMORY_TARGET)
    for heavy, normal in HEAVY_TARGETS:
        if heavy in median and normal in median:
            value = _ratio(median[heavy]["service"]["p50_us"], median[normal]["service"]["p50_us"])
            out[f"{heavy} / {normal} p50 latency (service)"] = (value, f"<= {HEAVY_TARGET}", value <= HEAVY_TARGET)
    if "heavy_first" in median and "heavy_page500" in median:
        value = _ratio(median["heavy_page500"]["service"]["p50_us"], median["heavy_first"]["service"]["p50_us"])
        out["heavy_page500 / heavy_first p50 latency (service)"] = (value, "(no target)", True)
    return out


def scale_spread(results):
    """The largest p50 latency deviation from the smallest table's, as a fraction."""
    median = results["median"]
    base = median[min(median, key=int)]["p50_us"]
    return max(abs(m["p50_us"] - base) / base for m in median.values())


def _ms(us):
    return f"{us / 1000:.2f}"


def main_table(results):
    lines = ["| scenario | target | req/s | p50 ms | p99 ms | worker CPU µs/req | non-2xx |",
             "|---|---|--:|--:|--:|--:|--:|"]
    for scenario, by_target in results["median"].items():
        for target, m in by_target.items():
            cpu = f"{m['cpu_us']:.0f}" if "cpu_us" in m else "-"
            lines.append(f"| {LABELS[scenario]} | {target} | {m['rps']:.0f} | {_ms(m['p50_us'])} | "
                         f"{_ms(m['p99_us'])} | {cpu} | {m['non_2xx']} |")
    memory = results.get("memory") or {}
    if memory:
        lines += ["", "| worker memory | peak RSS MiB (largest worker) | mean of workers' peaks MiB |",
                  "|---|--:|--:|"]
        lines += [f"| {name} | {m['peak_rss_mib']} | {m['mean_peak_rss_mib']} |" for name, m in memory.items()]
    lines += ["", "| target (issue 14) | measured | limit | |", "|---|--:|--:|---|"]
    lines += [f"| {name} | {value} | {limit} | {'ok' if ok else 'MISSED'} |"
              for name, (value, limit, ok) in results["ratios"].items()]
    return "\n".join(lines)


def scale_table(results):
    median = results["median"]
    base = median[min(median, key=int)]["p50_us"]
    lines = ["| tasks in the table | users | req/s | p50 ms | p99 ms | p50 vs 10k |", "|--:|--:|--:|--:|--:|--:|"]
    for users, m in sorted(median.items(), key=lambda item: int(item[0])):
        lines.append(f"| {int(users) * 100:,} | {int(users):,} | {m['rps']:.0f} | {_ms(m['p50_us'])} | "
                     f"{_ms(m['p99_us'])} | {100 * (m['p50_us'] - base) / base:+.1f}% |")
    return "\n".join(lines)


def render(results):
    """What the run prints: the table, then the ratios as the last lines."""
    header = (f"settings: {json.dumps(results['settings'])}\n")
    if results["kind"] == "scale":
        spread = scale_spread(results)
        return (header + scale_table(results) + "\n\n"
                + f"RATIO list p50 latency spread across 10k/100k/1M tasks: {100 * spread:.1f}% "
                + f"(limit {100 * SCALE_TARGET:.0f}%) {'ok' if spread <= SCALE_TARGET else 'MISSED'}")
    table = main_table(results).split("\n\n| target (issue 14)")[0]
    lines = [header + table, ""]
    lines += [f"RATIO {name:<58} {value!s:>6}  {limit:<11} {'ok' if ok else 'MISSED'}"
              for name, (value, limit, ok) in results["ratios"].items()]
    return "\n".join(lines)


def plot(results, path):
    """req/s and p99 per scenario, service against the references."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    median = results["median"]
    scenarios = list(median)
    targets = ("service", "reference", "pgbench")
    colors = {"service": "#2b6cb0", "reference": "#a0aec0", "pgbench": "#68d391"}
    fig, axes = plt.subplots(1, 2, figsize=(16, 5.2))
    width = 0.27
    for panel, (key, title, scale) in enumerate((("rps", "requests per second (higher is better)", 1),
                                                  ("p99_us", "p99 latency, ms (lower is better)", 1000))):
        ax = axes[panel]
        for i, target in enumerate(targets):
            values = [median[s][target][key] / scale if target in median[s] else 0 for s in scenarios]
            bars = ax.bar([x + (i - 1) * width for x in range(len(scenarios))], values, width,
                          label=target, color=colors[target])
            ax.bar_label(bars, fmt="%.0f" if key == "rps" else "%.1f", fontsize=6, rotation=90, padding=2)
        ax.set_xticks(range(len(scenarios)), [s.replace("_", "\n") for s in scenarios], fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.set_yscale("log")
        ax.set_ylim(top=ax.get_ylim()[1] * 3)  # room for the value labels
        ax.grid(axis="y", alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.suptitle(f"todo service vs thin reference vs pgbench ({results['finished']}, median of "
                 f"{results['settings']['repetitions']} x {results['settings']['duration_s']} s)", fontsize=10)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _replace_section(text, name, body):
    pattern = re.compile(rf"(<!-- {name}:start -->\n).*?(<!-- {name}:end -->)", re.S)
    if not pattern.search(text):
        return text + f"\n<!-- {name}:start -->\n{body}\n<!-- {name}:end -->\n"
    return pattern.sub(lambda m: m.group(1) + body + "\n" + m.group(2), text)


def update_docs(results, docs):
    """Write the latest figures into docs/benchmarks.md (between markers), the raw results
    beside it, and the plot."""
    page = docs / "benchmarks.md"
    text = page.read_text() if page.exists() else "# Benchmarks\n"
    stamp = f"Measured {results['finished']}; settings `{json.dumps(results['settings'])}`.\n\n"
    if results["kind"] == "scale":
        (docs / "benchmarks-scale.json").write_text(json.dumps(results, indent=1) + "\n")
        spread = scale_spread(results)
        body = (stamp + scale_table(results) + f"\n\nLargest p50 deviation from the 10k-task table: "
                f"{100 * spread:.1f}% (limit {100 * SCALE_TARGET:.0f}%).")
        text = _replace_section(text, "scale", body)
    else:
        (docs / "benchmarks.json").write_text(json.dumps(results, indent=1) + "\n")
        plot(results, docs / "benchmarks.png")
        text = _replace_section(text, "results", stamp + main_table(results))
    page.write_text(text)
