/* tools/avlens/cmd_mkclip.c: `avlens mkclip`: write a synthetic clip (a coloured shape moving
 * over a dark background, with a tone, noise bursts or silence) without the ffmpeg program. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"

static const char *USAGE =
    "usage: avlens mkclip --out CLIP [--seconds S] [--size WxH] [--fps F] [--shape square|circle]\n"
    "                     [--color NAME] [--tone HZ|noise|silence|none] [--volume V] [--seed N]\n\n"
    "Writes a clip with a known answer: a bright shape crossing a dark background (its shape and\n"
    "colour are the visual class) and a sound track (a sine tone, noise bursts of 0.25 s every\n"
    "0.5 s, or silence: the audio class). The extension picks the container: .mp4/.mov (MPEG-4\n"
    "video, AAC audio), .mkv/.avi (MPEG-4 video, 16-bit PCM), .wav (the audio alone).\n\n"
    "  --out CLIP        the file to write\n"
    "  --seconds S       duration (default 2)\n"
    "  --size WxH        frame size, even sides (default 224x160)\n"
    "  --fps F           frame rate (default 10)\n"
    "  --shape NAME      square (default) or circle\n"
    "  --color NAME      red (default), green, blue, yellow, cyan, magenta, white, orange\n"
    "  --tone T          a frequency in Hz (default 440), noise, silence, or none (no audio track)\n"
    "  --volume V        the sound's amplitude factor, 0 to 1 (default 1)\n"
    "  --seed N          the shape's row and direction, and the noise (default 0)\n";


int avl_cmd_mkclip(int argc, char **argv)
{
    const char *cmd = "mkclip", *out = NULL;
    avl_clip_params p = avl_clip_default_params();
    long long seed = 0;
    static const struct option opts[] = {
        {"out", required_argument, 0, 'o'},   {"seconds", required_argument, 0, 'S'},
        {"size", required_argument, 0, 'z'},  {"fps", required_argument, 0, 'f'},
        {"shape", required_argument, 0, 'p'}, {"color", required_argument, 0, 'c'},
        {"colour", required_argument, 0, 'c'}, {"tone", required_argument, 0, 't'},
        {"volume", required_argument, 0, 'v'}, {"seed", required_argument, 0, 's'},  {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    optind = 1;
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, "h", opts, NULL)) != -1;) {
        switch (c) {
        case 'o': out = optarg; break;
        case 'S':
            if (!cli_parse_positive(optarg, &p.seconds)) return cli_usage_error(cmd, "--seconds wants a positive number, got '%s'", optarg);
            break;
        case 'f':
            if (!cli_parse_positive(optarg, &p.fps)) return cli_usage_error(cmd, "--fps wants a positive number, got '%s'", optarg);
            break;
        case 'z': {
            long long w, h;
            char tail;
            if (sscanf(optarg, "%lldx%lld%c", &w, &h, &tail) != 2 || w <= 0 || h <= 0)
                return cli_usage_error(cmd, "--size wants WxH, got '%s'", optarg);
            p.width = w;
            p.height = h;
            break;
        }
        case 'p':
            if (!strcmp(optarg, "square")) p.shape = AVL_CLIP_SQUARE;
            else if (!strcmp(optarg, "circle")) p.shape = AVL_CLIP_CIRCLE;
            else return cli_usage_error(cmd, "--shape wants square or circle, got '%s'", optarg);
            break;
        case 'c':
            if (avl_clip_color(optarg, p.color)) return cli_usage_error(cmd, "%s", avl_last_error());
            break;
        case 't':
            if (!strcmp(optarg, "noise")) p.sound = AVL_CLIP_NOISE;
            else if (!strcmp(optarg, "silence")) p.sound = AVL_CLIP_SILENCE;
            else if (!strcmp(optarg, "none")) p.sound = AVL_CLIP_NO_AUDIO;
            else if (cli_parse_positive(optarg, &p.tone_hz)) p.sound = AVL_CLIP_TONE;
            else return cli_usage_error(cmd, "--tone wants a frequency in Hz, noise, silence or none, got '%s'", optarg);
            break;
        case 's': if (!cli_parse_int(cmd, "--seed", optarg, &seed)) return 2; break;
        case 'v':
            if (!cli_parse_real(optarg, 0, 1, &p.volume)) return cli_usage_error(cmd, "--volume wants a number from 0 to 1, got '%s'", optarg);
            break;
        case 'h': fputs(USAGE, stdout); return 0;
        default:
            if (optopt) return cli_usage_error(cmd, "%s needs a value", argv[optind - 1]);
            return cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (!out) return cli_usage_error(cmd, "--out is required");
    p.seed = (uint64_t)seed;
    avl_status rc = avl_clip_write(out, &p);
    if (rc) return cli_fail(cmd, rc);
    const char *ext = strrchr(out, '.');
    if (ext && !strcasecmp(ext, ".wav")) printf("wrote %s: %g s of audio", out, p.seconds);
    else
        printf("wrote %s: %lldx%lld, %lld frames at %g fps, %g s", out, (long long)p.width, (long long)p.height,
               (long long)avl_clip_frames(&p), p.fps, p.seconds);
    if (p.sound == AVL_CLIP_TONE) printf(", %g Hz tone\n", p.tone_hz);
    else printf(", %s\n", p.sound == AVL_CLIP_NOISE ? "noise bursts" : p.sound == AVL_CLIP_SILENCE ? "silence" : "no audio");
    return 0;
}
