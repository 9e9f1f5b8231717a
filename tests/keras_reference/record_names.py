import json, keras, types
out = {}
for sub in ("layers", "ops", "losses", "metrics", "callbacks", "utils", "optimizers", "applications", "activations",
            "initializers", "regularizers", "constraints", "models", "datasets", "saving", "ops.image"):
    mod = keras
    for part in sub.split("."):
        mod = getattr(mod, part)
    out[sub] = sorted(n for n in dir(mod) if not n.startswith("_"))
print(json.dumps(out))
