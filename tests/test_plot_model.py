"""Tests of fncompiler.utils.plot (plot_model / model_to_dot)."""
import re
import shutil
import sys

import pytest

import fncompiler as keras
from fncompiler import layers
from fncompiler.utils import graphviz_render
from fncompiler.utils import plot as plot_utils
from fncompiler.utils import model_to_dot, plot_model

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's `dot` is not installed")


@pytest.fixture
def no_pygraphviz(monkeypatch):
    """plot_model as on a machine without the pygraphviz wheel: only a system `dot` can render."""
    monkeypatch.setattr(graphviz_render, "have_pygraphviz", lambda: False)


def dot_nodes(dot):
    """Names of the layer nodes of a pydot graph, clusters included (not the `node` defaults statement)."""
    names = [n.get_name() for n in dot.get_nodes() if n.get_name() not in ("node", "edge", "graph")]
    for sub in dot.get_subgraphs():
        names += dot_nodes(sub)
    return names


def dot_edges(dot):
    return [(e.get_source(), e.get_destination()) for e in dot.get_edges()]


def labels(dot):
    """{node name: label} over the whole graph."""
    out = {}
    for n in dot.get_nodes():
        if n.get_name() not in ("node", "edge", "graph"):
            out[n.get_name()] = n.get("label")
    for sub in dot.get_subgraphs():
        out.update(labels(sub))
    return out


def node_named(dot, layer_name):
    found = [n for n, lab in labels(dot).items() if f"<b>{layer_name}</b>" in lab]
    assert len(found) == 1, (layer_name, found)
    return found[0]


def mlp():
    inputs = keras.Input(shape=(8,), name="digits")
    x = layers.Dense(8, activation="relu", name="dense_a")(inputs)
    x = layers.Dense(8, activation="relu", name="dense_b")(x)
    return keras.Model(inputs, layers.Dense(4, name="logits")(x), name="mnist_model")


def multi_io():
    title = keras.Input(shape=(8,), name="title")
    body = keras.Input(shape=(8,), name="body")
    tags = keras.Input(shape=(4,), name="tags")
    t = layers.Dense(8, name="title_features")(title)
    b = layers.Dense(8, name="body_features")(body)
    x = layers.concatenate([t, b, tags], name="concat")
    priority = layers.Dense(1, name="priority")(x)
    department = layers.Dense(4, name="department")(x)
    return keras.Model([title, body, tags], [priority, department], name="ticket_classifier")


def residual():
    inputs = keras.Input(shape=(8,), name="img")
    x = layers.Dense(8, activation="relu", name="block_1")(inputs)
    x = layers.Dense(8, activation="relu", name="block_2")(x)
    x = layers.add([x, inputs], name="skip")
    y = layers.Dense(8, name="block_3")(x)
    y = layers.add([y, x], name="skip_2")
    return keras.Model(inputs, layers.Dense(4, name="head")(y), name="toy_resnet")


# -- graph structure ------------------------------------------------------------------------------
def test_multi_input_multi_output_nodes_and_edges():
    model = multi_io()
    dot = model_to_dot(model)
    assert len(dot_nodes(dot)) == len(model.layers) == 8
    edges = dot_edges(dot)
    assert len(edges) == 7
    concat = node_named(dot, "concat")
    into_concat = {s for s, d in edges if d == concat}
    assert into_concat == {node_named(dot, "title_features"), node_named(dot, "body_features"),
                           node_named(dot, "tags")}
    assert {d for s, d in edges if s == concat} == {node_named(dot, "priority"), node_named(dot, "department")}
    source = dot.to_string()
    assert source.count("->") == 7
    assert "(InputLayer)" in source and "(Concatenate)" in source


def test_residual_edges():
    model = residual()
    dot = model_to_dot(model)
    assert len(dot_nodes(dot)) == 7
    edges = set(dot_edges(dot))
    assert len(dot_edges(dot)) == 8
    n = {name: node_named(dot, name) for name in ("img", "block_1", "block_2", "skip", "block_3", "skip_2", "head")}
    assert (n["img"], n["skip"]) in edges          # the skip connection
    assert (n["skip"], n["skip_2"]) in edges
    assert (n["block_3"], n["skip_2"]) in edges
    assert (n["skip_2"], n["head"]) in edges


