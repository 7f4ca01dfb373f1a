/* src/kernels/gemm_onednn.c: the oneDNN (2.6, C API) backend: bf16 matmul on AMX or
 * AVX512-BF16.
 *
 *   src  X rounded fp32 -> bf16 (nearest even) into a scratch (M, K) per call
 *   wei  W used in place: oneDNN's weights are (K, N); ours are W[N, K] with row stride ld,
 *        i.e. the (K, N) matrix with strides (1, ld) (format "ba" when ld == K). No reorder
 *        is asked for: a plain strided memory descriptor is given, and the matmul packs what
 *        it needs internally per call (the bf16 brgemm matmul copies B blocks on the fly).
 *        So nothing is cached per weight and no extra memory is held.
 *   bias f32 (converted from the checkpoint's dtype per call, N floats), dims (1, N)
 *   dst  Y fp32, strides (ldy, 1); accumulate = a "sum" post-op (Y = X·W^T + bias + old Y)
 * F32 weights (4-byte aligned) run an f32 matmul (no rounding of X). F16 weights, and F32 ones
 * that are only 2-byte aligned, go to the OpenBLAS backend (oneDNN 2.6 has f16 matmul only on
 * AVX512-FP16 parts). So do bf16 weights on a CPU where oneDNN 2.6 has no bf16 matmul at all
 * (it needs AVX512_CORE; on AVX2 machines primitive creation says "unimplemented"): the probe
 * tries one (avl__gemm_onednn_has_bf16).
 *
 * Primitives are cached, keyed by (M, N, K, ld, ldy, dtype, bias, accumulate): prefill sees a
 * new M per sequence and decode uses the skinny kernel, so a small LRU (64) suffices. Entries
 * in use are never evicted (reference count), so concurrent callers are safe; execution is
 * outside the lock. Each call passes its own scratchpad (user scratchpad mode), so a cached
 * primitive may run on any thread, concurrently. oneDNN uses the OpenMP runtime here, so
 * avl__set_threads governs it.
 */
#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "base/internal.h"
#include "kernels/gemm.h"

typedef struct {
    int64_t m, n, k, ld, ldy;
    int dtype, bias, acc;
} key_t_;

typedef struct {
    key_t_ key;
    dnnl_primitive_t prim;
    dnnl_memory_desc_t src_md, wei_md, bias_md, dst_md, scratch_md;
    size_t scratch_bytes;
    int users;
    uint64_t last_use;
} entry;

enum { CACHE = 64 };
static entry g_cache[CACHE];
static uint64_t g_tick;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static dnnl_engine_t g_engine;
static bool g_bf16_ok; /* this oneDNN build and CPU can make a bf16 matmul */

static const char *isa_name(dnnl_cpu_isa_t isa)
{
    switch (isa) {
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx512_mic: return "avx512_mic";
    case dnnl_cpu_isa_avx512_mic_4ops: return "avx512_mic_4ops";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    default: return "unknown";
    }
}

static avl_status dn_probe(char *isa, size_t n)
{
    if (!g_engine && dnnl_engine_create(&g_engine, dnnl_cpu, 0) != dnnl_success)
        return avl__err(AVL_E_UNSUPPORTED, "onednn: no CPU engine");
    const dnnl_version_t *v = dnnl_version();
    char impl[64];
    avl__gemm_onednn_impl(64, 64, 64, impl, sizeof impl);
    g_bf16_ok = strcmp(impl, "unavailable") != 0;
    snprintf(isa, n, "%s", isa_name(dnnl_get_effective_cpu_isa()));
    avl__log(AVL_LOG_DEBUG, "onednn %d.%d.%d, isa %s", v->major, v->minor, v->patch, isa);
    return AVL_OK;
}

#define DN(call, what)                                                                       \
    do {                                                                                     \
        dnnl_status_t s_ = (call);                                                           \
        if (s_ != dnnl_success) {                                                            \
            rc = avl__err(AVL_E_INTERNAL, "onednn: %s failed (status %d) for M=%lld N=%lld K=%lld", \
                          what, (int)s_, (long long)k->m, (long long)k->n, (long long)k->k);   \
            goto done;                                                                       \
        }                                                                                    \
    } while (0)

