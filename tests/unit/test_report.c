/* tests/unit/test_report.c: the report on tiny synthetic records whose numbers are worked out
 * by hand (in the comments), the SVG writer's pieces, and well-formedness of every SVG and of
 * report.html (a small XML checker here; xmllint too when it is installed). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "avl_test.h"
#include "data/svg.h"

static char *slurp(const char *path)
{
    char *b;
    size_t n;
    if (avl__read_file(path, &b, &n) != AVL_OK) fail_msg("%s", avl_last_error());
    return b;
}

/* A minimal XML well-formedness check: balanced tags, quoted attributes, known entities.
 * Returns NULL when fine, else a static description. */
static const char *xml_check(const char *s)
{
    static char why[256];
    const char *stack[256];
    size_t lens[256];
    int depth = 0, roots = 0;
    for (const char *p = s; *p;) {
        if (*p == '&') {
            static const char *const ents[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&#39;"};
            bool ok = false;
            for (int k = 0; k < 5 && !ok; k++) ok = !strncmp(p, ents[k], strlen(ents[k]));
            if (!ok) return snprintf(why, sizeof why, "bad entity at '%.20s'", p), why;
            p++;
            continue;
        }
        if (*p != '<') {
            p++;
            continue;
        }
        if (!strncmp(p, "<?", 2) || !strncmp(p, "<!", 2)) {
            p = strchr(p, '>');
            if (!p) return "unterminated declaration";
            p++;
            continue;
        }
        bool closing = p[1] == '/';
        const char *name = p + (closing ? 2 : 1);
        size_t nl = strcspn(name, " \t\n/>");
        if (nl == 0) return snprintf(why, sizeof why, "empty tag name at '%.20s'", p), why;
        const char *q = name + nl;
        bool self = false;
        while (*q && *q != '>') {
            if (*q == '"' || *q == '\'') {
                const char *e = strchr(q + 1, *q);
                if (!e) return "unterminated attribute";
                for (const char *c = q + 1; c < e; c++)
                    if (*c == '<') return snprintf(why, sizeof why, "'<' in an attribute of <%.*s>", (int)nl, name), why;
                q = e + 1;
                continue;
            }
            if (*q == '=' && q[1] != '"' && q[1] != '\'') return snprintf(why, sizeof why, "unquoted attribute in <%.*s>", (int)nl, name), why;
            if (*q == '/' && q[1] == '>') self = true;
            q++;
        }
        if (!*q) return "unterminated tag";
        if (closing) {
            if (depth == 0 || lens[depth - 1] != nl || strncmp(stack[depth - 1], name, nl))
                return snprintf(why, sizeof why, "</%.*s> does not close the open tag", (int)nl, name), why;
            depth--;
        } else if (!self) {
            if (depth == 0) roots++;
            if (depth == 256) return "too deep";
            stack[depth] = name;
            lens[depth] = nl;
            depth++;
        } else if (depth == 0) {
            roots++;
        }
        p = q + 1;
    }
    if (depth) return snprintf(why, sizeof why, "<%.*s> is never closed", (int)lens[depth - 1], stack[depth - 1]), why;
    if (roots != 1) return snprintf(why, sizeof why, "%d root elements", roots), why;
    return NULL;
}

static void expect_well_formed(const char *path)
{
    char *x = slurp(path);
    const char *why = xml_check(x);
    if (why) fail_msg("%s: %s", path, why);
    free(x);
    if (system("command -v xmllint >/dev/null 2>&1") == 0) {
        char cmd[1400];
        snprintf(cmd, sizeof cmd, "xmllint --noout '%s'", path);
        if (system(cmd) != 0) fail_msg("xmllint rejects %s", path);
    }
}

static void write_shard(const char *dir, const char *analysis, const char *lines)
{
    char folder[1200], path[1300];
    snprintf(folder, sizeof folder, "%s/%s", dir, analysis);
    mkdir(folder, 0777);
    snprintf(path, sizeof path, "%s/shard-0-of-1.jsonl", folder);
    avl_test_write_file(path, lines, strlen(lines));
}

static void make_records(const char *in)
{
    write_shard(in, "dominance",
                /* 3 ok: audio, video, neither. Acc. AV 3/3 = 100.0, A (K, C!=B, B!=A) 1/3 = 33.3, V (R!=K, B, A) 2/3 = 66.7 */
                "{\"id\":\"s1\",\"analysis\":\"dominance\",\"status\":\"ok\",\"model\":\"tiny\",\"label\":\"K\",\"answers\":{\"av\":\"K\",\"a\":\"K\",\"v\":\"R\"},\"case\":\"audio\"}\n"
                "{\"id\":\"s2\",\"analysis\":\"dominance\",\"status\":\"ok\",\"model\":\"tiny\",\"label\":\"B\",\"answers\":{\"av\":\"B\",\"a\":\"C\",\"v\":\"B\"},\"case\":\"video\"}\n"
                "{\"id\":\"s3\",\"analysis\":\"dominance\",\"status\":\"ok\",\"model\":\"tiny\",\"label\":\"A\",\"answers\":{\"av\":\"A\",\"a\":\"B\",\"v\":\"A\"},\"case\":\"none\"}\n"
                "{\"id\":\"s4\",\"analysis\":\"dominance\",\"status\":\"error\",\"code\":\"media error\",\"message\":\"s4.mp4: cannot decode\"}\n");
    write_shard(in, "trace",
                /* audio-dominant sink N=2: IE_clean (0.10+0.30)/2 = 20.00, IE_corr (0.05+0.15)/2 = 10.00, tokens 15.0
                 * audio-dominant all: 60.00, 50.00, 110.0; video-dominant sink N=2: 20.00, 10.00, 4.0
                 * windows, sink N=2, IE_clean: [0,2) (0.02+0.04)/2 = 3.00, [2,4) (0.08+0.10)/2 = 9.00 */
                "{\"id\":\"t1\",\"analysis\":\"trace\",\"status\":\"ok\",\"model\":\"tiny\",\"dominance\":\"audio\",\"site\":\"before_attn\",\"corruption\":\"zero\",\"n_layers\":4,\"results\":["
                "{\"set\":\"sink\",\"n\":2,\"layer_start\":0,\"layer_end\":4,\"n_tokens\":10,\"ie_clean\":0.10,\"ie_corr\":0.05},"
                "{\"set\":\"all\",\"layer_start\":0,\"layer_end\":4,\"n_tokens\":100,\"ie_clean\":0.5,\"ie_corr\":0.4},"
                "{\"set\":\"sink\",\"n\":2,\"layer_start\":0,\"layer_end\":2,\"n_tokens\":10,\"ie_clean\":0.02,\"ie_corr\":0.01},"
                "{\"set\":\"sink\",\"n\":2,\"layer_start\":2,\"layer_end\":4,\"n_tokens\":10,\"ie_clean\":0.08,\"ie_corr\":0.03}]}\n"
                "{\"id\":\"t2\",\"analysis\":\"trace\",\"status\":\"ok\",\"model\":\"tiny\",\"dominance\":\"audio\",\"site\":\"before_attn\",\"corruption\":\"zero\",\"n_layers\":4,\"results\":["
                "{\"set\":\"sink\",\"n\":2,\"layer_start\":0,\"layer_end\":4,\"n_tokens\":20,\"ie_clean\":0.30,\"ie_corr\":0.15},"
                "{\"set\":\"all\",\"layer_start\":0,\"layer_end\":4,\"n_tokens\":120,\"ie_clean\":0.7,\"ie_corr\":0.6},"
                "{\"set\":\"sink\",\"n\":2,\"layer_start\":0,\"layer_end\":2,\"n_tokens\":20,\"ie_clean\":0.04,\"ie_corr\":0.03},"
                "{\"set\":\"sink\",\"n\":2,\"layer_start\":2,\"layer_end\":4,\"n_tokens\":20,\"ie_clean\":0.10,\"ie_corr\":0.05}]}\n"
                "{\"id\":\"t3\",\"analysis\":\"trace\",\"status\":\"ok\",\"model\":\"tiny\",\"dominance\":\"video\",\"site\":\"before_attn\",\"corruption\":\"zero\",\"n_layers\":4,\"results\":["
                "{\"set\":\"sink\",\"n\":2,\"layer_start\":0,\"layer_end\":4,\"n_tokens\":4,\"ie_clean\":0.2,\"ie_corr\":0.1}]}\n"
                "{\"id\":\"t4\",\"analysis\":\"trace\",\"status\":\"error\",\"code\":\"i/o error\",\"message\":\"x\"}\n");
    write_shard(in, "mds",
                /* video values -0.5, 0, 0.5, 1: median 0.25, IQR 0.625 - (-0.125) = 0.75, std sqrt(0.3125) = 0.559
                 * audio: -0.2 only: median -0.2, IQR 0, std 0 */
                "{\"id\":\"m1\",\"analysis\":\"mds\",\"status\":\"ok\",\"n_layers\":3,\"sinks\":[{\"pos\":3,\"modality\":\"video\",\"mds\":[-0.5,0,null]},"
                "{\"pos\":10,\"modality\":\"audio\",\"mds\":[-0.2,null,null]}]}\n"
                "{\"id\":\"m2\",\"analysis\":\"mds\",\"status\":\"ok\",\"n_layers\":3,\"sinks\":[{\"pos\":5,\"modality\":\"video\",\"mds\":[0.5,1]}]}\n");
    write_shard(in, "sinks",
                /* N=2: 3 sinks (0 text, 3 video, 10 audio); N=4: 1 (text) */
                "{\"id\":\"k1\",\"analysis\":\"sinks\",\"status\":\"ok\",\"n_tokens\":20,\"n_layers\":4,"
                "\"segments\":[{\"modality\":\"text\",\"start\":0,\"end\":3},{\"modality\":\"video\",\"start\":3,\"end\":9},"
                "{\"modality\":\"audio\",\"start\":9,\"end\":15},{\"modality\":\"text\",\"start\":15,\"end\":20}],"
                "\"freq\":[[0,4],[3,2],[10,1]],\"global\":{\"2\":[0,3,10],\"4\":[0]}}\n");
}

static void hand_computed_tables(void **state)
{
    char in[1024], out[1100];
    snprintf(in, sizeof in, "%s", avl_test_dir("report_in"));
    snprintf(out, sizeof out, "%s/../report_out", in);
    make_records(in);
    avl_report_params p = avl_report_default_params();
    p.title = "Tiny <report> & co";
    assert_int_equal(avl_report_write(in, out, &p), AVL_OK);
    char path[1300];
#define READ(name) (snprintf(path, sizeof path, "%s/%s", out, name), slurp(path))
    char *x = READ("dominance.csv");
    assert_string_equal(x, "model,samples,audio-dominant,video-dominant,neither,acc. AV (%),acc. A (%),acc. V (%)\n"
                           "tiny,3,1,1,1,100.0,33.3,66.7\n");
    free(x);
    x = READ("trace_table_1.csv");
    assert_non_null(strstr(x, "All,60.00,50.00,110.0,2,-,-,-,-\n"));
    assert_non_null(strstr(x, "Sink (N=2),20.00,10.00,15.0,2,20.00,10.00,4.0,1\n"));
    assert_true(strstr(x, "All,") < strstr(x, "Sink (N=2)")); /* the paper's row order */
    free(x);
    x = READ("trace.csv");
    assert_non_null(strstr(x, "tiny | before_attn | zero,audio,sink,2,0,2,2,3.00,2.00,15.0\n"));
    assert_non_null(strstr(x, "tiny | before_attn | zero,audio,sink,2,2,4,2,9.00,4.00,15.0\n"));
    free(x);
    x = READ("mds.csv");
    assert_string_equal(x, "sink modality,samples,sinks,values,median,IQR,std\n"
                           "video,2,2,4,0.250,0.750,0.559\n"
                           "audio,2,1,1,-0.200,0.000,0.000\n");
    free(x);
    x = READ("sinks.csv");
    assert_string_equal(x, "N,samples,sinks,video,audio,text/other\n2,1,3.0,1.0,1.0,1.0\n4,1,1.0,0.0,0.0,1.0\n");
    free(x);
    x = READ("errors.csv");
    assert_non_null(strstr(x, "dominance,s4,media error,s4.mp4: cannot decode\n"));
    assert_non_null(strstr(x, "trace,t4,i/o error,x\n"));
    free(x);
    x = READ("report.md");
    assert_non_null(strstr(x, "| Sink (N=2) | 20.00 | 10.00 | 15.0 | 2 | 20.00 | 10.00 | 4.0 | 1 |\n"));
    assert_non_null(strstr(x, "![mds_per_sink.svg](mds_per_sink.svg)"));
    free(x);
    x = READ("report.html");
    assert_non_null(strstr(x, "<title>Tiny &lt;report&gt; &amp; co</title>"));
    /* figures are inline (part of the DOM) with a link to their file */
    assert_non_null(strstr(x, "<a href=\"layer_window_1_clean.svg\">"));
    assert_non_null(strstr(x, "<a href=\"sink_strip.svg\">"));
    int n_svg = 0;
    for (const char *q = x; (q = strstr(q, "<svg xmlns")); q++) n_svg++;
    assert_int_equal(n_svg, 4);
    assert_non_null(strstr(x, "<td class=\"num\">0.559</td>"));
    free(x);
    static const char *const svgs[] = {"layer_window_1_clean.svg", "layer_window_1_corr.svg", "mds_per_sink.svg",
                                       "sink_strip.svg", "report.html"};
    for (size_t i = 0; i < sizeof svgs / sizeof svgs[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", out, svgs[i]);
        expect_well_formed(path);
    }
    /* the layer-window curve passes through (0, 3.00) and (2, 9.00): check the polyline */
    x = READ("layer_window_1_clean.svg");
    assert_non_null(strstr(x, "<polyline"));
    assert_non_null(strstr(x, ">Sink (N=2)</text>"));
    free(x);
#undef READ
}

/* The caller's intro, caption records, a chair.csv in the Tab. 3 layout with its bar chart, and a
 * sample whose every-layer result is in two trace folders (trace/ and trace.windows/) counted
 * once. */
static void captions_chair_and_duplicates(void **state)
{
    (void)state;
    const char *in = avl_test_dir("report_extras");
    char out[1100], chair[1100], path[1300];
    snprintf(out, sizeof out, "%s/out", in);
    snprintf(chair, sizeof chair, "%s/chair.csv", in);
    write_shard(in, "caption.vanilla",
                "{\"id\":\"c1\",\"analysis\":\"caption\",\"status\":\"ok\",\"caption\":\"a dog <barks>\",\"method\":\"vanilla\"}\n");
    write_shard(in, "caption.asd",
                "{\"id\":\"c1\",\"analysis\":\"caption\",\"status\":\"ok\",\"caption\":\"a dog\",\"method\":\"asd\"}\n");
    const char *rec = "{\"id\":\"t1\",\"analysis\":\"trace\",\"status\":\"ok\",\"model\":\"tiny\",\"dominance\":\"audio\","
                      "\"n_layers\":4,\"results\":[{\"set\":\"sink\",\"n\":2,\"layer_start\":0,\"layer_end\":4,\"n_tokens\":10,"
                      "\"ie_clean\":0.5,\"ie_corr\":0.25}]}\n";
    write_shard(in, "trace", rec);
    write_shard(in, "trace.windows", rec);
    const char *csv = "method,dataset,captions,chair_s,chair_i,precision,recall,f1,mentions,hallucinated_mentions\n"
                      "vanilla,vgg,10,40.0000,20.0000,80.0000,50.0000,61.5385,20,4\n"
                      "asd,vgg,10,30.0000,15.0000,85.0000,50.0000,62.9630,20,3\n"
                      "\"vcd, noised\",vgg,10,35.0000,17.5000,82.5000,50.0000,62.2642,20,3\n";
    avl_test_write_file(chair, csv, strlen(csv));
    avl_report_params p = avl_report_default_params();
    p.intro_html = "<p id=\"intro\">known answers</p>";
    p.chair_csv = chair;
    assert_int_equal(avl_report_write(in, out, &p), AVL_OK);
    char *x;
    size_t n;
    snprintf(path, sizeof path, "%s/report.html", out);
    assert_int_equal(avl__read_file(path, &x, &n), AVL_OK);
    assert_non_null(strstr(x, "<p id=\"intro\">known answers</p>"));
    assert_non_null(strstr(x, "<td>a dog &lt;barks&gt;</td>"));
    assert_non_null(strstr(x, "<th>vgg CHAIR_s</th><th>vgg CHAIR_i</th><th>vgg F1</th>"));
    assert_non_null(strstr(x, "<td>vcd, noised</td><td class=\"num\">35.0</td><td class=\"num\">17.5</td><td class=\"num\">62.3</td>"));
    assert_non_null(strstr(x, "<a href=\"chair.svg\">"));
    avl__free(x);
    snprintf(path, sizeof path, "%s/trace.csv", out);
    assert_int_equal(avl__read_file(path, &x, &n), AVL_OK);
    assert_non_null(strstr(x, "tiny | before_attn | zero,audio,sink,2,0,all,1,50.00,25.00,10.0\n")); /* 1 sample, not 2 */
    avl__free(x);
    snprintf(path, sizeof path, "%s/chair.svg", out);
    expect_well_formed(path);
    snprintf(path, sizeof path, "%s/report.html", out);
    expect_well_formed(path);
    /* a file that is not avlens chair's */
    avl_test_write_file(chair, "a,b\n1,2\n", 8);
    AVL_EXPECT_ERROR(avl_report_write(in, out, &p), AVL_E_FORMAT, "not a chair.csv");
}

static void no_records(void **state)
{
    const char *in = avl_test_dir("report_empty");
    char out[1100];
    snprintf(out, sizeof out, "%s/out", in);
    AVL_EXPECT_ERROR(avl_report_write(in, out, NULL), AVL_E_NOTFOUND, "no records");
    AVL_EXPECT_ERROR(avl_report_write("/nonexistent/in", out, NULL), AVL_E_IO, "/nonexistent/in");
}

static void ticks(void **state)
{
    double f, s;
    int n = avl__svg_ticks(0, 1, 5, &f, &s);
    assert_true(f == 0 && s == 0.2 && n == 6);
    n = avl__svg_ticks(-0.37, 0.81, 5, &f, &s);
    assert_true(s == 0.2);
    assert_true(f > -0.37 - 1e-9 && f < -0.19);
    n = avl__svg_ticks(3, 3, 5, &f, &s); /* degenerate range: widened */
    assert_true(n >= 2);
    n = avl__svg_ticks(0, 27, 8, &f, &s);
    assert_true(s == 5 && n == 6);
}

static void svg_pieces_escape_and_gaps(void **state)
{
    double x[4] = {0, 1, 2, 3}, y[4] = {1, NAN, 2, 3};
    avl__svg_series s = {"a<b & \"c\"", x, y, 4};
    avl__svg_frame f = {"T & <t>", "x", "y", 0, 0, true, "sub & title"};
    avl__sb b = {0};
    avl__svg_line_chart(&b, &f, &s, 1);
    assert_false(b.failed);
    assert_null(xml_check(b.buf));
    assert_non_null(strstr(b.buf, "a&lt;b &amp; &quot;c&quot;"));
    /* the NaN splits the line in two polylines */
    int polys = 0;
    for (const char *p = b.buf; (p = strstr(p, "<polyline")); p++) polys++;
    assert_int_equal(polys, 2);
    avl__sb_free(&b);
    avl__svg_line_chart(&b, &f, NULL, 0); /* no data: still a valid document */
    assert_null(xml_check(b.buf));
    avl__sb_free(&b);
    assert_string_equal(avl__svg_modality_colour("video"), "#0072B2");
    assert_string_equal(avl__svg_modality_colour("audio"), "#D55E00");
}

static void make_sweep_records(const char *in);

static void alloc_failures(void **state)
{
    /* every allocation failure: AVL_E_NOMEM, no crash, no leak (ASan checks the leaks) */
    char in[1024], out[1100];
    snprintf(in, sizeof in, "%s", avl_test_dir("report_fault_in"));
    snprintf(out, sizeof out, "%s/../report_fault_out", in);
    make_records(in);
    make_sweep_records(in);
    for (int64_t n = 1; n < 5000; n++) {
        avl__alloc_fail_after(n);
        int rc = avl_report_write(in, out, NULL);
        int64_t used = avl__alloc_fail_after(0);
        if (rc == AVL_OK) {
            if (used < n) return;
            continue;
        }
        if (rc != AVL_E_NOMEM) fail_msg("allocation %lld: status %d: %s", (long long)n, rc, avl_last_error());
    }
    fail_msg("the report needs more than 5000 allocations?");
}

/* The bottom-up sweep tables (Tab. 6-7) on three made-up sweep records, worked out by hand.
 * w1 (video-dominant, top_k 1,2,4): ranked by IE_clean, ties by IE_corr: p10 .5, p12 (.2, .3),
 *   p11 (.2, 0), p13 .05, p14 null last. N=2 (sink2 or object): p10 p12 p11 p13 yes -> top-1 1,
 *   top-2 1, top-4 1. N=3 (sink3 or object): p12, p13 -> top-1 0, top-2 .5, top-4 .5.
 * w2 (video, top_k 1,2,4; 2 tokens so k caps at 2): p21 .3, p20 .1 (sink2, sink3) -> N=2 and N=3:
 *   top-1 0, top-2 .5, top-4 .5.  Means, video: N=2 .50 .75 .75; N=3 .00 .50 .50.
 * w3 (audio, no top_k: 5,10,20; 3 equal tokens: position order): p30 sink2, p31 -, p32 object ->
 *   N=2: 2/3 = .67 at every k; N=3: 1/3 = .33. No group runs: no Tab. 7 rows for audio.
 * Tab. 7, video (sums over w1 + w2): All IE_clean .8+.4 = 1.2, IE_corr .4+.2 = .6, tokens 5+2;
 *   S u O N=2 .9, .4, 4+1 -> shares .75, .67; means x100 45.00 20.00, 2.5 tokens;
 *   Neither N=2 .3, .15 -> .25, .25; 15.00 7.50 1.0;  S u O N=3 .7, .3 -> .58, .50; 35.00 15.00 1.5;
 *   Neither N=3 .5, .2 -> .42, .33; 25.00 10.00 2.0;  All: 1.00 1.00 60.00 30.00 3.5. */
static void make_sweep_records(const char *in)
{
#define TK(p, c, r, s2, s3, o) "{\"pos\":" #p ",\"chunk\":0,\"t0\":0,\"ie_clean\":" #c ",\"ie_corr\":" #r ",\"sink2\":" #s2 ",\"sink3\":" #s3 ",\"object\":" #o "}"
#define GR(g, n, c, r, t) "{\"group\":\"" g "\",\"n\":" #n ",\"n_tokens\":" #t ",\"ie_clean\":" #c ",\"ie_corr\":" #r "}"
#define HEAD(id, dom) "{\"id\":\"" id "\",\"analysis\":\"sweep\",\"status\":\"ok\",\"model\":\"tiny\",\"dominance\":\"" dom "\",\"site\":\"before_attn\",\"corruption\":\"zero\",\"n_layers\":4,"
    write_shard(in, "sweep",
                HEAD("w1", "video") "\"top_k\":[1,2,4],\"tokens\":[" TK(10, 0.5, 0.1, true, false, false) "," TK(11, 0.2, 0.0, true, false, false) ","
                TK(12, 0.2, 0.3, false, false, true) "," TK(13, 0.05, 0.0, true, true, false) "," TK(14, null, null, false, false, false) "],"
                "\"groups\":[" GR("all", null, 0.8, 0.4, 5) "," GR("sink_object", 2, 0.6, 0.3, 4) "," GR("neither", 2, 0.1, 0.05, 1) ","
                GR("sink_object", 3, 0.4, 0.2, 2) "," GR("neither", 3, 0.3, 0.1, 3) "]}\n"
                HEAD("w2", "video") "\"top_k\":[1,2,4],\"tokens\":[" TK(20, 0.1, 0, true, true, false) "," TK(21, 0.3, 0, false, false, false) "],"
                "\"groups\":[" GR("all", null, 0.4, 0.2, 2) "," GR("sink_object", 2, 0.3, 0.1, 1) "," GR("neither", 2, 0.2, 0.1, 1) ","
                GR("sink_object", 3, 0.3, 0.1, 1) "," GR("neither", 3, 0.2, 0.1, 1) "]}\n"
                HEAD("w3", "audio") "\"tokens\":[" TK(30, 0.1, 0, true, false, false) "," TK(31, 0.1, 0, false, false, false) ","
                TK(32, 0.1, 0, false, false, true) "]}\n");
#undef TK
#undef GR
#undef HEAD
}

static void sweep_tables_by_hand(void **state)
{
    (void)state;
    char in[1024], out[1100], path[1300];
    snprintf(in, sizeof in, "%s", avl_test_dir("report_sweep_in"));
    snprintf(out, sizeof out, "%s", avl_test_dir("report_sweep_out"));
    make_sweep_records(in);
    assert_int_equal(avl_report_write(in, out, NULL), AVL_OK);
    snprintf(path, sizeof path, "%s/sweep_topk.csv", out);
    char *x = slurp(path);
    assert_non_null(strstr(x, "model | site | corruption,dominance,group,top-1,top-2,top-4,top-5,top-10,top-20,samples\n"));
    const char *v2 = strstr(x, "tiny | before_attn | zero,video,S u O (N=2),0.50,0.75,0.75,-,-,-,2\n");
    assert_non_null(v2);
    assert_non_null(strstr(x, "tiny | before_attn | zero,video,Neither (N=2),0.50,0.25,0.25,-,-,-,2\n"));
    assert_non_null(strstr(x, "tiny | before_attn | zero,video,S u O (N=3),0.00,0.50,0.50,-,-,-,2\n"));
    assert_non_null(strstr(x, "tiny | before_attn | zero,video,Neither (N=3),1.00,0.50,0.50,-,-,-,2\n"));
    const char *a2 = strstr(x, "tiny | before_attn | zero,audio,S u O (N=2),-,-,-,0.67,0.67,0.67,1\n");
    assert_non_null(a2);
    assert_true(v2 < a2); /* video-dominant first, as the paper */
    assert_non_null(strstr(x, "tiny | before_attn | zero,audio,Neither (N=2),-,-,-,0.33,0.33,0.33,1\n"));
    assert_non_null(strstr(x, "tiny | before_attn | zero,audio,S u O (N=3),-,-,-,0.33,0.33,0.33,1\n"));
    free(x);
    snprintf(path, sizeof path, "%s/sweep_share.csv", out);
    x = slurp(path);
    assert_non_null(strstr(x, "tiny | before_attn | zero,video,All,1.00,1.00,60.00,30.00,3.5,2\n"
                              "tiny | before_attn | zero,video,S u O (N=2),0.75,0.67,45.00,20.00,2.5,2\n"
                              "tiny | before_attn | zero,video,Neither (N=2),0.25,0.25,15.00,7.50,1.0,2\n"
                              "tiny | before_attn | zero,video,S u O (N=3),0.58,0.50,35.00,15.00,1.5,2\n"
                              "tiny | before_attn | zero,video,Neither (N=3),0.42,0.33,25.00,10.00,2.0,2\n"));
    assert_null(strstr(x, "audio"));
    free(x);
    snprintf(path, sizeof path, "%s/report.html", out);
    expect_well_formed(path);
    x = slurp(path);
    assert_non_null(strstr(x, "Tab. 6 layout"));
    assert_non_null(strstr(x, "Tab. 7 layout"));
    free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hand_computed_tables),
        cmocka_unit_test(sweep_tables_by_hand),
        cmocka_unit_test(alloc_failures),
        cmocka_unit_test(no_records),
        cmocka_unit_test(captions_chair_and_duplicates),
        cmocka_unit_test(ticks),
        cmocka_unit_test(svg_pieces_escape_and_gaps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
