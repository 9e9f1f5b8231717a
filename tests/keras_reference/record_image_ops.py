"""Record keras.ops.image results for tests/test_ops_image.py (Keras 3.15.1, KERAS_BACKEND=jax).

The cases are tests/image_op_cases.py's. Each result is summarised as [shape, sum,
sum(out * sin(arange(out.size))), first 6 values] so the test holds small literals. Run: KERAS_BACKEND=jax python tests/keras_reference/record_image_ops.py
"""
import json
import os
import sys

import keras
from keras import ops


sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import image_op_cases  # noqa: E402

images, summary = image_op_cases.images, image_op_cases.summary
CASES = image_op_cases.cases(ops)

result = {name: summary(fn(images())) for name, fn in CASES.items()}

# Names Keras gives these ops' nodes on symbolic tensors.
keras.backend.clear_session()
inp = keras.Input((6, 8, 3))
names = [ops.image.rgb_to_grayscale(inp), ops.image.resize(inp, (3, 4)), ops.image.extract_patches(inp, 2),
         ops.image.affine_transform(inp, keras.Input((8,))),
         ops.image.crop_images(inp, top_cropping=1, left_cropping=1, target_height=2, target_width=2),
         ops.image.pad_images(inp, top_padding=1, left_padding=1, target_height=8, target_width=9)]
result["_names"] = [t._keras_history[0].name for t in names]
result["_shapes"] = [list(t.shape) for t in names]
print(json.dumps(result))
