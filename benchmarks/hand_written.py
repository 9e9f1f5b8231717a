"""The hand-written JAX baselines of benchmarks/fit.py and benchmarks/memory.py: every model's layers in
jax.lax / jnp (no fncompiler code), optax-style optimizers with Keras's formulas, and the jitted step functions.

Weights come from the fncompiler model's get_weights(), per layer name, in Keras's layouts:
Dense (kernel, bias); Conv2D (kernel HWIO[, bias]); Conv2DTranspose (kernel (kh, kw, filters, in), bias);
Embedding (embeddings); LSTM (kernel, recurrent_kernel, bias; gates i, f, c, o; recurrent activation sigmoid);
MultiHeadAttention (query/key/value kernel (d, heads, head_dim) and bias (heads, head_dim), output kernel
(heads, head_dim, d) and bias (d,)); LayerNormalization (gamma, beta; eps as the layer's);
BatchNormalization (gamma, beta, moving_mean, moving_variance; momentum 0.99, eps 1e-3; training normalizes
with the batch's biased variance and updates the moving statistics).
"""
import collections

# The optimizer and learning rate of each model's compile arguments (benchmarks/fit.py and benchmarks/zoo.py).
OPTIMIZERS = {"mlp": "rmsprop", "resnet": "rmsprop", "ticket": "rmsprop", "autoencoder": "rmsprop",
              "transformer": "adam", "resnet20": "adam", "seq2seq": "rmsprop"}
# Models with BatchNormalization: their forward pass also returns the moving statistics it updates.
STATEFUL = ("resnet20",)
BN_MOMENTUM, BN_EPSILON = 0.99, 1e-3
LN_EPSILON = 1e-6
# The LSTM's lowering (fncompiler/layers/recurrent.py's rule, measured there and by benchmarks/lstm_formulations.py):
# "auto" projects each step's input inside the scan on CPU in training while gate units >= features and in
# inference once the projection of all steps passes UP_FRONT_PROJECTION_MAX_BYTES, else up front (one matmul for
# all steps before the scan). Forced: "up_front", "in_loop", "in_loop_concat" ([x_t, h] @ the
# stacked kernels), and any of them + "_remat" (scan body under jax.checkpoint) or "_dots" (checkpoint saving dots).
LSTM_FORMULATION = "auto"
UP_FRONT_PROJECTION_MAX_BYTES = 4 * 2 ** 20     # fncompiler's inference limit (the same measurement)
PROB_EPSILON = 1e-7          # Keras's backend epsilon, clipping probabilities in crossentropy


def _jax():
    import jax
    import jax.numpy as jnp
    from jax import lax
    return jax, jnp, lax


def keras_adam(lr, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    """Keras 3's Adam as an optax GradientTransformation. Keras: m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2);
    w -= lr sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps). optax.adam divides by sqrt(v_hat) + eps, i.e. by
    (sqrt(v) + eps sqrt(1 - b2^t)) / sqrt(1 - b2^t): its eps is scaled by the bias correction, so it is not the
    same update (the difference matters while v is small); this is written out instead."""
    import optax
    jax, jnp, _ = _jax()

    def init(params):
        zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
        return (jnp.zeros((), jnp.int32), zeros, jax.tree_util.tree_map(jnp.zeros_like, params))

    def update(grads, state, params=None):
        count, mu, nu = state
        t = (count + 1).astype(jnp.float32)
        mu = jax.tree_util.tree_map(lambda m, g: m + (g - m) * (1 - beta_1), mu, grads)
        nu = jax.tree_util.tree_map(lambda v, g: v + (jnp.square(g) - v) * (1 - beta_2), nu, grads)
        alpha = lr * jnp.sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t)
        updates = jax.tree_util.tree_map(lambda m, v: -alpha * m / (jnp.sqrt(v) + epsilon), mu, nu)
        return updates, (count + 1, mu, nu)
    return optax.GradientTransformation(init, update)


def make_optimizer(name, lr):
    import optax
    kind = OPTIMIZERS[name]
    if kind == "adam":
        return keras_adam(lr)
    # Keras's RMSprop: v = rho*v + (1-rho)*g^2; w -= lr*g/sqrt(v + eps), rho=0.9, eps=1e-7.
    return optax.rmsprop(lr, decay=0.9, eps=1e-7, eps_in_sqrt=True)


