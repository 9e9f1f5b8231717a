"""Keras 3's order: `model.layers`, `operations` (summary rows), `model.weights`, `get_weights`/`set_weights`,
output names and default names, for every guide topology (tests/guide_topologies.py).

EXPECTED was recorded from Keras 3.15.1 by tests/keras_reference/record_order.py (Keras is not imported here).
"""
import io
import re

import numpy as np
import pytest

import fncompiler as keras
from fncompiler import naming

import guide_topologies

# Recorded with Keras 3.15.1 (KERAS_BACKEND=jax): {model: {layers, operations, weights: [path, shape], output_names}}
EXPECTED = {'mlp': {'layers': ['input_layer', 'dense', 'dense_1', 'dense_2'],
         'operations': ['input_layer', 'dense', 'dense_1', 'dense_2'],
         'weights': [['dense/kernel', [784, 64]], ['dense/bias', [64]], ['dense_1/kernel', [64, 64]],
                     ['dense_1/bias', [64]], ['dense_2/kernel', [64, 10]], ['dense_2/bias', [10]]],
         'output_names': ['dense_2']},
 'encoder': {'layers': ['img', 'conv2d', 'conv2d_1', 'max_pooling2d', 'conv2d_2', 'conv2d_3',
                        'global_max_pooling2d'],
             'operations': ['img', 'conv2d', 'conv2d_1', 'max_pooling2d', 'conv2d_2', 'conv2d_3',
                            'global_max_pooling2d'],
             'weights': [['conv2d/kernel', [3, 3, 1, 16]], ['conv2d/bias', [16]],
                         ['conv2d_1/kernel', [3, 3, 16, 32]], ['conv2d_1/bias', [32]],
                         ['conv2d_2/kernel', [3, 3, 32, 32]], ['conv2d_2/bias', [32]],
                         ['conv2d_3/kernel', [3, 3, 32, 16]], ['conv2d_3/bias', [16]]],
             'output_names': ['global_max_pooling2d']},
 'autoencoder': {'layers': ['img', 'conv2d', 'conv2d_1', 'max_pooling2d', 'conv2d_2', 'conv2d_3',
                            'global_max_pooling2d', 'reshape', 'conv2d_transpose', 'conv2d_transpose_1',
                            'up_sampling2d', 'conv2d_transpose_2', 'conv2d_transpose_3'],
                 'operations': ['img', 'conv2d', 'conv2d_1', 'max_pooling2d', 'conv2d_2', 'conv2d_3',
                                'global_max_pooling2d', 'reshape', 'conv2d_transpose', 'conv2d_transpose_1',
                                'up_sampling2d', 'conv2d_transpose_2', 'conv2d_transpose_3'],
                 'weights': [['conv2d/kernel', [3, 3, 1, 16]], ['conv2d/bias', [16]],
                             ['conv2d_1/kernel', [3, 3, 16, 32]], ['conv2d_1/bias', [32]],
                             ['conv2d_2/kernel', [3, 3, 32, 32]], ['conv2d_2/bias', [32]],
                             ['conv2d_3/kernel', [3, 3, 32, 16]], ['conv2d_3/bias', [16]],
                             ['conv2d_transpose/kernel', [3, 3, 16, 1]], ['conv2d_transpose/bias', [16]],
                             ['conv2d_transpose_1/kernel', [3, 3, 32, 16]], ['conv2d_transpose_1/bias', [32]],
                             ['conv2d_transpose_2/kernel', [3, 3, 16, 32]], ['conv2d_transpose_2/bias', [16]],
                             ['conv2d_transpose_3/kernel', [3, 3, 1, 16]], ['conv2d_transpose_3/bias', [1]]],
                 'output_names': ['conv2d_transpose_3']},
 'nested_autoencoder': {'layers': ['img', 'encoder', 'decoder'],
                        'operations': ['img', 'encoder', 'decoder'],
                        'weights': [['conv2d/kernel', [3, 3, 1, 16]], ['conv2d/bias', [16]],
                                    ['conv2d_1/kernel', [3, 3, 16, 32]], ['conv2d_1/bias', [32]],
                                    ['conv2d_2/kernel', [3, 3, 32, 32]], ['conv2d_2/bias', [32]],
                                    ['conv2d_3/kernel', [3, 3, 32, 16]], ['conv2d_3/bias', [16]],
                                    ['conv2d_transpose/kernel', [3, 3, 16, 1]], ['conv2d_transpose/bias', [16]],
                                    ['conv2d_transpose_1/kernel', [3, 3, 32, 16]],
                                    ['conv2d_transpose_1/bias', [32]],
                                    ['conv2d_transpose_2/kernel', [3, 3, 16, 32]],
                                    ['conv2d_transpose_2/bias', [16]], ['conv2d_transpose_3/kernel', [3, 3, 1, 16]],
                                    ['conv2d_transpose_3/bias', [1]]],
                        'output_names': ['decoder']},
 'ensemble': {'layers': ['input_layer_3', 'functional', 'functional_1', 'functional_2', 'average'],
              'operations': ['input_layer_3', 'functional', 'functional_1', 'functional_2', 'average'],
              'weights': [['dense/kernel', [128, 1]], ['dense/bias', [1]], ['dense_1/kernel', [128, 1]],
                          ['dense_1/bias', [1]], ['dense_2/kernel', [128, 1]], ['dense_2/bias', [1]]],
              'output_names': ['average']},
 'ticket': {'layers': ['title', 'body', 'embedding', 'embedding_1', 'lstm', 'lstm_1', 'tags', 'concatenate',
                       'department', 'priority'],
            'operations': ['title', 'body', 'embedding', 'embedding_1', 'lstm', 'lstm_1', 'tags', 'concatenate',
                           'department', 'priority'],
            'weights': [['embedding/embeddings', [10000, 64]], ['embedding_1/embeddings', [10000, 64]],
                        ['lstm/lstm_cell/kernel', [64, 512]], ['lstm/lstm_cell/recurrent_kernel', [128, 512]],
                        ['lstm/lstm_cell/bias', [512]], ['lstm_1/lstm_cell/kernel', [64, 128]],
                        ['lstm_1/lstm_cell/recurrent_kernel', [32, 128]], ['lstm_1/lstm_cell/bias', [128]],
                        ['department/kernel', [172, 4]], ['department/bias', [4]], ['priority/kernel', [172, 1]],
                        ['priority/bias', [1]]],
            'output_names': ['department', 'priority']},
 'toy_resnet': {'layers': ['img', 'conv2d', 'conv2d_1', 'max_pooling2d', 'conv2d_2', 'conv2d_3', 'add', 'conv2d_4',
                           'conv2d_5', 'add_1', 'conv2d_6', 'global_average_pooling2d', 'dense', 'dropout',
                           'dense_1'],
                'operations': ['img', 'conv2d', 'conv2d_1', 'max_pooling2d', 'conv2d_2', 'conv2d_3', 'add',
                               'conv2d_4', 'conv2d_5', 'add_1', 'conv2d_6', 'global_average_pooling2d', 'dense',
                               'dropout', 'dense_1'],
                'weights': [['conv2d/kernel', [3, 3, 3, 32]], ['conv2d/bias', [32]],
                            ['conv2d_1/kernel', [3, 3, 32, 64]], ['conv2d_1/bias', [64]],
                            ['conv2d_2/kernel', [3, 3, 64, 64]], ['conv2d_2/bias', [64]],
                            ['conv2d_3/kernel', [3, 3, 64, 64]], ['conv2d_3/bias', [64]],
                            ['conv2d_4/kernel', [3, 3, 64, 64]], ['conv2d_4/bias', [64]],
                            ['conv2d_5/kernel', [3, 3, 64, 64]], ['conv2d_5/bias', [64]],
                            ['conv2d_6/kernel', [3, 3, 64, 64]], ['conv2d_6/bias', [64]],
                            ['dense/kernel', [64, 256]], ['dense/bias', [256]], ['dense_1/kernel', [256, 10]],
                            ['dense_1/bias', [10]]],
                'output_names': ['dense_1']},
 'shared': {'layers': ['text_a', 'text_b', 'shared_embedding'],
            'operations': ['text_a', 'text_b', 'shared_embedding'],
            'weights': [['shared_embedding/embeddings', [1000, 128]]],
            'output_names': ['shared_embedding', 'shared_embedding']},
 'siamese': {'layers': ['a', 'b', 'embed', 'encode', 'same'],
             'operations': ['a', 'b', 'embed', 'encode', 'subtract', 'absolute', 'same'],
             'weights': [['embed/embeddings', [50, 16]], ['encode/lstm_cell/kernel', [16, 64]],
                         ['encode/lstm_cell/recurrent_kernel', [16, 64]], ['encode/lstm_cell/bias', [64]],
                         ['same/kernel', [16, 1]], ['same/bias', [1]]],
             'output_names': ['same']},
 'unet': {'layers': ['input_layer', 'conv2d', 'batch_normalization', 'activation', 'activation_1',
                     'separable_conv2d', 'batch_normalization_1', 'activation_2', 'separable_conv2d_1',
                     'batch_normalization_2', 'max_pooling2d', 'conv2d_1', 'add', 'activation_3',
                     'separable_conv2d_2', 'batch_normalization_3', 'activation_4', 'separable_conv2d_3',
                     'batch_normalization_4', 'max_pooling2d_1', 'conv2d_2', 'add_1', 'activation_5',
                     'conv2d_transpose', 'batch_normalization_5', 'activation_6', 'conv2d_transpose_1',
                     'batch_normalization_6', 'up_sampling2d_1', 'up_sampling2d', 'conv2d_3', 'add_2',
                     'activation_7', 'conv2d_transpose_2', 'batch_normalization_7', 'activation_8',
                     'conv2d_transpose_3', 'batch_normalization_8', 'up_sampling2d_3', 'up_sampling2d_2',
                     'conv2d_4', 'add_3', 'activation_9', 'conv2d_transpose_4', 'batch_normalization_9',
                     'activation_10', 'conv2d_transpose_5', 'batch_normalization_10', 'up_sampling2d_5',
                     'up_sampling2d_4', 'conv2d_5', 'add_4', 'conv2d_6'],
          'operations': ['input_layer', 'conv2d', 'batch_normalization', 'activation', 'activation_1',
                         'separable_conv2d', 'batch_normalization_1', 'activation_2', 'separable_conv2d_1',
                         'batch_normalization_2', 'max_pooling2d', 'conv2d_1', 'add', 'activation_3',
                         'separable_conv2d_2', 'batch_normalization_3', 'activation_4', 'separable_conv2d_3',
                         'batch_normalization_4', 'max_pooling2d_1', 'conv2d_2', 'add_1', 'activation_5',
                         'conv2d_transpose', 'batch_normalization_5', 'activation_6', 'conv2d_transpose_1',
                         'batch_normalization_6', 'up_sampling2d_1', 'up_sampling2d', 'conv2d_3', 'add_2',
                         'activation_7', 'conv2d_transpose_2', 'batch_normalization_7', 'activation_8',
                         'conv2d_transpose_3', 'batch_normalization_8', 'up_sampling2d_3', 'up_sampling2d_2',
                         'conv2d_4', 'add_3', 'activation_9', 'conv2d_transpose_4', 'batch_normalization_9',
                         'activation_10', 'conv2d_transpose_5', 'batch_normalization_10', 'up_sampling2d_5',
                         'up_sampling2d_4', 'conv2d_5', 'add_4', 'conv2d_6'],
          'weights': [['conv2d/kernel', [3, 3, 3, 8]], ['conv2d/bias', [8]], ['batch_normalization/gamma', [8]],
                      ['batch_normalization/beta', [8]], ['batch_normalization/moving_mean', [8]],
                      ['batch_normalization/moving_variance', [8]],
                      ['separable_conv2d/depthwise_kernel', [3, 3, 8, 1]],
                      ['separable_conv2d/pointwise_kernel', [1, 1, 8, 16]], ['separable_conv2d/bias', [16]],
                      ['batch_normalization_1/gamma', [16]], ['batch_normalization_1/beta', [16]],
                      ['batch_normalization_1/moving_mean', [16]], ['batch_normalization_1/moving_variance', [16]],
                      ['separable_conv2d_1/depthwise_kernel', [3, 3, 16, 1]],
                      ['separable_conv2d_1/pointwise_kernel', [1, 1, 16, 16]], ['separable_conv2d_1/bias', [16]],
                      ['batch_normalization_2/gamma', [16]], ['batch_normalization_2/beta', [16]],
                      ['batch_normalization_2/moving_mean', [16]], ['batch_normalization_2/moving_variance', [16]],
                      ['conv2d_1/kernel', [1, 1, 8, 16]], ['conv2d_1/bias', [16]],
                      ['separable_conv2d_2/depthwise_kernel', [3, 3, 16, 1]],
                      ['separable_conv2d_2/pointwise_kernel', [1, 1, 16, 32]], ['separable_conv2d_2/bias', [32]],
                      ['batch_normalization_3/gamma', [32]], ['batch_normalization_3/beta', [32]],
                      ['batch_normalization_3/moving_mean', [32]], ['batch_normalization_3/moving_variance', [32]],
                      ['separable_conv2d_3/depthwise_kernel', [3, 3, 32, 1]],
                      ['separable_conv2d_3/pointwise_kernel', [1, 1, 32, 32]], ['separable_conv2d_3/bias', [32]],
                      ['batch_normalization_4/gamma', [32]], ['batch_normalization_4/beta', [32]],
                      ['batch_normalization_4/moving_mean', [32]], ['batch_normalization_4/moving_variance', [32]],
                      ['conv2d_2/kernel', [1, 1, 16, 32]], ['conv2d_2/bias', [32]],
                      ['conv2d_transpose/kernel', [3, 3, 32, 32]], ['conv2d_transpose/bias', [32]],
                      ['batch_normalization_5/gamma', [32]], ['batch_normalization_5/beta', [32]],
                      ['batch_normalization_5/moving_mean', [32]], ['batch_normalization_5/moving_variance', [32]],
                      ['conv2d_transpose_1/kernel', [3, 3, 32, 32]], ['conv2d_transpose_1/bias', [32]],
                      ['batch_normalization_6/gamma', [32]], ['batch_normalization_6/beta', [32]],
                      ['batch_normalization_6/moving_mean', [32]], ['batch_normalization_6/moving_variance', [32]],
                      ['conv2d_3/kernel', [1, 1, 32, 32]], ['conv2d_3/bias', [32]],
                      ['conv2d_transpose_2/kernel', [3, 3, 16, 32]], ['conv2d_transpose_2/bias', [16]],
                      ['batch_normalization_7/gamma', [16]], ['batch_normalization_7/beta', [16]],
                      ['batch_normalization_7/moving_mean', [16]], ['batch_normalization_7/moving_variance', [16]],
                      ['conv2d_transpose_3/kernel', [3, 3, 16, 16]], ['conv2d_transpose_3/bias', [16]],
                      ['batch_normalization_8/gamma', [16]], ['batch_normalization_8/beta', [16]],
                      ['batch_normalization_8/moving_mean', [16]], ['batch_normalization_8/moving_variance', [16]],
                      ['conv2d_4/kernel', [1, 1, 32, 16]], ['conv2d_4/bias', [16]],
                      ['conv2d_transpose_4/kernel', [3, 3, 8, 16]], ['conv2d_transpose_4/bias', [8]],
                      ['batch_normalization_9/gamma', [8]], ['batch_normalization_9/beta', [8]],
                      ['batch_normalization_9/moving_mean', [8]], ['batch_normalization_9/moving_variance', [8]],
                      ['conv2d_transpose_5/kernel', [3, 3, 8, 8]], ['conv2d_transpose_5/bias', [8]],
                      ['batch_normalization_10/gamma', [8]], ['batch_normalization_10/beta', [8]],
                      ['batch_normalization_10/moving_mean', [8]], ['batch_normalization_10/moving_variance', [8]],
                      ['conv2d_5/kernel', [1, 1, 16, 8]], ['conv2d_5/bias', [8]], ['conv2d_6/kernel', [3, 3, 8, 3]],
                      ['conv2d_6/bias', [3]]],
          'output_names': ['conv2d_6']},
 'op_names': {'layers': ['input_layer', 'dense', 'dense_1'],
              'operations': ['input_layer', 'dense', 'add', 'subtract', 'multiply', 'true_divide', 'absolute',
                             'get_item', 'dense_1', 'add_1'],
              'weights': [['dense/kernel', [8, 8]], ['dense/bias', [8]], ['dense_1/kernel', [8, 8]],
                          ['dense_1/bias', [8]]],
              'output_names': ['add_1']},
 'mha': {'layers': ['input_layer', 'multi_head_attention', 'dropout_1', 'layer_normalization', 'dense',
                    'dropout_2'],
         'operations': ['input_layer', 'multi_head_attention', 'dropout_1', 'add', 'layer_normalization', 'dense',
                        'dropout_2'],
         'weights': [['multi_head_attention/query/kernel', [8, 2, 4]], ['multi_head_attention/query/bias', [2, 4]],
                     ['multi_head_attention/key/kernel', [8, 2, 4]], ['multi_head_attention/key/bias', [2, 4]],
                     ['multi_head_attention/value/kernel', [8, 2, 4]], ['multi_head_attention/value/bias', [2, 4]],
                     ['multi_head_attention/attention_output/kernel', [2, 4, 8]],
                     ['multi_head_attention/attention_output/bias', [8]], ['layer_normalization/gamma', [8]],
                     ['layer_normalization/beta', [8]], ['dense/kernel', [8, 8]], ['dense/bias', [8]]],
         'output_names': ['dropout_2']},
 'layer_zoo': {'layers': ['input_layer', 'bidirectional', 'bidirectional_1', 'lstm_1', 'gru_1', 'simple_rnn', 'rnn',
                          'attention', 'layer_normalization', 'batch_normalization', 'conv1d', 'separable_conv1d',
                          'depthwise_conv1d', 'global_average_pooling1d', 'dense', 'dropout', 'softmax', 're_lu',
                          'p_re_lu', 'dense_1'],
               'operations': ['input_layer', 'bidirectional', 'bidirectional_1', 'lstm_1', 'gru_1', 'simple_rnn',
                              'rnn', 'attention', 'layer_normalization', 'batch_normalization', 'conv1d',
                              'separable_conv1d', 'depthwise_conv1d', 'global_average_pooling1d', 'dense',
                              'dropout', 'softmax', 're_lu', 'p_re_lu', 'dense_1'],
               'weights': [['bidirectional/forward_lstm/lstm_cell/kernel', [4, 16]],
                           ['bidirectional/forward_lstm/lstm_cell/recurrent_kernel', [4, 16]],
                           ['bidirectional/forward_lstm/lstm_cell/bias', [16]],
                           ['bidirectional/backward_lstm/lstm_cell/kernel', [4, 16]],
                           ['bidirectional/backward_lstm/lstm_cell/recurrent_kernel', [4, 16]],
                           ['bidirectional/backward_lstm/lstm_cell/bias', [16]],
                           ['bidirectional_1/forward_gru/gru_cell/kernel', [8, 12]],
                           ['bidirectional_1/forward_gru/gru_cell/recurrent_kernel', [4, 12]],
                           ['bidirectional_1/forward_gru/gru_cell/bias', [2, 12]],
                           ['bidirectional_1/backward_gru/gru_cell/kernel', [8, 12]],
                           ['bidirectional_1/backward_gru/gru_cell/recurrent_kernel', [4, 12]],
                           ['bidirectional_1/backward_gru/gru_cell/bias', [2, 12]],
                           ['lstm_1/lstm_cell/kernel', [8, 16]], ['lstm_1/lstm_cell/recurrent_kernel', [4, 16]],
                           ['lstm_1/lstm_cell/bias', [16]], ['gru_1/gru_cell/kernel', [4, 12]],
                           ['gru_1/gru_cell/recurrent_kernel', [4, 12]], ['gru_1/gru_cell/bias', [2, 12]],
                           ['simple_rnn/simple_rnn_cell/kernel', [4, 4]],
                           ['simple_rnn/simple_rnn_cell/recurrent_kernel', [4, 4]],
                           ['simple_rnn/simple_rnn_cell/bias', [4]], ['rnn/lstm_cell/kernel', [4, 16]],
                           ['rnn/lstm_cell/recurrent_kernel', [4, 16]], ['rnn/lstm_cell/bias', [16]],
                           ['layer_normalization/gamma', [4]], ['layer_normalization/beta', [4]],
                           ['batch_normalization/gamma', [4]], ['batch_normalization/beta', [4]],
                           ['batch_normalization/moving_mean', [4]], ['batch_normalization/moving_variance', [4]],
                           ['conv1d/kernel', [3, 4, 4]], ['conv1d/bias', [4]],
                           ['separable_conv1d/depthwise_kernel', [3, 4, 1]],
                           ['separable_conv1d/pointwise_kernel', [1, 4, 4]], ['separable_conv1d/bias', [4]],
                           ['depthwise_conv1d/kernel', [3, 4, 1]], ['depthwise_conv1d/bias', [4]],
                           ['dense/kernel', [4, 4]], ['dense/bias', [4]], ['p_re_lu/alpha', [4]],
                           ['dense_1/kernel', [4, 4]], ['dense_1/bias', [4]]],
               'output_names': ['dense_1']},
 'image_zoo': {'layers': ['input_layer', 'conv2d', 'up_sampling2d', 'zero_padding2d', 'cropping2d',
                          'group_normalization', 'gaussian_noise', 'spatial_dropout2d', 'flatten', 'dense',
                          'rescaling', 'activation', 'leaky_re_lu', 'elu', 'unit_normalization',
                          'activity_regularization', 'repeat_vector', 'permute', 'dense_1'],
               'operations': ['input_layer', 'conv2d', 'up_sampling2d', 'zero_padding2d', 'cropping2d',
                              'group_normalization', 'gaussian_noise', 'spatial_dropout2d', 'flatten', 'dense',
                              'rescaling', 'activation', 'leaky_re_lu', 'elu', 'unit_normalization',
                              'activity_regularization', 'repeat_vector', 'permute', 'dense_1'],
               'weights': [['conv2d/kernel', [3, 3, 3, 2]], ['conv2d/bias', [2]],
                           ['group_normalization/gamma', [2]], ['group_normalization/beta', [2]],
                           ['dense/kernel', [392, 3]], ['dense/bias', [3]], ['dense_1/kernel', [2, 3]],
                           ['dense_1/bias', [3]]],
               'output_names': ['dense_1']}}


