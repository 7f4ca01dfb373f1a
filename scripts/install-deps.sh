#!/usr/bin/env bash
# Installs every Debian package avlens needs to build, test and run its demo.
# Idempotent: packages already present are not touched, and a machine that has them all
# needs neither root nor network. Reference tools (tools/ref/, Python) have their own
# optional list: pass --ref to add python3-torch, python3-numpy and python3-pil. Looking at the report's
# figures headless (docs/records.md) has its own optional list: pass --render to add chromium
# and fonts-dejavu-core; scripts/test.sh passes it, because tests/cli/test_demo.sh opens the demo's
# report.html in headless Chromium (it skips that part, saying so, where chromium is absent).
set -euo pipefail

pkgs=(
  build-essential cmake pkg-config git
  clang libclang-rt-14-dev          # libFuzzer + sanitizers for the fuzz targets
  libdnnl-dev                       # oneDNN: bf16 GEMM on AMX / AVX512-BF16
  libopenblas-dev                   # portable fp32 GEMM fallback
  libomp-dev                        # OpenMP for clang builds
  libavformat-dev libavcodec-dev libavutil-dev libswscale-dev libswresample-dev
  libfftw3-dev                      # log-mel features
  libjpeg-dev                       # JPEG frames decoded as PIL decodes them (libjpeg-turbo)
  libjansson-dev                    # JSON (config, tokenizer, manifests, records)
  libpcre2-dev                      # the tokenizer's pre-tokeniser regex
  libutf8proc-dev                   # NFC normalisation
  libcmocka-dev                     # unit-test framework
  libxml2-utils                     # xmllint: tests check the report's SVG/HTML are well-formed
  ffmpeg                            # tests synthesise clips with the CLI
  nodejs npm                        # tests run the JavaScript Qwen tokenizer as reference
)
for arg in "$@"; do
  case "$arg" in
    --ref) pkgs+=(python3 python3-numpy python3-torch python3-pil) ;;
    --render) pkgs+=(chromium fonts-dejavu-core) ;;  # headless screenshots of report.html
  esac
done

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    # nodejs/npm may come from elsewhere (the machine image): accept a working binary
    case "$p" in
      nodejs) command -v node >/dev/null 2>&1 && continue ;;
      npm) command -v npm >/dev/null 2>&1 && continue ;;
    esac
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "install-deps: installing ${missing[*]}" >&2
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
    echo "install-deps: need root to install: ${missing[*]}" >&2
    echo "install-deps: run as root: apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
else SUDO=; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