def hand_written(name):
    """(forward(params, xs, key, training, stats=None) -> outputs list, loss(ys, outs), accuracy(ys, outs) or
    None). A stateful model's forward, in training mode, puts each BatchNormalization's new
    [moving_mean, moving_variance] into `stats[layer]`."""
    jax, jnp, lax = _jax()
    relu = jax.nn.relu

    def dense(p, layer, h):
        w, b = p[layer]
        return h @ w + b

    def conv(p, layer, h, padding="VALID", strides=1):
        k = p[layer][0]
        out = lax.conv_general_dilated(h, k, (strides, strides), padding, dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return out + p[layer][1] if len(p[layer]) > 1 else out

    def conv_transpose(p, layer, h):
        # Keras's kernel is (kh, kw, filters, in); a stride-1 "valid" transposed convolution is a full
        # convolution with the spatially flipped kernel, input and output channel axes swapped.
        k, b = p[layer]
        kh, kw = k.shape[0], k.shape[1]
        kk = jnp.transpose(k[::-1, ::-1], (0, 1, 3, 2))
        return lax.conv_general_dilated(h, kk, (1, 1), [(kh - 1, kh - 1), (kw - 1, kw - 1)],
                                        dimension_numbers=("NHWC", "HWIO", "NHWC")) + b

    def max_pool(h, size):
        return lax.reduce_window(h, -jnp.inf, lax.max, (1, size, size, 1), (1, size, size, 1), "VALID")

    def lstm(p, layer, seq, initial=None, return_sequences=False, training=False):
        """(outputs (batch, time, units) if return_sequences else the last h, final h, final c)."""
        kernel, recurrent, bias = p[layer]
        units = recurrent.shape[0]
        form = LSTM_FORMULATION
        if form == "auto" and jax.default_backend() != "cpu":
            form = "up_front"
        elif form == "auto" and training:
            form = "in_loop" if kernel.shape[1] >= kernel.shape[0] else "up_front"
        elif form == "auto":      # inference: in the loop once the projection of all steps passes 4 MiB
            size = seq.shape[0] * seq.shape[1] * kernel.shape[1] * jnp.dtype(seq.dtype).itemsize
            form = "in_loop" if size > UP_FRONT_PROJECTION_MAX_BYTES else "up_front"
        in_loop = form.startswith("in_loop")
        if in_loop:
            xs = jnp.swapaxes(seq, 0, 1)
            stacked = jnp.concatenate([kernel, recurrent], axis=0) if form.startswith("in_loop_concat") else None
        else:
            xs = jnp.swapaxes(seq @ kernel + bias, 0, 1)     # time-major input projections, one matmul

        def cell(carry, x_t):
            h, c = carry
            if form.startswith("in_loop_concat"):
                z = jnp.concatenate([x_t, h], axis=-1) @ stacked + bias
            elif in_loop:
                z = (x_t @ kernel + bias) + h @ recurrent
            else:
                z = x_t + h @ recurrent
            # one split, not four slices: measured 0.88x the time of slicing for seq2seq's two LSTMs' gradient
            # (24.3 vs 27.7 ms, benchmarks/lstm_formulations.py's notes in docs/benchmarks.md)
            zi, zf, zg, zo = jnp.split(z, 4, axis=-1)
            i = jax.nn.sigmoid(zi)
            f = jax.nn.sigmoid(zf)
            g = jnp.tanh(zg)
            o = jax.nn.sigmoid(zo)
            c = f * c + i * g
            h = o * jnp.tanh(c)
            return (h, c), (h if return_sequences else None)

        if form.endswith("_remat"):
            cell = jax.checkpoint(cell)
        elif form.endswith("_dots"):
            cell = jax.checkpoint(cell, policy=jax.checkpoint_policies.dots_with_no_batch_dims_saveable)
        if initial is None:
            zeros = jnp.zeros((seq.shape[0], units), seq.dtype)
            initial = (zeros, zeros)
        (h, c), hs = lax.scan(cell, tuple(initial), xs)
        return (jnp.swapaxes(hs, 0, 1) if return_sequences else h), h, c

    def layer_norm(p, layer, h):
        gamma, beta = p[layer]
        mean = jnp.mean(h, axis=-1, keepdims=True)
        var = jnp.mean(jnp.square(h - mean), axis=-1, keepdims=True)
        return (h - mean) * lax.rsqrt(var + LN_EPSILON) * gamma + beta

    def batch_norm(p, layer, h, training, stats):
        gamma, beta, moving_mean, moving_var = p[layer]
        if training:
            mean = jnp.mean(h, axis=(0, 1, 2))
            var = jnp.mean(jnp.square(h - mean), axis=(0, 1, 2))
            if stats is not None:
                stats[layer] = [moving_mean * BN_MOMENTUM + lax.stop_gradient(mean) * (1 - BN_MOMENTUM),
                                moving_var * BN_MOMENTUM + lax.stop_gradient(var) * (1 - BN_MOMENTUM)]
        else:
            mean, var = moving_mean, moving_var
        return (h - mean) * lax.rsqrt(var + BN_EPSILON) * gamma + beta

    def attention(p, layer, x):
        wq, bq, wk, bk, wv, bv, wo, bo = p[layer]
        q = jnp.einsum("btd,dnh->btnh", x, wq) + bq
        k = jnp.einsum("btd,dnh->btnh", x, wk) + bk
        v = jnp.einsum("btd,dnh->btnh", x, wv) + bv
        q = q * (1.0 / jnp.sqrt(jnp.asarray(wq.shape[-1], x.dtype)))
        scores = jnp.einsum("bsnh,btnh->bnts", k, q)
        weights = jax.nn.softmax(scores, axis=-1)
        out = jnp.einsum("bnts,bsnh->btnh", weights, v)
        return jnp.einsum("btnh,nhd->btd", out, wo) + bo

    def sparse_ce(y, logits):
        logp = jax.nn.log_softmax(logits)
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None].astype(jnp.int32), axis=-1))

    def categorical_ce(y, logits):
        return -jnp.mean(jnp.sum(y * jax.nn.log_softmax(logits), axis=-1))

    def categorical_ce_probs(y, probs):
        probs = probs / jnp.sum(probs, axis=-1, keepdims=True)
        probs = jnp.clip(probs, PROB_EPSILON, 1.0 - PROB_EPSILON)
        return -jnp.mean(jnp.sum(y * jnp.log(probs), axis=-1))

    def binary_ce(y, logits):
        return jnp.mean(jnp.maximum(logits, 0) - logits * y + jnp.log1p(jnp.exp(-jnp.abs(logits))))

    def sparse_accuracy(ys, outs):
        return jnp.mean((jnp.argmax(outs[0], -1) == ys[0]).astype(jnp.float32))

    if name == "mlp":
        def forward(p, xs, key, training, stats=None):
            h = relu(dense(p, "dense_1", xs[0]))
            h = relu(dense(p, "dense_2", h))
            return [dense(p, "predictions", h)]

        def loss(ys, outs):
            return sparse_ce(ys[0], outs[0])
        return forward, loss, sparse_accuracy

    if name == "resnet":
        def forward(p, xs, key, training, stats=None):
            h = relu(conv(p, "conv_1", xs[0]))
            h = relu(conv(p, "conv_2", h))
            b1 = max_pool(h, 3)
            h = relu(conv(p, "conv_3", b1, "SAME"))
            h = relu(conv(p, "conv_4", h, "SAME"))
            b2 = h + b1
            h = relu(conv(p, "conv_5", b2, "SAME"))
            h = relu(conv(p, "conv_6", h, "SAME"))
            b3 = h + b2
            h = relu(conv(p, "conv_7", b3))
            h = jnp.mean(h, axis=(1, 2))
            h = relu(dense(p, "dense", h))
            if training:
                keep = jax.random.bernoulli(key, 0.5, h.shape)
                h = jnp.where(keep, h / 0.5, 0.0)
            return [dense(p, "logits", h)]

        def loss(ys, outs):
            return categorical_ce(ys[0], outs[0])

        def accuracy(ys, outs):
            return jnp.mean((jnp.argmax(outs[0], -1) == jnp.argmax(ys[0], -1)).astype(jnp.float32))
        return forward, loss, accuracy

    if name == "ticket":
        def forward(p, xs, key, training, stats=None):
            title, body, tags = xs
            t = jnp.take(p["title_embedding"][0], title, axis=0)
            b = jnp.take(p["body_embedding"][0], body, axis=0)
            h = jnp.concatenate([lstm(p, "title_lstm", t, training=training)[0],
                                 lstm(p, "body_lstm", b, training=training)[0], tags], axis=-1)
            return [dense(p, "priority", h), dense(p, "department", h)]

        def loss(ys, outs):
            return 1.0 * binary_ce(ys[0], outs[0]) + 0.2 * categorical_ce(ys[1], outs[1])
        return forward, loss, None

    if name == "autoencoder":
        def forward(p, xs, key, training, stats=None):
            h = relu(conv(p, "enc_conv_1", xs[0]))
            h = relu(conv(p, "enc_conv_2", h))
            h = max_pool(h, 3)
            h = relu(conv(p, "enc_conv_3", h))
            h = relu(conv(p, "enc_conv_4", h))
            h = jnp.max(h, axis=(1, 2))
            h = h.reshape(h.shape[0], 4, 4, 1)
            h = relu(conv_transpose(p, "dec_convt_1", h))
            h = relu(conv_transpose(p, "dec_convt_2", h))
            h = jnp.repeat(jnp.repeat(h, 3, axis=1), 3, axis=2)
            h = relu(conv_transpose(p, "dec_convt_3", h))
            return [relu(conv_transpose(p, "dec_convt_4", h))]

        def loss(ys, outs):
            return jnp.mean(jnp.square(ys[0] - outs[0]))
        return forward, loss, None

    if name == "transformer":
        def forward(p, xs, key, training, stats=None):
            blocks = sum(1 for k in p if k.endswith("_attention"))      # zoo.build_transformer's depth
            h = jnp.take(p["token_embedding"][0], xs[0], axis=0) + p["position_embedding"][0][None]
            for i in range(blocks):
                h = layer_norm(p, f"block{i}_norm_1", h + attention(p, f"block{i}_attention", h))
                f = dense(p, f"block{i}_ffn_2", relu(dense(p, f"block{i}_ffn_1", h)))
                h = layer_norm(p, f"block{i}_norm_2", h + f)
            return [dense(p, "logits", jnp.mean(h, axis=1))]

        def loss(ys, outs):
            return sparse_ce(ys[0], outs[0])
        return forward, loss, sparse_accuracy

    if name == "resnet20":
        def forward(p, xs, key, training, stats=None):
            def conv_bn(h, name, strides=1, relu_after=True, padding="SAME"):
                h = conv(p, f"{name}_conv", h, padding, strides)
                h = batch_norm(p, f"{name}_bn", h, training, stats)
                return relu(h) if relu_after else h

            h = conv_bn(xs[0], "stem")
            for stage in range(3):
                for block in range(3):
                    name = f"stage{stage + 1}_block{block + 1}"
                    strides = 2 if stage > 0 and block == 0 else 1
                    y = conv_bn(h, f"{name}_1", strides)
                    y = conv_bn(y, f"{name}_2", relu_after=False)
                    shortcut = h if strides == 1 else conv_bn(h, f"{name}_shortcut", strides, relu_after=False)
                    h = relu(y + shortcut)
            return [dense(p, "logits", jnp.mean(h, axis=(1, 2)))]

        def loss(ys, outs):
            return sparse_ce(ys[0], outs[0])
        return forward, loss, sparse_accuracy

    if name == "seq2seq":
        def forward(p, xs, key, training, stats=None):
            source, decoder_in = xs
            _, h, c = lstm(p, "encoder", source, training=training)
            decoded = lstm(p, "decoder", decoder_in, initial=(h, c), return_sequences=True, training=training)[0]
            return [jax.nn.softmax(dense(p, "next_char", decoded), axis=-1)]

        def loss(ys, outs):
            return categorical_ce_probs(ys[0], outs[0])

        def accuracy(ys, outs):
            return jnp.mean((jnp.argmax(outs[0], -1) == jnp.argmax(ys[0], -1)).astype(jnp.float32))
        return forward, loss, accuracy
    raise ValueError(f"unknown model {name!r}")


