#!/usr/bin/python3
"""Independent fp32 reference of the Qwen2.5-Omni thinker forward pass (golden-file generator).

Mirrors, operation for operation, what Hugging Face transformers computes in eager fp32 in
src/transformers/models/qwen2_5_omni/modeling_qwen2_5_omni.py:
  - Qwen2_5OmniAudioEncoder.forward (+ get_audio_features, _get_feat_extract_output_lengths)
  - Qwen2_5OmniVisionEncoder.forward (rot_pos_emb, get_window_index, Qwen2_5OmniPatchMerger)
  - Qwen2_5OmniPreTrainedModelForConditionalGeneration.get_rope_index (+ get_chunked_index,
    get_llm_pos_ids_for_vision), apply_multimodal_rotary_pos_emb, Qwen2_5OmniRotaryEmbedding
  - Qwen2_5OmniThinkerTextModel / Qwen2_5OmniDecoderLayer / eager_attention_forward, lm_head.
Written from those facts, not copied; every non-obvious choice is in docs/qwen25-omni-notes.md.

Usage:
  /usr/bin/python3 tools/ref/qwen25_omni_ref.py --model DIR --inputs IN.safetensors \
      --out OUT.safetensors [--attn-layer N[,M..]|all|none] [--use-audio-in-video]
IN holds processor-named tensors (input_ids, attention_mask, input_features,
feature_attention_mask, pixel_values_videos, video_grid_thw, video_second_per_grid,
pixel_values, image_grid_thw; any sensible subset). Batch size 1.
"""

import argparse
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_io import SafeTensorsFile, save_file  # noqa: E402

torch.set_grad_enabled(False)


# ----------------------------------------------------------------------------------------------
# Configuration
# ----------------------------------------------------------------------------------------------

