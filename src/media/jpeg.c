/* src/media/jpeg.c: JPEG frames decoded the way PIL decodes them.
 *
 * The paper's frame lists are JPGs, which qwen-omni-utils opens with PIL (Image.open(...)
 * .convert("RGB")). PIL decodes through libjpeg(-turbo) with its defaults: islow DCT, fancy
 * (triangular) chroma upsampling, libjpeg's own YCbCr -> RGB. FFmpeg's mjpeg decoder followed by
 * swscale differs from that by a few levels at chroma edges, so JPEGs go through the same
 * library here and match PIL exactly (tests/golden/test_media_golden.c checks it). Grayscale
 * JPEGs are expanded to RGB by libjpeg as PIL's convert("RGB") does (R = G = B); CMYK/YCCK ones
 * are left to FFmpeg (PIL's CMYK conversion is its own formula; not reproduced).
 */
#include <setjmp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <jpeglib.h> /* after stdio.h: it uses FILE and size_t */
#include <jerror.h>

#include "avlens/media.h"
#include "base/internal.h"
#include "media/media_internal.h"

typedef struct {
    struct jpeg_error_mgr mgr;
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
} jerr;

static void on_error(j_common_ptr c)
{
    jerr *e = (jerr *)c->err;
    (*c->err->format_message)(c, e->msg);
    longjmp(e->jump, 1);
}

/* Warnings about corrupt data are tolerated, as PIL tolerates them; a file that ends early is an
 * error, as PIL's "image file is truncated" (LOAD_TRUNCATED_IMAGES is off by default). */
static void on_message(j_common_ptr c, int level)
{
    if (level < 0 && c->err->msg_code == JWRN_JPEG_EOF) {
        jerr *e = (jerr *)c->err;
        snprintf(e->msg, sizeof e->msg, "file is truncated");
        longjmp(e->jump, 1);
    }
}

bool avl__is_jpeg(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    unsigned char m[3] = {0};
    size_t n = fread(m, 1, 3, f);
    fclose(f);
    return n == 3 && m[0] == 0xFF && m[1] == 0xD8 && m[2] == 0xFF;
}

avl_status avl__jpeg_read(const char *path, uint8_t **rgb, int64_t *h, int64_t *w)
{
    *rgb = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return avl__err(AVL_E_IO, "%s: cannot open", path);
    struct jpeg_decompress_struct c;
    jerr e;
    memset(&e, 0, sizeof e);
    c.err = jpeg_std_error(&e.mgr);
    e.mgr.error_exit = on_error;
    e.mgr.emit_message = on_message;
    /* volatile: modified between setjmp and longjmp */
    uint8_t *volatile out = NULL;
    if (setjmp(e.jump)) {
        jpeg_destroy_decompress(&c);
        fclose(f);
        avl__free(out);
        return avl__err(AVL_E_MEDIA, "%s: bad JPEG: %s", path, e.msg);
    }
    jpeg_create_decompress(&c);
    snprintf(e.msg, sizeof e.msg, "not 3-channel");
    jpeg_stdio_src(&c, f);
    jpeg_read_header(&c, TRUE);
    if (c.jpeg_color_space == JCS_CMYK || c.jpeg_color_space == JCS_YCCK) {
        jpeg_destroy_decompress(&c);
        fclose(f);
        return AVL_E_UNSUPPORTED; /* the caller falls back to FFmpeg; no detail needed */
    }
    c.out_color_space = JCS_RGB;
    jpeg_start_decompress(&c);
    if (c.output_components != 3) longjmp(e.jump, 1);
    size_t stride = (size_t)c.output_width * 3;
    out = avl__malloc(stride * c.output_height); /* (h, w, 3) */
    if (!out) {
        jpeg_destroy_decompress(&c);
        fclose(f);
        return avl__err(AVL_E_NOMEM, "%s: out of memory for a %ux%u image", path, c.output_width, c.output_height);
    }
    while (c.output_scanline < c.output_height) {
        JSAMPROW row = out + stride * c.output_scanline;
        jpeg_read_scanlines(&c, &row, 1);
    }
    jpeg_finish_decompress(&c);
    *h = c.output_height;
    *w = c.output_width;
    jpeg_destroy_decompress(&c);
    fclose(f);
    *rgb = out;
    return AVL_OK;
}
