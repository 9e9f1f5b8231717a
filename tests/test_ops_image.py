"""fncompiler.ops.image vs NumPy references and vs values recorded from Keras 3.15.1's keras.ops.image
(tests/keras_reference/record_image_ops.py; Keras is not imported here)."""
import numpy as np
import pytest

import fncompiler as keras
from fncompiler import layers, naming, ops
from fncompiler.ops import image as image_ops

import image_op_cases


images, summary, tiled = image_op_cases.images, image_op_cases.summary, image_op_cases.tiled
CASES = image_op_cases.cases(ops)

# Recorded with Keras 3.15.1 (KERAS_BACKEND=jax): [shape, sum, sum(out * sin(arange(size))), first 6 values]
KERAS = {'gray': [[2, 6, 8, 1], 48.03873796481639, -2.612336262324629,
          [0.6445185542106628, 0.9808958768844604, 0.7830977439880371, 0.270813912153244, 0.01302627194672823,
           0.2960536777973175]],
 'gray_single': [[6, 8, 1], 24.874143444001675, -1.2139412316512785,
                 [0.6445185542106628, 0.9808958768844604, 0.7830977439880371, 0.270813912153244,
                  0.01302627194672823, 0.2960536777973175]],
 'gray_cf': [[2, 1, 6, 8], 48.03873796481639, -2.612336262324629,
             [0.6445185542106628, 0.9808958768844604, 0.7830977439880371, 0.270813912153244, 0.01302627194672823,
              0.2960536777973175]],
 'resize_bilinear_up': [[2, 9, 11, 3], 297.21635714080185, 0.5773529997782156,
                        [0.5, 0.6808077096939087, 0.8371439576148987, 0.7646382451057434, 0.8682042956352234,
                         0.9219356775283813]],
 'resize_bilinear_down': [[2, 4, 5, 3], 60.069942846894264, 0.9252818126987296,
                          [0.626025915145874, 0.6919985413551331, 0.7319850921630859, 0.6838473081588745,
                           0.6040763854980469, 0.510219156742096]],
 'resize_bilinear_down_aa': [[2, 3, 4, 3], 36.015784740448, 0.9115709238108656,
                             [0.5573227405548096, 0.5571993589401245, 0.5493344068527222, 0.4867445230484009,
                              0.4705623388290405, 0.45836448669433594]],
 'resize_nearest_up': [[2, 9, 11, 3], 296.52988174557686, 0.49538650749185864,
                       [0.5, 0.6808077096939087, 0.8371439576148987, 0.9478493332862854, 0.9979404211044312,
                        0.9806376099586487]],
 'resize_nearest_down': [[2, 4, 5, 3], 60.34047707915306, 1.402682576314918,
                         [0.5, 0.6808077096939087, 0.8371439576148987, 0.8982827663421631, 0.7620221376419067,
                          0.5902981162071228]],
 'resize_nearest_down_aa': [[2, 3, 4, 3], 35.62352114915848, 6.939938405675909,
                            [0.23219844698905945, 0.09763437509536743, 0.01752898097038269, 0.32556241750717163,
                             0.5068144202232361, 0.6871441602706909]],
 'resize_bicubic_up': [[2, 9, 11, 3], 297.23061966896057, 0.5337128371463806,
                       [0.4542299211025238, 0.6662144660949707, 0.8557026982307434, 0.7845205068588257,
                        0.9200979471206665, 0.9988172054290771]],
 'resize_bicubic_down': [[2, 4, 5, 3], 60.075212717056274, 1.1800316318513275,
                         [0.625456690788269, 0.7123091220855713, 0.7704265117645264, 0.7282347679138184,
                          0.6343043446540833, 0.5221964716911316]],
 'resize_bicubic_down_aa': [[2, 3, 4, 3], 36.01560804247856, 0.93551723475755,
                            [0.567844808101654, 0.5678614974021912, 0.5586934089660645, 0.47874149680137634,
                             0.45800504088401794, 0.4429524540901184]],
 'resize_lanczos3_up': [[2, 9, 11, 3], 297.2283419854939, 0.35828172324295193,
                        [0.4122692346572876, 0.6393500566482544, 0.8475704789161682, 0.7566603422164917,
                         0.920359194278717, 1.0271645784378052]],
 'resize_lanczos3_down': [[2, 4, 5, 3], 60.06081686168909, 1.3387585585155226,
                          [0.648003339767456, 0.7272169589996338, 0.7756778001785278, 0.6985667943954468,
                           0.6028333306312561, 0.4931820034980774]],
 'resize_lanczos3_down_aa': [[2, 3, 4, 3], 36.01526463031769, 0.9070923844692647,
                             [0.5764493942260742, 0.5832515358924866, 0.5787860751152039, 0.49109745025634766,
                              0.4624454081058502, 0.43887633085250854]],
 'resize_lanczos5_up': [[2, 9, 11, 3], 297.2226243112236, 0.33083145346590626,
                        [0.3738888204097748, 0.6102318167686462, 0.8316550850868225, 0.7285522222518921,
                         0.9056340456008911, 1.027815341949463]],
 'resize_lanczos5_down': [[2, 4, 5, 3], 60.04579109698534, 1.5518893142504566,
                          [0.6832240223884583, 0.7536227703094482, 0.7896948456764221, 0.6714796423912048,
                           0.5631967186927795, 0.4463604986667633]],
 'resize_lanczos5_down_aa': [[2, 3, 4, 3], 36.01749974489212, 0.9037246325303674,
                             [0.5893128514289856, 0.6009325981140137, 0.5988917350769043, 0.496185302734375,
                              0.46002334356307983, 0.42927220463752747]],
 'resize_crop': [[2, 4, 4, 3], 48.013997584581375, 0.6587849262901923,
                 [0.7453007102012634, 0.7259784936904907, 0.6760712265968323, 0.45821458101272583,
                  0.3735918402671814, 0.30607783794403076]],
 'resize_pad': [[2, 4, 4, 3], 48.02644246816635, -0.16920027686580474,
                [0.6119623184204102, 0.669687032699585, 0.7044453620910645, 0.576158881187439, 0.4992760121822357,
                 0.422491192817688]],
 'resize_pad_tall': [[2, 6, 3, 3], 35.94018837809563, -2.132405239150211, [0.25, 0.25, 0.25, 0.25, 0.25, 0.25]],
 'resize_single_cf': [[3, 5, 7], 54.87812656164169, 0.584139478348468,
                      [0.5509380102157593, 0.8618075847625732, 0.662136435508728, 0.24953961372375488,
                       0.19460368156433105, 0.5823922753334045]],
 'patches_2': [[2, 3, 4, 12], 144.1057706475258, 0.5118238647991751,
               [0.5, 0.6808077096939087, 0.8371439576148987, 0.9478493332862854, 0.9979404211044312,
                0.9806376099586487]],
 'patches_3_s2_same': [[2, 3, 4, 27], 264.63557082414627, -3.51925091132458,
                       [0.5, 0.6808077096939087, 0.8371439576148987, 0.9478493332862854, 0.9979404211044312,
                        0.9806376099586487]],
 'patches_2_d2': [[2, 4, 6, 12], 288.0277955830097, -4.9481255549229095,
                  [0.5, 0.6808077096939087, 0.8371439576148987, 0.8982827663421631, 0.7620221376419067,
                   0.5902981162071228]],
 'patches_single': [[3, 2, 24], 74.62934356927872, 0.1465754288168808,
                    [0.5, 0.6808077096939087, 0.8371439576148987, 0.9478493332862854, 0.9979404211044312,
                     0.9806376099586487]],
 'affine_bilinear': [[2, 6, 8, 3], 121.40546463569626, -0.14769211808201976,
                     [0.36196231842041016, 0.41968703269958496, 0.45444539189338684, 0.5538396239280701,
                      0.5279887914657593, 0.4712807536125183]],
 'affine_nearest_reflect': [[2, 6, 8, 3], 138.8620694577694, -4.362485983265499,
                            [0.8982827663421631, 0.7620221376419067, 0.5902981162071228, 0.8982827663421631,
                             0.7620221376419067, 0.5902981162071228]],
 'affine_wrap': [[2, 6, 8, 3], 144.10577051341534, 0.49537213075958564,
                 [0.6083959341049194, 0.5879177451133728, 0.5555411577224731, 0.5156475901603699,
                  0.47363513708114624, 0.4351921081542969]],
 'affine_nearest_mode': [[2, 6, 8, 3], 143.53692511748523, 0.40153755088472276,
                         [0.8920201063156128, 0.7532615661621094, 0.5802260637283325, 0.3582768738269806,
                          0.2041698843240738, 0.09010147303342819]],
 'affine_mirror_fill': [[6, 8, 3], 70.75277035683393, 1.0611369915478195,
                        [0.3351779282093048, 0.5170338153839111, 0.6965833902359009, 0.5821672677993774,
                         0.673055112361908, 0.7405199408531189]],
 'affine_constant_fill': [[2, 6, 8, 3], 186.08232954144478, 2.015767943282178,
                          [0.8920201063156128, 0.7532615661621094, 0.5802260637283325, 0.39633142948150635,
                           0.22646871209144592, 0.09362640976905823]],
 'crop': [[2, 3, 4, 3], 36.195200592279434, 0.32280738286604294,
          [0.0027237236499786377, 0.05522245168685913, 0.16791969537734985, 0.32556241750717163, 0.5068144202232361,
           0.6871441602706909]],
 'crop_bottom_right': [[3, 4, 3], 16.638808995485306, 0.2684081618592068,
                       [0.23219844698905945, 0.09763437509536743, 0.01752898097038269, 0.0027237236499786377,
                        0.05522245168685913, 0.16791969537734985]],
 'pad': [[2, 9, 11, 3], 144.1057706475258, -0.8323869829983259, [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]],
 'pad_bottom_right': [[10, 9, 3], 74.62934356927872, -1.1427816692597703, [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]]}