@pytest.fixture(scope="module")
def models():
    built = guide_topologies.all_models(keras, naming.reset)
    naming.reset()
    return built


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_layers_in_keras_order(models, key):
    assert [layer.name for layer in models[key].layers] == EXPECTED[key]["layers"]


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_operations_in_keras_order(models, key):
    assert [op.name for op in models[key].operations] == EXPECTED[key]["operations"]


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_weights_in_keras_order(models, key):
    got = [[w.path, list(w.shape)] for w in models[key].weights]
    assert got == [[p, s] for p, s in EXPECTED[key]["weights"]]


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_output_names(models, key):
    assert list(models[key].output_names) == EXPECTED[key]["output_names"]


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_set_weights_takes_keras_order(models, key):
    """A list of arrays in Keras's get_weights() order goes to the variables Keras would give them to."""
    model = models[key]
    rng = np.random.default_rng(0)
    values = [rng.standard_normal(shape).astype("float32") for _, shape in EXPECTED[key]["weights"]]
    before = model.get_weights()
    try:
        model.set_weights(values)
        by_path = {w.path: np.asarray(w.value) for w in model.weights}
        for (path, _), value in zip(EXPECTED[key]["weights"], values):
            np.testing.assert_array_equal(by_path[path], value)
        for got, value in zip(model.get_weights(), values):
            np.testing.assert_array_equal(got, value)
    finally:
        model.set_weights(before)


@pytest.mark.parametrize("key", ["ticket", "unet", "op_names", "mha", "siamese"])
def test_summary_rows_follow_operations(models, key):
    lines = []
    models[key].summary(print_fn=lines.append, line_length=200)
    text = "\n".join(lines)
    names = EXPECTED[key]["operations"]
    found = [m.group(1) for m in re.finditer(r"^[│|┃]? ?(\S+) \(", text, re.M)]
    assert [n for n in found if n in names] == names


def test_ticket_dict_outputs_in_sorted_key_order(models):
    model = models["ticket"]
    data = {"title": np.ones((2, 3), "int32"), "body": np.ones((2, 4), "int32"), "tags": np.ones((2, 12), "float32")}
    preds = model.predict(data, verbose=0)
    assert list(preds) == ["department", "priority"]   # Keras's predict order for this model
    assert [t.node.layer.name for t in model.outputs] == ["department", "priority"]


def test_get_layer_finds_keras_names(models):
    model = models["mha"]
    assert model.get_layer("dropout_2").rate == pytest.approx(0.2)
    assert model.get_layer("dropout_1").rate == pytest.approx(0.1)
    assert model.get_layer("add").op == "add"     # ops are found too (Keras lists only layers)
