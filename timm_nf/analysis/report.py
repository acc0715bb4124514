"""CSV files and figures of the analysis (matplotlib, Agg backend: no display needed).

Figure layouts follow the papers: the signal propagation plot of Brock, De & Smith (ICLR 2021, Fig. 1) is one panel
per statistic against depth with models overlaid; the residual differences of Shang, Chiu & Sohn (AAAI 2017,
Fig. 2) are Delta against block index. Stage ends are dotted vertical lines; an axis is logarithmic when its
positive values span two decades or more.
"""
import csv
import math
from typing import Any, Dict, List, Optional, Sequence

__all__ = ['write_csv', 'plot_spp', 'plot_delta', 'plot_activations', 'plot_coherence']


def _fmt(v: Any) -> Any:
    if isinstance(v, float):
        return '' if math.isnan(v) else f'{v:.6g}'
    if isinstance(v, bool):
        return 'true' if v else 'false'
    return v


def write_csv(rows: List[Dict[str, Any]], path: str, columns: Sequence[str]) -> None:
    """Write `rows` with `columns` first (in that order), then any other keys; NaN is written as an empty field."""
    extra = [k for r in rows for k in r if k not in columns]
    fields = list(columns) + list(dict.fromkeys(extra))
    with open(path, 'w', newline='') as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for r in rows:
            w.writerow({k: _fmt(r.get(k, '')) for k in fields})


def _pyplot():
    from timm_nf._extras import require
    matplotlib = require('matplotlib', 'plots', 'Plotting the analysis')
    matplotlib.use('Agg')
    return require('matplotlib.pyplot', 'plots', 'Plotting the analysis')


