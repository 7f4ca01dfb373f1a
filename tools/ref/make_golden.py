#!/usr/bin/python3
"""Writes the golden cases tests/data/golden/<case>/{model/, inputs.safetensors, expected.safetensors,
case.json} from tiny checkpoints (make_tiny.py) and the reference (qwen25_omni_ref.py).

  /usr/bin/python3 tools/ref/make_golden.py [--out tests/data/golden] [case ...]

Deterministic: seeds are fixed per case, so rerunning rewrites identical files (up to the
platform's float rounding in torch). The C golden test reads case.json for the flags of the run.
Every float input (mel features, pixel patches) holds bfloat16-representable values and is stored
as BF16; the model weights are BF16 except where a case says F32.
"""

import argparse
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_tiny as mt                     # noqa: E402
import qwen25_omni_ref as ref              # noqa: E402

CASES = {
    "text_only": {
        "about": "text only (plain 1-D positions); F32 checkpoint",
        "model": {"preset": "default", "seed": 11, "dtype": "F32", "shards": 1},
        "spec": {"system_len": 6, "text_len": 14, "items": []},
        "attn_layers": [1],
    },
    "audio_only": {
        "about": "one audio of 230 valid mel frames (encoder chunks 200 + 30; odd 115 frames after "
                 "the conv so the pool drops one), 10 padding frames with junk; 57 audio tokens",
        "model": {"preset": "default", "seed": 12, "dtype": "BF16", "shards": 1},
        "spec": {"system_len": 5, "text_len": 8, "items": [{"type": "audio", "frames": 230, "pad": 10}]},
        "attn_layers": [0],
    },
    "video_only": {
        "about": "video 2 temporal grids of 4x10 patches (2x5 merged): windows of 4x4 units, one "
                 "partial; full attention in block 2 spans one grid; 20 video tokens",
        "model": {"preset": "default", "seed": 13, "dtype": "BF16", "shards": 1},
        "spec": {"system_len": 5, "text_len": 9,
                 "items": [{"type": "video", "grid": [2, 4, 10], "second_per_grid": 1.0}]},
        "attn_layers": [1],
    },
    "audio_in_video": {
        "about": "use_audio_in_video: 3 grids (t ids 0, 25, 50 -> 2 chunks), 250-frame audio (62 "
                 "tokens -> chunks of 50 + 12): V V A50 | V A12",
        "model": {"preset": "default", "seed": 14, "dtype": "BF16", "shards": 1},
        "spec": {"system_len": 6, "text_len": 10, "use_audio_in_video": True,
                 "items": [{"type": "video", "grid": [3, 2, 4], "second_per_grid": 1.0,
                            "audio_frames": 250, "audio_pad": 6}]},
        "attn_layers": [1],
    },
    "image_audio": {
        "about": "an image (1x4x6 patches, 6 tokens) then a separate audio (90 frames, 22 tokens)",
        "model": {"preset": "default", "seed": 15, "dtype": "BF16", "shards": 1},
        "spec": {"system_len": 4, "text_len": 7,
                 "items": [{"type": "image", "grid": [1, 4, 6]}, {"type": "audio", "frames": 90}]},
        "attn_layers": [1],
    },
    "odd_sizes": {
        "about": "hidden 72, 6 heads / 2 kv (GQA 3), head_dim 12, mrope [2,2,2], 3 layers; vision "
                 "hidden 24, head_dim 12, window 56 px (2 units), full block 0; audio d 24, 3 heads, "
                 "n_window 25; 2 checkpoint shards; audio in video with 2.4 s per grid (t ids 0, 60 -> "
                 "video longer than its audio) followed by a separate audio",
        "model": {"preset": "odd", "seed": 16, "dtype": "BF16", "shards": 2},
        "spec": {"system_len": 3, "text_len": 6, "use_audio_in_video": True,
                 "items": [{"type": "video", "grid": [2, 4, 6], "second_per_grid": 2.4,
                            "audio_frames": 130, "audio_pad": 3},
                           {"type": "audio", "frames": 61}]},
        "attn_layers": [2],
    },
}


def make_case(root, name, case):
    d = os.path.join(root, name)
    if os.path.exists(d):
        shutil.rmtree(d)
    os.makedirs(d)
    m = case["model"]
    cfgd = mt.tiny_config(m["preset"])
    mt.write_checkpoint(os.path.join(d, "model"), cfgd, mt.make_weights(cfgd, m["seed"]), m["dtype"], m["shards"])
    inputs = mt.make_inputs(cfgd, case["spec"], seed=m["seed"] + 100)
    mt.save_inputs(inputs, os.path.join(d, "inputs.safetensors"), "BF16")
    aiv = bool(case["spec"].get("use_audio_in_video", False))
    layers = ",".join(str(i) for i in case["attn_layers"])
    argv = ["--model", os.path.join(d, "model"), "--inputs", os.path.join(d, "inputs.safetensors"),
            "--out", os.path.join(d, "expected.safetensors"), "--attn-layer", layers]
    if aiv:
        argv.append("--use-audio-in-video")
    ref.main(argv)
    info = {
        "case": name,
        "about": case["about"],
        "use_audio_in_video": aiv,
        "attn_layers": case["attn_layers"],
        "model": m,
        "inputs_spec": case["spec"],
        "inputs_seed": m["seed"] + 100,
        "made_by": "tools/ref/make_golden.py " + name,
        "reference": "tools/ref/qwen25_omni_ref.py --model model --inputs inputs.safetensors "
                     "--out expected.safetensors --attn-layer " + layers + (" --use-audio-in-video" if aiv else ""),
    }
    with open(os.path.join(d, "case.json"), "w") as f:
        json.dump(info, f, indent=2)
        f.write("\n")
    size = sum(os.path.getsize(os.path.join(a, b)) for a, _, bs in os.walk(d) for b in bs)
    print(f"{name}: {size / 1024:.0f} KiB")


def main(argv=None):
    ap = argparse.ArgumentParser(description="write golden cases")
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.normpath(os.path.join(here, "..", "..", "tests", "data", "golden")))
    ap.add_argument("cases", nargs="*")
    args = ap.parse_args(argv)
    names = args.cases or list(CASES)
    for n in names:
        make_case(args.out, n, CASES[n])
    return 0


if __name__ == "__main__":
    sys.exit(main())