class OmniConfig:
    """The thinker's numbers, read from config.json (full model or bare thinker config).

    Values the file gives win; the fall-backs are the HF class defaults (configuration_qwen2_5_omni.py)
    except the vision width, whose class default (3584) is never what a checkpoint means.
    """

    def __init__(self, cfg):
        th = cfg.get("thinker_config", cfg)
        self.raw = th
        t = th.get("text_config", {})
        a = th.get("audio_config", {})
        v = th.get("vision_config", {})

        def tok(*names, default):
            for n in names:
                if n in th and th[n] is not None:
                    return int(th[n])
            return default

        self.audio_token_id = tok("audio_token_index", "audio_token_id", default=151646)
        self.image_token_id = tok("image_token_index", "image_token_id", default=151655)
        self.video_token_id = tok("video_token_index", "video_token_id", default=151656)
        self.audio_start_token_id = tok("audio_start_token_id", default=151647)
        self.audio_end_token_id = tok("audio_end_token_id", default=151648)
        self.vision_start_token_id = tok("vision_start_token_id", default=151652)
        self.vision_end_token_id = tok("vision_end_token_id", default=151653)
        self.user_token_id = tok("user_token_id", default=872)
        self.bos_token_id = tok("bos_token_id", default=151644)
        self.eos_token_id = tok("eos_token_id", default=151645)
        self.position_id_per_seconds = th.get("position_id_per_seconds", 25)
        self.seconds_per_chunk = th.get("seconds_per_chunk", 2)

        # text decoder
        self.vocab_size = int(t.get("vocab_size", 152064))
        self.hidden_size = int(t.get("hidden_size", 3584))
        self.intermediate_size = int(t.get("intermediate_size", 18944))
        self.num_layers = int(t.get("num_hidden_layers", 28))
        self.num_heads = int(t.get("num_attention_heads", 28))
        kv = t.get("num_key_value_heads", 4)
        self.num_kv_heads = int(kv if kv is not None else self.num_heads)
        self.head_dim = int(t.get("head_dim") or self.hidden_size // self.num_heads)
        self.rms_norm_eps = float(t.get("rms_norm_eps", 1e-6))
        self.hidden_act = t.get("hidden_act", "silu")
        rope = t.get("rope_scaling") or t.get("rope_parameters") or {}
        self.rope_theta = float(t.get("rope_theta", rope.get("rope_theta", 1000000.0)))
        self.rope_type = rope.get("rope_type", rope.get("type", "default"))
        self.mrope_section = list(rope.get("mrope_section", [16, 24, 24]))
        self.use_sliding_window = bool(t.get("use_sliding_window", False))
        self.tie_word_embeddings = bool(t.get("tie_word_embeddings", th.get("tie_word_embeddings", False)))

        # audio encoder
        self.a_mels = int(a.get("num_mel_bins", 128))
        self.a_d = int(a.get("d_model", 1280))
        self.a_layers = int(a.get("encoder_layers", 32))
        self.a_heads = int(a.get("encoder_attention_heads", 20))
        self.a_ffn = int(a.get("encoder_ffn_dim", 5120))
        self.a_act = a.get("activation_function", "gelu")
        self.a_n_window = int(a.get("n_window", 100))
        self.a_max_pos = int(a.get("max_source_positions", 1500))
        self.a_out = int(a.get("output_dim", 3584))
        self.a_scale_embedding = bool(a.get("scale_embedding", False))

        # vision encoder
        self.v_depth = int(v.get("depth", 32))
        self.v_hidden = int(v.get("hidden_size", v.get("embed_dim", 1280)))
        self.v_heads = int(v.get("num_heads", 16))
        self.v_ffn = int(v.get("intermediate_size", 3420))
        self.v_act = v.get("hidden_act", "silu")
        self.v_in_ch = int(v.get("in_channels", v.get("in_chans", 3)))
        self.v_patch = int(v.get("patch_size", 14))
        self.v_tpatch = int(v.get("temporal_patch_size", 2))
        self.v_merge = int(v.get("spatial_merge_size", 2))
        self.v_window = int(v.get("window_size", 112))
        self.v_out = int(v.get("out_hidden_size", 3584))
        self.v_fullatt = [int(i) for i in v.get("fullatt_block_indexes", [7, 15, 23, 31])]

        self.check()

    def check(self):
        if self.rope_type not in ("default", "mrope"):
            raise ValueError(f"config.json: rope type '{self.rope_type}' not supported (default only)")
        if self.use_sliding_window:
            raise ValueError("config.json: use_sliding_window=true is not supported by the reference")
        if 2 * sum(self.mrope_section) != self.head_dim:
            raise ValueError(f"config.json: mrope_section {self.mrope_section} sums to "
                             f"{sum(self.mrope_section)}, head_dim {self.head_dim} needs {self.head_dim // 2}")
        if self.num_heads % self.num_kv_heads:
            raise ValueError("config.json: num_attention_heads not a multiple of num_key_value_heads")
        if self.a_d % self.a_heads:
            raise ValueError("config.json: audio d_model not a multiple of encoder_attention_heads")
        if self.v_hidden % self.v_heads or (self.v_hidden // self.v_heads) % 4:
            raise ValueError("config.json: vision head_dim must be a multiple of 4 (2-D rotary)")
        if self.a_out != self.hidden_size or self.v_out != self.hidden_size:
            raise ValueError("config.json: audio output_dim / vision out_hidden_size != text hidden_size")
        if self.a_act != "gelu" or self.v_act != "silu" or self.hidden_act != "silu":
            raise ValueError("config.json: only gelu (audio) and silu (vision MLP, text MLP) are supported")


# ----------------------------------------------------------------------------------------------
# Checkpoint
# ----------------------------------------------------------------------------------------------

class Weights:
    """thinker.* tensors of an HF checkpoint dir, converted to fp32 torch tensors on first use."""

    def __init__(self, model_dir):
        self.files = {}
        idx = os.path.join(model_dir, "model.safetensors.index.json")
        self.where = {}
        if os.path.exists(idx):
            with open(idx) as f:
                wm = json.load(f)["weight_map"]
            for name, fn in wm.items():
                self.where[name] = os.path.join(model_dir, fn)
        else:
            single = os.path.join(model_dir, "model.safetensors")
            if not os.path.exists(single):
                raise FileNotFoundError(f"{model_dir}: neither model.safetensors nor model.safetensors.index.json")
            for name in SafeTensorsFile(single).keys():
                self.where[name] = single
        # A bare thinker checkpoint has no "thinker." prefix.
        self.prefix = "thinker." if any(k.startswith("thinker.") for k in self.where) else ""
        self.cache = {}

    def has(self, name):
        return self.prefix + name in self.where

    def __getitem__(self, name):
        if name not in self.cache:
            full = self.prefix + name
            if full not in self.where:
                raise KeyError(f"checkpoint: tensor '{full}' missing")
            path = self.where[full]
            if path not in self.files:
                self.files[path] = SafeTensorsFile(path)
            self.cache[name] = self.files[path].torch(full, as_f32=True).float()
        return self.cache[name]


def load_model(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = OmniConfig(json.load(f))
    return cfg, Weights(model_dir)


# ----------------------------------------------------------------------------------------------
# Shared pieces
# ----------------------------------------------------------------------------------------------

def rms_norm(x, w, eps):
    # Qwen2RMSNorm: fp32 mean of squares, x * rsqrt(var + eps), then the weight.
    var = x.pow(2).mean(-1, keepdim=True)
    return w * (x * torch.rsqrt(var + eps))


def half_rotate(x):
    # (x1, x2) -> (-x2, x1) over the two halves of the last dim (the NeoX / HF rotate_half layout).
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def softmax_attention(q, k, v, scale, add_mask=None):
    """q (H, Lq, d), k/v (H, Lk, d) -> (out (H, Lq, d), probs (H, Lq, Lk)); eager HF order of ops."""
    s = torch.matmul(q, k.transpose(-1, -2)) * scale
    if add_mask is not None:
        s = s + add_mask
    p = torch.softmax(s, dim=-1, dtype=torch.float32)
    return torch.matmul(p, v), p


def gelu(x):
    # erf GELU: ACT2FN["gelu"], nn.functional.gelu and nn.GELU() default are all exact erf.
    return F.gelu(x)


# ----------------------------------------------------------------------------------------------
# Audio encoder
# ----------------------------------------------------------------------------------------------

def audio_output_lengths(n_frames):
    """Mel frames -> (frames after the stride-2 conv, audio tokens after the stride-2 pool)."""
    after_cnn = (n_frames - 1) // 2 + 1
    return after_cnn, (after_cnn - 2) // 2 + 1


def sinusoid_table(length, channels, max_timescale=10000):
    # Whisper-style table: first half sin, second half cos; increments computed as HF does
    # (numpy float64 scalar times an fp32 torch arange, so the product happens in fp32).
    inc = np.log(max_timescale) / (channels // 2 - 1)
    inv = torch.exp(-inc * torch.arange(channels // 2).float())
    t = torch.arange(length)[:, None] * inv[None, :]
    return torch.cat([torch.sin(t), torch.cos(t)], dim=1)


def audio_chunk_lengths(n_frames, n_window):
    """Mel frames of each encoder chunk: full chunks of 2*n_window frames, then the remainder."""
    size = 2 * n_window
    if n_frames <= 0:
        raise ValueError("audio: an audio with 0 valid feature frames")
    n = -(-n_frames // size)
    out = [size] * n
    if n_frames % size:
        out[-1] = n_frames % size
    return out


def audio_encoder(cfg, W, input_features, feature_attention_mask, stages):
    """input_features (n_audio, mels, T), feature_attention_mask (n_audio, T) -> (sum tokens, hidden)."""
    p = "audio_tower."
    feats = input_features.float()
    if feature_attention_mask is None:
        mask = torch.ones(feats.shape[0], feats.shape[2], dtype=torch.bool)
    else:
        mask = feature_attention_mask.bool()
    if feats.shape[1] != cfg.a_mels:
        raise ValueError(f"input_features: {feats.shape[1]} mel bins, config needs {cfg.a_mels}")
    # Valid frames of every audio, concatenated along time: (mels, total valid frames).
    lens = mask.long().sum(1).tolist()
    flat = feats.permute(0, 2, 1)[mask].permute(1, 0)

    pos_table = sinusoid_table(cfg.a_max_pos, cfg.a_d)
    d, H = cfg.a_d, cfg.a_heads
    hd = d // H
    chunks = []          # each (frames_after_cnn, d)
    after_cnn_per_audio = []
    start = 0
    for L in lens:
        audio = flat[:, start:start + L]
        start += L
        n_after = 0
        off = 0
        for cl in audio_chunk_lengths(L, cfg.a_n_window):
            # Each chunk is convolved on its own with zero padding at both ends: identical to HF's
            # right-padded batch with the conv1 output zeroed past the chunk's valid length.
            x = audio[:, off:off + cl].unsqueeze(0)                                  # (1, mels, cl)
            off += cl
            x = gelu(F.conv1d(x, W[p + "conv1.weight"], W[p + "conv1.bias"], padding=1))
            x = gelu(F.conv1d(x, W[p + "conv2.weight"], W[p + "conv2.bias"], stride=2, padding=1))
            x = x[0].transpose(0, 1)                                                 # (ceil(cl/2), d)
            if x.shape[0] > cfg.a_max_pos:
                raise ValueError("audio: chunk longer than max_source_positions")
            if cfg.a_scale_embedding:
                raise ValueError("audio: scale_embedding=true is not supported (HF never applies it)")
            x = x + pos_table[: x.shape[0]]
            chunks.append(x)
            n_after += x.shape[0]
        after_cnn_per_audio.append(n_after)
    h = torch.cat(chunks, 0)                                                         # (N, d)
    bounds = np.cumsum([0] + [c.shape[0] for c in chunks]).tolist()
    stages["audio.hidden.0"] = h.clone()

    for i in range(cfg.a_layers):
        lp = f"{p}layers.{i}."
        r = h
        x = F.layer_norm(h, (d,), W[lp + "self_attn_layer_norm.weight"], W[lp + "self_attn_layer_norm.bias"], 1e-5)
        q = F.linear(x, W[lp + "self_attn.q_proj.weight"], W[lp + "self_attn.q_proj.bias"])
        k = F.linear(x, W[lp + "self_attn.k_proj.weight"])                          # no k bias
        v = F.linear(x, W[lp + "self_attn.v_proj.weight"], W[lp + "self_attn.v_proj.bias"])
        outs = []
        for b0, b1 in zip(bounds[:-1], bounds[1:]):
            # Block-wise attention: a chunk attends to itself only (cu_seqlens in HF).
            qq = q[b0:b1].reshape(-1, H, hd).transpose(0, 1)
            kk = k[b0:b1].reshape(-1, H, hd).transpose(0, 1)
            vv = v[b0:b1].reshape(-1, H, hd).transpose(0, 1)
            o, _ = softmax_attention(qq, kk, vv, hd ** -0.5)
            outs.append(o.transpose(0, 1).reshape(-1, d))
        a = F.linear(torch.cat(outs, 0), W[lp + "self_attn.out_proj.weight"], W[lp + "self_attn.out_proj.bias"])
        h = r + a
        r = h
        x = F.layer_norm(h, (d,), W[lp + "final_layer_norm.weight"], W[lp + "final_layer_norm.bias"], 1e-5)
        x = F.linear(gelu(F.linear(x, W[lp + "fc1.weight"], W[lp + "fc1.bias"])), W[lp + "fc2.weight"], W[lp + "fc2.bias"])
        h = r + x
        stages[f"audio.hidden.{i + 1}"] = h.clone()

    toks = []
    off = 0
    for n in after_cnn_per_audio:
        x = h[off:off + n]
        off += n
        # AvgPool1d(2, 2) over each audio's frames (an odd last frame is dropped).
        x = F.avg_pool1d(x.transpose(0, 1).unsqueeze(0), 2, 2)[0].transpose(0, 1)
        x = F.layer_norm(x, (d,), W[p + "ln_post.weight"], W[p + "ln_post.bias"], 1e-5)
        toks.append(F.linear(x, W[p + "proj.weight"], W[p + "proj.bias"]))
    out = torch.cat(toks, 0)
    expect = sum(audio_output_lengths(n)[1] for n in lens)
    assert out.shape[0] == expect
    return out, lens


# ----------------------------------------------------------------------------------------------
# Vision encoder
# ----------------------------------------------------------------------------------------------

def vision_rotary(cfg, grid_thw):
    """Per patch (input order) rotary angles (n_patches, head_dim/2): [row freqs | col freqs]."""
    hd = cfg.v_hidden // cfg.v_heads
    rd = hd // 2
    inv = 1.0 / (10000.0 ** (torch.arange(0, rd, 2, dtype=torch.float) / rd))
    m = cfg.v_merge
    rows, cols = [], []
    for t, hh, ww in grid_thw:
        # Patches arrive in merge-window order: (row block, col block, row in block, col in block).
        r = torch.arange(hh).view(hh // m, 1, m, 1).expand(hh // m, ww // m, m, m).reshape(-1)
        c = torch.arange(ww).view(1, ww // m, 1, m).expand(hh // m, ww // m, m, m).reshape(-1)
        rows.append(r.repeat(t))
        cols.append(c.repeat(t))
    rows, cols = torch.cat(rows), torch.cat(cols)
    maxg = int(max(max(g[1], g[2]) for g in grid_thw))
    table = torch.outer(torch.arange(maxg, dtype=torch.float), inv)              # (maxg, hd/4)
    return torch.cat([table[rows], table[cols]], dim=1)                          # (N, hd/2)


def vision_window_index(cfg, grid_thw):
    """Window permutation of merged units and window boundaries (in patches), as get_window_index.

    Returns (index: list of merged-unit ids in window order, cu: patch offsets of window ends with
    a leading 0 and empty windows removed).
    """
    m = cfg.v_merge
    unit = m * m
    ws = cfg.v_window // m // cfg.v_patch          # window side in merged units
    index, cu = [], [0]
    base = 0
    for t, hh, ww in grid_thw:
        gh, gw = hh // m, ww // m
        # HF pads up to the next multiple, and by a whole extra (empty) window when already a multiple.
        nh = (gh + ws - gh % ws) // ws
        nw = (gw + ws - gw % ws) // ws
        for ti in range(t):
            for wy in range(nh):
                for wx in range(nw):
                    n = 0
                    for y in range(wy * ws, min((wy + 1) * ws, gh)):
                        for x in range(wx * ws, min((wx + 1) * ws, gw)):
                            index.append(base + ti * gh * gw + y * gw + x)
                            n += 1
                    if n:                                  # empty windows vanish (unique_consecutive)
                        cu.append(cu[-1] + n * unit)
        base += t * gh * gw
    return index, cu


def vision_encoder(cfg, W, pixel_values, grid_thw, stages, tag):
    """pixel_values (N, C*Tp*P*P) in merge-window order, grid_thw (n, 3) -> (N/merge^2, out_hidden)."""
    p = "visual."
    grid = [tuple(int(x) for x in g) for g in grid_thw.tolist()]
    N = sum(t * h * w for t, h, w in grid)
    patch_dim = cfg.v_in_ch * cfg.v_tpatch * cfg.v_patch * cfg.v_patch
    if pixel_values.shape != (N, patch_dim):
        raise ValueError(f"{tag}: pixel values shape {tuple(pixel_values.shape)}, grid needs ({N}, {patch_dim})")
    for t, h, w in grid:
        if h % cfg.v_merge or w % cfg.v_merge:
            raise ValueError(f"{tag}: grid {t}x{h}x{w} not a multiple of spatial_merge_size")
    D, H = cfg.v_hidden, cfg.v_heads
    hd = D // H
    unit = cfg.v_merge ** 2

    # Conv3d with kernel == stride == patch is a matmul over the flattened (C, Tp, P, P) patch.
    wpe = W[p + "patch_embed.proj.weight"].reshape(D, -1)
    x = F.linear(pixel_values.float(), wpe)                                      # (N, D)
    stages[f"{tag}.hidden.0"] = x.clone()
    ang = vision_rotary(cfg, grid)                                              # (N, hd/2)

    win_index, cu_win = vision_window_index(cfg, grid)
    perm = torch.tensor(win_index, dtype=torch.long)
    stages[f"{tag}.window_index"] = perm.clone()
    # Reorder whole merged units (unit consecutive patches) into window order.
    x = x.reshape(N // unit, unit, D)[perm].reshape(N, D)
    ang = ang.reshape(N // unit, unit, -1)[perm].reshape(N, -1)
    cos = ang.cos().repeat(1, 2)[:, None, :]                                    # (N, 1, hd)
    sin = ang.sin().repeat(1, 2)[:, None, :]
    inv_perm = torch.argsort(perm)

    cu_full = [0]
    for t, h, w in grid:
        for _ in range(t):
            cu_full.append(cu_full[-1] + h * w)   # "full" attention spans one temporal grid

    for i in range(cfg.v_depth):
        bp = f"{p}blocks.{i}."
        cu = cu_full if i in cfg.v_fullatt else cu_win
        y = rms_norm(x, W[bp + "norm1.weight"], 1e-6)
        q = F.linear(y, W[bp + "attn.q.weight"], W[bp + "attn.q.bias"]).reshape(N, H, hd)
        k = F.linear(y, W[bp + "attn.k.weight"], W[bp + "attn.k.bias"]).reshape(N, H, hd)
        v = F.linear(y, W[bp + "attn.v.weight"], W[bp + "attn.v.bias"]).reshape(N, H, hd)
        q = q * cos + half_rotate(q) * sin
        k = k * cos + half_rotate(k) * sin
        outs = []
        for b0, b1 in zip(cu[:-1], cu[1:]):
            o, _ = softmax_attention(q[b0:b1].transpose(0, 1), k[b0:b1].transpose(0, 1),
                                     v[b0:b1].transpose(0, 1), hd ** -0.5)
            outs.append(o.transpose(0, 1).reshape(-1, D))
        x = x + F.linear(torch.cat(outs, 0), W[bp + "attn.proj.weight"], W[bp + "attn.proj.bias"])
        y = rms_norm(x, W[bp + "norm2.weight"], 1e-6)
        g = F.silu(F.linear(y, W[bp + "mlp.gate_proj.weight"], W[bp + "mlp.gate_proj.bias"]))
        u = F.linear(y, W[bp + "mlp.up_proj.weight"], W[bp + "mlp.up_proj.bias"])
        x = x + F.linear(g * u, W[bp + "mlp.down_proj.weight"], W[bp + "mlp.down_proj.bias"])
        # Stages are stored in the input patch order, independent of the window permutation.
        stages[f"{tag}.hidden.{i + 1}"] = x.reshape(N // unit, unit, D)[inv_perm].reshape(N, D).clone()

    y = rms_norm(x, W[p + "merger.ln_q.weight"], 1e-6).reshape(N // unit, unit * D)
    y = F.linear(gelu(F.linear(y, W[p + "merger.mlp.0.weight"], W[p + "merger.mlp.0.bias"])),
                 W[p + "merger.mlp.2.weight"], W[p + "merger.mlp.2.bias"])
    return y[inv_perm]


# ----------------------------------------------------------------------------------------------
# TMRoPE position ids
# ----------------------------------------------------------------------------------------------

def chunk_spans(values, per_chunk):
    """Split a non-decreasing list of time indices into [start, end) spans, as get_chunked_index.

    A new span starts at element i when values[i] >= k * per_chunk for the current k; k then
    advances by ONE, so a jump over several chunk boundaries opens a single new span.
    """
    spans, start, k = [], 0, 1
    for i, val in enumerate(values):
        if val >= k * per_chunk:
            spans.append((start, i))
            start = i
            k += 1
    spans.append((start, len(values)))
    return spans


def vision_positions(t_index, gh, gw, base):
    """(3, len(t_index)*gh*gw) temporal/row/col ids of merged vision tokens, offset by base."""
    n = gh * gw
    t = torch.tensor(t_index, dtype=torch.long).repeat_interleave(n)
    r = torch.arange(gh).repeat_interleave(gw).repeat(len(t_index))
    c = torch.arange(gw).repeat(gh * len(t_index))
    return torch.stack([t, r, c]) + base


def rope_index(cfg, ids, image_grid_thw=None, video_grid_thw=None, attention_mask=None,
               use_audio_in_video=False, audio_seqlens=None, second_per_grids=None):
    """TMRoPE position ids (3, L) and the rope delta, following get_rope_index for one sequence.

    ids: list of token ids (batch 1). attention_mask: list of 0/1 or None (= all ones).
    audio_seqlens: valid mel frames per audio; second_per_grids: seconds per temporal grid per video.
    """
    L = len(ids)
    valid = [True] * L if attention_mask is None else [bool(m) for m in attention_mask]
    toks = [t for t, ok in zip(ids, valid) if ok]
    if image_grid_thw is None and video_grid_thw is None:
        # Text (and audio-only) sequences: plain 1-D positions over the unpadded tokens.
        pos = torch.ones(3, L, dtype=torch.long)
        c = np.cumsum([1 if ok else 0 for ok in valid]) - 1
        for j in range(L):
            if valid[j]:
                pos[:, j] = int(c[j])
        delta = int(pos.max()) + 1 - sum(valid)
        return pos, delta

    m = cfg.v_merge
    pps = cfg.position_id_per_seconds
    per_chunk = int(pps * cfg.seconds_per_chunk)
    n_img = n_vid = 0
    for j, t in enumerate(toks[:-1]):
        if t == cfg.vision_start_token_id:
            nxt = toks[j + 1]
            n_img += nxt == cfg.image_token_id
            n_vid += nxt == (cfg.audio_start_token_id if use_audio_in_video else cfg.video_token_id)
    n_aud = sum(1 for t in toks if t == cfg.audio_start_token_id)
    left = {"image": n_img, "video": n_vid, "audio": n_aud}
    items = n_img + n_aud if use_audio_in_video else n_img + n_vid + n_aud

    pieces = []     # list of (3, n) tensors; "next" = max of the LAST piece + 1 (HF's rule)

    def nxt():
        return int(pieces[-1].max()) + 1 if pieces else 0

    def seq(n):
        pieces.append(torch.arange(n).view(1, -1).expand(3, -1) + nxt())

    def find(tok, kind, st):
        if left[kind] > 0 and tok in toks:
            return toks.index(tok, st)
        return len(toks) + 1

    st = ii = vi = ai = 0
    for _ in range(items):
        e_img = find(cfg.image_token_id, "image", st)
        e_vid = find(cfg.video_token_id, "video", st)
        e_aud = find(cfg.audio_token_id, "audio", st)
        first = min(e_img, e_vid, e_aud)
        if first == e_aud:
            text = first - st - 1
            if text:
                seq(text)
            seq(1)                                               # <|audio_bos|>
            n = audio_output_lengths(int(audio_seqlens[ai]))[1]
            seq(n)
            seq(1)                                               # <|audio_eos|>
            st += text + n + 2
            ai += 1
            left["audio"] -= 1
        elif first == e_img:
            text = first - st - 1
            if text:
                seq(text)
            seq(1)
            t, h, w = (int(x) for x in image_grid_thw[ii])
            t_index = [int(k * 1 * pps) for k in range(t)]       # images: 1 second per grid
            pieces.append(vision_positions(t_index, h // m, w // m, nxt()))
            seq(1)
            st += text + t * h * w // (m * m) + 2
            ii += 1
            left["image"] -= 1
        elif not use_audio_in_video:
            text = first - st - 1
            if text:
                seq(text)
            seq(1)
            t, h, w = (int(x) for x in video_grid_thw[vi])
            t_index = t_indices(t, second_per_grids[vi], pps)
            pieces.append(vision_positions(t_index, h // m, w // m, nxt()))
            seq(1)
            st += text + t * h * w // (m * m) + 2
            vi += 1
            left["video"] -= 1
        else:
            # <|vision_bos|><|audio_bos|> interleaved chunks <|audio_eos|><|vision_eos|>:
            # both openers share one position, both closers share one position.
            text = first - st - 2
            if text:
                seq(text)
            b = nxt()
            pieces.append(torch.full((3, 1), b, dtype=torch.long))
            pieces.append(torch.full((3, 1), b, dtype=torch.long))
            base = nxt()
            n_a = audio_output_lengths(int(audio_seqlens[ai]))[1]
            apos = torch.arange(n_a).view(1, -1).expand(3, -1) + base
            t, h, w = (int(x) for x in video_grid_thw[vi])
            t_index = t_indices(t, second_per_grids[vi], pps)
            vpos = vision_positions(t_index, h // m, w // m, base)
            vsp = chunk_spans((vpos[0] - base).tolist(), per_chunk)
            asp = chunk_spans((apos[0] - base).tolist(), per_chunk)
            for j in range(max(len(vsp), len(asp))):
                if j < len(vsp):
                    pieces.append(vpos[:, vsp[j][0]:vsp[j][1]])
                if j < len(asp):
                    pieces.append(apos[:, asp[j][0]:asp[j][1]])
            e = nxt()
            pieces.append(torch.full((3, 1), e, dtype=torch.long))
            pieces.append(torch.full((3, 1), e, dtype=torch.long))
            st += text + 4 + n_a + t * h * w // (m * m)
            ai += 1
            vi += 1
            left["video"] -= 1
            left["audio"] -= 1
    if st < len(toks):
        seq(len(toks) - st)
    llm = torch.cat(pieces, dim=1)
    if llm.shape[1] != len(toks):
        raise ValueError(f"input_ids: placeholder counts do not match the grids/audio lengths "
                         f"({llm.shape[1]} positions for {len(toks)} tokens)")
    pos = torch.ones(3, L, dtype=torch.long)
    pos[:, torch.tensor(valid)] = llm
    delta = int(llm.max()) + 1 - len(toks)
    return pos, delta


def t_indices(t, second_per_grid, pps):
    # Temporal ids of the video grids: (k * seconds_per_grid * pps) in fp32, truncated to int.
    spg = torch.tensor(float(second_per_grid), dtype=torch.float32)
    return (torch.arange(t) * spg * pps).long().tolist()


# ----------------------------------------------------------------------------------------------
# Text decoder
# ----------------------------------------------------------------------------------------------

def mrope_cos_sin(cfg, position_ids):
    """position_ids (3, L) -> cos, sin (L, head_dim) with the mrope sections merged."""
    d = cfg.head_dim
    inv = 1.0 / (cfg.rope_theta ** (torch.arange(0, d, 2, dtype=torch.int64).float() / d))   # (d/2,)
    ang = position_ids.float()[:, :, None] * inv[None, None, :]                              # (3, L, d/2)
    emb = torch.cat([ang, ang], dim=-1)                                                       # (3, L, d)
    cos, sin = emb.cos(), emb.sin()
    # Dim j of the doubled table takes its angle from axis (section index of j) mod 3.
    sec = cfg.mrope_section * 2
    cs, ss, off = [], [], 0
    for i, n in enumerate(sec):
        cs.append(cos[i % 3, :, off:off + n])
        ss.append(sin[i % 3, :, off:off + n])
        off += n
    return torch.cat(cs, -1), torch.cat(ss, -1)


def decoder(cfg, W, emb, position_ids, attention_mask, attn_layers, out):
    """emb (L, hidden) -> logits (L, vocab); fills out[] with hidden_states.N and attn.N."""
    L = emb.shape[0]
    H, KV, hd = cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
    cos, sin = mrope_cos_sin(cfg, position_ids)
    cos, sin = cos[None], sin[None]                                                # (1, L, hd)
    neg = torch.finfo(torch.float32).min
    add = torch.triu(torch.full((L, L), neg), diagonal=1)
    if attention_mask is not None:
        add = add.masked_fill(~attention_mask.bool()[None, :], neg)

    h = emb
    for i in range(cfg.num_layers):
        out[f"hidden_states.{i}"] = h.clone()
        lp = f"model.layers.{i}."
        x = rms_norm(h, W[lp + "input_layernorm.weight"], cfg.rms_norm_eps)
        q = F.linear(x, W[lp + "self_attn.q_proj.weight"], W[lp + "self_attn.q_proj.bias"])
        k = F.linear(x, W[lp + "self_attn.k_proj.weight"], W[lp + "self_attn.k_proj.bias"])
        v = F.linear(x, W[lp + "self_attn.v_proj.weight"], W[lp + "self_attn.v_proj.bias"])
        q = q.view(L, H, hd).transpose(0, 1)
        k = k.view(L, KV, hd).transpose(0, 1)
        v = v.view(L, KV, hd).transpose(0, 1)
        q = q * cos + half_rotate(q) * sin
        k = k * cos + half_rotate(k) * sin
        rep = H // KV                     # query head j reads kv head j // rep
        k = k.repeat_interleave(rep, dim=0)
        v = v.repeat_interleave(rep, dim=0)
        o, probs = softmax_attention(q, k, v, hd ** -0.5, add)
        if i in attn_layers:
            out[f"attn.{i}"] = probs.mean(0)
        o = o.transpose(0, 1).reshape(L, H * hd)
        h = h + F.linear(o, W[lp + "self_attn.o_proj.weight"])
        x = rms_norm(h, W[lp + "post_attention_layernorm.weight"], cfg.rms_norm_eps)
        x = F.linear(F.silu(F.linear(x, W[lp + "mlp.gate_proj.weight"])) * F.linear(x, W[lp + "mlp.up_proj.weight"]),
                     W[lp + "mlp.down_proj.weight"])
        h = h + x
    h = rms_norm(h, W["model.norm.weight"], cfg.rms_norm_eps)
    out[f"hidden_states.{cfg.num_layers}"] = h.clone()
    head = W["lm_head.weight"] if W.has("lm_head.weight") else W["model.embed_tokens.weight"]
    return F.linear(h, head)


# ----------------------------------------------------------------------------------------------
# The whole thinker
# ----------------------------------------------------------------------------------------------

def forward(cfg, W, inputs, use_audio_in_video=False, attn_layers=()):
    """inputs: dict of torch tensors named as the HF processor names them. Returns dict of outputs."""
    out = {}
    stages = {}
    ids = inputs["input_ids"]
    if ids.dim() == 2:
        if ids.shape[0] != 1:
            raise ValueError("input_ids: batch size must be 1")
        ids = ids[0]
    ids = ids.long()
    L = ids.shape[0]
    am = inputs.get("attention_mask")
    if am is not None:
        am = am.reshape(-1).long()
        if am.shape[0] != L:
            raise ValueError("attention_mask: length differs from input_ids")
    if int(ids.max()) >= cfg.vocab_size or int(ids.min()) < 0:
        raise ValueError("input_ids: id outside the vocabulary")

    emb = W["model.embed_tokens.weight"][ids].clone()                       # (L, hidden)

    audio_seqlens = None
    if inputs.get("input_features") is not None:
        fam = inputs.get("feature_attention_mask")
        a, audio_seqlens = audio_encoder(cfg, W, inputs["input_features"], fam, stages)
        sel = ids == cfg.audio_token_id
        if int(sel.sum()) != a.shape[0]:
            raise ValueError(f"input_ids: {int(sel.sum())} audio placeholders, audio encoder gives {a.shape[0]}")
        emb[sel] = a
        out["audio_embeds"] = a
    if inputs.get("pixel_values") is not None:
        im = vision_encoder(cfg, W, inputs["pixel_values"], inputs["image_grid_thw"], stages, "image")
        sel = ids == cfg.image_token_id
        if int(sel.sum()) != im.shape[0]:
            raise ValueError(f"input_ids: {int(sel.sum())} image placeholders, vision encoder gives {im.shape[0]}")
        emb[sel] = im
        out["image_embeds"] = im
    if inputs.get("pixel_values_videos") is not None:
        vv = vision_encoder(cfg, W, inputs["pixel_values_videos"], inputs["video_grid_thw"], stages, "video")
        sel = ids == cfg.video_token_id
        if int(sel.sum()) != vv.shape[0]:
            raise ValueError(f"input_ids: {int(sel.sum())} video placeholders, vision encoder gives {vv.shape[0]}")
        emb[sel] = vv
        out["video_embeds"] = vv

    vgrid = inputs.get("video_grid_thw")
    spg = inputs.get("video_second_per_grid")
    if vgrid is not None and spg is None:
        raise ValueError("inputs: video_grid_thw without video_second_per_grid")
    pos, delta = rope_index(
        cfg, ids.tolist(),
        image_grid_thw=None if inputs.get("image_grid_thw") is None else inputs["image_grid_thw"].tolist(),
        video_grid_thw=None if vgrid is None else vgrid.tolist(),
        attention_mask=None if am is None else am.tolist(),
        use_audio_in_video=use_audio_in_video,
        audio_seqlens=audio_seqlens,
        second_per_grids=None if spg is None else spg.reshape(-1).tolist())
    out["position_ids"] = pos
    # HF stores the delta minus the number of padding tokens (rope_deltas of the thinker output).
    n_pad = 0 if am is None else int((1 - am).sum())
    out["rope_deltas"] = torch.tensor([delta - n_pad], dtype=torch.long)
    logits = decoder(cfg, W, emb, pos, am, set(attn_layers), out)
    out["logits"] = logits
    for k, v in stages.items():
        out[k] = v
    return out


def read_inputs(path):
    f = SafeTensorsFile(path)
    res = {}
    for k in f.keys():
        a = f.numpy(k, as_f32=True)
        res[k] = torch.from_numpy(np.array(a))
    return res


def parse_layers(spec, n):
    if spec in (None, "", "none"):
        return []
    if spec == "all":
        return list(range(n))
    out = []
    for s in spec.split(","):
        i = int(s)
        if not 0 <= i < n:
            raise ValueError(f"--attn-layer: {i} outside 0..{n - 1}")
        out.append(i)
    return out


def save_outputs(out, path, meta=None):
    order = ["audio_embeds", "image_embeds", "video_embeds", "position_ids", "rope_deltas"]
    keys = [k for k in order if k in out]
    keys += sorted([k for k in out if k.startswith("hidden_states.")], key=lambda s: int(s.split(".")[1]))
    keys += sorted([k for k in out if k.startswith("attn.")], key=lambda s: int(s.split(".")[1]))
    keys += ["logits"]
    keys += sorted(k for k in out if k not in keys)
    tensors = {}
    for k in keys:
        v = out[k]
        tensors[k] = v.numpy().astype(np.int64 if v.dtype == torch.long else np.float32)
    save_file(tensors, path, metadata=meta)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="HF checkpoint dir (config.json + safetensors)")
    ap.add_argument("--inputs", required=True, help="processor-named inputs (.safetensors)")
    ap.add_argument("--out", required=True, help="output .safetensors")
    ap.add_argument("--attn-layer", default="all", help="N, N,M,..., all (default) or none")
    ap.add_argument("--use-audio-in-video", action="store_true")
    args = ap.parse_args(argv)
    cfg, W = load_model(args.model)
    inputs = read_inputs(args.inputs)
    out = forward(cfg, W, inputs, use_audio_in_video=args.use_audio_in_video,
                  attn_layers=parse_layers(args.attn_layer, cfg.num_layers))
    save_outputs(out, args.out, meta={"generator": "tools/ref/qwen25_omni_ref.py",
                                      "use_audio_in_video": int(args.use_audio_in_video)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