@pytest.mark.parametrize("case", sorted(KERAS))
def test_matches_keras(case):
    shape, total, weighted, first = KERAS[case]
    got = summary(CASES[case](images()))
    assert got[0] == shape
    np.testing.assert_allclose(got[1], total, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(got[2], weighted, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(got[3], first, rtol=1e-5, atol=1e-6)


# -- NumPy references -------------------------------------------------------------------------------
def test_rgb_to_grayscale_numpy_and_dtypes():
    x = images()
    ref = (x @ np.array([0.2989, 0.5870, 0.1140], "float32"))[..., None]
    np.testing.assert_allclose(ops.image.rgb_to_grayscale(x), ref, rtol=1e-6)
    ints = (x * 255).astype("uint8")
    out = np.asarray(ops.image.rgb_to_grayscale(ints))
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, (ints.astype("float32") @ np.array([0.2989, 0.5870, 0.1140], "float32"))
                                  .astype("uint8")[..., None])
    one = x[..., :1]
    np.testing.assert_array_equal(ops.image.rgb_to_grayscale(one), one)
    with pytest.raises(ValueError, match="3 \\(RGB\\) or 1"):
        ops.image.rgb_to_grayscale(x[..., :2])


def numpy_patches(x, ph, pw, sh, sw):
    n, h, w, c = x.shape
    rows, cols = (h - ph) // sh + 1, (w - pw) // sw + 1
    out = np.empty((n, rows, cols, ph * pw * c), x.dtype)
    for i in range(rows):
        for j in range(cols):
            out[:, i, j] = x[:, i * sh:i * sh + ph, j * sw:j * sw + pw, :].reshape(n, -1)
    return out


def test_extract_patches_numpy():
    x = images()
    np.testing.assert_array_equal(ops.image.extract_patches(x, (2, 3)), numpy_patches(x, 2, 3, 2, 3))
    np.testing.assert_array_equal(ops.image.extract_patches(x, 3, strides=(1, 2)), numpy_patches(x, 3, 3, 1, 2))
    cf = ops.image.extract_patches(np.transpose(x, (0, 3, 1, 2)), 2, data_format="channels_first")
    np.testing.assert_array_equal(np.transpose(cf, (0, 2, 3, 1)), numpy_patches(x, 2, 2, 2, 2))
    vol = np.arange(2 * 4 * 4 * 4 * 2, dtype="float32").reshape(2, 4, 4, 4, 2)
    got = np.asarray(ops.image.extract_patches(vol, (2, 2, 2)))
    assert got.shape == (2, 2, 2, 2, 16)
    np.testing.assert_array_equal(got[1, 1, 0, 1], vol[1, 2:4, 0:2, 2:4, :].ravel())


def test_resize_nearest_2x_is_repeat():
    x = images()
    ref = np.repeat(np.repeat(x, 2, axis=1), 2, axis=2)
    np.testing.assert_array_equal(ops.image.resize(x, (12, 16), interpolation="nearest"), ref)
    np.testing.assert_allclose(ops.image.resize(x, (6, 8)), x, atol=1e-6)   # same size: identity


def test_affine_transform_translation_numpy():
    x = images()
    # shift by (dx, dy) = (2, 1): output[y, x] = input[y + 1, x + 2], zeros outside
    out = np.asarray(ops.image.affine_transform(x, [1, 0, 2, 0, 1, 1, 0, 0], interpolation="nearest"))
    ref = np.zeros_like(x)
    ref[:, :5, :6] = x[:, 1:, 2:]
    np.testing.assert_array_equal(out, ref)
    # a single transform applies to every image of a batch (Keras needs one row per image)
    np.testing.assert_array_equal(out, ops.image.affine_transform(x, tiled([1, 0, 2, 0, 1, 1, 0, 0]),
                                                                  interpolation="nearest"))


def test_crop_and_pad_numpy():
    x = images()
    np.testing.assert_array_equal(
        ops.image.crop_images(x, top_cropping=1, bottom_cropping=2, left_cropping=3, target_width=4),
        x[:, 1:4, 3:7])
    padded = np.asarray(ops.image.pad_images(x, top_padding=2, bottom_padding=1, left_padding=0, right_padding=3))
    np.testing.assert_array_equal(padded, np.pad(x, ((0, 0), (2, 1), (0, 3), (0, 0))))
    with pytest.raises(ValueError, match="exactly two of top_cropping, bottom_cropping, target_height"):
        ops.image.crop_images(x, top_cropping=1, left_cropping=1, target_width=2)
    with pytest.raises(ValueError, match="bottom_cropping must be >= 0"):
        ops.image.crop_images(x, top_cropping=4, target_height=3, left_cropping=0, target_width=2)
    with pytest.raises(ValueError, match="top_padding must be >= 0"):
        ops.image.pad_images(x, bottom_padding=1, target_height=5, left_padding=0, right_padding=0)


def test_argument_errors_name_the_argument():
    x = images()
    with pytest.raises(ValueError, match="interpolation"):
        ops.image.resize(x, (3, 3), interpolation="area")
    with pytest.raises(ValueError, match="fill_mode"):
        ops.image.affine_transform(x, tiled([1, 0, 0, 0, 1, 0, 0, 0]), fill_mode="edge")
    with pytest.raises(ValueError, match="transform"):
        ops.image.affine_transform(x, np.zeros((2, 6), "float32"))
    with pytest.raises(ValueError, match="rank"):
        ops.image.resize(x[0, 0], (3, 3))


# -- in a functional model -------------------------------------------------------------------------
# Keras 3.15.1's names and output shapes for these ops on an Input((6, 8, 3)) (transform: Input((8,)))
KERAS_NAMES = ['rgb_to_grayscale', 'resize', 'extract_patches', 'affine_transform', 'crop_images', 'pad_images']
KERAS_SHAPES = [(None, 6, 8, 1), (None, 3, 4, 3), (None, 3, 4, 12), (None, 6, 8, 3), (None, 2, 2, 3), (None, 8, 9, 3)]


def test_symbolic_names_and_shapes_as_keras():
    naming.reset()
    inp = keras.Input((6, 8, 3))
    outs = [ops.image.rgb_to_grayscale(inp), ops.image.resize(inp, (3, 4)), ops.image.extract_patches(inp, 2),
            ops.image.affine_transform(inp, keras.Input((8,))),
            ops.image.crop_images(inp, top_cropping=1, left_cropping=1, target_height=2, target_width=2),
            ops.image.pad_images(inp, top_padding=1, left_padding=1, target_height=8, target_width=9)]
    assert [t.node.layer.name for t in outs] == KERAS_NAMES
    assert [t.shape for t in outs] == KERAS_SHAPES


def test_vit_style_model_predicts_as_eager_and_round_trips():
    inp = keras.Input((6, 8, 3))
    x = ops.image.resize(inp, (8, 8))
    patches = ops.image.extract_patches(x, 4)                  # (None, 2, 2, 48)
    tokens = layers.Reshape((4, 48))(patches)
    out = layers.Dense(5)(tokens)
    model = keras.Model(inp, out)
    data = images()
    expected = model.layers[-1](np.asarray(image_ops.extract_patches(image_ops.resize(data, (8, 8)), 4))
                                .reshape(2, 4, 48))
    np.testing.assert_allclose(model.predict(data, verbose=0), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(model.predict(data[:1], verbose=0), expected[:1], rtol=1e-5, atol=1e-5)
    assert model._predict_trainer.compiled.trace_counts["predict"] <= 2   # one per batch shape
    clone = keras.Model.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    np.testing.assert_allclose(clone.predict(data, verbose=0), expected, rtol=1e-5, atol=1e-5)
    assert [l.name for l in clone.operations] == [l.name for l in model.operations]


def test_gradient_through_resize_and_affine():
    import jax
    x = images()[:1]
    g = jax.grad(lambda a: ops.image.resize(a, (3, 4)).sum())(x)
    # bilinear downsampling by 2 without antialias averages 2x2 blocks: each pixel gets weight 1/4 or 0
    assert np.isclose(float(np.sum(g)), 3 * 4 * 3, rtol=1e-5)
    g2 = jax.grad(lambda a: ops.image.affine_transform(a, [1, 0, 0, 0, 1, 0, 0, 0]).sum())(x)
    np.testing.assert_allclose(g2, np.ones_like(x), atol=1e-6)   # identity transform