static avl_status make_entry(const key_t_ *k, entry *e)
{
    avl_status rc = AVL_OK;
    dnnl_data_type_t dt = k->dtype == AVL__DT_BF16 ? dnnl_bf16 : dnnl_f32;
    dnnl_matmul_desc_t md;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL;
    memset(e, 0, sizeof *e);
    e->key = *k;
    dnnl_dims_t sdims = {k->m, k->k}, sstr = {k->k, 1};
    dnnl_dims_t wdims = {k->k, k->n}, wstr = {1, k->ld};
    dnnl_dims_t ddims = {k->m, k->n}, dstr = {k->ldy, 1};
    dnnl_dims_t bdims = {1, k->n}, bstr = {k->n, 1};
    DN(dnnl_memory_desc_init_by_strides(&e->src_md, 2, sdims, dt, sstr), "src desc");
    DN(dnnl_memory_desc_init_by_strides(&e->wei_md, 2, wdims, dt, wstr), "weight desc");
    DN(dnnl_memory_desc_init_by_strides(&e->dst_md, 2, ddims, dnnl_f32, dstr), "dst desc");
    DN(dnnl_memory_desc_init_by_strides(&e->bias_md, 2, bdims, dnnl_f32, bstr), "bias desc");
    DN(dnnl_matmul_desc_init(&md, &e->src_md, &e->wei_md, k->bias ? &e->bias_md : NULL,
                             &e->dst_md), "matmul desc");
    DN(dnnl_primitive_attr_create(&attr), "attr");
    /* our scratchpad, per call: the library's default one is shared and ties a primitive to
     * the thread that made it, which a cache used from any thread cannot promise */
    DN(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), "scratchpad mode");
    if (k->acc) {
        DN(dnnl_post_ops_create(&po), "post ops");
        DN(dnnl_post_ops_append_sum(po, 1.0f), "sum post op");
        DN(dnnl_primitive_attr_set_post_ops(attr, po), "set post ops");
    }
    DN(dnnl_primitive_desc_create(&pd, &md, attr, g_engine, NULL), "primitive desc");
    DN(dnnl_primitive_create(&e->prim, pd), "primitive");
    e->scratch_md = *dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    e->scratch_bytes = dnnl_memory_desc_get_size(&e->scratch_md);
done:
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (po) dnnl_post_ops_destroy(po);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return rc;
}

/* Finds or makes the primitive for key; the returned entry has users incremented. */
static avl_status acquire(const key_t_ *k, entry **out)
{
    pthread_mutex_lock(&g_lock);
    entry *victim = NULL;
    for (int i = 0; i < CACHE; i++) {
        entry *e = &g_cache[i];
        if (e->prim && !memcmp(&e->key, k, sizeof *k)) {
            e->users++;
            e->last_use = ++g_tick;
            *out = e;
            pthread_mutex_unlock(&g_lock);
            return AVL_OK;
        }
        if (e->users == 0 && (!victim || !e->prim || (victim->prim && e->last_use < victim->last_use)))
            victim = e;
    }
    avl_status rc = AVL_OK;
    if (!victim) {
        rc = avl__err(AVL_E_INTERNAL, "onednn: all %d cached primitives are in use", CACHE);
    } else {
        if (victim->prim) dnnl_primitive_destroy(victim->prim);
        victim->prim = NULL;
        rc = make_entry(k, victim);
        if (rc == AVL_OK) {
            victim->users = 1;
            victim->last_use = ++g_tick;
            *out = victim;
        } else {
            if (victim->prim) dnnl_primitive_destroy(victim->prim);
            victim->prim = NULL;
        }
    }
    pthread_mutex_unlock(&g_lock);
    return rc;
}

static void release(entry *e)
{
    pthread_mutex_lock(&g_lock);
    e->users--;
    pthread_mutex_unlock(&g_lock);
}