def test_shared_layer_is_one_node_with_edges_from_each_call():
    shared = layers.Dense(8, name="shared")
    a = keras.Input(shape=(8,), name="a")
    b = keras.Input(shape=(8,), name="b")
    model = keras.Model([a, b], layers.add([shared(a), shared(b)], name="sum"), name="siamese")
    dot = model_to_dot(model, show_shapes=True)
    assert len(dot_nodes(dot)) == 4
    s = node_named(dot, "shared")
    edges = dot_edges(dot)
    assert sorted(src for src, dst in edges if dst == s) == sorted([node_named(dot, "a"), node_named(dot, "b")])
    assert (s, node_named(dot, "sum")) in edges and len(edges) == 3


def test_show_shapes_dtype_activations_and_trainable_in_labels():
    model = mlp()
    model.get_layer("dense_b").trainable = False
    plain = labels(model_to_dot(model))
    assert not any("shape" in lab for lab in plain.values())
    assert any("<b>dense_a</b> (Dense)" in lab for lab in plain.values())

    dot = model_to_dot(model, show_shapes=True, show_dtype=True, show_layer_activations=True,
                       show_trainable=True)
    lab = labels(dot)
    dense_a = lab[node_named(dot, "dense_a")]
    assert "Input shape: <b>(None, 8)</b>" in dense_a
    assert "Output shape: <b>(None, 8)</b>" in dense_a
    assert "Output shape: <b>(None, 4)</b>" in lab[node_named(dot, "logits")]
    assert "Output dtype: <b>float32</b>" in dense_a
    assert "Activation: <b>relu</b>" in dense_a
    assert ">Trainable<" in dense_a
    assert "Non-trainable" in lab[node_named(dot, "dense_b")]
    digits = lab[node_named(dot, "digits")]
    assert "Output shape: <b>(None, 8)</b>" in digits and "Input shape" not in digits
    assert "Trainable" not in digits  # no weights

    names_off = labels(model_to_dot(model, show_layer_names=False))
    assert not any("dense_a" in v for v in names_off.values())
    assert sum("<b>Dense</b>" in v for v in names_off.values()) == 3


def test_multi_input_shapes_are_listed():
    dot = model_to_dot(multi_io(), show_shapes=True)
    concat = labels(dot)[node_named(dot, "concat")]
    assert "Input shape: <b>[(None, 8), (None, 8), (None, 4)]</b>" in concat
    assert "Output shape: <b>(None, 20)</b>" in concat


def test_rankdir_and_dpi():
    source = model_to_dot(mlp(), rankdir="LR", dpi=96).to_string()
    assert "rankdir=LR" in source and "dpi=96" in source
    with pytest.raises(ValueError, match="rankdir"):
        model_to_dot(mlp(), rankdir="sideways")
    with pytest.raises(ValueError, match="Unrecognized"):
        model_to_dot(mlp(), colour=True)


def _nested():
    enc_in = keras.Input(shape=(8,), name="enc_in")
    encoder = keras.Model(enc_in, layers.Dense(4, name="code")(layers.Dense(8, name="enc_h")(enc_in)),
                          name="encoder")
    dec_in = keras.Input(shape=(4,), name="dec_in")
    decoder = keras.Model(dec_in, layers.Dense(8, name="recon")(dec_in), name="decoder")
    img = keras.Input(shape=(8,), name="img")
    return keras.Model(img, decoder(encoder(img)), name="autoencoder")


def test_nested_models_are_single_nodes_or_clusters():
    model = _nested()
    flat = model_to_dot(model)
    assert len(dot_nodes(flat)) == 3 and not flat.get_subgraphs()
    assert "(Functional)" in labels(flat)[node_named(flat, "encoder")]
    assert len(dot_edges(flat)) == 2

    dot = model_to_dot(model, expand_nested=True, show_shapes=True)
    clusters = dot.get_subgraphs()
    assert [c.get_name() for c in clusters] and all(c.get_name().startswith("cluster_") for c in clusters)
    assert sorted(c.get("label").strip('"') for c in clusters) == ["decoder", "encoder"]
    assert "subgraph cluster_" in dot.to_string()
    assert len(dot_nodes(dot)) == 1 + 3 + 2  # img, encoder's 3 layers, decoder's 2
    edges = set(dot_edges(dot))
    n = {name: node_named(dot, name) for name in ("img", "enc_in", "enc_h", "code", "dec_in", "recon")}
    assert edges == {(n["img"], n["enc_in"]), (n["enc_in"], n["enc_h"]), (n["enc_h"], n["code"]),
                     (n["code"], n["dec_in"]), (n["dec_in"], n["recon"])}


