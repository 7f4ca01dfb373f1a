#!/usr/bin/python3
"""Tiny Qwen2.5-Omni checkpoints (HF layout, real tensor names, seeded random weights) and
processor-shaped inputs for them, for testing the reference and making golden files.

  make_tiny.py model  --out DIR [--preset default|odd] [--seed S] [--dtype BF16|F32] [--shards N]
  make_tiny.py inputs --model DIR --out IN.safetensors --spec SPEC.json [--seed S]

The input generator reads every special id from the checkpoint's config.json, so it also works on
checkpoints made by `avlens mkmodel` and on the real model. A spec looks like
  {"system_len": 6, "text_len": 9, "use_audio_in_video": true, "items": [
     {"type": "video", "grid": [3, 4, 4], "second_per_grid": 1.0, "audio_frames": 420, "audio_pad": 12},
     {"type": "audio", "frames": 230, "pad": 10},
     {"type": "image", "grid": [1, 4, 4]}]}
and becomes the token layout of the Qwen2.5-Omni chat template with the placeholders expanded as
processing_qwen2_5_omni.py does (see docs/qwen25-omni-notes.md):
  <|im_start|>system\n S <|im_end|>\n<|im_start|>user\n [media blocks] T <|im_end|>\n<|im_start|>assistant\n
Float inputs (mel features, pixel patches) are drawn as bfloat16-representable values so that a
file may store them as BF16 without changing them.
"""

import argparse
import copy
import json
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_io import round_to_bf16, save_file  # noqa: E402

# Tiny vocabularies keep the special tokens at the top; these ids stand for "\n", "system",
# "assistant" (ordinary text tokens in the real vocabulary: 198, 8948, 77091).
TINY_TEXT_IDS = {"newline": 10, "system": 11, "assistant": 12}
REAL_TEXT_IDS = {"newline": 198, "system": 8948, "assistant": 77091}


def tiny_config(preset="default"):
    """A full HF-layout config.json dict for a tiny thinker."""
    if preset == "default":
        V = 192
        text = dict(vocab_size=V, hidden_size=64, intermediate_size=64, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, mrope_section=[2, 3, 3])
        audio = dict(d_model=32, encoder_layers=2, encoder_attention_heads=4, encoder_ffn_dim=64, n_window=100)
        vision = dict(hidden_size=16, num_heads=2, intermediate_size=32, depth=4,
                      fullatt_block_indexes=[2], window_size=112)
    elif preset == "odd":
        V = 128
        text = dict(vocab_size=V, hidden_size=72, intermediate_size=64, num_hidden_layers=3,
                    num_attention_heads=6, num_key_value_heads=2, mrope_section=[2, 2, 2])
        audio = dict(d_model=24, encoder_layers=1, encoder_attention_heads=3, encoder_ffn_dim=40, n_window=25)
        vision = dict(hidden_size=24, num_heads=2, intermediate_size=40, depth=3,
                      fullatt_block_indexes=[0], window_size=56)
    else:
        raise ValueError(f"unknown preset '{preset}'")
    top = V - 16
    ids = dict(pad_token_id=top, bos_token_id=top + 1, eos_token_id=top + 2,
               audio_token_index=top + 3, audio_start_token_id=top + 4, audio_end_token_id=top + 5,
               vision_start_token_id=top + 6, vision_end_token_id=top + 7,
               image_token_index=top + 8, video_token_index=top + 9, user_token_id=13)
    H = text["hidden_size"]
    text_config = {
        "model_type": "qwen2_5_omni_text", "vocab_size": V, "hidden_size": H,
        "intermediate_size": text["intermediate_size"], "num_hidden_layers": text["num_hidden_layers"],
        "num_attention_heads": text["num_attention_heads"], "num_key_value_heads": text["num_key_value_heads"],
        "hidden_act": "silu", "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
        "rope_scaling": {"mrope_section": text["mrope_section"], "rope_type": "default", "type": "default"},
        "max_position_embeddings": 32768, "use_sliding_window": False, "sliding_window": 32768,
        "max_window_layers": text["num_hidden_layers"], "tie_word_embeddings": False,
        "torch_dtype": "bfloat16", "attention_dropout": 0.0, "use_cache": True,
    }
    audio_config = {
        "model_type": "qwen2_5_omni_audio_encoder", "num_mel_bins": 128, "d_model": audio["d_model"],
        "encoder_layers": audio["encoder_layers"], "encoder_attention_heads": audio["encoder_attention_heads"],
        "encoder_ffn_dim": audio["encoder_ffn_dim"], "activation_function": "gelu", "dropout": 0.0,
        "attention_dropout": 0.0, "activation_dropout": 0.0, "scale_embedding": False,
        "max_source_positions": 1500, "n_window": audio["n_window"], "output_dim": H,
        "torch_dtype": "bfloat16",
    }
    vision_config = {
        "model_type": "qwen2_5_omni_vision_encoder", "depth": vision["depth"],
        "hidden_size": vision["hidden_size"], "embed_dim": vision["hidden_size"], "hidden_act": "silu",
        "intermediate_size": vision["intermediate_size"], "num_heads": vision["num_heads"],
        "in_channels": 3, "in_chans": 3, "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2,
        "window_size": vision["window_size"], "out_hidden_size": H,
        "fullatt_block_indexes": vision["fullatt_block_indexes"], "tokens_per_second": 25,
        "torch_dtype": "bfloat16",
    }
    thinker = {"model_type": "qwen2_5_omni_thinker", "architectures": ["Qwen2_5OmniThinkerForConditionalGeneration"],
               **ids, "position_id_per_seconds": 25, "seconds_per_chunk": 2, "tie_word_embeddings": False,
               "text_config": text_config, "audio_config": audio_config, "vision_config": vision_config,
               "torch_dtype": "bfloat16"}
    return {"architectures": ["Qwen2_5OmniModel"], "model_type": "qwen2_5_omni",
            "enable_audio_output": False, "thinker_config": thinker,
            "avlens_tiny": {"preset": preset, "note": "random weights for tests; not a trained model"}}


