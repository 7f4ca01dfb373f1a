/* tools/avlens/cmd_report.c: `avlens report`: tables, figures and report.html from records. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char USAGE[] =
    "usage: avlens report --in DIR --out DIR [--title TEXT] [--strips N]\n\n"
    "Reads the records under DIR/<analysis>/*.jsonl (any shards; duplicates resolved as by merge)\n"
    "and writes to OUT:\n"
    "  dominance.csv     samples per dominance case and accuracy per run\n"
    "  trace.csv         every tracing setting: mean IE_clean, IE_corr (x100), #tokens\n"
    "  trace_table_K.csv the paper's Tab. 1/2 layout per (model, site, corruption)\n"
    "  mds.csv           MDS median / IQR / std per sink modality (Tab. 12)\n"
    "  sinks.csv         mean number of global sinks per N and modality\n"
    "  errors.csv        the samples that failed\n"
    "  report.md         all tables in Markdown\n"
    "  layer_window_*.svg, mds_per_sink.svg, sink_strip.svg   figures (when there is data)\n"
    "  report.html       one page with the tables and figures\n"
    "--strips N: samples shown in the sink heat strip (default 8).\n"
    "Record schemas: docs/records.md.\n";

int avl_cmd_report(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        printf("%s", USAGE);
        return 0;
    }
    const char *in = NULL, *out = NULL;
    avl_report_params p = avl_report_default_params();
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--in") && i + 1 < argc) in = argv[++i];
        else if (!strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
        else if (!strcmp(argv[i], "--title") && i + 1 < argc) p.title = argv[++i];
        else if (!strcmp(argv[i], "--strips") && i + 1 < argc) {
            long long v;
            if (!cli_parse_int("report", "--strips", argv[++i], &v)) return 2;
            if (v < 1 || v > 64) return cli_usage_error("report", "--strips wants 1..64, got %lld", v);
            p.max_strips = (int)v;
        } else
            return cli_usage_error("report", "unexpected argument '%s'", argv[i]);
    }
    if (!in || !out) return cli_usage_error("report", "--in DIR and --out DIR are required");
    avl_status rc = avl_report_write(in, out, &p);
    if (rc != AVL_OK) return cli_fail("report", rc);
    printf("report written to %s/report.html\n", out);
    return 0;
}