def test_expanded_nested_sequential_connects_to_its_first_layer():
    seq = keras.Sequential([keras.Input(shape=(8,)), layers.Dense(8, name="s1"), layers.Dense(4, name="s2")],
                           name="stack")
    x = keras.Input(shape=(8,), name="x")
    model = keras.Model(x, layers.Dense(1, name="out")(seq(x)), name="outer")
    dot = model_to_dot(model, expand_nested=True)
    n = {name: node_named(dot, name) for name in ("x", "s1", "s2", "out")}
    assert set(dot_edges(dot)) == {(n["x"], n["s1"]), (n["s1"], n["s2"]), (n["s2"], n["out"])}


def test_sequential_model():
    model = keras.Sequential([keras.Input(shape=(8,)), layers.Dense(8, name="q1"), layers.Dense(4, name="q2")],
                             name="seq")
    dot = model_to_dot(model)
    assert len(dot_nodes(dot)) == 2  # as Keras 3: Sequential.layers has no InputLayer
    assert dot_edges(dot) == [(node_named(dot, "q1"), node_named(dot, "q2"))]
    unbuilt = keras.Sequential([layers.Dense(3)], name="unbuilt")
    with pytest.raises(ValueError, match="not yet been built"):
        model_to_dot(unbuilt)


# -- rendering ------------------------------------------------------------------------------------
def test_plot_model_png(tmp_path):
    path = tmp_path / "model.png"
    assert plot_model(mlp(), str(path), show_shapes=True) is None
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 1000
    noext = tmp_path / "model_noext"
    plot_model(mlp(), noext)  # a path-like without extension: PNG
    assert noext.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_model_svg_has_one_node_group_per_layer(tmp_path):
    for model in (multi_io(), residual()):
        path = tmp_path / f"{model.name}.svg"
        plot_model(model, str(path), show_shapes=True, rankdir="LR")
        svg = path.read_text()
        assert svg.lstrip().startswith("<?xml") and "<svg" in svg
        assert len(re.findall(r'<g id="node\d+" class="node">', svg)) == len(model.layers)
        assert svg.count("<g id=\"node") == len(model.layers)
        for layer in model.layers:
            assert f">{layer.name}<" in svg


def test_plot_model_pdf_and_expand_nested(tmp_path):
    path = tmp_path / "nested.pdf"
    plot_model(_nested(), str(path), expand_nested=True, show_shapes=True)
    assert path.read_bytes()[:5] == b"%PDF-"
    svg_path = tmp_path / "nested.svg"
    plot_model(_nested(), str(svg_path), expand_nested=True)
    svg = svg_path.read_text()
    assert svg.count('class="cluster"') == 2
    assert svg.count('<g id="node') == 6


def test_plot_model_dot_source_needs_no_graphviz(tmp_path, monkeypatch, no_pygraphviz):
    monkeypatch.setattr(plot_utils.shutil, "which", lambda name, *a, **k: None)
    path = tmp_path / "model.dot"
    assert plot_model(residual(), str(path)) is None
    source = path.read_text()
    assert source.startswith("digraph") and source.count("->") == 8


def test_unknown_plot_kwargs_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="Unrecognized"):
        plot_model(mlp(), str(tmp_path / "m.png"), colour=True)
    with pytest.raises(ValueError, match="layer_range"):
        plot_model(mlp(), str(tmp_path / "m.png"), layer_range=["a", "b"])


# -- missing Graphviz / pydot ---------------------------------------------------------------------
def test_missing_dot_program_raises_clear_oserror(tmp_path, monkeypatch, no_pygraphviz):
    monkeypatch.setattr(plot_utils.shutil, "which", lambda name, *a, **k: None)
    path = tmp_path / "model.png"
    with pytest.raises(plot_utils.GraphvizNotFoundError) as info:
        plot_model(mlp(), str(path))
    err = info.value
    assert isinstance(err, OSError)
    assert "`dot`" in str(err) and "apt-get install graphviz" in str(err) and "pip install pydot" in str(err)
    assert "pygraphviz is not installed" in str(err) and "pip install 'pygraphviz>=2.0'" in str(err)
    assert not path.exists()