def tensor_shapes(cfg):
    """Ordered (name, shape, kind) of every thinker tensor for a config dict."""
    th = cfg["thinker_config"]
    t, a, v = th["text_config"], th["audio_config"], th["vision_config"]
    H, V, I = t["hidden_size"], t["vocab_size"], t["intermediate_size"]
    nh, kv = t["num_attention_heads"], t["num_key_value_heads"]
    hd = t.get("head_dim") or H // nh
    out = []

    def lin(name, o, i, bias=True):
        out.append((name + ".weight", (o, i), "w"))
        if bias:
            out.append((name + ".bias", (o,), "b"))

    p = "thinker.audio_tower."
    d, M, ffn = a["d_model"], a["num_mel_bins"], a["encoder_ffn_dim"]
    out.append((p + "conv1.weight", (d, M, 3), "w"))
    out.append((p + "conv1.bias", (d,), "b"))
    out.append((p + "conv2.weight", (d, d, 3), "w"))
    out.append((p + "conv2.bias", (d,), "b"))
    for i in range(a["encoder_layers"]):
        lp = f"{p}layers.{i}."
        lin(lp + "self_attn.k_proj", d, d, bias=False)
        lin(lp + "self_attn.v_proj", d, d)
        lin(lp + "self_attn.q_proj", d, d)
        lin(lp + "self_attn.out_proj", d, d)
        out.append((lp + "self_attn_layer_norm.weight", (d,), "g"))
        out.append((lp + "self_attn_layer_norm.bias", (d,), "b"))
        lin(lp + "fc1", ffn, d)
        lin(lp + "fc2", d, ffn)
        out.append((lp + "final_layer_norm.weight", (d,), "g"))
        out.append((lp + "final_layer_norm.bias", (d,), "b"))
    out.append((p + "ln_post.weight", (d,), "g"))
    out.append((p + "ln_post.bias", (d,), "b"))
    lin(p + "proj", a["output_dim"], d)
    out.append((p + "audio_bos_eos_token.weight", (2, a["output_dim"]), "e"))

    p = "thinker.visual."
    D, vf = v["hidden_size"], v["intermediate_size"]
    out.append((p + "patch_embed.proj.weight", (D, v["in_channels"], v["temporal_patch_size"],
                                                v["patch_size"], v["patch_size"]), "w"))
    for i in range(v["depth"]):
        bp = f"{p}blocks.{i}."
        out.append((bp + "norm1.weight", (D,), "g"))
        out.append((bp + "norm2.weight", (D,), "g"))
        lin(bp + "attn.q", D, D)
        lin(bp + "attn.k", D, D)
        lin(bp + "attn.v", D, D)
        lin(bp + "attn.proj", D, D)
        lin(bp + "mlp.gate_proj", vf, D)
        lin(bp + "mlp.up_proj", vf, D)
        lin(bp + "mlp.down_proj", D, vf)
    U = D * v["spatial_merge_size"] ** 2
    out.append((p + "merger.ln_q.weight", (D,), "g"))
    lin(p + "merger.mlp.0", U, U)
    lin(p + "merger.mlp.2", v["out_hidden_size"], U)

    p = "thinker.model."
    out.append((p + "embed_tokens.weight", (V, H), "e"))
    for i in range(t["num_hidden_layers"]):
        lp = f"{p}layers.{i}."
        out.append((lp + "input_layernorm.weight", (H,), "g"))
        lin(lp + "self_attn.q_proj", nh * hd, H)
        lin(lp + "self_attn.k_proj", kv * hd, H)
        lin(lp + "self_attn.v_proj", kv * hd, H)
        lin(lp + "self_attn.o_proj", H, nh * hd, bias=False)
        out.append((lp + "post_attention_layernorm.weight", (H,), "g"))
        lin(lp + "mlp.gate_proj", I, H, bias=False)
        lin(lp + "mlp.up_proj", I, H, bias=False)
        lin(lp + "mlp.down_proj", H, I, bias=False)
    out.append((p + "norm.weight", (H,), "g"))
    out.append(("thinker.lm_head.weight", (V, H), "w"))
    return out