def _by_model(rows: List[Dict[str, Any]]) -> Dict[str, List[Dict[str, Any]]]:
    out: Dict[str, List[Dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(r['model'], []).append(r)
    return out


def _finite_positive(values: List[float]) -> List[float]:
    return [v for v in values if isinstance(v, float) and math.isfinite(v) and v > 0]


def _autoscale(ax, values: List[float]) -> None:
    pos = _finite_positive(values)
    if pos and max(pos) / min(pos) >= 100.0:
        ax.set_yscale('log')


def _stage_ends(rows: List[Dict[str, Any]]) -> List[int]:
    blocks = [r for r in rows if r['index'] > 0]
    return [r['index'] for i, r in enumerate(blocks) if i + 1 == len(blocks) or blocks[i + 1]['stage'] != r['stage']]


def _mark_stage_ends(ax, groups: Dict[str, List[Dict[str, Any]]], colors: Dict[str, Any]) -> None:
    ends = {m: tuple(_stage_ends(rs)) for m, rs in groups.items()}
    shared = len(set(ends.values())) == 1
    for m, e in ends.items():
        for x in e[:-1]:  # the last stage's end is the last block, already the edge of the data
            ax.axvline(x + 0.5, color='0.6' if shared else colors[m], ls=':', lw=1.0, zorder=0)
        if shared:
            break


def _legend(fig, ax, n: int) -> None:
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc='lower center', ncol=min(n, 3), fontsize=9, frameon=False)


def _title(rows: List[Dict[str, Any]]) -> str:
    inp = sorted({str(r.get('input', '')) for r in rows})
    ug = sorted({{True: 'on', False: 'off'}.get(r.get('unit_gains'), '') for r in rows})
    parts = []
    if inp != ['']:
        parts.append('input: ' + ', '.join(inp))
    if ug != ['']:
        parts.append('unit gains: ' + ', '.join(ug))
    return '; '.join(parts)


def plot_spp(rows: List[Dict[str, Any]], path: str, title: Optional[str] = None) -> None:
    """Signal propagation plot: avg squared channel mean, avg channel variance, residual branch variance vs depth.

    For NF models the variance the model tracks (``expected_var``) is drawn dashed in the model's color.
    """
    plt = _pyplot()
    groups = _by_model(rows)
    colors = {m: plt.cm.tab10(i % 10) for i, m in enumerate(groups)}
    panels = [('avg_sq_mean', 'Average squared channel mean'), ('avg_var', 'Average channel variance'),
              ('res_avg_var', 'Residual branch: average channel variance')]
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    for ax, (key, label) in zip(axes, panels):
        values = []
        for m, rs in groups.items():
            xs = [r['index'] for r in rs if isinstance(r.get(key), float) and math.isfinite(r[key])]
            ys = [r[key] for r in rs if isinstance(r.get(key), float) and math.isfinite(r[key])]
            values += ys
            ax.plot(xs, ys, '.-', color=colors[m], lw=1.3, ms=4, label=m)
            if key == 'avg_var':
                ev = [(r['index'], r['expected_var']) for r in rs if math.isfinite(r.get('expected_var', math.nan))]
                if ev:
                    ax.plot(*zip(*ev), '--', color=colors[m], lw=1.0, alpha=0.8)
                    values += [v for _, v in ev]
        _mark_stage_ends(ax, groups, colors)
        _autoscale(ax, values)
        ax.set_title(label, fontsize=11)
        ax.set_xlabel('depth (0 = after the stem, then residual block index)')
        ax.grid(alpha=0.3)
    if any(math.isfinite(r.get('expected_var', math.nan)) for r in rows):
        axes[1].plot([], [], '--', color='0.3', label='expected variance (NF)')
    _legend(fig, axes[1], len(groups) + 1)
    sub = _title(rows)
    fig.suptitle(title or ('Signal propagation' + (f' ({sub})' if sub else '')), fontsize=12)
    fig.tight_layout(rect=(0, 0.1 + 0.04 * ((len(groups) - 1) // 3), 1, 0.96))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_delta(rows: List[Dict[str, Any]], path: str, title: Optional[str] = None) -> None:
    """Residual difference Delta per block (Shang et al. Fig. 2); transition blocks drawn as open markers."""
    plt = _pyplot()
    groups = _by_model(rows)
    colors = {m: plt.cm.tab10(i % 10) for i, m in enumerate(groups)}
    fig, ax = plt.subplots(1, 1, figsize=(11, 5))
    values = []
    for m, rs in groups.items():
        pts = [(r['index'], r['delta'], bool(r['transition'])) for r in rs if math.isfinite(r['delta'])]
        values += [p[1] for p in pts]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], '.-', color=colors[m], lw=1.3, ms=5, label=m)
        tr = [p for p in pts if p[2]]
        if tr:
            ax.plot([p[0] for p in tr], [p[1] for p in tr], 'o', mfc='none', mec=colors[m], ms=8)
    _mark_stage_ends(ax, groups, colors)
    _autoscale(ax, values)
    ax.plot([], [], 'o', mfc='none', mec='0.3', label='transition block (vs. its shortcut)')
    ax.set_xlabel('residual block index')
    ax.set_ylabel(r'$\Delta$ = mean over positions of $\|x_l - x_{l+1}\|_2$')
    ax.grid(alpha=0.3)
    _legend(fig, ax, len(groups) + 1)
    sub = _title(rows)
    fig.suptitle(title or ('Residual differences' + (f' ({sub})' if sub else '')), fontsize=12)
    fig.tight_layout(rect=(0, 0.1 + 0.04 * ((len(groups)) // 3), 1, 0.96))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_activations(rows: List[Dict[str, Any]], path: str, title: Optional[str] = None) -> None:
    """Mean +- std and non-zero ratio of the classifier's input features per model (Shang et al. Table 1)."""
    plt = _pyplot()
    feats = [r for r in rows if r['tensor'] == 'features']
    names = [r['model'] for r in feats]
    colors = [plt.cm.tab10(i % 10) for i in range(len(feats))]
    fig, axes = plt.subplots(1, 2, figsize=(max(8, 2.2 * len(feats) + 4), 4.8))
    xs = list(range(len(feats)))
    means, stds = [r['mean'] for r in feats], [r['std'] for r in feats]
    _autoscale(axes[0], [float(m) for m in means])
    log = axes[0].get_yscale() == 'log'
    # On a log axis the lower error bar stops short of zero (which a log axis cannot show).
    lower = [min(s, 0.9 * m) if log else s for m, s in zip(means, stds)]
    axes[0].bar(xs, means, yerr=[lower, stds], color=colors, capsize=4)
    for x, m, s in zip(xs, means, stds):
        axes[0].annotate(f'{m:.3g} +- {s:.3g}', (x, m), textcoords='offset points', xytext=(4, 3), fontsize=8)
    axes[0].set_title('Mean activation +- std (features entering the classifier)', fontsize=11)
    axes[1].bar(xs, [r['nzr'] for r in feats], color=colors)
    for x, r in zip(xs, feats):
        axes[1].annotate(f"{r['nzr']:.2f}", (x, r['nzr']), textcoords='offset points', xytext=(0, 3), ha='center',
                         fontsize=8)
    axes[1].set_ylim(0, 1.05)
    axes[1].set_title('Non-zero ratio', fontsize=11)
    for ax in axes:
        ax.set_xticks(xs)
        ax.set_xticklabels(names, rotation=20, ha='right', fontsize=8)
        ax.grid(alpha=0.3, axis='y')
    sub = _title(rows)
    fig.suptitle(title or ('Last-layer activations' + (f' ({sub})' if sub else '')), fontsize=12)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_coherence(rows: List[Dict[str, Any]], path: str, title: Optional[str] = None) -> None:
    """Filter coherence mu of each conv (Shang et al. Fig. 3); the Welch bound (lowest possible mu) dotted."""
    plt = _pyplot()
    groups = _by_model(rows)
    colors = {m: plt.cm.tab10(i % 10) for i, m in enumerate(groups)}
    fig, ax = plt.subplots(1, 1, figsize=(11, 5))
    for m, rs in groups.items():
        pts = [(r['index'], r['coherence']) for r in rs if math.isfinite(r['coherence'])]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], '.-', color=colors[m], lw=1.2, ms=5, label=m)
        ax.plot([r['index'] for r in rs], [r['welch_bound'] for r in rs], ':', color=colors[m], lw=1.0)
    ax.plot([], [], ':', color='0.3', label='Welch bound (smallest possible coherence)')
    ax.set_ylim(0, 1.05)
    ax.set_xlabel('convolution index (module order)')
    ax.set_ylabel(r'coherence $\mu = \max_{i \neq j} |W_i \cdot W_j| / (\|W_i\| \|W_j\|)$')
    ax.grid(alpha=0.3)
    _legend(fig, ax, len(groups) + 1)
    fig.suptitle(title or 'Filter coherence', fontsize=12)
    fig.tight_layout(rect=(0, 0.1 + 0.04 * ((len(groups)) // 3), 1, 0.96))
    fig.savefig(path, dpi=110)
    plt.close(fig)