def test_dot_missing_from_path_is_reported_too(tmp_path, monkeypatch, no_pygraphviz):
    # shutil.which is fooled but the program cannot be started: pydot's ENOENT error is translated
    monkeypatch.setattr(plot_utils.shutil, "which", lambda name, *a, **k: "/usr/bin/dot")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(OSError, match="apt-get install graphviz") as info:
        plot_model(mlp(), str(tmp_path / "model.svg"))
    assert isinstance(info.value, plot_utils.GraphvizNotFoundError)


def test_real_path_without_graphviz(tmp_path, monkeypatch):
    # no `dot` on PATH: the Graphviz bundled in the pygraphviz wheel renders ...
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    plot_model(mlp(), str(tmp_path / "model.png"))
    assert (tmp_path / "model.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # ... and without pygraphviz either, the error says what to install
    monkeypatch.setitem(sys.modules, "pygraphviz", None)
    assert not graphviz_render.have_pygraphviz()
    with pytest.raises(plot_utils.GraphvizNotFoundError, match="not found on PATH"):
        plot_model(mlp(), str(tmp_path / "model2.png"))
    assert not (tmp_path / "model2.png").exists()


def test_unknown_format_is_graphvizs_error(tmp_path):
    with pytest.raises(RuntimeError, match=r"could not render the model graph as 'nope'.*not recognized"):
        plot_model(mlp(), str(tmp_path / "model.nope"))
    assert not (tmp_path / "model.nope").exists()


@needs_dot
def test_system_dot_renders_without_pygraphviz(tmp_path, no_pygraphviz):
    plot_model(residual(), str(tmp_path / "model.svg"))
    svg = (tmp_path / "model.svg").read_text()
    assert svg.count('<g id="node') == len(residual().layers)


def test_missing_pydot_raises_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "pydot", None)
    with pytest.raises(ImportError, match="pip install pydot"):
        model_to_dot(mlp())


# -- IR graphs (model.graph, compile_model(model).graph(stage)) -------------------------------------
def _bn_residual():
    x = keras.Input(shape=(8,), name="x")
    h = layers.Dense(8, use_bias=False, name="proj")(x)
    h = layers.BatchNormalization(name="bn")(h)
    s = layers.add([x, h], name="sum")
    out = layers.BatchNormalization(name="bn_sum")(layers.Dropout(0.5, name="drop")(s))
    return keras.Model(x, layers.Dense(2, name="head")(out), name="bn_residual")


def test_ir_graph_to_dot_labels_nodes_with_name_op_and_shapes():
    model = _bn_residual()
    g = model.graph
    dot = model_to_dot(g, show_shapes=True, show_dtype=True)
    labs = labels(dot)
    assert len(labs) == g.number_of_nodes() == 7
    by_title = {name: lab for name, lab in labs.items()}
    titles = {re.search(r"<b>(.*?)</b> \((.*?)\)", lab).groups() for lab in by_title.values()}
    assert titles == {("x", "InputLayer"), ("proj", "Dense"), ("bn", "BatchNormalization"), ("sum", "Add"),
                      ("drop", "Dropout"), ("bn_sum", "BatchNormalization"), ("head", "Dense")}
    sum_label = labs[node_named(dot, "sum")]
    assert "Input shape: <b>[(None, 8), (None, 8)]</b>" in sum_label and "Output shape: <b>(None, 8)</b>" in sum_label
    assert "Output dtype: <b>float32</b>" in labs[node_named(dot, "head")]
    assert "Input shape" not in labs[node_named(dot, "x")]
    edges = set(dot_edges(dot))
    n = {name: node_named(dot, name) for name in ("x", "proj", "bn", "sum", "drop", "bn_sum", "head")}
    assert edges == {(n["x"], n["proj"]), (n["proj"], n["bn"]), (n["x"], n["sum"]), (n["bn"], n["sum"]),
                     (n["sum"], n["drop"]), (n["drop"], n["bn_sum"]), (n["bn_sum"], n["head"])}
    source = dot.to_string()
    assert "<b>bn_sum</b> (BatchNormalization)" in source and "Output shape: <b>(None, 2)</b>" in source
    plain = model_to_dot(g)
    assert "Output shape" not in plain.to_string()