def make_weights(cfg, seed=0):
    """Seeded weights scaled so activations stay O(1): W ~ N(0, 1/fan_in), norm gains 1 +- 0.1."""
    rng = np.random.default_rng(seed)
    res = {}
    for name, shape, kind in tensor_shapes(cfg):
        z = rng.standard_normal(shape).astype(np.float32)
        if kind == "w":
            fan_in = int(np.prod(shape[1:]))
            gain = 1.5 if (".q_proj." in name or ".k_proj." in name or ".attn.q." in name or ".attn.k." in name) else 1.0
            x = z * (gain / math.sqrt(fan_in))
        elif kind == "b":
            x = z * 0.1
        elif kind == "g":
            x = 1.0 + 0.1 * z
        else:                       # embeddings
            x = z
        res[name] = x
    return res


def write_checkpoint(out_dir, cfg, weights, dtype="BF16", shards=1):
    """config.json + model.safetensors, or N shards with model.safetensors.index.json."""
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    names = list(weights.keys())
    if shards <= 1:
        save_file(weights, os.path.join(out_dir, "model.safetensors"),
                  dtypes={n: dtype for n in names}, metadata={"format": "pt"})
        return
    per = -(-len(names) // shards)
    wm = {}
    total = 0
    for s in range(shards):
        part = names[s * per:(s + 1) * per]
        fn = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        save_file({n: weights[n] for n in part}, os.path.join(out_dir, fn),
                  dtypes={n: dtype for n in part}, metadata={"format": "pt"})
        for n in part:
            wm[n] = fn
            total += weights[n].size * (2 if dtype == "BF16" else 4)
    with open(os.path.join(out_dir, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": wm}, f, indent=2)
        f.write("\n")


# ----------------------------------------------------------------------------------------------
# Inputs
# ----------------------------------------------------------------------------------------------

def _special_ids(cfg):
    th = cfg.get("thinker_config", cfg)

    def g(*names, default):
        for n in names:
            if th.get(n) is not None:
                return int(th[n])
        return default

    ids = {
        "audio": g("audio_token_index", "audio_token_id", default=151646),
        "image": g("image_token_index", "image_token_id", default=151655),
        "video": g("video_token_index", "video_token_id", default=151656),
        "audio_bos": g("audio_start_token_id", default=151647),
        "audio_eos": g("audio_end_token_id", default=151648),
        "vision_bos": g("vision_start_token_id", default=151652),
        "vision_eos": g("vision_end_token_id", default=151653),
        "user": g("user_token_id", default=872),
        "im_start": g("bos_token_id", default=151644),
        "im_end": g("eos_token_id", default=151645),
    }
    V = int(th.get("text_config", {}).get("vocab_size", 152064))
    ids.update(REAL_TEXT_IDS if V > 151643 else TINY_TEXT_IDS)
    return ids, V


def audio_tokens(frames):
    after = (frames - 1) // 2 + 1
    return (after - 2) // 2 + 1


def processor_chunks(values, per_chunk):
    # The processor's get_chunked_index (numpy values, not truncated to integers).
    spans, start, k = [], 0, 1
    for i, v in enumerate(values):
        if v >= k * per_chunk:
            spans.append((start, i))
            start = i
            k += 1
    spans.append((start, len(values)))
    return spans


def make_inputs(cfg, spec, seed=0):
    """Processor-named numpy arrays for a spec (see the module docstring)."""
    rng = np.random.default_rng(seed)
    ids, V = _special_ids(cfg)
    th = cfg.get("thinker_config", cfg)
    vc = th.get("vision_config", {})
    ac = th.get("audio_config", {})
    merge = int(vc.get("spatial_merge_size", 2))
    patch_dim = int(vc.get("in_channels", 3)) * int(vc.get("temporal_patch_size", 2)) * int(vc.get("patch_size", 14)) ** 2
    mels = int(ac.get("num_mel_bins", 128))
    pps = th.get("position_id_per_seconds", 25)
    spc = th.get("seconds_per_chunk", 2)
    aiv = bool(spec.get("use_audio_in_video", False))
    # Ordinary text tokens: any id below the real special range (151643) that is none of the ids
    # above; tiny vocabularies also keep the lowest 16 ids free.
    taken = set(ids.values())
    lo, hi = (16, V) if V < 151643 else (0, 151643)

    def text(n):
        out = []
        while len(out) < n:
            t = int(rng.integers(lo, hi))
            if t not in taken:
                out.append(t)
        return out

    seq = [ids["im_start"], ids["system"], ids["newline"]] + text(spec.get("system_len", 6)) + \
          [ids["im_end"], ids["newline"], ids["im_start"], ids["user"], ids["newline"]]
    audios, vids, imgs = [], [], []     # audio: (frames, pad); video: (grid, spg); image: grid
    for it in spec["items"]:
        kind = it["type"]
        if kind == "audio":
            n = audio_tokens(it["frames"])
            seq += [ids["audio_bos"]] + [ids["audio"]] * n + [ids["audio_eos"]]
            audios.append((it["frames"], it.get("pad", 0)))
        elif kind == "image":
            t, h, w = it["grid"]
            seq += [ids["vision_bos"]] + [ids["image"]] * (t * h * w // merge ** 2) + [ids["vision_eos"]]
            imgs.append(it["grid"])
        elif kind == "video":
            t, h, w = it["grid"]
            spg = float(it.get("second_per_grid", 1.0))
            vids.append((it["grid"], spg))
            if not aiv:
                seq += [ids["vision_bos"]] + [ids["video"]] * (t * h * w // merge ** 2) + [ids["vision_eos"]]
                continue
            na = audio_tokens(it["audio_frames"])
            audios.append((it["audio_frames"], it.get("audio_pad", 0)))
            gh, gw = h // merge, w // merge
            vt = np.repeat(np.arange(t), gh * gw) * spg * pps
            per = int(pps * spc)
            vs = processor_chunks(vt, per)
            as_ = processor_chunks(np.arange(na), per)
            seq += [ids["vision_bos"], ids["audio_bos"]]
            for j in range(max(len(vs), len(as_))):
                if j < len(vs):
                    seq += [ids["video"]] * (vs[j][1] - vs[j][0])
                if j < len(as_):
                    seq += [ids["audio"]] * (as_[j][1] - as_[j][0])
            seq += [ids["audio_eos"], ids["vision_eos"]]
        else:
            raise ValueError(f"spec: unknown item type '{kind}'")
    seq += text(spec.get("text_len", 8)) + [ids["im_end"], ids["newline"], ids["im_start"],
                                           ids["assistant"], ids["newline"]]
    out = {"input_ids": np.array([seq], dtype=np.int64),
           "attention_mask": np.ones((1, len(seq)), dtype=np.int64)}
    if audios:
        T = max(f + p for f, p in audios)
        feats = np.zeros((len(audios), mels, T), dtype=np.float32)
        mask = np.zeros((len(audios), T), dtype=np.int64)
        for i, (f, _) in enumerate(audios):
            # Log-mel-like values in [-1, 1.5].
            feats[i, :, :f] = round_to_bf16(rng.uniform(-1.0, 1.5, (mels, f)).astype(np.float32))
            mask[i, :f] = 1
        # Padding frames (Whisper pads the waveform, so they hold the log-mel of silence, not 0):
        # random values here, so that a consumer ignoring feature_attention_mask is caught.
        for i, (f, p) in enumerate(audios):
            feats[i, :, f:] = round_to_bf16(rng.uniform(-1.0, 1.0, (mels, T - f)).astype(np.float32))
        out["input_features"] = feats
        out["feature_attention_mask"] = mask
    if imgs:
        n = sum(t * h * w for t, h, w in imgs)
        out["pixel_values"] = round_to_bf16(rng.standard_normal((n, patch_dim)).astype(np.float32))
        out["image_grid_thw"] = np.array(imgs, dtype=np.int64)
    if vids:
        n = sum(t * h * w for (t, h, w), _ in vids)
        out["pixel_values_videos"] = round_to_bf16(rng.standard_normal((n, patch_dim)).astype(np.float32))
        out["video_grid_thw"] = np.array([g for g, _ in vids], dtype=np.int64)
        out["video_second_per_grid"] = np.array([s for _, s in vids], dtype=np.float32)
    return out


def save_inputs(inputs, path, float_dtype="BF16"):
    dtypes = {k: float_dtype for k in ("input_features", "pixel_values", "pixel_values_videos") if k in inputs}
    save_file(inputs, path, dtypes=dtypes)


def main(argv=None):
    ap = argparse.ArgumentParser(description="tiny Qwen2.5-Omni checkpoints and inputs")
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("model")
    m.add_argument("--out", required=True)
    m.add_argument("--preset", default="default")
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--dtype", default="BF16", choices=["BF16", "F32"])
    m.add_argument("--shards", type=int, default=1)
    i = sub.add_parser("inputs")
    i.add_argument("--model", required=True)
    i.add_argument("--out", required=True)
    i.add_argument("--spec", required=True, help="JSON file or inline JSON")
    i.add_argument("--seed", type=int, default=0)
    i.add_argument("--float-dtype", default="F32", choices=["BF16", "F32"])
    args = ap.parse_args(argv)
    if args.cmd == "model":
        cfg = tiny_config(args.preset)
        write_checkpoint(args.out, cfg, make_weights(cfg, args.seed), args.dtype, args.shards)
    else:
        with open(os.path.join(args.model, "config.json")) as f:
            cfg = json.load(f)
        spec = json.loads(args.spec) if args.spec.lstrip().startswith("{") else json.load(open(args.spec))
        save_inputs(make_inputs(cfg, spec, args.seed), args.out, args.float_dtype)
    return 0


if __name__ == "__main__":
    sys.exit(main())
