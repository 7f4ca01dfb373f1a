/* tools/avlens/cmd_merge.c: `avlens merge`: fold the shard files of each analysis into one. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char USAGE[] =
    "usage: avlens merge --in DIR [--out DIR]\n\n"
    "For each analysis folder DIR/<analysis>/ (trace, sinks, ...), reads every shard-*.jsonl and\n"
    "writes OUT/<analysis>/shard-0-of-1.jsonl: one record per sample id, sorted by id. When an\n"
    "id appears more than once, an ok record beats an error record, otherwise the latest one wins\n"
    "(\"written_at\", then file and line order); records that differ are reported as conflicts.\n"
    "Without --out the merge happens in place (the shard files are replaced by the merged one).\n"
    "A torn last line left by a killed run is skipped.\n";

int avl_cmd_merge(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        printf("%s", USAGE);
        return 0;
    }
    const char *in = NULL, *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--in") && i + 1 < argc) in = argv[++i];
        else if (!strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
        else return cli_usage_error("merge", "unexpected argument '%s'", argv[i]);
    }
    if (!in) return cli_usage_error("merge", "--in DIR is required");
    avl_merge_summary s;
    avl_status rc = avl_records_merge(in, out, &s);
    if (rc != AVL_OK) return cli_fail("merge", rc);
    printf("merged %lld analyses: %lld shard files, %lld records -> %lld samples (%lld duplicates, %lld conflicts, "
           "%lld torn lines skipped)\n",
           (long long)s.analyses, (long long)s.files, (long long)s.records, (long long)s.samples, (long long)s.duplicates,
           (long long)s.conflicts, (long long)s.torn);
    return 0;
}