def test_compiled_graph_stages_print_and_draw():
    model = _bn_residual()
    compiled = keras.compile_model(model, passes=["shape_inference", "inference_specialization", "fold_batchnorm",
                                                  "constant_folding"],
                                   pass_options={"fold_weight_expressions": True})
    before, after = compiled.graph("input"), compiled.graph("predict")
    assert "drop" in before and "drop" not in after and "proj+bn" in after
    text = keras.ir.dump(after)
    assert "%proj+bn = FoldedBatchNorm(%x) -> float32(None, 8)" in text
    assert "%bn_sum = BatchNormalization(%sum) -> float32(None, 8)  # folded: 6 weight-only expressions" in text
    labs = labels(model_to_dot(after, show_shapes=True))
    assert len(labs) == after.number_of_nodes() == 5
    folded_bn = labs[node_named(model_to_dot(after), "proj+bn")]
    assert "fold_batchnorm: proj, bn" in folded_bn
    assert "folded: 6 weight-only expressions, 2 residuals" in labs[node_named(model_to_dot(after), "bn_sum")]
    assert compiled.graph("inference_specialization").number_of_nodes() == 6
    eval_graph = keras.compile_model(model).graph("eval:inference_specialization")
    assert "drop" not in eval_graph


def test_ir_multi_output_edges_are_labelled_with_the_output_index():
    i = keras.Input(shape=(4,), name="i")
    a, b = keras.ops.split(i, 2, axis=-1)
    model = keras.Model(i, layers.concatenate([b, a], name="cat"))
    dot = model_to_dot(model.graph)
    src = dot.to_string()
    assert 'label=":0"' in src and 'label=":1"' in src and len(dot_edges(dot)) == 3


def test_plot_model_draws_an_ir_graph_to_png_and_svg(tmp_path):
    compiled = keras.compile_model(_bn_residual())
    g = compiled.graph("predict")
    path = tmp_path / "ir.png"
    assert plot_model(g, to_file=str(path), show_shapes=True) is None
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
    svg_path = tmp_path / "ir.svg"
    plot_model(g, to_file=str(svg_path), show_shapes=True)
    svg = svg_path.read_text()
    assert svg.count('<g id="node') == g.number_of_nodes()
    for nid in g.nodes:
        assert f">{nid}<" in svg
    dot_path = tmp_path / "ir.dot"
    plot_model(g, to_file=str(dot_path))
    assert dot_path.read_text().startswith("digraph")


def test_model_to_dot_rejects_other_objects():
    import networkx as nx
    with pytest.raises(TypeError, match="Model or an IR graph"):
        model_to_dot(nx.MultiDiGraph())
    with pytest.raises(TypeError, match="Model or an IR graph"):
        model_to_dot(42)


# -- the guide's three pictures, as a user gets them after `pip install` ----------------------------------
def _png_pixels(data):
    """(width, height, rows of grey values 0..255) of an 8-bit RGB/RGBA/grey PNG: a small independent decoder."""
    import struct
    import zlib
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and interlace == 0 and colour in (0, 2, 4, 6), header
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour]
    raw, stride = zlib.decompress(idat), width * channels
    rows, prev = [], bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b, c = prev[i], prev[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + a) & 255
            elif kind == 2:
                line[i] = (line[i] + b) & 255
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        prev = line
        colours = 1 if colour in (0, 4) else 3
        grey = []
        for x in range(width):
            px = line[x * channels:x * channels + channels]
            value = sum(px[:colours]) // colours
            if channels in (2, 4):  # composite over white
                alpha = px[-1]
                value = (value * alpha + 255 * (255 - alpha)) // 255
            grey.append(value)
        rows.append(grey)
    return width, height, rows


def _guide_first_model():
    inputs = keras.Input(shape=(784,))
    x = layers.Dense(64, activation="relu")(inputs)
    x = layers.Dense(64, activation="relu")(x)
    return keras.Model(inputs=inputs, outputs=layers.Dense(10)(x), name="mnist_model")


def _guide_ticket_model():
    title, body = keras.Input(shape=(None,), name="title"), keras.Input(shape=(None,), name="body")
    tags = keras.Input(shape=(12,), name="tags")
    t = layers.LSTM(128)(layers.Embedding(10000, 64)(title))
    b = layers.LSTM(32)(layers.Embedding(10000, 64)(body))
    x = layers.concatenate([t, b, tags])
    return keras.Model([title, body, tags], {"priority": layers.Dense(1, name="priority")(x),
                                             "department": layers.Dense(4, name="department")(x)},
                       name="ticket_model")