static avl_status dn_gemm(const avl__gemm_args *a)
{
    const avl__weight *w = a->w;
    avl__gemm_backend_isa(&avl__gemm_onednn); /* probes once, thread-safe (pthread_once) */
    if (!g_engine) return avl__err(AVL_E_UNSUPPORTED, "onednn: no CPU engine");
    if (w->dtype == AVL__DT_F16 || (w->dtype == AVL__DT_BF16 && !g_bf16_ok) ||
        (w->dtype == AVL__DT_F32 && (uintptr_t)w->data % 4)) {
        /* what OpenBLAS would do, its skinny boundary included */
        if (a->m <= avl__gemm_openblas.skinny_max_m) {
            avl__gemm_skinny(a);
            return AVL_OK;
        }
        return avl__gemm_openblas.gemm(a);
    }
    key_t_ key;
    memset(&key, 0, sizeof key); /* the key is compared with memcmp: no stray padding */
    key.m = a->m;
    key.n = w->n;
    key.k = w->k;
    key.ld = w->ld;
    key.ldy = a->ldy;
    key.dtype = (int)w->dtype;
    key.bias = a->bias != NULL;
    key.acc = a->accumulate;
    const key_t_ *k = &key;
    int64_t M = a->m, K = w->k, N = w->n;
    avl_status rc = AVL_OK;
    void *src = NULL;    /* (M, K) bf16, or X itself for f32 weights */
    float *bias = NULL;  /* (N) */
    dnnl_memory_t msrc = NULL, mwei = NULL, mbias = NULL, mdst = NULL, mscr = NULL;
    void *scratch = NULL; /* oneDNN's scratchpad for this call */
    dnnl_stream_t stream = NULL;
    entry *e = NULL;
    if (w->dtype == AVL__DT_BF16) {
        uint16_t *s = avl__malloc(sizeof(uint16_t) * (size_t)(M * K));
        if (!s) return avl__err(AVL_E_NOMEM, "gemm onednn: bf16 copy of X (%lld x %lld)",
                                (long long)M, (long long)K);
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < M; i++) avl__convert_f32_to_bf16(a->x + i * a->ldx, s + i * K, K);
        src = s;
    }
    if (a->bias) {
        bias = avl__malloc(sizeof(float) * (size_t)N);
        if (!bias) {
            rc = avl__err(AVL_E_NOMEM, "gemm onednn: bias of %lld", (long long)N);
            goto done;
        }
        avl__convert_to_f32(a->bias->dtype, a->bias->data, bias, N);
    }
    if (w->dtype == AVL__DT_F32 && a->ldx != K) {
        /* the f32 path passes X in place only when its rows are contiguous */
        float *s = avl__malloc(sizeof(float) * (size_t)(M * K));
        if (!s) {
            rc = avl__err(AVL_E_NOMEM, "gemm onednn: copy of X (%lld x %lld)", (long long)M,
                          (long long)K);
            goto done;
        }
        for (int64_t i = 0; i < M; i++) memcpy(s + i * K, a->x + i * a->ldx, sizeof(float) * K);
        src = s;
    }
    rc = acquire(k, &e);
    if (rc != AVL_OK) goto done;
    DN(dnnl_memory_create(&msrc, &e->src_md, g_engine, src ? src : (void *)a->x), "src memory");
    DN(dnnl_memory_create(&mwei, &e->wei_md, g_engine, (void *)w->data), "weight memory");
    DN(dnnl_memory_create(&mdst, &e->dst_md, g_engine, a->y), "dst memory");
    if (bias) DN(dnnl_memory_create(&mbias, &e->bias_md, g_engine, bias), "bias memory");
    if (e->scratch_bytes) {
        scratch = avl__malloc(e->scratch_bytes);
        if (!scratch) {
            rc = avl__err(AVL_E_NOMEM, "gemm onednn: scratchpad of %zu bytes", e->scratch_bytes);
            goto done;
        }
    }
    DN(dnnl_memory_create(&mscr, &e->scratch_md, g_engine, scratch), "scratchpad memory");
    DN(dnnl_stream_create(&stream, g_engine, dnnl_stream_default_flags), "stream");
    dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, msrc}, {DNNL_ARG_WEIGHTS, mwei},
                               {DNNL_ARG_DST, mdst}, {DNNL_ARG_SCRATCHPAD, mscr},
                               {DNNL_ARG_BIAS, mbias}};
    DN(dnnl_primitive_execute(e->prim, stream, bias ? 5 : 4, args), "execute");
    DN(dnnl_stream_wait(stream), "wait");
done:
    if (stream) dnnl_stream_destroy(stream);
    if (msrc) dnnl_memory_destroy(msrc);
    if (mwei) dnnl_memory_destroy(mwei);
    if (mbias) dnnl_memory_destroy(mbias);
    if (mdst) dnnl_memory_destroy(mdst);
    if (mscr) dnnl_memory_destroy(mscr);
    if (e) release(e);
    avl__free(scratch);
    avl__free(src);
    avl__free(bias);
    return rc;
}

const char *avl__gemm_onednn_impl(int64_t m, int64_t n, int64_t k, char *buf, size_t len)
{
    snprintf(buf, len, "unavailable");
    if (!g_engine && dnnl_engine_create(&g_engine, dnnl_cpu, 0) != dnnl_success) return buf;
    dnnl_memory_desc_t s, w, d;
    dnnl_dims_t sd = {m, k}, ss = {k, 1}, wd = {k, n}, ws = {1, k}, dd = {m, n}, ds = {n, 1};
    dnnl_matmul_desc_t md;
    dnnl_primitive_desc_t pd;
    if (dnnl_memory_desc_init_by_strides(&s, 2, sd, dnnl_bf16, ss) ||
        dnnl_memory_desc_init_by_strides(&w, 2, wd, dnnl_bf16, ws) ||
        dnnl_memory_desc_init_by_strides(&d, 2, dd, dnnl_f32, ds) ||
        dnnl_matmul_desc_init(&md, &s, &w, NULL, &d) ||
        dnnl_primitive_desc_create(&pd, &md, NULL, g_engine, NULL))
        return buf;
    const char *impl = NULL;
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success && impl)
        snprintf(buf, len, "%s", impl);
    dnnl_primitive_desc_destroy(pd);
    return buf;
}

bool avl__gemm_onednn_has_bf16(void)
{
    avl__gemm_backend_isa(&avl__gemm_onednn); /* probes once, thread-safe (pthread_once) */
    return g_bf16_ok;
}

/* Skinny up to M = 4 (the decode shapes): AMX has not been measured against it here (the
 * development machine lacks AVX-512), so the boundary is the issue's, not a measurement. */
const avl__gemm_backend avl__gemm_onednn = {"onednn", dn_probe, dn_gemm, 4};
