"""`Model`: a layer with a training API. `Model(inputs, outputs)` builds a `Functional` model; subclasses
that define `call` are traced into the IR as one node."""
import numpy as np

from ..layers.layer import Layer
from ..saving import serialization

# The Functional class, registered by models/functional.py when it loads (functional imports this module, not
# the other way round): Model(inputs, outputs) builds one. fncompiler/models/__init__.py loads both.
_FUNCTIONAL = []


def register_functional_class(cls):
    _FUNCTIONAL[:] = [cls]


class Model(Layer):
    def __new__(cls, *args, **kwargs):
        if cls is Model and (args or "inputs" in kwargs or "outputs" in kwargs):
            return object.__new__(_FUNCTIONAL[0])
        return object.__new__(cls)

    def __init__(self, *args, **kwargs):
        Functional = _FUNCTIONAL[0]
        if (args or "inputs" in kwargs) and not isinstance(self, Functional):
            # A subclass that calls super().__init__(inputs, outputs): give it the Functional behaviour.
            cls = type(self)
            self.__class__ = type(cls.__name__, (cls, Functional), {"__module__": cls.__module__})
            Functional.__init__(self, *args, **kwargs)
            return
        if args:
            raise TypeError(f"Model.__init__ received unexpected positional arguments {args}.")
        for key in ("inputs", "outputs"):
            kwargs.pop(key, None)
        super().__init__(**kwargs)
        self._compile_config = None
        self._trainer = None
        self.stop_training = False
        self.history = None

    # -- subclassed models: traced as one node --------------------------------------------------------
    def _concrete_call(self, args, kwargs):
        out = super()._concrete_call(args, kwargs)
        if not hasattr(self, "_nodes") and getattr(self, "_traced_input_specs", None) is None and args:
            import jax
            from ..ir import TensorSpec
            self._traced_input_specs = [TensorSpec(tuple(x.shape), str(x.dtype))
                                        for x in jax.tree_util.tree_leaves(args[0])]
            leaves, tree = jax.tree_util.tree_flatten(out)
            self._traced_output_specs = [TensorSpec((None,) + tuple(x.shape[1:]), str(x.dtype)) for x in leaves]
            self._traced_output_tree = tree
        return out

    def _ensure_traced(self, x):
        """Call a subclassed model once on a slice of `x`, so its input and output specs are known."""
        if hasattr(self, "_nodes") or getattr(self, "_traced_input_specs", None) is not None:
            return
        if getattr(self, "_functional", None) is not None:   # a built Sequential: its graph is known
            return
        import jax
        import numpy as np
        from ..runtime import data_sources
        if data_sources.is_batched_source(x):
            x = data_sources.first_x(x)
        sample = jax.tree_util.tree_map(lambda a: np.asarray(a)[:1], x)
        self(sample)

    @property
    def inputs(self):
        from ..symbolic import SymbolicTensor
        specs = getattr(self, "_traced_input_specs", None)
        return None if specs is None else [SymbolicTensor((None,) + tuple(s.shape[1:]), s.dtype) for s in specs]

    @property
    def outputs(self):
        from ..symbolic import SymbolicTensor
        specs = getattr(self, "_traced_output_specs", None)
        return None if specs is None else [SymbolicTensor(s.shape, s.dtype) for s in specs]

    @property
    def input_names(self):
        specs = getattr(self, "_traced_input_specs", None) or []
        return [f"input_{i}" for i in range(len(specs))]

    @property
    def output_names(self):
        specs = getattr(self, "_traced_output_specs", None) or []
        return ["output"] if len(specs) == 1 else [f"output_{i}" for i in range(len(specs))]

    def flatten_inputs(self, inputs):
        import jax
        return jax.tree_util.tree_leaves(inputs) if isinstance(inputs, (list, tuple, dict)) else [inputs]

    def pack_outputs(self, flat):
        import jax
        return jax.tree_util.tree_unflatten(self._traced_output_tree, list(flat))

    @property
    def graph(self):
        from . import to_ir
        return to_ir.opaque_graph(self)

    # -- structure ---------------------------------------------------------------------------------
    @property
    def layers(self):
        return [l for l in self._layers]

    def get_layer(self, name=None, index=None):
        if index is not None and name is not None:
            raise ValueError("get_layer: give either `name` or `index`, not both.")
        if index is not None:
            if not 0 <= index < len(self.layers):
                raise ValueError(f"get_layer: index {index} is out of range: model {self.name!r} has "
                                 f"{len(self.layers)} layers.")
            return self.layers[index]
        for layer in getattr(self, "operations", self.layers):   # ops too (Keras lists only layers)
            if layer.name == name:
                return layer
        raise ValueError(f"No such layer: {name!r} in model {self.name!r}. Existing layers are: "
                         f"{[l.name for l in self.layers]}.")

    def summary(self, line_length=None, positions=None, print_fn=None, expand_nested=False, show_trainable=False,
                layer_range=None):
        from ..utils import summary as summary_utils
        summary_utils.print_summary(self, line_length=line_length, positions=positions, print_fn=print_fn,
                                    expand_nested=expand_nested, show_trainable=show_trainable,
                                    layer_range=layer_range)

    # -- training API (implemented by fncompiler.runtime.trainer) -----------------------------------
    def compile(self, optimizer="rmsprop", loss=None, loss_weights=None, metrics=None, weighted_metrics=None,
                run_eagerly=False, steps_per_execution="auto", jit_compile="auto", auto_scale_loss=True,
                gradient_accumulation_steps=None):
        from ..runtime import trainer
        self._compile_config = trainer.CompileConfig.create(
            self, optimizer=optimizer, loss=loss, loss_weights=loss_weights, metrics=metrics,
            weighted_metrics=weighted_metrics, run_eagerly=run_eagerly, steps_per_execution=steps_per_execution,
            jit_compile=jit_compile, auto_scale_loss=auto_scale_loss,
            gradient_accumulation_steps=gradient_accumulation_steps)
        self._trainer = None
        self.__dict__.pop("_restored_opt_state", None)   # state of a previous optimizer does not carry over

    @property
    def compiled(self):
        return self._compile_config is not None

    @property
    def optimizer(self):
        return None if self._compile_config is None else self._compile_config.optimizer

    def _get_trainer(self):
        from ..runtime import trainer
        if self._trainer is None:
            self._trainer = trainer.Trainer(self, self._compile_config)
        return self._trainer

    def _require_compiled(self, what):
        if self._compile_config is None:
            raise RuntimeError(f"You must call compile() on model {self.name!r} before {what}(); e.g. "
                               "model.compile(optimizer='adam', loss='mse').")

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None, validation_split=0.0,
            validation_data=None, shuffle=True, class_weight=None, sample_weight=None, initial_epoch=0,
            steps_per_epoch=None, validation_steps=None, validation_batch_size=None, validation_freq=1):
        self._require_compiled("fit")
        self._ensure_traced(x)
        return self._get_trainer().fit(
            x, y, batch_size=batch_size, epochs=epochs, verbose=verbose, callbacks=callbacks,
            validation_split=validation_split, validation_data=validation_data, shuffle=shuffle,
            class_weight=class_weight, sample_weight=sample_weight, initial_epoch=initial_epoch,
            steps_per_epoch=steps_per_epoch, validation_steps=validation_steps,
            validation_batch_size=validation_batch_size, validation_freq=validation_freq)

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None, steps=None,
                 callbacks=None, return_dict=False):
        self._require_compiled("evaluate")
        self._ensure_traced(x)
        return self._get_trainer().evaluate(x, y, batch_size=batch_size, verbose=verbose, sample_weight=sample_weight,
                                            steps=steps, callbacks=callbacks, return_dict=return_dict)

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        self._ensure_traced(x)
        if self._compile_config is not None:
            t = self._get_trainer()
        else:
            t = getattr(self, "_predict_trainer", None)
            if t is None:
                from ..runtime import trainer
                t = self._predict_trainer = trainer.Trainer(self, None)
        return t.predict(x, batch_size=batch_size, verbose=verbose, steps=steps, callbacks=callbacks)

    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, return_dict=False):
        self._require_compiled("train_on_batch")
        return self._get_trainer().train_on_batch(x, y, sample_weight=sample_weight, return_dict=return_dict,
                                                  class_weight=class_weight)

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        self._require_compiled("test_on_batch")
        return self._get_trainer().test_on_batch(x, y, sample_weight=sample_weight, return_dict=return_dict)

    def predict_on_batch(self, x):
        return self.predict(x, batch_size=None, verbose=0)

    def get_compile_config(self):
        return None if self._compile_config is None else self._compile_config.get_config()

    def compile_from_config(self, config, custom_objects=None):
        from ..runtime import trainer
        self.compile(**trainer.CompileConfig.kwargs_from_config(config, custom_objects=custom_objects))

    # -- saving ------------------------------------------------------------------------------------
    def save(self, filepath, overwrite=True, **kwargs):
        from ..saving import saving_api
        saving_api.save_model(self, filepath, overwrite=overwrite, **kwargs)

    def save_weights(self, filepath, overwrite=True):
        from ..saving import saving_api
        saving_api.save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath, skip_mismatch=False):
        from ..saving import saving_api
        saving_api.load_weights(self, filepath, skip_mismatch=skip_mismatch)

    def to_json(self, **kwargs):
        import json
        return json.dumps(serialization.serialize_object(self), **kwargs)

    def get_config(self):
        config = {"name": self.name, "trainable": self.trainable}
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        if isinstance(config, dict) and "layers" in config and "input_layers" in config:
            return _FUNCTIONAL[0].from_config(config, custom_objects=custom_objects)
        return cls(**config)

    def count_params(self):
        return int(sum(np.prod(w.shape, dtype=np.int64) for w in self.weights))


serialization.register_model_class("Model", Model)