def _guide_toy_resnet():
    inputs = keras.Input(shape=(32, 32, 3), name="img")
    x = layers.Conv2D(32, 3, activation="relu")(inputs)
    x = layers.Conv2D(64, 3, activation="relu")(x)
    block_1 = layers.MaxPooling2D(3)(x)
    x = layers.Conv2D(64, 3, activation="relu", padding="same")(block_1)
    x = layers.Conv2D(64, 3, activation="relu", padding="same")(x)
    block_2 = layers.add([x, block_1])
    x = layers.Conv2D(64, 3, activation="relu", padding="same")(block_2)
    x = layers.Conv2D(64, 3, activation="relu", padding="same")(x)
    block_3 = layers.add([x, block_2])
    x = layers.Conv2D(64, 3, activation="relu")(block_3)
    x = layers.Dense(256, activation="relu")(layers.GlobalAveragePooling2D()(x))
    return keras.Model(inputs, layers.Dense(10)(layers.Dropout(0.5)(x)), name="toy_resnet")


@pytest.mark.parametrize("build, show_shapes", [(_guide_first_model, False), (_guide_first_model, True),
                                                (_guide_ticket_model, True), (_guide_toy_resnet, True)])
def test_guide_pictures_render_without_system_graphviz(build, show_shapes, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no `dot` program: pygraphviz's bundled Graphviz draws
    model = build()
    svg_path, png_path, small_path = tmp_path / "model.svg", tmp_path / "model.png", tmp_path / "small.png"
    plot_model(model, str(svg_path), show_shapes=show_shapes)
    plot_model(model, str(png_path), show_shapes=show_shapes)  # dpi=200, as Keras
    plot_model(model, str(small_path), show_shapes=show_shapes, dpi=48)  # for the pixel checks below
    svg = svg_path.read_text()
    assert svg.count('<g id="node') == len(model.layers)
    for layer in model.layers:
        assert f">{layer.name}<" in svg, layer.name
    if show_shapes:
        assert "Output shape:" in svg
    # the PNG has the drawing's size in points (SVG, at 72 per inch) at the requested dpi
    pt_w, pt_h = (float(v) for v in re.search(r'<svg width="([\d.]+)pt" height="([\d.]+)pt"', svg).groups())
    import struct
    for path, dpi in ((png_path, 200), (small_path, 48)):
        width, height = struct.unpack(">II", path.read_bytes()[16:24])
        scale = dpi / 200  # the SVG's points are at the graph's dpi=200 scale
        assert abs(width - pt_w * scale) <= 0.02 * pt_w * scale + 3, (path.name, width, pt_w)
        assert abs(height - pt_h * scale) <= 0.02 * pt_h * scale + 3, (path.name, height, pt_h)
    width, height, rows = _png_pixels(small_path.read_bytes())
    dark = sum(v < 128 for row in rows for v in row) / (width * height)
    assert 0.03 < dark < 0.6, dark                    # text, boxes and arrows on a white page
    assert min(rows[0]) > 200 and min(rows[-1]) > 200  # a white margin around the drawing
    # each layer's name sits on a black header bar: the PNG has one band of bar rows per rank of the SVG's bars
    # (a band: rows each dark over most of a >= 40 px stretch, gaps of <= 4 rows, e.g. a long white name, joined)
    headers = re.findall(r'<polygon fill="black" stroke="none" points="[\d.]+,(-?[\d.]+)', svg)
    assert len(headers) == len(model.layers)
    ranks = len({round(float(y)) for y in headers})
    bands, last = [], None
    for y, row in enumerate(rows):
        if _bar_row(row):
            if last is not None and y - last <= 5:
                bands[-1][1] = y
            else:
                bands.append([y, y])
            last = y
    bands = [b for b in bands if b[1] - b[0] >= 5]
    assert len(bands) == ranks, (bands, ranks)
    assert ranks == {"mnist_model": 4, "ticket_model": 5, "toy_resnet": 15}[model.name]


def _bar_row(row):
    """Whether a row crosses a black header bar: a stretch >= 40 px wide (boxes side by side are split at
    gaps of >= 8 light pixels) that is mostly dark."""
    segments, start, light = [], None, 0
    for x, v in enumerate(list(row) + [255] * 8):
        if v < 128:
            start = x if start is None else start
            light = 0
        elif start is not None:
            light += 1
            if light >= 8:
                segments.append((start, x - light))
                start, light = None, 0
    return any(b - a >= 40 and sum(v < 128 for v in row[a:b + 1]) > 0.5 * (b - a + 1) for a, b in segments)
