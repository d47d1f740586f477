import pandas as pd
from score_synth import judgments_frame, tournament_frame

from oversight.score import (
    elo_slope_table,
    elo_table,
    open_table,
    plots,
    reliability,
    summary_table,
)

PNG = b"\x89PNG\r\n\x1a\n"


def test_plots_written_and_skipped_without_data(tmp_path):
    j = judgments_frame(n_items=4)
    t = tournament_frame({"a": -100.0, "b": 100.0}, n_games=60, n_selfplay_items=5)
    elo, slope = elo_table(t, bootstrap=10), elo_slope_table(t, bootstrap=10)
    made = [
        plots.plot_accuracy(summary_table(j), tmp_path / "acc.png", simulated=True),
        plots.plot_open(open_table(j), tmp_path / "open.png"),
        plots.plot_elo(elo, tmp_path / "elo.png"),
        plots.plot_accuracy_vs_elo(elo, slope, tmp_path / "ave.png"),
        plots.plot_calibration(reliability(j), tmp_path / "cal.png"),
    ]
    for path in made:
        assert path is not None and path.read_bytes().startswith(PNG)
    empty = pd.DataFrame()
    assert plots.plot_accuracy(empty, tmp_path / "x.png") is None
    assert plots.plot_open(open_table(j[j.protocol == "qa"]), tmp_path / "x.png") is None
    assert plots.plot_elo(elo_table(j), tmp_path / "x.png") is None
    assert plots.plot_accuracy_vs_elo(elo_table(j), None, tmp_path / "x.png") is None
    assert plots.plot_calibration(reliability(j.assign(p_correct=None)), tmp_path / "x.png") \
        is None
    assert not (tmp_path / "x.png").exists()


def _capture(monkeypatch) -> list:
    figs = []

    def save(fig, path):  # keep the figure to inspect it; write nothing
        figs.append(fig)
        return path

    monkeypatch.setattr(plots, "_save", save)
    return figs


def _inside(inner, outer) -> bool:
    return inner.x0 < outer.x1 and inner.x1 > outer.x0 and inner.y0 < outer.y1 and inner.y1 > outer.y0


def test_accuracy_figure_is_the_papers(monkeypatch, tmp_path):
    j = judgments_frame(n_items=4, judges=("sim/strong-judge", "sim/weak", "sim/medium"))
    agent = j[j.protocol == "qa"].assign(judge="sim/agent", qa_role="agent")
    s = summary_table(pd.concat([j, agent], ignore_index=True))
    figs = _capture(monkeypatch)
    order = ["sim/weak", "sim/medium", "sim/strong-judge"]  # the spec's order, not alphabetical
    plots.plot_accuracy(s, tmp_path / "a.png", judges=order)
    fig = figs[0]
    axes = fig.axes
    assert [ax.get_title().split(" (")[0] for ax in axes] == ["extractive", "closed"]
    for ax in axes:
        assert [t.get_text() for t in ax.get_xticklabels()] == order  # judges on x, weak to strong
    legend = fig.legends[0]
    labels = [t.get_text() for t in legend.get_texts()]
    # protocols as colours, no open ones; 4 items a cell: bars marked as resting on few items
    assert labels == ["qa", "qa_with_article", "consultancy", "debate", plots.FEW_LABEL]
    assert sorted({t.get_text() for ax in axes for t in ax.texts}) == ["n=4", "n=8"]  # 2 tasks × 4
    fig.canvas.draw()
    box = legend.get_window_extent()
    assert not any(_inside(box, ax.get_window_extent()) for ax in axes)  # no legend over data


def test_bars_on_many_items_are_not_marked(monkeypatch, tmp_path):
    s = summary_table(judgments_frame(n_items=12))
    figs = _capture(monkeypatch)
    plots.plot_accuracy(s, tmp_path / "a.png")
    assert plots.FEW_LABEL not in [t.get_text() for t in figs[0].legends[0].get_texts()]
    assert not any(ax.texts for ax in figs[0].axes)


def test_open_and_elo_figures_keep_legends_off_the_data(monkeypatch, tmp_path):
    j = judgments_frame(n_items=4)
    t = tournament_frame({"a": -100.0, "b": 0.0, "c": 100.0}, n_games=90, n_selfplay_items=5)
    elo, slope = elo_table(t, bootstrap=10), elo_slope_table(t, bootstrap=10)
    figs = _capture(monkeypatch)
    plots.plot_open(open_table(j), tmp_path / "o.png", judges=["sim/weak", "sim/medium"])
    plots.plot_elo(elo, tmp_path / "e.png")
    plots.plot_accuracy_vs_elo(elo, slope, tmp_path / "v.png")
    for fig in figs:
        fig.canvas.draw()
        box = fig.legends[0].get_window_extent()
        assert not any(_inside(box, ax.get_window_extent()) for ax in fig.axes)
    open_labels = [t.get_text() for t in figs[0].legends[0].get_texts()]
    assert "open_debate: agent chose wrongly" in open_labels
    ticks = [t.get_text() for t in figs[0].axes[0].get_xticklabels()]
    assert ticks[0].startswith("sim/weak\nagent wrong on")
    elo_labels = [t.get_text() for t in figs[1].legends[0].get_texts()]
    assert elo_labels == ["aggregate", "arguing the correct answer", "arguing the incorrect answer"]


def test_each_debater_has_one_colour_in_both_elo_figures_in_the_specs_order(monkeypatch, tmp_path):
    from matplotlib.colors import to_hex

    from oversight.score.build import order_debaters
    from oversight.score.elo import elo_slope_table, elo_table

    spec_order = ["sim/c", "sim/a", "sim/b"]  # neither alphabetical nor by rating
    j = tournament_frame({"sim/a": -150.0, "sim/b": 0.0, "sim/c": 150.0}, n_games=150, n_selfplay_items=10)
    elo = order_debaters(elo_table(j, bootstrap=20), spec_order)
    figs = _capture(monkeypatch)
    plots.plot_elo(elo, tmp_path / "e.png")
    plots.plot_accuracy_vs_elo(elo, elo_slope_table(j, bootstrap=20), tmp_path / "s.png")
    ticks = {t.get_text(): to_hex(t.get_color()) for t in figs[0].axes[0].get_yticklabels()}
    assert list(ticks) == spec_order  # bottom to top: the spec's order
    legend = figs[1].legends[0]
    points = {t.get_text(): to_hex(h.lines[0].get_color() if hasattr(h, "lines") else h.get_color())
              for t, h in zip(legend.get_texts(), legend.legend_handles, strict=True)}
    assert list(points) == spec_order and points == ticks and len(set(ticks.values())) == 3
