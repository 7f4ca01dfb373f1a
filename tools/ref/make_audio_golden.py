#!/usr/bin/python3
"""Golden files for the audio encoder's C test (tests/golden/test_audio_encoder.c).

Makes a tiny audio tower with random bf16 weights and runs the fp32 reference audio encoder of
tools/ref/qwen25_omni_ref.py (audio_encoder) on one mel input under three settings of n_window,
saving every stage. Writes into OUT (default tests/data/golden/audio_tiny/):
  model.safetensors   audio_tower.* tensors (bare-thinker names), BF16 except nothing else
  golden.safetensors  features (n_mels, 32) F32: the first n_frames columns of a case are valid,
                      the rest is noise the encoder must not read;
                      <case>.n_window, <case>.n_frames I64 (1 element);
                      <case>.audio.hidden.<l> F32 (rows, d_model), l = 0 (stem + positions) .. layers;
                      <case>.audio_embeds F32 (tokens, output_dim).
Reference tool only: the C tests read the committed files and never run Python.

Usage: /usr/bin/python3 tools/ref/make_audio_golden.py [--out DIR] [--seed N]
"""

import argparse
import os
import sys
import types

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qwen25_omni_ref import audio_encoder  # noqa: E402
from safetensors_io import round_to_bf16, save_file  # noqa: E402

# The tiny sizes the C test sets in its avl_audio_config (keep in step with it).
N_MELS, D, HEADS, FFN, LAYERS, OUT_DIM, MAX_POS = 8, 16, 2, 32, 2, 24, 32
COLS = 32
# case name -> (n_window, n_frames): ragged tail; odd window (pooled pairs straddle chunks); one chunk.
CASES = {"tail": (4, 21), "odd": (3, 23), "one": (4, 8)}


def tiny_weights(rng):
    """name -> float32 array already rounded to bf16 (what the C side reads)."""
    w = {}

    def mat(name, *shape, scale):
        w[name] = round_to_bf16(rng.standard_normal(shape).astype(np.float32) * scale)

    p = "audio_tower."
    mat(p + "conv1.weight", D, N_MELS, 3, scale=0.3)
    mat(p + "conv1.bias", D, scale=0.1)
    mat(p + "conv2.weight", D, D, 3, scale=0.2)
    mat(p + "conv2.bias", D, scale=0.1)
    for l in range(LAYERS):
        lp = f"{p}layers.{l}."
        w[lp + "self_attn_layer_norm.weight"] = round_to_bf16(1 + 0.1 * rng.standard_normal(D).astype(np.float32))
        mat(lp + "self_attn_layer_norm.bias", D, scale=0.1)
        for nm in ("q_proj", "k_proj", "v_proj", "out_proj"):
            mat(lp + f"self_attn.{nm}.weight", D, D, scale=0.4)
            if nm != "k_proj":
                mat(lp + f"self_attn.{nm}.bias", D, scale=0.1)
        w[lp + "final_layer_norm.weight"] = round_to_bf16(1 + 0.1 * rng.standard_normal(D).astype(np.float32))
        mat(lp + "final_layer_norm.bias", D, scale=0.1)
        mat(lp + "fc1.weight", FFN, D, scale=0.3)
        mat(lp + "fc1.bias", FFN, scale=0.1)
        mat(lp + "fc2.weight", D, FFN, scale=0.2)
        mat(lp + "fc2.bias", D, scale=0.1)
    w[p + "ln_post.weight"] = round_to_bf16(1 + 0.1 * rng.standard_normal(D).astype(np.float32))
    mat(p + "ln_post.bias", D, scale=0.1)
    mat(p + "proj.weight", OUT_DIM, D, scale=0.3)
    mat(p + "proj.bias", OUT_DIM, scale=0.1)
    # Present in real checkpoints, never used by the encoder's forward.
    mat(p + "audio_bos_eos_token.weight", 2, OUT_DIM, scale=0.1)
    return w


def main(argv=None):
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(here, "..", "..", "tests", "data", "golden", "audio_tiny"))
    ap.add_argument("--seed", type=int, default=20251125)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    w = tiny_weights(rng)
    features = rng.standard_normal((N_MELS, COLS)).astype(np.float32)

    W = {k: torch.from_numpy(v.copy()) for k, v in w.items()}
    golden = {"features": features}
    for name, (nw, nf) in CASES.items():
        cfg = types.SimpleNamespace(a_mels=N_MELS, a_d=D, a_heads=HEADS, a_layers=LAYERS, a_n_window=nw,
                                    a_max_pos=MAX_POS, a_scale_embedding=False)
        feats = torch.from_numpy(features.copy()).unsqueeze(0)            # (1, mels, COLS)
        mask = torch.zeros(1, COLS, dtype=torch.long)
        mask[0, :nf] = 1
        stages = {}
        out, _ = audio_encoder(cfg, W, feats, mask, stages)
        golden[f"{name}.n_window"] = np.array([nw], dtype=np.int64)
        golden[f"{name}.n_frames"] = np.array([nf], dtype=np.int64)
        for l in range(LAYERS + 1):
            golden[f"{name}.audio.hidden.{l}"] = stages[f"audio.hidden.{l}"].numpy().astype(np.float32)
        golden[f"{name}.audio_embeds"] = out.numpy().astype(np.float32)

    os.makedirs(args.out, exist_ok=True)
    save_file(w, os.path.join(args.out, "model.safetensors"), dtypes={k: "BF16" for k in w},
              metadata={"generator": "tools/ref/make_audio_golden.py", "seed": args.seed})
    save_file(golden, os.path.join(args.out, "golden.safetensors"),
              metadata={"generator": "tools/ref/make_audio_golden.py (qwen25_omni_ref.audio_encoder)",
                        "seed": args.seed})
    return 0


if __name__ == "__main__":
    sys.exit(main())
