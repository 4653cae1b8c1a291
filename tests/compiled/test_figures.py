
from workbench.compiled import compile_lib
from workbench.compiled.figures import residual_figure, write_residual_figure


def test_one_frame_per_layer_with_labelled_axes(tmp_path):
    compiled = compile_lib("reverse", use_cache=False)
    tokens = list("abca")
    fig = residual_figure(compiled, tokens)
    assert len(fig.data) == 2 * compiled.n_layers + 1
    assert len(fig.layout.sliders[0].steps) == len(fig.data)
    assert list(fig.data[0].x) == compiled.residual_labels
    assert list(fig.data[0].y) == ["0: compiler_bos", "1: a", "2: b", "3: c", "4: a"]
    # the last frame is the final residual: its output dims hold the reversed input
    final = fig.data[-1].z
    for position, expected in zip(range(1, 5), "acba"):
        column = compiled.residual_labels.index(f"{compiled.output_variable}:{expected}")
        assert abs(final[position][column] - 1) < 1e-4
    path = write_residual_figure(compiled, tokens, tmp_path / "sub" / "fig.html")
    html = path.read_text()
    assert "plotly" in html and "after MLP" in html and path.suffix == ".html"
