/* src/kernels/ops.c: fast norms, activations, softmax and rotary embedding (contracts in
 * ops.h). OpenMP over rows (or chunks of a vector); sums kept in 8 partial lanes combined in a
 * fixed tree, which the compiler vectorises without reassociating anything. Each row is
 * handled by one thread, so results do not depend on the thread count. */
#include <math.h>

#include "kernels/ops.h"

/* Parallelise only when there is enough work to pay for waking the threads. */
#define PAR_MIN 32768

static float sum8_sq(const float *x, int64_t n)
{
    float p[8] = {0};
    int64_t n8 = n / 8 * 8;
    for (int64_t i = 0; i < n8; i += 8)
        for (int j = 0; j < 8; j++) p[j] += x[i + j] * x[i + j];
    float s = ((p[0] + p[4]) + (p[1] + p[5])) + ((p[2] + p[6]) + (p[3] + p[7]));
    for (int64_t i = n8; i < n; i++) s += x[i] * x[i];
    return s;
}

static float sum8(const float *x, int64_t n, float shift)
{
    float p[8] = {0};
    int64_t n8 = n / 8 * 8;
    for (int64_t i = 0; i < n8; i += 8)
        for (int j = 0; j < 8; j++) p[j] += x[i + j] - shift;
    float s = ((p[0] + p[4]) + (p[1] + p[5])) + ((p[2] + p[6]) + (p[3] + p[7]));
    for (int64_t i = n8; i < n; i++) s += x[i] - shift;
    return s;
}

static float sum8_sqdev(const float *x, int64_t n, float mean)
{
    float p[8] = {0};
    int64_t n8 = n / 8 * 8;
    for (int64_t i = 0; i < n8; i += 8)
        for (int j = 0; j < 8; j++) p[j] += (x[i + j] - mean) * (x[i + j] - mean);
    float s = ((p[0] + p[4]) + (p[1] + p[5])) + ((p[2] + p[6]) + (p[3] + p[7]));
    for (int64_t i = n8; i < n; i++) s += (x[i] - mean) * (x[i] - mean);
    return s;
}

void avl__rmsnorm(float *y, const float *x, const float *w, int64_t rows, int64_t dim, float eps)
{
#pragma omp parallel for schedule(static) if (rows * dim >= PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * dim;
        float *yr = y + r * dim;
        float inv = 1.0f / sqrtf(sum8_sq(xr, dim) / (float)dim + eps);
        for (int64_t i = 0; i < dim; i++) yr[i] = xr[i] * inv * w[i];
    }
}

void avl__layernorm(float *y, const float *x, const float *w, const float *b, int64_t rows,
                    int64_t dim, float eps)
{
#pragma omp parallel for schedule(static) if (rows * dim >= PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * dim;
        float *yr = y + r * dim;
        /* two passes (mean, then squared deviations): no cancellation for large means */
        float mean = sum8(xr, dim, 0.0f) / (float)dim;
        float inv = 1.0f / sqrtf(sum8_sqdev(xr, dim, mean) / (float)dim + eps);
        for (int64_t i = 0; i < dim; i++) yr[i] = (xr[i] - mean) * inv * w[i] + (b ? b[i] : 0.0f);
    }
}

void avl__silu_mul(float *y, const float *g, const float *u, int64_t n)
{
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
    for (int64_t i = 0; i < n; i++) y[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

void avl__gelu(float *y, const float *x, int64_t n, bool tanh_approx)
{
    const float k0 = 0.7978845608028654f; /* sqrt(2/pi) */
    const float r2 = 0.7071067811865476f; /* 1/sqrt(2) */
    if (tanh_approx) {
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
        for (int64_t i = 0; i < n; i++) {
            float v = x[i];
            y[i] = 0.5f * v * (1.0f + tanhf(k0 * (v + 0.044715f * v * v * v)));
        }
    } else {
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
        for (int64_t i = 0; i < n; i++) y[i] = 0.5f * x[i] * (1.0f + erff(x[i] * r2));
    }
}

void avl__softmax_rows(float *x, int64_t rows, int64_t cols, int64_t ld)
{
#pragma omp parallel for schedule(static) if (rows * cols >= PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        float *xr = x + r * ld;
        float mx = -INFINITY;
        for (int64_t j = 0; j < cols; j++) mx = xr[j] > mx ? xr[j] : mx;
        if (mx == -INFINITY) {
            for (int64_t j = 0; j < cols; j++) xr[j] = 0.0f;
            continue;
        }
        for (int64_t j = 0; j < cols; j++) xr[j] = expf(xr[j] - mx);
        float inv = 1.0f / sum8(xr, cols, 0.0f);
        for (int64_t j = 0; j < cols; j++) xr[j] *= inv;
    }
}

void avl__rope(float *x, int64_t ldx, int64_t rows, int64_t n_heads, int64_t hd,
               const float *cos, const float *sin, int64_t ldcs)
{
    int64_t half = hd / 2;
#pragma omp parallel for schedule(static) if (rows * n_heads * hd >= PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float *c = cos + r * ldcs, *s = sin + r * ldcs;
        for (int64_t h = 0; h < n_heads; h++) {
            float *v = x + r * ldx + h * hd;
            for (int64_t i = 0; i < half; i++) {
                float a = v[i], b = v[i + half];
                v[i] = a * c[i] - b * s[i];
                v[i + half] = b * c[i + half] + a * s[i + half];
            }
        }
    }
}