class HandWritten:
    """Step functions of the baseline. Each `make_*` call returns a fresh jitted function (a fresh compile),
    and every trace increments `traces[endpoint]`. `compiler_options`: XLA options for the train steps (None:
    XLA's defaults)."""

    def __init__(self, name, params, lr, seed=1234, compiler_options=None):
        self.name = name
        self.forward, self.loss, self.accuracy = hand_written(name)
        self.optimizer = make_optimizer(name, lr)
        self.params = params
        self.seed = seed
        self.compiler_options = compiler_options or None
        self.traces = collections.Counter()

    def zero_metrics(self):
        _, jnp, _ = _jax()
        return (jnp.zeros((), jnp.float32), jnp.zeros((), jnp.float32), jnp.zeros((), jnp.float32))

    def initial_state(self, seed=None):
        jax, jnp, _ = _jax()
        params = jax.tree_util.tree_map(jnp.asarray, self.params)
        key = jax.random.key(self.seed if seed is None else seed)
        return (params, self.optimizer.init(params), jax.random.key_data(key), self.zero_metrics())

    def _accumulate(self, metrics, loss, ys, outs, batch):
        _, jnp, _ = _jax()
        acc = self.accuracy(ys, outs) if self.accuracy is not None else jnp.zeros((), jnp.float32)
        return (metrics[0] + loss * batch, metrics[1] + acc * batch, metrics[2] + batch)

    def train_step_fn(self):
        import optax
        jax, jnp, _ = _jax()
        stateful = self.name in STATEFUL

        def train_step(state, xs, ys):
            self.traces["train"] += 1
            params, opt_state, key_data, metrics = state
            key, sub = jax.random.split(jax.random.wrap_key_data(key_data))

            def loss_fn(p):
                stats = {} if stateful else None
                outs = self.forward(p, xs, sub, True, stats)
                return self.loss(ys, outs), (outs, stats)

            (loss, (outs, stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
            updates, opt_state = self.optimizer.update(grads, opt_state, params)
            params = optax.apply_updates(params, updates)
            if stats:       # the moving statistics: the forward pass's, not the optimizer's (their gradient is 0)
                params = {k: (v[:2] + stats[k] if k in stats else v) for k, v in params.items()}
            metrics = self._accumulate(metrics, loss, ys, outs, jnp.asarray(xs[0].shape[0], jnp.float32))
            return params, opt_state, jax.random.key_data(key), metrics
        return train_step

    def eval_step_fn(self):
        _, jnp, _ = _jax()

        def eval_step(params, metrics, xs, ys):
            self.traces["eval"] += 1
            outs = self.forward(params, xs, None, False)
            return self._accumulate(metrics, self.loss(ys, outs), ys, outs, jnp.asarray(xs[0].shape[0], jnp.float32))
        return eval_step

    def _jit(self, fn, donate):
        jax, _, _ = _jax()
        if self.compiler_options:
            return jax.jit(fn, donate_argnums=donate, compiler_options=dict(self.compiler_options))
        return jax.jit(fn, donate_argnums=donate)

    def make_train_step(self):
        return self._jit(self.train_step_fn(), 0)

    def make_eval_step(self):
        jax, _, _ = _jax()
        return jax.jit(self.eval_step_fn(), donate_argnums=1)

    def make_predict(self):
        jax, _, _ = _jax()

        def predict(params, xs):
            self.traces["predict"] += 1
            return self.forward(params, xs, None, False)
        return jax.jit(predict)

    def make_scan_epoch(self):
        """jit(lax.scan of the train step over (steps, batch, ...) stacked batches)."""
        _, _, lax = _jax()
        step = self.train_step_fn()

        def epoch(state, xs, ys):
            self.traces["train_scan"] += 1

            def body(s, batch):
                return step(s, batch[0], batch[1]), None
            state, _ = lax.scan(body, state, (xs, ys))
            return state
        return self._jit(epoch, 0)

    def make_scan_eval(self):
        jax, _, lax = _jax()
        step = self.eval_step_fn()

        def evaluate(params, metrics, xs, ys):
            self.traces["eval_scan"] += 1

            def body(m, batch):
                return step(params, m, batch[0], batch[1]), None
            metrics, _ = lax.scan(body, metrics, (xs, ys))
            return metrics
        return jax.jit(evaluate, donate_argnums=1)

    def init_loss(self, xs, ys):
        """The loss of one batch at the initial weights, in inference mode (the exact equivalence check)."""
        jax, jnp, _ = _jax()
        params0 = jax.tree_util.tree_map(jnp.asarray, self.params)
        return float(jax.jit(lambda p, a, b: self.loss(b, self.forward(p, a, None, False)))(
            params0, [jnp.asarray(a) for a in xs], [jnp.asarray(a) for a in ys]))
