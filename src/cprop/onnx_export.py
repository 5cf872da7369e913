"""ONNX export: ``net.to_onnx(path)`` and ``cprop export model.npz model.onnx``.

Needs the ``onnx`` package (``pip install "cprop[onnx]"``); running the result needs an ONNX
runtime such as ``onnxruntime``, which cprop itself never imports.

The graph
---------
One input ``"input"`` of shape ``("batch", n_in)`` (the batch dimension is dynamic) and one
output ``"output"`` of shape ``("batch", n_out)``, both in the network's dtype: ``tensor(float)``
for a float32 network, ``tensor(double)`` for a float64 one. The parameters are stored in that
dtype, bit for bit. Each layer ``l`` is ``MatMul(a, W_l)`` then ``Add(., b_l)`` (``W_l`` shaped
``(n_in, n_out)`` as ``net.weights[l]``), then its activation:

=============  ==============================================================================
cprop          ONNX
=============  ==============================================================================
sigmoid        ``Sigmoid``
tanh           ``Tanh``
relu           ``Relu``
leaky_relu     ``LeakyRelu(alpha=negative_slope)`` for float32; for float64 (ONNX Runtime has
               no double LeakyRelu kernel) ``Where(Greater(z, 0), z, Mul(z, negative_slope))``,
               the same function as cprop's ``z if z > 0 else slope * z``
softmax        ``Softmax(axis=-1)``
exp            ``Exp`` (the output of ``loss="poisson"``)
identity       nothing (the ``Add`` is the layer's output)
=============  ==============================================================================

Opset 13 (IR version 7): every ONNX Runtime since 1.6 and most other runtimes load it, and it
has every operator above with the semantics used here. A network trained by ``cprop train``
carries its column names and class labels (``net.dataset``): they go into the model's
``metadata_props`` as ``cprop.dataset`` (JSON), and the model's ``doc_string`` says what the
input columns and outputs are. A model trained with ``--categorical`` takes the one-hot encoded
matrix, as ``forward`` does; its category lists are in ``cprop.dataset`` (``"categories"``, see
:mod:`cprop.io`), and the doc string names each input (``color=red``). The file is written
atomically.
"""

from __future__ import annotations

import json

import numpy as np

from cprop._version import __version__

__all__ = ["to_model", "save_onnx", "OPSET", "INPUT_NAME", "OUTPUT_NAME"]

OPSET = 13
IR_VERSION = 7
INPUT_NAME = "input"
OUTPUT_NAME = "output"


def _import_onnx():
    try:
        import onnx
    except ImportError:
        raise ImportError('ONNX export needs the onnx package: pip install "cprop[onnx]"'
                          ) from None
    return onnx


def to_model(net):
    """The network as an ``onnx.ModelProto`` (checked with ``onnx.checker``)."""
    onnx = _import_onnx()
    from onnx import TensorProto, helper, numpy_helper

    dtype = np.dtype(net.dtype)
    elem = TensorProto.FLOAT if dtype == np.float32 else TensorProto.DOUBLE
    if not np.isfinite(net.params).all():
        raise ValueError("to_onnx: the network's parameters contain NaN or infinity")
    sizes = net.layer_sizes
    nodes, inits = [], []
    a = INPUT_NAME
    last = len(sizes) - 2
    for l, act in enumerate(net.activations):
        W = np.ascontiguousarray(net.weights[l], dtype=dtype)
        b = np.ascontiguousarray(net.biases[l], dtype=dtype)
        inits += [numpy_helper.from_array(W, f"W{l}"), numpy_helper.from_array(b, f"b{l}")]
        nodes.append(helper.make_node("MatMul", [a, f"W{l}"], [f"layer{l}_matmul"],
                                      name=f"layer{l}_matmul"))
        z = OUTPUT_NAME if l == last and act == "identity" else f"layer{l}_z"
        nodes.append(helper.make_node("Add", [f"layer{l}_matmul", f"b{l}"], [z],
                                      name=f"layer{l}_add"))
        out = OUTPUT_NAME if l == last else f"layer{l}_out"
        if act == "identity":
            out = z
        elif act == "leaky_relu" and elem == TensorProto.DOUBLE:
            slope = numpy_helper.from_array(np.array(net.negative_slope, dtype=dtype),
                                            f"slope{l}")
            zero = numpy_helper.from_array(np.array(0, dtype=dtype), f"zero{l}")
            inits += [slope, zero]
            nodes += [
                helper.make_node("Greater", [z, f"zero{l}"], [f"layer{l}_positive"],
                                 name=f"layer{l}_greater"),
                helper.make_node("Mul", [z, f"slope{l}"], [f"layer{l}_scaled"],
                                 name=f"layer{l}_mul"),
                helper.make_node("Where", [f"layer{l}_positive", z, f"layer{l}_scaled"], [out],
                                 name=f"layer{l}_leaky_relu"),
            ]
        else:
            op, attrs = {
                "sigmoid": ("Sigmoid", {}),
                "tanh": ("Tanh", {}),
                "relu": ("Relu", {}),
                "leaky_relu": ("LeakyRelu", {"alpha": float(net.negative_slope)}),
                "softmax": ("Softmax", {"axis": -1}),
                "exp": ("Exp", {}),
            }[act]
            nodes.append(helper.make_node(op, [z], [out], name=f"layer{l}_{act}", **attrs))
        a = out

    graph = helper.make_graph(
        nodes, "cprop_mlp",
        [helper.make_tensor_value_info(INPUT_NAME, elem, ["batch", sizes[0]])],
        [helper.make_tensor_value_info(OUTPUT_NAME, elem, ["batch", sizes[-1]])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              ir_version=IR_VERSION, producer_name="cprop",
                              producer_version=__version__)
    model.doc_string = _doc(net)
    dataset = getattr(net, "dataset", None)
    if dataset is not None:
        helper.set_model_props(model, {"cprop.dataset": json.dumps(dataset)})
    onnx.checker.check_model(model, full_check=True)
    return model


def _doc(net) -> str:
    text = (f"{net!r} exported by cprop {__version__}. Input {INPUT_NAME!r}: "
            f"(batch, {net.layer_sizes[0]}) {net.dtype.name}; output {OUTPUT_NAME!r}: "
            f"(batch, {net.layer_sizes[-1]}), as MLP.forward.")
    dataset = getattr(net, "dataset", None)
    if dataset is not None:
        categories = dataset.get("categories")
        if categories:
            from cprop._tabular import encoded_names

            text += (f" Inputs: {', '.join(encoded_names(dataset['features'], categories))} "
                     f"(one 0/1 input per category of {', '.join(categories)}: one-hot "
                     f"encoded, the category lists are in the metadata 'cprop.dataset').")
        else:
            text += f" Input columns: {', '.join(dataset['features'])}."
        if dataset["task"] == "classify":
            text += (f" Outputs: the probability of each class of {dataset['target']!r}: "
                     f"{', '.join(dataset['classes'])}.")
        else:
            text += f" Output: the predicted {dataset['target']!r}."
    return text


def save_onnx(net, path) -> None:
    """Write ``to_model(net)`` to ``path`` atomically."""
    from cprop._atomic import check_writable_dir, write_bytes

    target = check_writable_dir(path, "path")
    write_bytes(target, to_model(net).SerializeToString())
